package impersonate

import (
	"bytes"
	"context"
	"credbroker/internal/jwtclaims"
	"credbroker/internal/safetext"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"credbroker/broker"
)

// DefaultEndpoint is Google's IAM Credentials API.
const DefaultEndpoint = "https://iamcredentials.googleapis.com"

// BaseScope is what the base token must carry to call the API.
const BaseScope = "https://www.googleapis.com/auth/cloud-platform"

const (
	maxAttempts  = 3
	maxBody      = 1 << 20
	callTimeout  = 30 * time.Second
	baseMinLife  = 5 * time.Minute
	tokenLife    = "3600s"
	delegatePath = "projects/-/serviceAccounts/"
)

// Options configure a Source.
type Options struct {
	// Endpoint is the API's base URL; DefaultEndpoint when empty.
	Endpoint string
	// Delegates are the service accounts of a delegation chain, in order
	// from the base's side.
	Delegates []string
	// HTTPClient makes the calls; the default follows no redirects.
	HTTPClient *http.Client
}

// Source mints tokens of Target with tokens of Base. It is safe for
// concurrent use.
type Source struct {
	base    broker.Source
	target  string
	opts    Options
	backoff time.Duration

	mu      sync.Mutex
	baseTok broker.Token
}

var _ broker.Source = (*Source)(nil)

// New returns a Source acting as target (a service account's email).
func New(base broker.Source, target string, opts Options) (*Source, error) {
	if base == nil || target == "" {
		return nil, fmt.Errorf("impersonation needs a base credential and a target account")
	}
	if opts.Endpoint == "" {
		opts.Endpoint = DefaultEndpoint
	}
	opts.Endpoint = strings.TrimRight(opts.Endpoint, "/")
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{
			Transport:     http.DefaultTransport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Source{base: base, target: target, opts: opts, backoff: 200 * time.Millisecond}, nil
}

// Email is the impersonated account.
func (s *Source) Email() string { return s.target }

// Base is the credential the Source acts with.
func (s *Source) Base() broker.Source { return s.base }

// AccessToken calls generateAccessToken for scopes.
func (s *Source) AccessToken(ctx context.Context, scopes []string, minLifetime time.Duration) (broker.Token, error) {
	if len(scopes) == 0 {
		return broker.Token{}, broker.Fatalf("impersonating %s: no scopes requested", s.target)
	}
	var out struct {
		AccessToken string `json:"accessToken"`
		ExpireTime  string `json:"expireTime"`
	}
	body := map[string]any{"scope": scopes, "lifetime": tokenLife}
	if err := s.call(ctx, "generateAccessToken", body, &out); err != nil {
		return broker.Token{}, err
	}
	exp, err := time.Parse(time.RFC3339, out.ExpireTime)
	if out.AccessToken == "" || err != nil {
		return broker.Token{}, broker.Transientf("impersonating %s: generateAccessToken answered without a token or expiry", s.target)
	}
	return broker.Token{Value: out.AccessToken, Expiry: exp}, nil
}

// IDToken calls generateIdToken for audience, with the email included.
func (s *Source) IDToken(ctx context.Context, audience string, minLifetime time.Duration) (broker.Token, error) {
	if audience == "" {
		return broker.Token{}, broker.Fatalf("impersonating %s: no audience requested", s.target)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := s.call(ctx, "generateIdToken", map[string]any{"audience": audience, "includeEmail": true}, &out); err != nil {
		return broker.Token{}, err
	}
	exp, err := jwtclaims.Expiry(out.Token)
	if err != nil {
		return broker.Token{}, broker.Transientf("impersonating %s: generateIdToken answered with a token that %v", s.target, err)
	}
	return broker.Token{Value: out.Token, Expiry: exp}, nil
}

// baseToken returns the base's API token, reusing it while it lives.
func (s *Source) baseToken(ctx context.Context) (broker.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.baseTok.Value != "" && time.Until(s.baseTok.Expiry) > baseMinLife {
		return s.baseTok, nil
	}
	tok, err := s.base.AccessToken(ctx, []string{BaseScope}, baseMinLife)
	if err != nil {
		return broker.Token{}, wrap(err, "impersonating %s: the base credential", s.target)
	}
	s.baseTok = tok
	return tok, nil
}

func (s *Source) call(ctx context.Context, method string, body map[string]any, out any) error {
	if len(s.opts.Delegates) > 0 {
		ds := make([]string, len(s.opts.Delegates))
		for i, d := range s.opts.Delegates {
			ds[i] = delegatePath + d
		}
		body["delegates"] = ds
	}
	data, err := json.Marshal(body)
	if err != nil {
		return broker.NewFatal(err)
	}
	for attempt := 1; ; attempt++ {
		err = s.callOnce(ctx, method, data, out)
		if err == nil || !broker.IsTransient(err) || attempt >= maxAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(s.backoff << (attempt - 1)):
		}
	}
}

func (s *Source) callOnce(ctx context.Context, method string, data []byte, out any) error {
	base, err := s.baseToken(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	u := s.opts.Endpoint + "/v1/" + delegatePath + url.PathEscape(s.target) + ":" + method
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(data))
	if err != nil {
		return broker.Fatalf("impersonating %s: %w", s.target, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+base.Value)
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		return broker.Transientf("impersonating %s: %s: %w", s.target, method, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return broker.Transientf("impersonating %s: %s: reading the answer: %w", s.target, method, err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			return broker.Transientf("impersonating %s: %s answered with something other than JSON", s.target, method)
		}
		return nil
	}
	var apiErr struct {
		Error struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"error"`
	}
	json.Unmarshal(body, &apiErr)
	err = fmt.Errorf("impersonating %s: %s at %s answered HTTP %d: %s: %s", s.target, method, s.opts.Endpoint,
		resp.StatusCode, safetext.Line(apiErr.Error.Status, 64), safetext.Line(apiErr.Error.Message, 300))
	if resp.StatusCode == http.StatusUnauthorized {
		// The base token may have been revoked early: mint a new one next time.
		s.mu.Lock()
		s.baseTok = broker.Token{}
		s.mu.Unlock()
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return broker.NewTransient(err)
	}
	return broker.NewFatal(err)
}

// wrap adds context to err and keeps its class and code.
func wrap(err error, format string, args ...any) error {
	wrapped := fmt.Errorf(format+": %w", append(args, err)...)
	if broker.IsTransient(err) {
		return broker.NewTransient(wrapped)
	}
	if c := broker.CodeOf(err); c != -1 {
		return broker.NewFatalCode(c, wrapped)
	}
	return broker.NewFatal(wrapped)
}
