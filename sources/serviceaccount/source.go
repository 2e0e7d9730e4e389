package serviceaccount

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"credbroker/broker"
)

// DefaultMaxAttempts bounds the calls made for one token.
const DefaultMaxAttempts = 5

// Options configure a Source. The zero value is usable.
type Options struct {
	// HTTPClient talks to the token endpoint. The default uses
	// http.DefaultTransport and follows no redirects.
	HTTPClient *http.Client
	// Now is the clock used for assertions and expiries. Defaults to
	// time.Now.
	Now func() time.Time
	// MaxAttempts bounds the calls made for one token when they fail
	// transiently. Defaults to DefaultMaxAttempts.
	MaxAttempts int
	// Logger receives a debug line per retry. Defaults to slog.Default().
	Logger *slog.Logger
}

// Source mints tokens with a service-account key. It is safe for
// concurrent use.
type Source struct {
	key         *key
	client      *http.Client
	now         func() time.Time
	maxAttempts int
	log         *slog.Logger

	// backoffBase is the first retry's delay, doubled for each next one.
	backoffBase time.Duration
	// sleep waits between attempts; tests replace it to observe waits.
	sleep func(ctx context.Context, d time.Duration) error
}

var _ broker.Source = (*Source)(nil)

// FromFile reads the key at path.
func FromFile(path string, opts Options) (*Source, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	k, err := parseKey(data, fmt.Sprintf("service-account key file %q", path))
	if err != nil {
		return nil, err
	}
	return newSource(k, opts), nil
}

// FromJSON uses a key given as the content of a key file.
func FromJSON(data []byte, opts Options) (*Source, error) {
	k, err := parseKey(data, "service-account key")
	if err != nil {
		return nil, err
	}
	return newSource(k, opts), nil
}

func newSource(k *key, opts Options) *Source {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{
			Transport: http.DefaultTransport,
			// A token endpoint has no reason to redirect, and following
			// one would send the assertion somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Source{
		key:         k,
		client:      opts.HTTPClient,
		now:         opts.Now,
		maxAttempts: opts.MaxAttempts,
		log:         opts.Logger,
		backoffBase: 200 * time.Millisecond,
		sleep:       sleepCtx,
	}
}

// Email returns the service account's email (client_email).
func (s *Source) Email() string { return s.key.email }

// ProjectID returns the key's project_id, "" if it has none.
func (s *Source) ProjectID() string { return s.key.projectID }

// KeyID returns the key's private_key_id, "" if it has none.
func (s *Source) KeyID() string { return s.key.keyID }

// AccessToken mints an access token for scopes. minLifetime is ignored:
// the endpoint decides (Google gives one hour).
func (s *Source) AccessToken(ctx context.Context, scopes []string, minLifetime time.Duration) (broker.Token, error) {
	if len(scopes) == 0 {
		return broker.Token{}, broker.Fatalf("service account %s: no scopes requested", s.key.email)
	}
	tok, err := s.fetch(ctx, map[string]any{"scope": strings.Join(scopes, " ")}, accessToken)
	if err != nil {
		return broker.Token{}, wrapf(err, "service account %s: minting an access token", s.key.email)
	}
	return tok, nil
}

// IDToken mints an ID token for audience. minLifetime is ignored.
func (s *Source) IDToken(ctx context.Context, audience string, minLifetime time.Duration) (broker.Token, error) {
	if audience == "" {
		return broker.Token{}, broker.Fatalf("service account %s: no audience requested", s.key.email)
	}
	tok, err := s.fetch(ctx, map[string]any{"target_audience": audience}, idToken)
	if err != nil {
		return broker.Token{}, wrapf(err, "service account %s: minting an ID token", s.key.email)
	}
	return tok, nil
}

// wrapf adds context to err and keeps its class.
func wrapf(err error, format string, args ...any) error {
	wrapped := fmt.Errorf(format+": %w", append(args, err)...)
	if broker.IsTransient(err) {
		return broker.NewTransient(wrapped)
	}
	return broker.NewFatal(wrapped)
}
