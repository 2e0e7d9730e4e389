//go:build unix

package serviceaccount

import (
	"path/filepath"
	"syscall"
	"testing"
)

// TestKeyFileFIFO checks that a FIFO is refused instead of blocking on
// open until some writer appears.
func TestKeyFileFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	_, err := FromFile(path, Options{})
	want := `service-account key file "` + path + `": bad service-account key: not a regular file`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}
