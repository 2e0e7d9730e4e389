package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
	"credbroker/protocols/openid"

	"github.com/urfave/cli/v2"
)

// webFlags are the browser front-end's flags, shared by `web` and
// `serve --web`; cat and prodCat are their help categories.
func webFlags(cat, prodCat string) []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "host", Usage: "extra Host header `NAME[:PORT]` to accept, e.g. a proxy's (repeatable)", Category: cat},
		&cli.StringFlag{Name: "scopes", Usage: "local mode: access-token scopes, space-separated (default userinfo.email)", Category: cat},
		&cli.StringFlag{Name: "audience", Value: openid.DefaultLocalAudience, Usage: "local mode: audience of the ID tokens", Category: cat},
		&cli.StringFlag{Name: "issuer", Value: openid.GoogleIssuer, Usage: "production: the OpenID Connect issuer `URL`", Category: prodCat},
		&cli.StringFlag{Name: "client-id", Usage: "production: the OAuth client `ID` (selects production mode)", Category: prodCat},
		&cli.StringFlag{Name: "client-secret-file", Usage: "production: file holding the OAuth client secret", Category: prodCat},
		&cli.StringFlag{Name: "redirect-url", Usage: "production: this server's callback `URL`, as registered, ending in " + openid.PathCallback, Category: prodCat},
		&cli.StringFlag{Name: "aead-key-file", Usage: "production: key file (lines of \"ID BASE64\", first seals)", Category: prodCat},
	}
}

// production reports whether the web flags select production mode.
func production(c *cli.Context) bool { return c.IsSet("client-id") }

// configureWeb sets srv's mode from the web flags: production with
// --client-id, else local mode serving the token core localTokens gives
// (asked only in local mode, where it is needed). The caller has set
// where srv listens and its store.
func configureWeb(c *cli.Context, srv *openid.Server, log *slog.Logger, localTokens func() (openid.Tokens, error)) error {
	srv.Hosts = append(srv.Hosts, c.StringSlice("host")...)
	if production(c) {
		if err := configureProduction(c, srv, log); err != nil {
			return err
		}
		// The redirect URL names the origin browsers reach the server by,
		// through a proxy or on another address: its Host is ours.
		if u, err := url.Parse(srv.OIDC.RedirectURL); err == nil && u.Host != "" {
			srv.Hosts = append(srv.Hosts, redirectHost(u))
		}
		return nil
	}
	if c.IsSet("client-secret-file") || c.IsSet("redirect-url") || c.IsSet("aead-key-file") {
		return usageError("--client-secret-file, --redirect-url and --aead-key-file need --client-id (production mode)")
	}
	tokens, err := localTokens()
	if err != nil {
		return err
	}
	srv.Tokens = tokens
	if loopback.PeerUIDSupported {
		// /state hands out the broker's own tokens: to this user's
		// browser, not to another user's process on the same machine.
		srv.AllowPeer = loopback.SameUser
	}
	srv.Audience = c.String("audience")
	if s := c.String("scopes"); s != "" {
		srv.Scopes = parseScopes(s)
	}
	return nil
}

// redirectHost is the Host header browsers send to the redirect URL's
// origin: with its port when the URL names one, else the bare name, which
// the Host check takes for any port (browsers leave out 443 and 80).
func redirectHost(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return u.Hostname()
}

// announceWeb prints where a started front-end serves; tests and scripts
// read the first line.
func announceWeb(out io.Writer, info openid.Info) {
	fmt.Fprintf(out, "credbroker web: %s mode on %s/\n", info.Mode, info.URL)
	if info.Mode == openid.Local {
		fmt.Fprintln(out, "sign-in is faked; /auth/openid/state serves this broker's own credential")
	}
}

// currentTokens serves through whatever token core it returns at each
// call: the daemon's current one, so a credential reloaded on SIGHUP
// reaches the web front-end too.
type currentTokens func() *broker.Broker

func (f currentTokens) AccessToken(ctx context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error) {
	return f().AccessToken(ctx, account, scopes, minLifetime)
}

func (f currentTokens) IDToken(ctx context.Context, account, audience string, minLifetime time.Duration) (broker.Token, error) {
	return f().IDToken(ctx, account, audience, minLifetime)
}

func (f currentTokens) Default() string { return f().Default() }

func (f currentTokens) Email(account string) (string, error) { return f().Email(account) }

// dashboardAuthorizer decides who may see the dashboard: in local mode
// whoever reaches the server (the broker's owner: the front-end serves
// them its tokens anyway); in production mode a signed-in browser whose
// email is in allowed, compared without regard to case. It returns the
// person's email for the page to show.
func dashboardAuthorizer(srv *openid.Server, allowed []string, local bool) func(*http.Request) (string, bool) {
	return authorizeBy(srv.SignedIn, allowed, local)
}

// authorizeBy is dashboardAuthorizer on any signedIn, for tests.
func authorizeBy(signedIn func(*http.Request) (string, bool), allowed []string, local bool) func(*http.Request) (string, bool) {
	set := make(map[string]bool, len(allowed))
	for _, a := range allowed {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" {
			set[a] = true
		}
	}
	return func(r *http.Request) (string, bool) {
		email, ok := signedIn(r)
		if local {
			return email, true
		}
		if !ok || !set[strings.ToLower(email)] {
			return "", false
		}
		return email, true
	}
}
