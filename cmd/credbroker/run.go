package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"credbroker/broker"
	"credbroker/session"

	"github.com/urfave/cli/v2"
)

// Front-end switches, shared by run and demo.
var frontendFlags = []cli.Flag{
	&cli.BoolFlag{Name: "no-local-auth", Usage: "do not serve LUCI_CONTEXT local_auth", Category: "Front-ends"},
	&cli.BoolFlag{Name: "no-gcemeta", Usage: "do not serve a GCE metadata server", Category: "Front-ends"},
	&cli.BoolFlag{Name: "no-devshell", Usage: "do not serve the Cloud Shell devshell protocol", Category: "Front-ends"},
	&cli.BoolFlag{Name: "no-gsutil", Usage: "do not give gsutil a .boto and token endpoint", Category: "Front-ends"},
	&cli.StringFlag{Name: "boto-mode", Value: "token", Usage: "gsutil's .boto: `token` (a refresh token for the broker's endpoint) or gce ([GoogleCompute], needs metadata.google.internal on port 80)", Category: "Front-ends"},
}

func frontendsFrom(c *cli.Context) (session.Frontends, error) {
	fe := session.Frontends{
		LocalAuth: !c.Bool("no-local-auth"),
		GCEMeta:   !c.Bool("no-gcemeta"),
		Devshell:  !c.Bool("no-devshell"),
		Gsutil:    !c.Bool("no-gsutil"),
	}
	switch mode := c.String("boto-mode"); mode {
	case "token":
	case "gce":
		if !fe.GCEMeta {
			return fe, usageError("--boto-mode=gce needs the metadata server (drop --no-gcemeta)")
		}
		fe.BotoGCE = true
	default:
		return fe, usageError("--boto-mode %q: want token or gce", mode)
	}
	return fe, nil
}

func runCommand() *cli.Command {
	flags := append(append(append(append(credentialFlags(), scopeFlags()...), logFlags()...), frontendFlags...), toolFlags...)
	flags = append(flags, accountFlags...)
	flags = append(flags,
		&cli.StringSliceFlag{Name: "account", Usage: "local_auth account `ID` to serve (repeatable; default \"task\")", Category: "Accounts"},
		&cli.StringFlag{Name: "default-account", Usage: "the account `ID` children use by default (default: the first --account)", Category: "Accounts"},
		&cli.StringFlag{Name: "project", Usage: "project `ID` to report (default: the key's project_id)", Category: "Accounts"},
		&cli.StringFlag{Name: "gce-zone", Usage: "zone the metadata server reports, e.g. `europe-west1-b` (default: none; tools then see no zone)", Category: "Accounts"},
		&cli.BoolFlag{Name: "disable-git-auth", Usage: "luci-auth's spelling of --no-git", Category: "Compatibility"},
	)
	flags = append(flags, daemonRunFlags...)
	return &cli.Command{
		Name:      "run",
		Aliases:   []string{"context"},
		Usage:     "run a command with every credential protocol served to it",
		UsageText: "credbroker run [flags] -- CMD [ARGS...]\n   credbroker context [luci-auth context flags] -- CMD [ARGS...]",
		Description: "Starts the front-ends on loopback, points CMD's environment at them (LUCI_CONTEXT,\n" +
			"GCE_METADATA_HOST and friends, DEVSHELL_CLIENT_PORT, a fresh CLOUDSDK_CONFIG), runs\n" +
			"CMD with stdio passed through and exits with its status (128+N if signal N killed it).\n" +
			"SIGINT, SIGTERM and SIGHUP are forwarded to CMD. When CMD exits, or the broker is\n" +
			"interrupted, every server stops and every file the session made is removed.\n\n" +
			"`context` is an alias that accepts luci-auth context's flag spellings.\n\n" +
			"Examples:\n" +
			"   credbroker run --dev -- gcloud auth print-access-token\n" +
			"   credbroker run --service-account-json key.json -- python3 my_tool.py",
		Flags:  flags,
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	// Catch signals from the very start, so an interrupt during setup
	// still cleans up.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)

	argv := c.Args().Slice()
	if len(argv) == 0 {
		return usageError("run needs a command: credbroker run [flags] -- CMD [ARGS...]")
	}
	if c.Bool("daemon") {
		return runInDaemon(c, argv, sigs)
	}
	if c.Bool("anonymous") && !credentialGiven(c) {
		return runAnonymous(c, argv, sigs)
	}
	scopes, err := scopesFrom(c)
	if err != nil {
		return err
	}
	ids, def, err := accountIDs(c)
	if err != nil {
		return err
	}
	if c.Bool("expose-system-account") && !slices.Contains(ids, systemAccountID) {
		ids = append(ids, systemAccountID)
	}
	frontends, err := frontendsFrom(c)
	if err != nil {
		return err
	}
	tools := toolsFrom(c, &frontends)
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	shared, cred, perAccount, err := credentialsFor(c, ids, def, log)
	if err != nil {
		return err
	}
	if cred.src == nil { // --login-mode=optional found nothing
		log.Warn(cred.detail)
		return exitWith(runChild(argv, os.Environ(), sigs))
	}
	b, err := newBrokerWith(shared, ids, def, perAccount, log)
	if err != nil {
		return brokerError(err)
	}
	defer b.Close()

	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	// Mint the default token before the child starts: a broken credential
	// fails with a clear message, and the first client request (SDK
	// timeouts are a few seconds) is a cache hit. The mint (a network
	// round trip, and a signature for a service account) runs while the
	// front-ends start; the child waits for both.
	warm := startWarmUp(ctx, b, def, scopes)

	project := c.String("project")
	if project == "" {
		project = cred.projectID
	}
	sess, err := session.Start(ctx, session.Config{
		Broker:         b,
		Accounts:       ids,
		DefaultAccount: def,
		Scopes:         scopes,
		ProjectID:      project,
		Zone:           gceZone(c.String("gce-zone")),
		Frontends:      frontends,
		ParentEnv:      os.Environ(),
		Logger:         log,
		Tools:          tools,
	})
	if err != nil {
		return brokerError(err)
	}
	defer sess.Close()
	if err := awaitWarmUp(warm, sigs); err != nil {
		return err
	}
	for _, ep := range sess.Endpoints {
		log.Info("serving", slog.String("frontend", ep.Name), slog.String("addr", ep.Addr))
	}
	for _, name := range sess.Helpers {
		log.Info("credential helper configured", slog.String("tool", name))
	}

	select {
	case sig := <-sigs:
		return cli.Exit("", 128+int(sig.(syscall.Signal)))
	default:
	}
	code, err := runChild(argv, sess.Env, sigs)
	if err != nil {
		fmt.Fprintln(c.App.ErrWriter, "credbroker:", err)
	}
	if code == 0 {
		return nil
	}
	return cli.Exit("", code)
}

// warmUp mints the default token, giving up on a signal.
func warmUp(ctx context.Context, b *broker.Broker, account string, scopes []string, sigs <-chan os.Signal) error {
	return awaitWarmUp(startWarmUp(ctx, b, account, scopes), sigs)
}

// startWarmUp mints the default token in the background; its result
// arrives on the channel.
func startWarmUp(ctx context.Context, b *broker.Broker, account string, scopes []string) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		_, err := b.AccessToken(ctx, account, scopes, 5*time.Minute)
		done <- err
	}()
	return done
}

// awaitWarmUp waits for startWarmUp's mint, giving up on a signal.
func awaitWarmUp(done <-chan error, sigs <-chan os.Signal) error {
	select {
	case err := <-done:
		if err != nil {
			return brokerError(fmt.Errorf("the credential does not work: %w", err))
		}
		return nil
	case sig := <-sigs:
		return cli.Exit("", 128+int(sig.(syscall.Signal)))
	}
}

// gceZone turns a bare zone name into GCE's "projects/NUM/zones/ZONE" form.
func gceZone(z string) string {
	if z == "" || strings.Contains(z, "/") {
		return z
	}
	return "projects/0/zones/" + z
}
