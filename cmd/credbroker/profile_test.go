package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CREDBROKER_CPUPROFILE makes the broker write a CPU profile of its own
// process and is not passed on to the programs it runs, which would
// otherwise write theirs over it.
func TestCPUProfileEnv(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	prof := filepath.Join(tmp, "broker.prof")
	r := runBroker(t, tmp, []string{profileEnv + "=" + prof}, "run", "--dev", "--", "sh", "-c", `echo "child:${`+profileEnv+`-unset}"`)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "child:unset") {
		t.Errorf("the child saw %s: %q", profileEnv, r.stdout)
	}
	fi, err := os.Stat(prof)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("profile: %d bytes, mode %v; want a non-empty 0600 file", fi.Size(), fi.Mode().Perm())
	}
}
