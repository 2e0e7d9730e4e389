package openid_test

import (
	"net"
	"testing"
)

// freePort returns a loopback port free a moment ago. The server binds it
// right after; a clash fails the test loudly rather than flaking silently.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
