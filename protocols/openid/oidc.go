package openid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"credbroker/broker"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// GoogleIssuer is the issuer used when OIDC.Issuer is empty.
const GoogleIssuer = "https://accounts.google.com"

// OIDC configures production mode: the OpenID Connect provider and this
// app's OAuth client there.
type OIDC struct {
	// Issuer is the provider's issuer URL; its discovery document is read
	// from Issuer + "/.well-known/openid-configuration" at Start.
	// Defaults to GoogleIssuer.
	Issuer string
	// ClientID and ClientSecret identify the OAuth client. The secret
	// never appears in logs or errors.
	ClientID     string
	ClientSecret string
	// RedirectURL is this server's callback as registered with the
	// provider, e.g. https://app.example.com/auth/openid/callback. An
	// https URL makes the cookies Secure.
	RedirectURL string
	// Scopes are asked at sign-in besides "openid email profile"; the
	// access tokens /state serves carry all of them.
	Scopes []string
	// HTTPClient talks to the provider. Defaults to a client with a
	// 30-second timeout.
	HTTPClient *http.Client
}

// discovery is the part of the provider's discovery document used here.
type discovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
}

// provider is a discovered OIDC provider and the client registered there.
type provider struct {
	cfg    OIDC
	disc   discovery
	oauth  *oauth2.Config
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	keys      jose.JSONWebKeySet
	keysFetch time.Time
}

// maxDocBytes bounds what is read from the provider's discovery and key
// endpoints.
const maxDocBytes = 1 << 20

func discover(ctx context.Context, cfg OIDC, scopes []string, now func() time.Time) (*provider, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = GoogleIssuer
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" || cfg.RedirectURL == "" {
		return nil, errors.New("openid: production mode needs a client id, a client secret and a redirect URL")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	p := &provider{cfg: cfg, client: cfg.HTTPClient, now: now}
	docURL := strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/openid-configuration"
	if err := p.getJSON(ctx, docURL, &p.disc); err != nil {
		return nil, fmt.Errorf("openid: discovery: %w", err)
	}
	if p.disc.Issuer != cfg.Issuer {
		return nil, fmt.Errorf("openid: discovery: the document names issuer %q, not %q", p.disc.Issuer, cfg.Issuer)
	}
	if p.disc.AuthorizationEndpoint == "" || p.disc.TokenEndpoint == "" || p.disc.JWKSURI == "" {
		return nil, errors.New("openid: discovery: the document lacks an authorization, token or jwks endpoint")
	}
	p.oauth = &oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		RedirectURL:  cfg.RedirectURL,
		Scopes:       scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:   p.disc.AuthorizationEndpoint,
			TokenURL:  p.disc.TokenEndpoint,
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
	return p, nil
}

func (p *provider) getJSON(ctx context.Context, docURL string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return broker.NewFatal(err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return broker.NewTransient(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes))
	if err != nil {
		return broker.NewTransient(err)
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("GET %s: %s", docURL, resp.Status)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return broker.NewTransient(err)
		}
		return broker.NewFatal(err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return broker.Fatalf("GET %s: %v", docURL, err)
	}
	return nil
}

// authURL is where login sends the browser. access_type=offline and
// prompt=consent make Google hand out a refresh token on every sign-in,
// not only the first.
func (p *provider) authURL(state, nonce, verifier string) string {
	return p.oauth.AuthCodeURL(state,
		oauth2.AccessTypeOffline,
		oauth2.SetAuthURLParam("prompt", "consent"),
		oauth2.SetAuthURLParam("nonce", nonce),
		oauth2.S256ChallengeOption(verifier))
}

// grant is what one token-endpoint call gave.
type grant struct {
	access  broker.Token
	id      broker.Token
	claims  idClaims
	refresh string // a new refresh token, when the provider rotated it
}

func (p *provider) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.client)
}

// exchange redeems an authorization code with its PKCE verifier.
func (p *provider) exchange(ctx context.Context, code, verifier, nonce string) (grant, error) {
	tok, err := p.oauth.Exchange(p.ctx(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return grant{}, tokenError("code exchange", err)
	}
	return p.grantFrom(ctx, tok, nonce, "")
}

// refresh uses a refresh token; subject is the session's, which the new
// ID token must carry.
func (p *provider) refresh(ctx context.Context, refreshToken, subject string) (grant, error) {
	tok, err := p.oauth.TokenSource(p.ctx(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return grant{}, tokenError("refresh", err)
	}
	g, err := p.grantFrom(ctx, tok, "", subject)
	if err != nil {
		return grant{}, err
	}
	if g.refresh == refreshToken {
		g.refresh = "" // x/oauth2 carries the old one over when none came
	}
	return g, nil
}

func (p *provider) grantFrom(ctx context.Context, tok *oauth2.Token, nonce, subject string) (grant, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return grant{}, broker.Fatalf("openid: the provider gave no ID token")
	}
	claims, exp, err := p.verify(ctx, raw, nonce)
	if err != nil {
		return grant{}, err
	}
	if subject != "" && claims.Subject != subject {
		return grant{}, broker.Fatalf("openid: the refreshed ID token is for another subject")
	}
	// The expiry is counted on the server's clock from expires_in, not
	// the one x/oauth2 worked out on the wall clock.
	expiry := tok.Expiry
	if tok.ExpiresIn > 0 {
		expiry = p.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return grant{
		access:  broker.Token{Value: tok.AccessToken, Expiry: expiry},
		id:      broker.Token{Value: raw, Expiry: exp},
		claims:  claims,
		refresh: tok.RefreshToken,
	}, nil
}

// errRevoked marks a refresh token the provider no longer accepts: the
// user revoked access, or the account is gone.
var errRevoked = errors.New("openid: the provider no longer accepts this sign-in")

// tokenError classifies a token-endpoint failure without its body, which
// is the provider's text and need not be safe to log.
func tokenError(what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		switch {
		case re.ErrorCode == "invalid_grant":
			return broker.NewFatal(fmt.Errorf("%w (%s: invalid_grant)", errRevoked, what))
		case status >= 500 || status == http.StatusTooManyRequests:
			return broker.Transientf("openid: %s: provider answered %d", what, status)
		default:
			return broker.Fatalf("openid: %s: provider answered %d %q", what, status, re.ErrorCode)
		}
	}
	return broker.Transientf("openid: %s: %v", what, err)
}

// idClaims are the ID token claims used here.
type idClaims struct {
	jwt.Claims
	Nonce         string `json:"nonce"`
	Email         string `json:"email"`
	EmailVerified any    `json:"email_verified"` // Google has sent both true and "true"
	Picture       string `json:"picture"`
}

// clockSkew is the leeway allowed on the provider's iat/nbf/exp.
const clockSkew = time.Minute

// verify checks an ID token's signature against the provider's keys and
// its issuer, audience, expiry and (when given) nonce.
func (p *provider) verify(ctx context.Context, raw, nonce string) (idClaims, time.Time, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return idClaims{}, time.Time{}, broker.Fatalf("openid: the ID token is malformed")
	}
	key, err := p.key(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return idClaims{}, time.Time{}, err
	}
	var c idClaims
	if err := tok.Claims(key, &c); err != nil {
		return idClaims{}, time.Time{}, broker.Fatalf("openid: the ID token's signature does not verify")
	}
	issuers := []string{p.cfg.Issuer}
	if p.cfg.Issuer == GoogleIssuer {
		issuers = append(issuers, "accounts.google.com") // Google's documented alternative
	}
	if !slices.Contains(issuers, c.Issuer) {
		return idClaims{}, time.Time{}, broker.Fatalf("openid: the ID token is from issuer %q", c.Issuer)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{p.cfg.ClientID}, Time: p.now()}, clockSkew); err != nil {
		return idClaims{}, time.Time{}, broker.Fatalf("openid: the ID token is not valid here: %v", err)
	}
	if c.Expiry == nil || c.Subject == "" {
		return idClaims{}, time.Time{}, broker.Fatalf("openid: the ID token lacks exp or sub")
	}
	if nonce != "" && !equalSecret(c.Nonce, nonce) {
		return idClaims{}, time.Time{}, broker.Fatalf("openid: the ID token's nonce does not match this sign-in")
	}
	if c.Email == "" || !(c.EmailVerified == true || c.EmailVerified == "true") {
		return idClaims{}, time.Time{}, broker.Fatalf("openid: the ID token has no verified email")
	}
	return c, c.Expiry.Time(), nil
}

// keyRefetch is how often an unknown key id may cause the provider's keys
// to be fetched again (providers rotate keys; forged ids must not make
// the server hammer the provider).
const keyRefetch = time.Minute

func (p *provider) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k := p.keys.Key(kid); len(k) > 0 {
		return &k[0], nil
	}
	if !p.keysFetch.IsZero() && p.now().Sub(p.keysFetch) < keyRefetch {
		return nil, broker.Fatalf("openid: the ID token names an unknown key")
	}
	var set jose.JSONWebKeySet
	if err := p.getJSON(ctx, p.disc.JWKSURI, &set); err != nil {
		return nil, fmt.Errorf("openid: provider keys: %w", err)
	}
	p.keys, p.keysFetch = set, p.now()
	if k := p.keys.Key(kid); len(k) > 0 {
		return &k[0], nil
	}
	return nil, broker.Fatalf("openid: the ID token names an unknown key")
}

// revoke tells the provider to forget a refresh token, where it has a
// revocation endpoint. Best effort: logout goes on whatever it answers.
func (p *provider) revoke(ctx context.Context, refreshToken string) error {
	if p.disc.RevocationEndpoint == "" {
		return nil
	}
	form := strings.NewReader("token=" + url.QueryEscape(refreshToken))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.disc.RevocationEndpoint, form)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.client.Do(req)
	if err != nil {
		return err // names the URL, never the form
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revocation endpoint answered %s", resp.Status)
	}
	return nil
}
