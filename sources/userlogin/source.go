package userlogin

import (
	"context"
	"credbroker/internal/jwtclaims"
	"credbroker/internal/safetext"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"credbroker/broker"
	"credbroker/tokencache"

	"golang.org/x/oauth2"
)

// ErrLoginRequired is wrapped by the errors that a new `credbroker
// login` would fix: no stored login, or one the server no longer accepts.
var ErrLoginRequired = errors.New("login required")

// Options configure a Source. The zero value is usable.
type Options struct {
	// HTTPClient talks to the token endpoint; it follows no redirects by
	// default.
	HTTPClient *http.Client
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// AllowOtherScopes serves the login's token, with a warning, for
	// scopes or an audience the login does not cover, instead of failing.
	AllowOtherScopes bool
	// Logger gets warnings. Defaults to slog.Default().
	Logger *slog.Logger
}

// Source mints tokens from a user's refresh token. It is safe for
// concurrent use, and several processes may share its cache.
type Source struct {
	cfg   Config
	cache *tokencache.Cache
	key   string
	opts  Options
	label string // how errors name the credential

	mu    sync.Mutex
	email string // learned from an id_token when the file did not say
}

var _ broker.Source = (*Source)(nil)

// maxAttempts bounds the refresh calls made for one token.
const maxAttempts = 3

// New returns the Source of the login stored in cache for cfg's client
// (completed by Stored). It fails with ErrLoginRequired when there is
// none.
func New(cfg Config, cache *tokencache.Cache, opts Options) (*Source, error) {
	cfg, err := Stored(cache, cfg)
	if err != nil {
		return nil, err
	}
	s := newSource(cfg, cache, CacheKey(cfg.ClientID), opts)
	e, ok, err := cache.Get(s.key)
	if err != nil {
		return nil, err
	}
	if !ok || e.RefreshToken == "" {
		return nil, fmt.Errorf("%w: no stored login for OAuth client %s; run `credbroker login`", ErrLoginRequired, cfg.ClientID)
	}
	s.email = e.Email
	s.label = "user login " + e.Email
	return s, nil
}

// FromAuthorizedUser reads a gcloud "authorized_user" credential file
// (what `gcloud auth application-default login` writes). Its tokens are
// kept in memory; the file is never written.
func FromAuthorizedUser(path string, opts Options) (*Source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("authorized-user file %q: %w", path, err)
	}
	var f struct {
		Type         string `json:"type"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		RefreshToken string `json:"refresh_token"`
		TokenURI     string `json:"token_uri"`
		Account      string `json:"account"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("authorized-user file %q is not JSON", path)
	}
	for field, v := range map[string]string{"client_id": f.ClientID, "refresh_token": f.RefreshToken} {
		if v == "" {
			return nil, fmt.Errorf("authorized-user file %q has no %s", path, field)
		}
	}
	if f.Type != "authorized_user" {
		return nil, fmt.Errorf("authorized-user file %q has type %q, want authorized_user", path, f.Type)
	}
	cfg, err := Config{ClientID: f.ClientID, ClientSecret: f.ClientSecret, TokenURL: f.TokenURI}.withDefaults()
	if err != nil {
		return nil, err
	}
	cache := tokencache.Memory()
	key := CacheKey(f.ClientID)
	// The file does not say which scopes were granted: the first
	// refresh's "scope" tells.
	if err := cache.Put(key, tokencache.Entry{RefreshToken: f.RefreshToken, Email: f.Account}); err != nil {
		return nil, err
	}
	s := newSource(cfg, cache, key, opts)
	s.email = f.Account
	s.label = fmt.Sprintf("authorized-user file %s", path)
	return s, nil
}

func newSource(cfg Config, cache *tokencache.Cache, key string, opts Options) *Source {
	if opts.HTTPClient == nil {
		opts.HTTPClient = defaultHTTPClient()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Source{cfg: cfg, cache: cache, key: key, opts: opts, label: "user login"}
}

// Email is the user's email, "" when the login did not say.
func (s *Source) Email() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.email
}

// ClientID is the OAuth client of the login, the audience of its ID tokens.
func (s *Source) ClientID() string { return s.cfg.ClientID }

// Scopes returns the scopes the login was granted, as last seen.
func (s *Source) Scopes() []string {
	e, _, _ := s.cache.Get(s.key)
	return e.Scopes
}

// AccessToken returns an access token of the login, refreshed when it
// has less than minLifetime left. scopes must be among the login's.
func (s *Source) AccessToken(ctx context.Context, scopes []string, minLifetime time.Duration) (broker.Token, error) {
	e, err := s.current(ctx, minLifetime, false)
	if err != nil {
		return broker.Token{}, err
	}
	if missing := missingScopes(scopes, e.Scopes); len(missing) > 0 && len(e.Scopes) > 0 {
		if !s.opts.AllowOtherScopes {
			return broker.Token{}, broker.Fatalf("%s: the login does not cover %s (it has %s); log in again with them "+
				"(`credbroker login --scopes ...`) or allow serving the login's own token (--user-allow-any-scope)",
				s.label, shortScopes(missing), shortScopes(e.Scopes))
		}
		s.opts.Logger.Warn("serving a user token without the requested scopes", slog.String("credential", s.label),
			slog.String("missing", shortScopes(missing)))
	}
	return broker.Token{Value: e.AccessToken, Expiry: e.Expiry}, nil
}

// IDToken returns the login's ID token. Its audience is the OAuth
// client; other audiences are refused unless AllowOtherScopes.
func (s *Source) IDToken(ctx context.Context, audience string, minLifetime time.Duration) (broker.Token, error) {
	if audience != "" && audience != s.cfg.ClientID {
		if !s.opts.AllowOtherScopes {
			return broker.Token{}, broker.NewFatal(fmt.Errorf("%s: %w: ID tokens of a user login have the OAuth client %s as audience, not %q",
				s.label, broker.ErrNotSupported, s.cfg.ClientID, audience))
		}
		s.opts.Logger.Warn("serving a user ID token for another audience", slog.String("credential", s.label),
			slog.String("audience", audience))
	}
	e, err := s.current(ctx, minLifetime, true)
	if err != nil {
		return broker.Token{}, err
	}
	exp, err := jwtclaims.Expiry(e.IDToken)
	if err != nil {
		return broker.Token{}, broker.Fatalf("%s: the token endpoint's id_token %v", s.label, err)
	}
	return broker.Token{Value: e.IDToken, Expiry: exp}, nil
}

// current returns the cached entry if its token (and ID token when
// wantID) lives long enough, refreshing it under the cache lock
// otherwise.
func (s *Source) current(ctx context.Context, minLifetime time.Duration, wantID bool) (tokencache.Entry, error) {
	var out tokencache.Entry
	err := s.cache.Update(ctx, s.key, func(e tokencache.Entry, ok bool) (tokencache.Entry, tokencache.Action, error) {
		if !ok || e.RefreshToken == "" {
			return e, tokencache.Keep, broker.NewFatal(fmt.Errorf("%s: %w: the stored login is gone; run `credbroker login`", s.label, ErrLoginRequired))
		}
		deadline := s.opts.Now().Add(minLifetime)
		fresh := e.AccessToken != "" && e.Expiry.After(deadline)
		if fresh && wantID {
			exp, err := jwtclaims.Expiry(e.IDToken)
			fresh = err == nil && exp.After(deadline)
		}
		if fresh {
			out = e
			return e, tokencache.Keep, nil
		}
		tok, err := s.refresh(ctx, e.RefreshToken)
		if err != nil {
			return e, tokencache.Keep, err
		}
		e.AccessToken, e.Expiry = tok.AccessToken, tok.Expiry
		if scope, _ := tok.Extra("scope").(string); scope != "" {
			e.Scopes = strings.Fields(scope)
		}
		if idt, _ := tok.Extra("id_token").(string); idt != "" {
			e.IDToken = idt
			if e.Email == "" {
				e.Email = jwtclaims.Email(idt)
			}
		} else if wantID {
			return e, tokencache.Keep, broker.NewFatal(fmt.Errorf("%s: %w: the login gives no ID token; log in again with the openid and email scopes",
				s.label, broker.ErrNotSupported))
		}
		if tok.RefreshToken != "" {
			e.RefreshToken = tok.RefreshToken // rotated by the server
		}
		out = e
		return e, tokencache.Write, nil
	})
	if err == nil && out.Email != "" {
		s.mu.Lock()
		s.email = out.Email
		s.mu.Unlock()
	}
	return out, err
}

// refresh runs the refresh_token grant, retrying transient failures.
func (s *Source) refresh(ctx context.Context, rt string) (*oauth2.Token, error) {
	cfg := s.cfg.oauth2()
	var err error
	for attempt := 1; ; attempt++ {
		var tok *oauth2.Token
		tok, err = cfg.TokenSource(withClient(ctx, s.opts.HTTPClient), &oauth2.Token{RefreshToken: rt}).Token()
		if err == nil {
			return tok, nil
		}
		err = s.classify(err)
		if !broker.IsTransient(err) || attempt >= maxAttempts {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
}

// classify turns an x/oauth2 error into the broker's classes, keeping
// only the endpoint's OAuth error code and description.
func (s *Source) classify(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		// Network errors and timeouts: x/oauth2 wraps them without a
		// response.
		return broker.Transientf("%s: refreshing: %w", s.label, err)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	msg := fmt.Sprintf("%s: token endpoint %s answered HTTP %d", s.label, s.cfg.TokenURL, status)
	if re.ErrorCode != "" {
		msg += ": " + safetext.Line(re.ErrorCode, 64)
		if re.ErrorDescription != "" {
			msg += ": " + safetext.Line(re.ErrorDescription, 300)
		}
	}
	switch {
	case status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout:
		return broker.Transientf("%s", msg)
	case re.ErrorCode == "invalid_grant":
		return broker.NewFatal(fmt.Errorf("%s (%w: the login was revoked or has expired; run `credbroker login`)", msg, ErrLoginRequired))
	default:
		return broker.Fatalf("%s", msg)
	}
}
