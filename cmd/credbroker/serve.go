package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"credbroker/daemon"
	"credbroker/store"

	"github.com/urfave/cli/v2"
)

func serveCommand() *cli.Command {
	flags := append(append(credentialFlags(), logFlags()...),
		&cli.StringSliceFlag{Name: "account", Usage: "account `ID` sessions may use (repeatable; default \"task\")", Category: "Accounts"},
		&cli.StringFlag{Name: "default-account", Usage: "the account `ID` of sessions that name none (default: the first --account)", Category: "Accounts"},
		&cli.StringFlag{Name: "project", Usage: "project `ID` sessions report unless they name one (default: the key's project_id)", Category: "Accounts"},
		&cli.StringFlag{Name: "store", Usage: "where sessions are kept: a SQLite file `PATH` or a postgres:// URL, its password in PGPASSWORD or ~/.pgpass (default: state.db in the state directory)"},
	)
	return &cli.Command{
		Name:      "serve",
		Usage:     "run the broker daemon that hosts sessions",
		UsageText: "credbroker serve [--dev | --service-account-json PATH] [flags]",
		Description: "Holds the credential and hosts sessions made with `credbroker session create` and\n" +
			"`credbroker run --daemon`. The admin API listens on a unix socket (0600) in\n" +
			"$XDG_RUNTIME_DIR/credbroker (else a per-user directory in the temporary directory)\n" +
			"and answers only this user. Sessions are kept in $XDG_STATE_HOME/credbroker/state.db\n" +
			"(~/.local/state), their tokens sealed with the key in $XDG_CONFIG_HOME/credbroker/key\n" +
			"(~/.config; made on first start) or $" + daemon.KeyEnv + ". Issuances go to audit.log beside\n" +
			"the database.\n\n" +
			"SIGTERM or SIGINT: stop; sessions come back on the same ports at the next start.\n" +
			"SIGHUP: read the credential again (a rotated key file) without touching sessions.",
		Flags:  flags,
		Action: serveAction,
	}
}

func serveAction(c *cli.Context) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	ids, def, err := accountIDs(c)
	if err != nil {
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	cred, err := selectCredential(c, log)
	if err != nil {
		return err
	}
	b, err := newBroker(cred, ids, def, log)
	if err != nil {
		return brokerError(err)
	}
	if err := warmUp(c.Context, b, def, scopesDefault, sigs); err != nil {
		b.Close()
		return err
	}
	paths, err := daemon.DefaultPaths(os.Getenv)
	if err != nil {
		b.Close()
		return brokerError(err)
	}
	key, err := daemon.LoadKey(os.Getenv, paths.KeyFile())
	if err != nil {
		b.Close()
		return brokerError(err)
	}
	project := c.String("project")
	if project == "" {
		project = cred.projectID
	}
	// Without --store the daemon opens state.db itself, once it has
	// checked that the state directory is private.
	var st store.Store
	if dsn := c.String("store"); dsn != "" {
		db, err := store.Open(c.Context, dsn)
		if err != nil {
			b.Close()
			return brokerError(err)
		}
		st = db // the daemon closes it, on failure too
	}
	d, err := daemon.New(c.Context, daemon.Options{Paths: paths, Key: key, Broker: b, Store: st, Logger: log, DefaultProject: project})
	if err != nil {
		b.Close()
		return brokerError(err)
	}
	if err := d.Start(); err != nil {
		d.Shutdown(context.Background())
		b.Close()
		return brokerError(err)
	}
	log.Info("serving", "socket", paths.Socket())

	for sig := range sigs {
		if sig != syscall.SIGHUP {
			break
		}
		reloadCredential(c, d, ids, def)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = d.Shutdown(ctx)
	d.Broker().Close()
	if err != nil {
		return brokerError(err)
	}
	return nil
}

// reloadCredential reads the credential again and gives every session
// the new token core; the old one is closed once requests in flight have
// had time to finish. A credential that does not load leaves the old one
// serving.
func reloadCredential(c *cli.Context, d *daemon.Daemon, ids []string, def string) {
	log, _ := newLogger(c)
	cred, err := selectCredential(c, log)
	if err != nil {
		log.Error("credential reload failed; the previous one keeps serving", "err", err)
		return
	}
	b, err := newBroker(cred, ids, def, log)
	if err != nil {
		log.Error("credential reload failed; the previous one keeps serving", "err", err)
		return
	}
	old := d.SetBroker(b)
	time.AfterFunc(time.Minute, func() { old.Close() })
	log.Warn("credential reloaded", "credential", cred.kind, "detail", cred.detail)
}
