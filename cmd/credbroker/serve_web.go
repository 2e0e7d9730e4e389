package main

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"credbroker/daemon"
	"credbroker/dashboard"
	"credbroker/protocols/openid"
	"credbroker/store"

	"github.com/urfave/cli/v2"
)

// Help categories of serve's web flags.
const (
	catServeWeb     = "Web front-end (--web)"
	catServeWebProd = "Web front-end: production mode"
)

// serveWebFlags are `serve`'s flags for the browser front-end: where it
// listens and how, who may see the dashboard, and web's own flags.
func serveWebFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "web", Usage: "also serve the browser front-end (/auth/openid/*, the dashboard at /) on `HOST:PORT`; off by default", Category: catServeWeb},
		&cli.StringFlag{Name: "web-tls-cert", Usage: "serve --web over HTTPS only, with this PEM certificate (chain) `FILE`", Category: catServeWeb},
		&cli.StringFlag{Name: "web-tls-key", Usage: "the PEM private key `FILE` of --web-tls-cert", Category: catServeWeb},
		&cli.StringSliceFlag{Name: "web-allow", Usage: "production mode: `EMAIL` of a person who may see the dashboard once signed in (repeatable)", Category: catServeWebProd},
	}, webFlags(catServeWeb, catServeWebProd)...)
}

// serveWebHelp is the part of serve's description about --web.
const serveWebHelp = "--web HOST:PORT also serves the browser front-end of `credbroker web` from this\n" +
	"process: /auth/openid/* and, at /, the dashboard. On a loopback address it runs in\n" +
	"local mode (sign-in faked, /auth/openid/state serves the daemon's default account\n" +
	"to this user's processes only, following SIGHUP reloads) or in production mode with --client-id and the flags of\n" +
	"`credbroker web`. Any other address (0.0.0.0:8443, a LAN address) is served only\n" +
	"over HTTPS (--web-tls-cert and --web-tls-key) and only in production mode, where\n" +
	"the Host browsers send is the --redirect-url's (add others with --host) and the\n" +
	"dashboard admits the --web-allow emails once signed in. TLS works on loopback too.\n" +
	"The front-end starts once the daemon serves and stops with it."

// webOnlyFlags mean something only with --web.
var webOnlyFlags = []string{"web-tls-cert", "web-tls-key", "web-allow", "host", "scopes", "audience", "issuer",
	"client-id", "client-secret-file", "redirect-url", "aead-key-file"}

// prepareServeWeb checks the --web flags and builds the front-end, before
// the daemon starts so a bad flag costs nothing. It returns nil without
// --web. tokens is the daemon's token core, served in local mode; db,
// when not nil, is the --store database, which keeps the browser sessions
// too (in memory otherwise). The caller sets Home and starts the server
// once the daemon serves.
func prepareServeWeb(c *cli.Context, log *slog.Logger, db *store.DB, tokens openid.Tokens) (srv *openid.Server, err error) {
	if !c.IsSet("web") {
		for _, f := range webOnlyFlags {
			if c.IsSet(f) {
				return nil, usageError("--%s needs --web ADDR", f)
			}
		}
		return nil, nil
	}
	addr := c.String("web")
	host, p, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(p); err != nil || perr != nil || n < 0 || n > 65535 {
		return nil, usageError("--web %q: want HOST:PORT", addr)
	}
	certFile, keyFile := c.String("web-tls-cert"), c.String("web-tls-key")
	var missing []string
	if certFile == "" {
		missing = append(missing, "--web-tls-cert")
	}
	if keyFile == "" {
		missing = append(missing, "--web-tls-key")
	}
	useTLS := len(missing) == 0
	if len(missing) == 1 {
		return nil, usageError("serving --web over TLS needs both --web-tls-cert and --web-tls-key; %s is missing", missing[0])
	}
	if !loopbackHost(host) {
		if !production(c) {
			missing = append(missing, "--client-id (production mode)")
		}
		if len(missing) > 0 {
			return nil, usageError("--web %s is not a loopback address: serving it needs %s", addr, joinAnd(missing))
		}
	}
	if useTLS && production(c) {
		if u, err := url.Parse(c.String("redirect-url")); err == nil && u.Scheme != "https" && c.String("redirect-url") != "" {
			return nil, usageError("--redirect-url must be https:// when --web serves TLS")
		}
	}

	srv = &openid.Server{Logger: log}
	switch {
	case useTLS:
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, usageError("--web-tls-cert, --web-tls-key: %v", err)
		}
		srv.Addr = addr
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	case host == "127.0.0.1" || strings.EqualFold(host, "localhost"):
		// internal/loopback's server, as `credbroker web` runs.
		port, err := loopbackPort(addr)
		if err != nil {
			return nil, err
		}
		srv.Port = port
	default: // another loopback address, e.g. [::1]
		srv.Addr = addr
	}
	if db != nil {
		srv.Store = db.BrowserSessions()
	}
	if err := configureWeb(c, srv, log, func() (openid.Tokens, error) { return tokens, nil }); err != nil {
		return nil, err
	}
	switch {
	case !production(c) && c.IsSet("web-allow"):
		log.Warn("--web-allow is ignored in local mode: whoever reaches the loopback front-end is the owner")
	case production(c) && len(c.StringSlice("web-allow")) == 0:
		log.Warn("no --web-allow: the dashboard admits nobody")
	}
	return srv, nil
}

// joinAnd joins "a", "b" and "c" as "a, b and c".
func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// loopbackHost reports whether a --web host binds loopback only.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// webHome is what `serve --web` serves outside /auth/openid/: the
// dashboard of the daemon's sessions, for the people authorize admits.
func webHome(d *daemon.Daemon, authorize func(*http.Request) (email string, ok bool), production bool, log *slog.Logger) (http.Handler, error) {
	o := dashboard.Options{Daemon: d, Authorize: authorize, Logger: log}
	if production {
		o.SignIn = openid.PathLogin + "?r=/"
		o.SignOut = openid.PathLogout + "?r=/"
	}
	return dashboard.New(o)
}
