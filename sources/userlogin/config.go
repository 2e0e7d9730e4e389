package userlogin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"credbroker/tokencache"

	"golang.org/x/oauth2"
)

// Google's endpoints, the defaults.
const (
	GoogleAuthURL   = "https://accounts.google.com/o/oauth2/v2/auth"
	GoogleTokenURL  = "https://oauth2.googleapis.com/token"
	GoogleRevokeURL = "https://oauth2.googleapis.com/revoke"
)

const scopePrefix = "https://www.googleapis.com/auth/"

// DefaultScopes are asked for at login: enough for gcloud, Cloud APIs and
// ID tokens.
var DefaultScopes = []string{"openid", scopePrefix + "userinfo.email", scopePrefix + "cloud-platform"}

// Config names the OAuth client and its endpoints.
type Config struct {
	// ClientID and ClientSecret identify the OAuth client (a "Desktop
	// app" client; its secret is not confidential, but is never logged).
	ClientID     string
	ClientSecret string
	// AuthURL, TokenURL and RevokeURL default to Google's.
	AuthURL   string
	TokenURL  string
	RevokeURL string
	// Scopes are asked for at login; DefaultScopes when empty.
	Scopes []string
}

// ErrNoClient is returned when Config has no client id.
var ErrNoClient = errors.New("no OAuth client id configured")

func (c Config) withDefaults() (Config, error) {
	if c.ClientID == "" {
		return c, ErrNoClient
	}
	if c.AuthURL == "" {
		c.AuthURL = GoogleAuthURL
	}
	if c.TokenURL == "" {
		c.TokenURL = GoogleTokenURL
	}
	if c.RevokeURL == "" {
		c.RevokeURL = GoogleRevokeURL
	}
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(DefaultScopes)
	}
	return c, nil
}

// CacheKey is the key of a login of client id in the token cache.
func CacheKey(clientID string) string { return "user/" + clientID }

func (c Config) oauth2() *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		// Parameters in the body: Google takes either, and a fixed style
		// avoids x/oauth2 probing with a second request.
		Endpoint: oauth2.Endpoint{AuthURL: c.AuthURL, TokenURL: c.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   c.Scopes,
	}
}

// withClient makes x/oauth2 use client.
func withClient(ctx context.Context, client *http.Client) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, client)
}

func defaultHTTPClient() *http.Client {
	return &http.Client{
		Transport: http.DefaultTransport,
		// The token endpoint has no reason to redirect, and following
		// one would send the refresh token somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// canonicalScope maps the short OpenID names to the URLs Google reports
// in a token's "scope", so either spelling matches.
func canonicalScope(s string) string {
	switch s {
	case "email":
		return scopePrefix + "userinfo.email"
	case "profile":
		return scopePrefix + "userinfo.profile"
	}
	return s
}

// missingScopes returns the requested scopes the grant lacks.
func missingScopes(requested, granted []string) []string {
	have := map[string]bool{}
	for _, g := range granted {
		have[canonicalScope(g)] = true
	}
	var out []string
	for _, r := range requested {
		if !have[canonicalScope(r)] {
			out = append(out, r)
		}
	}
	return out
}

// shortScopes renders scopes for messages.
func shortScopes(scopes []string) string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = strings.TrimPrefix(s, scopePrefix)
	}
	return strings.Join(out, " ")
}

// Stored completes cfg from the logins in cache: without a client id it
// takes the client of the only stored login (an error names them when
// there are several), and the secret and endpoints cfg leaves empty come
// from that login, so `credbroker run` needs no OAuth flags after
// `credbroker login` had them.
func Stored(cache *tokencache.Cache, cfg Config) (Config, error) {
	if cfg.ClientID == "" {
		keys, err := cache.Keys("user/")
		if err != nil {
			return cfg, err
		}
		switch len(keys) {
		case 0:
			return cfg, fmt.Errorf("%w: no stored login; run `credbroker login`", ErrLoginRequired)
		case 1:
			cfg.ClientID = strings.TrimPrefix(keys[0], "user/")
		default:
			ids := make([]string, len(keys))
			for i, k := range keys {
				ids[i] = strings.TrimPrefix(k, "user/")
			}
			return cfg, fmt.Errorf("logins of several OAuth clients are stored (%s); choose one with --oauth-client-id", strings.Join(ids, ", "))
		}
	}
	e, ok, err := cache.Get(CacheKey(cfg.ClientID))
	if err != nil {
		return cfg, err
	}
	if ok {
		fill := func(dst *string, key string) {
			if *dst == "" {
				*dst = e.Meta[key]
			}
		}
		fill(&cfg.ClientSecret, "client_secret")
		fill(&cfg.AuthURL, "auth_url")
		fill(&cfg.TokenURL, "token_url")
		fill(&cfg.RevokeURL, "revoke_url")
	}
	return cfg.withDefaults()
}

// meta is what a login records about its client, for Stored.
func (c Config) meta() map[string]string {
	return map[string]string{
		"client_id": c.ClientID, "client_secret": c.ClientSecret,
		"auth_url": c.AuthURL, "token_url": c.TokenURL, "revoke_url": c.RevokeURL,
	}
}
