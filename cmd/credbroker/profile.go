package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"credbroker/internal/bench"
)

// profileEnv names a file that gets a CPU profile of this process, from
// start to exit, for any command: how `credbroker bench --profile`
// profiles the broker and its baselines in their own processes. It is
// removed from the environment at once, so the programs a session runs
// do not profile themselves into the same file.
const profileEnv = bench.ProfileEnv

// startProfile starts the CPU profile profileEnv asks for and returns
// the function that ends it; a no-op when the variable is unset.
func startProfile(stderr io.Writer) (stop func()) {
	path := os.Getenv(profileEnv)
	if path == "" {
		return func() {}
	}
	os.Unsetenv(profileEnv)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "credbroker: %s: %v\n", profileEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(stderr, "credbroker: %s: %v\n", profileEnv, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
