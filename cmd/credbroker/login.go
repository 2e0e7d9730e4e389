package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"credbroker/sources/userlogin"

	"github.com/urfave/cli/v2"
)

func loginCommand() *cli.Command {
	return &cli.Command{
		Name:      "login",
		Usage:     "log in with your Google account and keep the login for later runs",
		UsageText: "credbroker login [--no-browser] [--scopes S] [OAuth client flags]",
		Description: "Runs the OAuth authorization-code flow with PKCE: opens a browser (or prints the URL)\n" +
			"at the authorization endpoint, receives the answer on a 127.0.0.1 port, and stores the\n" +
			"refresh token, encrypted, in the token cache (credbroker/ in your config directory).\n" +
			"Later `credbroker run` and `token` use it when no other credential is given.\n\n" +
			"--no-browser is for remote shells: open the printed URL on any machine, approve, and\n" +
			"paste back the address the browser was sent to (or just its code).\n\n" +
			"The OAuth client (a Desktop-app client of your project) comes from --oauth-client-id\n" +
			"and --oauth-client-secret or CREDBROKER_OAUTH_CLIENT_ID/_SECRET; the endpoints are\n" +
			"Google's unless --oauth-auth-url, --oauth-token-url and --oauth-revoke-url say otherwise.",
		Flags: append(append(append(oauthFlags(), logFlags()...), scopesFlag),
			&cli.BoolFlag{Name: "no-browser", Usage: "print the URL and read the pasted answer instead of opening a browser"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "how long to wait for the approval"},
		),
		Action: loginAction,
	}
}

func loginAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("login takes no arguments, got %q", c.Args().Slice())
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	sel, _ := newSelector(c, log)
	if c.String("oauth-client-id") == "" {
		return usageError("login needs an OAuth client: give --oauth-client-id and --oauth-client-secret " +
			"(or CREDBROKER_OAUTH_CLIENT_ID and CREDBROKER_OAUTH_CLIENT_SECRET), a Desktop-app client of your Google Cloud project")
	}
	cfg, cache, err := sel.oauth()
	if err != nil {
		return err
	}
	if c.IsSet("scopes") {
		cfg.Scopes = parseScopes(c.String("scopes"))
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	res, err := userlogin.Login(ctx, cfg, cache, userlogin.LoginOptions{
		NoBrowser: c.Bool("no-browser"), Out: c.App.ErrWriter, In: os.Stdin, Logger: log,
	})
	if err != nil {
		return brokerError(err)
	}
	where := "in memory only (--cache=memory): it ends with this process"
	if dir := cache.Dir(); dir != "" {
		where = "in " + dir
	}
	fmt.Fprintf(c.App.Writer, "Logged in as %s with scopes %s; the login is kept %s.\n", cmpOr(res.Email, "(no email)"), shortScopes(res.Scopes), where)
	return nil
}

func logoutCommand() *cli.Command {
	return &cli.Command{
		Name:      "logout",
		Usage:     "revoke the stored login and delete it",
		UsageText: "credbroker logout [--oauth-client-id ID]",
		Description: "Revokes the stored refresh token at the revocation endpoint and deletes it from the\n" +
			"token cache. The local copy is deleted even when revocation fails (exit status 1 then).",
		Flags:  append(oauthFlags(), logFlags()...),
		Action: logoutAction,
	}
}

func logoutAction(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	sel, _ := newSelector(c, log)
	cfg, cache, err := sel.oauth()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, time.Minute)
	defer cancel()
	ok, err := userlogin.Logout(ctx, cfg, cache, nil)
	switch {
	case err != nil && ok:
		return brokerError(err)
	case err != nil:
		return brokerError(fmt.Errorf("logout: %w", err))
	case !ok:
		fmt.Fprintln(c.App.Writer, "Not logged in.")
	default:
		fmt.Fprintln(c.App.Writer, "Logged out: the login is revoked and deleted.")
	}
	return nil
}
