package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"credbroker/broker"
	"credbroker/protocols/openid"
	"credbroker/store"

	"github.com/urfave/cli/v2"
)

// clientSecretEnv carries the OAuth client secret when no file is given;
// a secret never goes in a flag, where ps would show it.
const clientSecretEnv = "CREDBROKER_OIDC_CLIENT_SECRET"

func webCommand() *cli.Command {
	return &cli.Command{
		Name:      "web",
		Usage:     "serve /auth/openid/* so browser apps on this origin get the user's tokens from JavaScript",
		UsageText: "credbroker web [--addr 127.0.0.1:PORT] [--dev | --service-account-json PATH]\n   credbroker web --client-id ID --client-secret-file PATH --redirect-url URL --aead-key-file PATH [--store DSN]\n   credbroker web --new-aead-key-file PATH",
		Description: "Local mode (the default, no configuration): sign-in is faked and /auth/openid/state\n" +
			"serves the broker's own credential, for developing a single-page app on localhost;\n" +
			"only this user's processes (the browser) are answered.\n\n" +
			"Production mode (--client-id): the OpenID Connect code flow with PKCE against the\n" +
			"issuer (Google by default); refresh tokens stay in the session store, sealed with the\n" +
			"AEAD key file, which servers sharing a --store postgres://... database share too.\n" +
			"The client secret is read from --client-secret-file or $" + clientSecretEnv + ".\n\n" +
			"The page at / says which mode runs and shows what /auth/openid/state answers.\n" +
			"Only loopback addresses are served; TLS and other addresses come with `serve --web`.",
		Flags: append(append(append(credentialFlags(), logFlags()...), webFlags("Web", "Production")...),
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8800", Usage: "loopback `HOST:PORT` to serve on (port 0 picks one)"},
			&cli.StringFlag{Name: "store", Usage: "browser-session store: a SQLite file `PATH` or a postgres:// URL, its password in PGPASSWORD or ~/.pgpass (default: in memory)", Category: "Production"},
			&cli.StringFlag{Name: "new-aead-key-file", Usage: "write a new key file at `PATH` (mode 0600) and exit", Category: "Production"},
		),
		Action: webAction,
	}
}

func webAction(c *cli.Context) error {
	if path := c.String("new-aead-key-file"); path != "" {
		return writeNewKeyFile(path, c.App.Writer)
	}
	port, err := loopbackPort(c.String("addr"))
	if err != nil {
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	srv := &openid.Server{Port: port, Logger: log}
	if dsn := c.String("store"); dsn != "" {
		db, err := store.Open(ctx, dsn)
		if err != nil {
			return brokerError(err)
		}
		defer db.Close()
		srv.Store = db.BrowserSessions()
	}
	var b *broker.Broker
	defer func() {
		if b != nil {
			b.Close()
		}
	}()
	err = configureWeb(c, srv, log, func() (openid.Tokens, error) {
		cred, err := selectCredential(c, log)
		if err != nil {
			return nil, err
		}
		if b, err = newBroker(cred, []string{defaultAccountID}, defaultAccountID, log); err != nil {
			return nil, brokerError(err)
		}
		return b, nil
	})
	if err != nil {
		return err
	}
	return serveWeb(ctx, srv, c.App.Writer)
}

// serveWeb starts srv, prints where it is, and serves until ctx ends.
func serveWeb(ctx context.Context, srv *openid.Server, out io.Writer) error {
	info, err := srv.Start(ctx)
	if err != nil {
		return brokerError(err)
	}
	defer srv.Close()
	announceWeb(out, info)
	<-ctx.Done()
	return nil
}

// loopbackPort checks --addr: web serves loopback only.
func loopbackPort(addr string) (int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, usageError("--addr %q: want HOST:PORT", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return 0, usageError("--addr %q: bad port", addr)
	}
	switch strings.ToLower(host) {
	case "127.0.0.1", "localhost", "":
		return port, nil
	}
	return 0, usageError("--addr %q: web serves 127.0.0.1 only; other addresses need TLS and production mode, which come with `serve --web`", addr)
}

func configureProduction(c *cli.Context, srv *openid.Server, log *slog.Logger) error {
	secret, err := readClientSecret(c.String("client-secret-file"))
	if err != nil {
		return err
	}
	redirect := c.String("redirect-url")
	if redirect == "" || !strings.HasSuffix(redirect, openid.PathCallback) {
		return usageError("--redirect-url must be given and end in %s", openid.PathCallback)
	}
	keyFile := c.String("aead-key-file")
	if keyFile == "" {
		return usageError("production mode needs --aead-key-file (make one with --new-aead-key-file)")
	}
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return brokerError(err)
	}
	keys, err := openid.ParseKeyring(data)
	if err != nil {
		return brokerError(err)
	}
	if srv.Store == nil {
		log.Warn("no --store: browser sessions live in memory and end when the server stops")
	}
	srv.Keys = keys
	srv.OIDC = &openid.OIDC{
		Issuer:       c.String("issuer"),
		ClientID:     c.String("client-id"),
		ClientSecret: secret,
		RedirectURL:  redirect,
	}
	return nil
}

func readClientSecret(path string) (string, error) {
	if path == "" {
		if s := os.Getenv(clientSecretEnv); s != "" {
			return s, nil
		}
		return "", usageError("production mode needs --client-secret-file or $%s", clientSecretEnv)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", brokerError(err)
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", brokerError(fmt.Errorf("%s is empty", path))
	}
	return s, nil
}

// writeNewKeyFile writes a fresh AEAD key file, never over an existing one.
func writeNewKeyFile(path string, out io.Writer) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return usageError("%s exists; to rotate, add a new first line by hand and keep the old key below it", path)
	}
	if err != nil {
		return brokerError(err)
	}
	k := openid.GenerateKey("k1")
	if _, err := io.WriteString(f, "# credbroker AEAD keys: \"ID BASE64\", the first line seals.\n"+openid.FormatKey(k)); err != nil {
		f.Close()
		return brokerError(err)
	}
	if err := f.Close(); err != nil {
		return brokerError(err)
	}
	fmt.Fprintf(out, "wrote a new key %q to %s\n", k.ID, path)
	return nil
}
