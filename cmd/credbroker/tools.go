package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"credbroker/broker"
	"credbroker/lucictx"
	"credbroker/protocols/localauth"
	"credbroker/session"
	"credbroker/shims/docker"
	"credbroker/shims/git"

	"github.com/urfave/cli/v2"
)

// Switches and lists of the git, docker and firebase integrations, shared
// by run and demo.
var toolFlags = []cli.Flag{
	&cli.BoolFlag{Name: "no-git", Usage: "do not configure git's credential helper", Category: "Tools"},
	&cli.BoolFlag{Name: "no-docker", Usage: "do not configure docker's credential helper", Category: "Tools"},
	&cli.BoolFlag{Name: "no-firebase", Usage: "do not serve firebase-tools' token endpoint", Category: "Tools"},
	&cli.StringSliceFlag{Name: "git-host", Usage: "host `PATTERN` git gets tokens for (repeatable; default *.googlesource.com and source.developers.google.com)", Category: "Tools"},
	&cli.StringSliceFlag{Name: "gerrit-host", Usage: "Gerrit `HOST` whose URLs git rewrites to the authenticated /a/ path (repeatable)", Category: "Tools"},
	&cli.StringSliceFlag{Name: "docker-registry", Usage: "registry `HOST` docker gets tokens for (repeatable; default gcr.io, its regional hosts and every *-docker.pkg.dev)", Category: "Tools"},
}

// accountFlags are run's extra account switches.
var accountFlags = []cli.Flag{
	&cli.BoolFlag{Name: "expose-system-account", Usage: "also serve the credential as local_auth account \"system\"", Category: "Accounts"},
	&cli.BoolFlag{Name: "anonymous", Usage: "with no credential, run CMD anyway, with no token servers", Category: "Credential"},
}

// systemAccountID is the local_auth account --expose-system-account adds,
// the name LUCI's bot agents use for the machine's own identity.
const systemAccountID = "system"

// toolsFrom turns on the integrations not switched off and reads their
// lists.
func toolsFrom(c *cli.Context, fe *session.Frontends) session.Tools {
	fe.Git = !c.Bool("no-git") && !c.Bool("disable-git-auth")
	fe.Docker = !c.Bool("no-docker")
	fe.Firebase = !c.Bool("no-firebase")
	return session.Tools{
		GitHosts:         c.StringSlice("git-host"),
		GerritHosts:      c.StringSlice("gerrit-host"),
		DockerRegistries: c.StringSlice("docker-registry"),
	}
}

// credentialGiven reports whether any way of choosing a credential is
// present, so --anonymous knows there is none.
func credentialGiven(c flagReader) bool {
	return c.Bool("dev") || c.String("service-account-json") != "" || os.Getenv("GOOGLE_APPLICATION_CREDENTIALS") != ""
}

// runAnonymous runs argv with no credential, after saying so.
func runAnonymous(c *cli.Context, argv []string, sigs chan os.Signal) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	sess, err := session.Start(c.Context, session.Config{Anonymous: true, ParentEnv: os.Environ(), Logger: log})
	if err != nil {
		return brokerError(err)
	}
	defer sess.Close()
	fmt.Fprintln(c.App.ErrWriter, "credbroker: no credential: running the command anonymously "+
		"(no token servers, BOTO_CONFIG empty, git and docker as you configured them)")
	code, err := runChild(argv, sess.Env, sigs)
	if err != nil {
		fmt.Fprintln(c.App.ErrWriter, "credbroker:", err)
	}
	if code == 0 {
		return nil
	}
	return cli.Exit("", code)
}

func gitCredentialCommand() *cli.Command {
	return &cli.Command{
		Name:      "git-credential",
		Usage:     "git's credential helper for Google source hosts (git runs this inside a session)",
		UsageText: "credbroker git-credential [--host PATTERN]... get|store|erase",
		Description: "Speaks git's credential-helper protocol on stdin and stdout. For https URLs of the\n" +
			"hosts given (default *.googlesource.com and source.developers.google.com) it answers\n" +
			"with a fresh access token from the session, found through LUCI_CONTEXT; for any other\n" +
			"host it answers nothing, so git's other helpers run. store and erase do nothing.",
		Flags:  []cli.Flag{&cli.StringSliceFlag{Name: "host", Usage: "host `PATTERN` to answer for (repeatable)"}},
		Action: gitCredentialAction,
	}
}

func gitCredentialAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError("git-credential needs one operation: get, store or erase")
	}
	h := &git.Helper{Tokens: &lazyLocalAuth{}, Hosts: c.StringSlice("host")}
	ctx, cancel := context.WithTimeout(c.Context, helperTimeout)
	defer cancel()
	if err := h.Serve(ctx, c.Args().First(), os.Stdin, c.App.Writer); err != nil {
		return cli.Exit("git-credential: "+err.Error(), exitError)
	}
	return nil
}

// helperTimeout bounds one helper call: git and docker wait for it.
const helperTimeout = 2 * time.Minute

// dockerHelperMain is docker-credential-credbroker: docker runs it by that
// name with the operation as its one argument.
func dockerHelperMain(args []string, stdin io.Reader, stdout io.Writer) int {
	op := ""
	if len(args) > 0 {
		op = args[0]
	}
	var regs []string
	if dir := os.Getenv(docker.EnvConfig); dir != "" {
		// The same file docker read to choose this helper.
		if data, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
			regs = docker.ServedRegistries(data)
		}
	}
	h := &docker.Helper{Tokens: &lazyLocalAuth{}, Registries: regs, Version: "(credbroker)"}
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	return h.Serve(ctx, op, stdin, stdout)
}

// lazyLocalAuth is a local_auth client for the default account of the
// LUCI_CONTEXT in this process's environment, made on first use so that a
// helper asked about a host it does not serve needs no LUCI_CONTEXT.
type lazyLocalAuth struct {
	once sync.Once
	cl   *localauth.Client
	err  error
}

func (l *lazyLocalAuth) client() (*localauth.Client, error) {
	l.once.Do(func() {
		path := os.Getenv(lucictx.EnvKey)
		if path == "" {
			l.err = fmt.Errorf("no LUCI_CONTEXT: run under credbroker run")
			return
		}
		lc, _, err := lucictx.Load(path)
		if err != nil {
			l.err = err
			return
		}
		la, err := lc.LocalAuth()
		if err != nil {
			l.err = err
			return
		}
		l.cl, l.err = localauth.NewClient(la)
	})
	return l.cl, l.err
}

func (l *lazyLocalAuth) AccessToken(ctx context.Context, scopes []string, minLifetime time.Duration) (broker.Token, error) {
	cl, err := l.client()
	if err != nil {
		return broker.Token{}, err
	}
	return cl.AccessToken(ctx, scopes, minLifetime)
}

func (l *lazyLocalAuth) Email() string {
	cl, err := l.client()
	if err != nil {
		return ""
	}
	return cl.Email()
}
