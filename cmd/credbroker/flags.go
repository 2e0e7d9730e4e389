package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// Scope sets with the names luci-auth gives them.
const scopePrefix = "https://www.googleapis.com/auth/"

var (
	scopesDefault = []string{scopePrefix + "cloud-platform", scopePrefix + "userinfo.email"}
	scopesGerrit  = []string{scopePrefix + "gerritcodereview", scopePrefix + "userinfo.email"}
	scopesContext = []string{
		scopePrefix + "androidbuild.internal", scopePrefix + "cloud-platform",
		scopePrefix + "firebase", scopePrefix + "gerritcodereview", scopePrefix + "userinfo.email",
	}
)

// Flags shared by several commands, defined once. urfave/cli accepts both
// -name and --name, so luci-auth's single-dash spellings work unchanged.
var (
	devFlag = &cli.BoolFlag{
		Name:     "dev",
		Usage:    "use the embedded offline dev identity (tokens are NOT Google tokens)",
		Category: "Credential",
	}
	serviceAccountFlag = &cli.StringFlag{
		Name:     "service-account-json",
		Usage:    "service-account key file `PATH` to mint tokens with",
		EnvVars:  []string{"CREDBROKER_SERVICE_ACCOUNT_JSON"},
		Category: "Credential",
	}
	scopesFlag = &cli.StringFlag{
		Name: "scopes",
		Usage: "OAuth scopes, separated by spaces or commas; a short name such as " +
			"`cloud-platform` means https://www.googleapis.com/auth/cloud-platform",
		Category: "Scopes",
	}
	scopesCloudFlag   = &cli.BoolFlag{Name: "scopes-cloud", Aliases: []string{"scopes-iam"}, Usage: "cloud-platform and userinfo.email", Category: "Scopes"}
	scopesGerritFlag  = &cli.BoolFlag{Name: "scopes-gerrit", Usage: "gerritcodereview and userinfo.email", Category: "Scopes"}
	scopesContextFlag = &cli.BoolFlag{Name: "scopes-context", Usage: "luci-auth context's set: androidbuild.internal, cloud-platform, firebase, gerritcodereview, userinfo.email", Category: "Scopes"}

	logLevelFlag  = &cli.StringFlag{Name: "log-level", Value: "warn", Usage: "debug, info, warn or error", Category: "Logging"}
	logFormatFlag = &cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", Category: "Logging"}
)

func credentialFlags() []cli.Flag {
	return append([]cli.Flag{devFlag, serviceAccountFlag}, moreCredentialFlags()...)
}
func scopeFlags() []cli.Flag {
	return []cli.Flag{scopesFlag, scopesCloudFlag, scopesGerritFlag, scopesContextFlag}
}
func logFlags() []cli.Flag { return []cli.Flag{logLevelFlag, logFormatFlag} }

// scopesFrom resolves the scope flags: at most one of them, else the
// default set (cloud-platform and userinfo.email).
func scopesFrom(c *cli.Context) ([]string, error) {
	var chosen []string
	var names []string
	if s := c.String("scopes"); c.IsSet("scopes") {
		parsed := parseScopes(s)
		if len(parsed) == 0 {
			return nil, usageError("--scopes is empty")
		}
		chosen, names = parsed, append(names, "--scopes")
	}
	for _, set := range []struct {
		flag   string
		scopes []string
	}{{"scopes-cloud", scopesDefault}, {"scopes-gerrit", scopesGerrit}, {"scopes-context", scopesContext}} {
		if c.Bool(set.flag) {
			chosen, names = set.scopes, append(names, "--"+set.flag)
		}
	}
	if len(names) > 1 {
		return nil, usageError("give at most one of %s", strings.Join(names, ", "))
	}
	if chosen == nil {
		chosen = scopesDefault
	}
	return slices.Clone(chosen), nil
}

// parseScopes splits a scope list on spaces and commas and expands short
// names to full Google scope URLs.
func parseScopes(s string) []string {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		out = append(out, expandScope(f))
	}
	return out
}

func expandScope(s string) string {
	switch {
	case strings.Contains(s, "://"), s == "openid", s == "email", s == "profile":
		return s
	default:
		return scopePrefix + s
	}
}

// shortScopes renders scopes for humans, without the common prefix.
func shortScopes(scopes []string) string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = strings.TrimPrefix(s, scopePrefix)
	}
	return strings.Join(out, " ")
}

// accountIDs resolves --account and --default-account. An --account may
// be ID=SPEC (accountSpecs); ids are returned without the spec.
func accountIDs(c *cli.Context) (ids []string, def string, err error) {
	ids = c.StringSlice("account")
	if len(ids) == 0 {
		ids = []string{defaultAccountID}
	}
	ids = slices.Clone(ids)
	for i, id := range ids {
		id, _, _ = strings.Cut(id, "=")
		if id == "" || strings.ContainsAny(id, " \t\n") {
			return nil, "", usageError("--account %q: ids are non-empty and have no spaces", ids[i])
		}
		if slices.Contains(ids[:i], id) {
			return nil, "", usageError("--account %q given twice", id)
		}
		ids[i] = id
	}
	def = c.String("default-account")
	if def == "" {
		def = ids[0]
	}
	if !slices.Contains(ids, def) {
		return nil, "", usageError("--default-account %q is not one of the --account ids %s", def, fmt.Sprint(ids))
	}
	return ids, def, nil
}

// defaultAccountID is the local_auth account id when --account is not
// given; swarming tasks use the same name.
const defaultAccountID = "task"
