package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"credbroker/broker"
	"github.com/urfave/cli/v2"
)

// maxTokenLifetime matches luci-auth token's upper bound: longer minimum
// lifetimes cannot be promised by most sources.
const maxTokenLifetime = 30 * time.Minute

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:      "token",
		Usage:     "print an access token (or an ID token with --audience) and exit",
		UsageText: "credbroker token [--scopes S | --audience A] [--lifetime D] [--json [--json-format luci|reclient|bazel]]",
		Description: "Mints a token from the selected credential and prints it followed by a newline,\n" +
			"like `luci-auth token`. The token has at least --lifetime left.\n\n" +
			"Example:\n   curl -H \"Authorization: Bearer $(credbroker token --dev)\" ...",
		Flags: append(append(append(credentialFlags(), scopeFlags()...), logFlags()...),
			&cli.StringFlag{Name: "audience", Usage: "print an ID token for this `AUDIENCE` instead of an access token"},
			&cli.DurationFlag{Name: "lifetime", Value: time.Minute, Usage: "minimum time the token must still be valid (at most 30m)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of the bare token"},
			&cli.StringFlag{Name: "json-format", Value: "luci", Usage: "JSON shape: luci, reclient or bazel"},
		),
		Action: tokenAction,
	}
}

func tokenAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("token takes no arguments, got %q", c.Args().Slice())
	}
	lifetime := c.Duration("lifetime")
	if lifetime <= 0 || lifetime > maxTokenLifetime {
		return usageError("--lifetime must be between 0 and %v, got %v", maxTokenLifetime, lifetime)
	}
	format := c.String("json-format")
	if format != "luci" && format != "reclient" && format != "bazel" {
		return usageError("--json-format %q: want luci, reclient or bazel", format)
	}
	scopes, err := scopesFrom(c)
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
	b, err := newBroker(cred, []string{defaultAccountID}, defaultAccountID, log)
	if err != nil {
		return brokerError(err)
	}
	defer b.Close()

	ctx, cancel := context.WithTimeout(c.Context, 2*time.Minute)
	defer cancel()
	var tok broker.Token
	if aud := c.String("audience"); aud != "" {
		tok, err = b.IDToken(ctx, defaultAccountID, aud, lifetime)
	} else {
		tok, err = b.AccessToken(ctx, defaultAccountID, scopes, lifetime)
	}
	if err != nil {
		return brokerError(fmt.Errorf("cannot get a token: %w", err))
	}
	if !c.Bool("json") {
		fmt.Fprintln(c.App.Writer, tok.Value)
		return nil
	}
	var out any
	switch format {
	case "luci":
		out = struct {
			Token  string `json:"token"`
			Expiry int64  `json:"expiry"`
		}{tok.Value, tok.Expiry.Unix()}
	case "reclient":
		out = struct {
			Token  string `json:"token"`
			Expiry string `json:"expiry"`
		}{tok.Value, tok.Expiry.UTC().Format(time.UnixDate)}
	case "bazel":
		out = struct {
			Headers map[string][]string `json:"headers"`
			Expires string              `json:"expires"`
		}{map[string][]string{"Authorization": {"Bearer " + tok.Value}}, tok.Expiry.UTC().Format(time.RFC3339)}
	}
	enc := json.NewEncoder(c.App.Writer)
	return enc.Encode(out)
}
