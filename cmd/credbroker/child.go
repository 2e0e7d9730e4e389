package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// forwardedSignals reach the child as they reach the broker. The broker
// itself keeps running until the child exits, then cleans up.
var forwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// runChild starts argv with env and stdio passed through, forwards
// the signals arriving on sigs to it, and returns the exit status the broker should exit with:
// the child's own code, or 128+N when signal N killed it.
func runChild(argv []string, env []string, sigs <-chan os.Signal) (int, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 127, fmt.Errorf("cannot run %q: %w", argv[0], err)
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// If the broker dies without cleaning up (SIGKILL), its token servers
	// are gone; the child should not outlive them unnoticed.
	cmd.SysProcAttr = childSysProcAttr()

	if err := cmd.Start(); err != nil {
		code := 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		return code, fmt.Errorf("cannot run %q: %w", argv[0], err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	for {
		select {
		case sig := <-sigs:
			_ = cmd.Process.Signal(sig)
		case err := <-waited:
			return exitStatus(cmd.ProcessState, err)
		}
	}
}

// exitStatus turns a finished process into a shell-style exit status.
func exitStatus(ps *os.ProcessState, waitErr error) (int, error) {
	if ps == nil {
		return 1, waitErr
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ps.ExitCode(), nil
}
