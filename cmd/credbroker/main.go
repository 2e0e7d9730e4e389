package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"credbroker/shims/docker"

	"github.com/urfave/cli/v2"
)

// Exit statuses of the broker itself; `run` exits with its child's status.
const (
	exitOK    = 0
	exitError = 1 // no credential, no token, a front-end failed
	exitUsage = 2 // bad flags or arguments
)

func main() {
	os.Exit(realMain(os.Args, os.Stdout, os.Stderr))
}

// realMain runs the CLI and returns the process exit status, so tests can
// drive it in-process.
func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && filepath.Base(args[0]) == docker.BinaryName {
		return dockerHelperMain(args[1:], os.Stdin, stdout)
	}
	defer startProfile(stderr)()
	app := newApp(stdout, stderr)
	err := app.Run(args)
	if err == nil {
		return exitOK
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, "credbroker:", msg)
		}
		return ec.ExitCode()
	}
	// Flag parsing and other usage errors from the cli library.
	fmt.Fprintln(stderr, "credbroker:", err)
	return exitUsage
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:  "credbroker",
		Usage: "serve one Google credential to local tools through every protocol they speak",
		Description: "credbroker holds a credential and hands short-lived tokens to the programs it runs,\n" +
			"through LUCI_CONTEXT local_auth, a GCE metadata server, the Cloud Shell devshell\n" +
			"protocol and a gsutil .boto shim, all on loopback and only while the session lives.\n\n" +
			"Start with `credbroker demo` (offline, no account needed).",
		Writer:                 stdout,
		ErrWriter:              stderr,
		HideVersion:            true,
		UseShortOptionHandling: false,
		ExitErrHandler:         func(*cli.Context, error) {}, // realMain reports errors
		Commands: []*cli.Command{
			runCommand(),
			tokenCommand(),
			infoCommand(),
			demoCommand(),
			gitCredentialCommand(),
			webCommand(),
			loginCommand(),
			logoutCommand(),
			serveCommand(),
			sessionCommand(),
			statusCommand(),
			benchCommand(),
		},
	}
}

// usageError is a bad invocation: exit status 2.
func usageError(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), exitUsage)
}

// brokerError is a failure of the broker: exit status 1, one line, no
// stack trace.
func brokerError(err error) error {
	return cli.Exit(err.Error(), exitError)
}

// newLogger builds the process logger from --log-level and --log-format.
func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usageError("--log-level: %v (want debug, info, warn or error)", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f := c.String("log-format"); f {
	case "text":
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts)), nil
	default:
		return nil, usageError("--log-format %q: want text or json", f)
	}
}
