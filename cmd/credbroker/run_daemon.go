package main

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"credbroker/session"

	"github.com/urfave/cli/v2"
)

// Flags of `run` for running CMD in a session of the daemon.
var daemonRunFlags = []cli.Flag{
	&cli.BoolFlag{Name: "daemon", Usage: "run CMD in a new session of the running daemon (credbroker serve) instead of serving it from this process; the session is revoked when CMD exits", Category: "Daemon"},
	socketFlag,
	&cli.DurationFlag{Name: "ttl", Value: 8 * time.Hour, Usage: "with --daemon: the session's time to live", Category: "Daemon"},
	&cli.DurationFlag{Name: "stale", Usage: "with --daemon: end the session after this long without a request", Category: "Daemon"},
}

// runInDaemon runs argv in a new session of the daemon and revokes the
// session when argv exits. The credential flags are the daemon's
// business and are refused here.
func runInDaemon(c *cli.Context, argv []string, sigs <-chan os.Signal) error {
	for _, f := range []string{"dev", "service-account-json"} {
		if c.IsSet(f) {
			return usageError("--%s does not go with --daemon: the daemon holds the credential", f)
		}
	}
	req, err := createRequest(c)
	if err != nil {
		return err
	}
	cl, err := adminClient(c)
	if err != nil {
		return err
	}
	created, err := cl.Create(c.Context, req)
	if err != nil {
		return brokerError(err)
	}
	// Revoke even when interrupted: the session must not outlive CMD.
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.Revoke(ctx, created.ID); err != nil {
			fmt.Fprintf(c.App.ErrWriter, "credbroker: revoking session %s: %v\n", created.ID, err)
		}
	}()

	env := session.Env(os.Environ())
	for _, k := range created.Unset {
		env.Unset(k)
	}
	for _, v := range created.Set {
		env.Set(v.Name, v.Value)
	}
	select {
	case sig := <-sigs:
		return cli.Exit("", 128+int(sig.(syscall.Signal)))
	default:
	}
	code, err := runChild(argv, env, sigs)
	if err != nil {
		fmt.Fprintln(c.App.ErrWriter, "credbroker:", err)
	}
	if code == 0 {
		return nil
	}
	return cli.Exit("", code)
}
