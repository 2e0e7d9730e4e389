package main

import (
	"github.com/urfave/cli/v2"
)

// Credential flags beyond --dev and --service-account-json: the source
// spec, upstreams, impersonation, the user login's OAuth client and the
// token cache. Environment variables let tests and wrappers set them.
var (
	sourceFlag = &cli.StringFlag{
		Name:     "source",
		Value:    "auto",
		Usage:    "credential `SPEC`: auto, dev, key:PATH, login, luci[:ACCOUNT], gce[:ACCOUNT] or adc (see README, Choosing the credential)",
		EnvVars:  []string{"CREDBROKER_SOURCE"},
		Category: "Credential",
	}
	upstreamAccountFlag = &cli.StringFlag{
		Name:     "upstream-account",
		Usage:    "account `ID` of the upstream LUCI_CONTEXT to use (default: its default account)",
		Category: "Credential",
	}
	gceAllowFlag = &cli.BoolFlag{
		Name:     "gce-allow-as-default",
		Usage:    "let auto-selection fall back to the GCE metadata server (GCE_METADATA_HOST or the VM's)",
		Category: "Credential",
	}
	loginModeFlag = &cli.StringFlag{
		Name:     "login-mode",
		Value:    "silent",
		Usage:    "when no credential is found: silent (fail), interactive (run the login flow) or optional (run without credentials)",
		Category: "Credential",
	}
	actAsFlag = &cli.StringFlag{
		Name:     "act-as-service-account",
		Usage:    "serve tokens of service account `EMAIL`, minted through the IAM Credentials API with the chosen credential",
		Category: "Impersonation",
	}
	delegatesFlag = &cli.StringFlag{
		Name:     "delegates",
		Usage:    "comma-separated service-account `EMAILS` of the delegation chain for --act-as-service-account",
		Category: "Impersonation",
	}
	iamEndpointFlag = &cli.StringFlag{
		Name:     "iam-endpoint",
		Usage:    "IAM Credentials API `URL`",
		EnvVars:  []string{"CREDBROKER_IAM_ENDPOINT"},
		Category: "Impersonation",
	}
	userAnyScopeFlag = &cli.BoolFlag{
		Name:     "user-allow-any-scope",
		Usage:    "for a user credential, serve the login's token (with a warning) for scopes or audiences it does not cover instead of failing",
		Category: "User login",
	}
	oauthClientIDFlag     = &cli.StringFlag{Name: "oauth-client-id", Usage: "OAuth client `ID` of the login (a Desktop-app client)", EnvVars: []string{"CREDBROKER_OAUTH_CLIENT_ID"}, Category: "User login"}
	oauthClientSecretFlag = &cli.StringFlag{Name: "oauth-client-secret", Usage: "the OAuth client's `SECRET`", EnvVars: []string{"CREDBROKER_OAUTH_CLIENT_SECRET"}, Category: "User login"}
	oauthAuthURLFlag      = &cli.StringFlag{Name: "oauth-auth-url", Usage: "authorization endpoint `URL` (default Google's)", EnvVars: []string{"CREDBROKER_OAUTH_AUTH_URL"}, Category: "User login"}
	oauthTokenURLFlag     = &cli.StringFlag{Name: "oauth-token-url", Usage: "token endpoint `URL` (default Google's)", EnvVars: []string{"CREDBROKER_OAUTH_TOKEN_URL"}, Category: "User login"}
	oauthRevokeURLFlag    = &cli.StringFlag{Name: "oauth-revoke-url", Usage: "revocation endpoint `URL` (default Google's)", EnvVars: []string{"CREDBROKER_OAUTH_REVOKE_URL"}, Category: "User login"}
	cacheFlag             = &cli.StringFlag{Name: "cache", Value: "disk", Usage: "where logins and tokens are kept: disk (encrypted, in the config directory) or memory", Category: "User login"}
	cacheDirFlag          = &cli.StringFlag{Name: "cache-dir", Usage: "token cache `DIR` (default: credbroker/ in the user's config directory)", EnvVars: []string{"CREDBROKER_CACHE_DIR"}, Category: "User login"}
)

// oauthFlags are what login, logout and the user-login source share.
func oauthFlags() []cli.Flag {
	return []cli.Flag{oauthClientIDFlag, oauthClientSecretFlag, oauthAuthURLFlag, oauthTokenURLFlag, oauthRevokeURLFlag, cacheFlag, cacheDirFlag}
}

// moreCredentialFlags are appended to credentialFlags.
func moreCredentialFlags() []cli.Flag {
	return append([]cli.Flag{sourceFlag, upstreamAccountFlag, gceAllowFlag, loginModeFlag, actAsFlag, delegatesFlag, iamEndpointFlag, userAnyScopeFlag}, oauthFlags()...)
}
