package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"credbroker/broker"
	"credbroker/daemon"
	"credbroker/protocols/openid"
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
	flags = append(flags, serveWebFlags()...)
	return &cli.Command{
		Name:      "serve",
		Usage:     "run the broker daemon that hosts sessions",
		UsageText: "credbroker serve [--dev | --service-account-json PATH] [flags]\n   credbroker serve --web 127.0.0.1:PORT [--client-id ID ...] [flags]\n   credbroker serve --web 0.0.0.0:8443 --web-tls-cert FILE --web-tls-key FILE --client-id ID --client-secret-file PATH --redirect-url URL --aead-key-file PATH [--web-allow EMAIL] [flags]",
		Description: "Holds the credential and hosts sessions made with `credbroker session create` and\n" +
			"`credbroker run --daemon`. The admin API listens on a unix socket (0600) in\n" +
			"$XDG_RUNTIME_DIR/credbroker (else a per-user directory in the temporary directory)\n" +
			"and answers only this user. Sessions are kept in $XDG_STATE_HOME/credbroker/state.db\n" +
			"(~/.local/state), their tokens sealed with the key in $XDG_CONFIG_HOME/credbroker/key\n" +
			"(~/.config; made on first start) or $" + daemon.KeyEnv + ". Issuances go to audit.log beside\n" +
			"the database.\n\n" +
			"SIGTERM or SIGINT: stop; sessions come back on the same ports at the next start.\n" +
			"SIGHUP: read the credential again (a rotated key file) without touching sessions.\n\n" +
			serveWebHelp,
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
	// --store holds the daemon's sessions and the web front-end's browser
	// sessions, so brokers sharing a database share both. Without it the
	// daemon opens state.db itself, once it has checked that the state
	// directory is private, and browser sessions live in memory.
	var db *store.DB
	handedOver := false
	if dsn := c.String("store"); dsn != "" {
		if db, err = store.Open(c.Context, dsn); err != nil {
			return brokerError(err)
		}
		defer func() {
			if !handedOver {
				db.Close()
			}
		}()
	}
	// The web front-end serves the daemon's token core of the moment,
	// which SIGHUP replaces; d is set before the front-end starts.
	var d *daemon.Daemon
	web, err := prepareServeWeb(c, log, db, currentTokens(func() *broker.Broker { return d.Broker() }))
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
	var st store.Store
	if db != nil {
		st, handedOver = db, true // the daemon closes it, on failure too
	}
	d, err = daemon.New(c.Context, daemon.Options{Paths: paths, Key: key, Broker: b, Store: st, Logger: log, DefaultProject: project})
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
	if web != nil {
		home, err := webHome(d, dashboardAuthorizer(web, c.StringSlice("web-allow"), !production(c)), production(c), log)
		var info openid.Info
		if err == nil {
			web.Home = home
			info, err = web.Start(c.Context)
		}
		if err != nil {
			d.Shutdown(context.Background())
			d.Broker().Close()
			return brokerError(err)
		}
		defer web.Close()
		announceWeb(c.App.Writer, info)
	}

	for sig := range sigs {
		if sig != syscall.SIGHUP {
			break
		}
		reloadCredential(c, d, ids, def)
	}
	if web != nil {
		// First, so no browser request outlives the token core.
		web.Close()
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
