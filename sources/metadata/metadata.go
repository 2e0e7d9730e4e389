package metadata

import (
	"context"
	"credbroker/internal/jwtclaims"
	"credbroker/internal/safetext"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"credbroker/broker"
)

// DefaultHost is the metadata server's address on a VM.
const DefaultHost = "169.254.169.254"

// HostEnv names the variable that points clients at another server.
const HostEnv = "GCE_METADATA_HOST"

const (
	maxAttempts = 3
	maxBody     = 1 << 20
	callTimeout = 10 * time.Second
)

// Options configure a Source.
type Options struct {
	// Host is "host[:port]"; $GCE_METADATA_HOST, else DefaultHost, when
	// empty.
	Host string
	// Account is the service account: "default" when empty.
	Account string
	// HTTPClient makes the calls; the default uses no proxy.
	HTTPClient *http.Client
}

// Source mints tokens from a metadata server. It is safe for concurrent
// use.
type Source struct {
	base    string // http://HOST/computeMetadata/v1/instance/service-accounts/ACCOUNT/
	host    string
	account string
	email   string
	client  *http.Client
	backoff time.Duration
}

var _ broker.Source = (*Source)(nil)

// New asks the server for the account's email, which also proves the
// server is there.
func New(ctx context.Context, opts Options) (*Source, error) {
	if opts.Host == "" {
		opts.Host = os.Getenv(HostEnv)
	}
	if opts.Host == "" {
		opts.Host = DefaultHost
	}
	if opts.Account == "" {
		opts.Account = "default"
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{
			Transport:     &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	s := &Source{
		base:    "http://" + opts.Host + "/computeMetadata/v1/instance/service-accounts/" + url.PathEscape(opts.Account) + "/",
		host:    opts.Host,
		account: opts.Account,
		client:  opts.HTTPClient,
		backoff: 100 * time.Millisecond,
	}
	body, err := s.get(ctx, "email")
	if err != nil {
		return nil, err
	}
	s.email = strings.TrimSpace(string(body))
	return s, nil
}

// Email is the account's email.
func (s *Source) Email() string { return s.email }

// Host is the server's address.
func (s *Source) Host() string { return s.host }

// Scopes lists the account's scopes as the server reports them.
func (s *Source) Scopes(ctx context.Context) ([]string, error) {
	body, err := s.get(ctx, "scopes")
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(body)), nil
}

// AccessToken asks for a token with scopes (the server may ignore them).
func (s *Source) AccessToken(ctx context.Context, scopes []string, minLifetime time.Duration) (broker.Token, error) {
	path := "token"
	if len(scopes) > 0 {
		path += "?scopes=" + url.QueryEscape(strings.Join(scopes, ","))
	}
	start := time.Now()
	body, err := s.get(ctx, path)
	if err != nil {
		return broker.Token{}, err
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return broker.Token{}, broker.Transientf("metadata server %s: the token answer is not a token", s.host)
	}
	tok := broker.Token{Value: tr.AccessToken}
	if tr.ExpiresIn > 0 {
		tok.Expiry = start.Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	return tok, nil
}

// IDToken asks for an ID token for audience, with the full format (which
// carries the email).
func (s *Source) IDToken(ctx context.Context, audience string, minLifetime time.Duration) (broker.Token, error) {
	if audience == "" {
		return broker.Token{}, broker.Fatalf("metadata server %s: no audience requested", s.host)
	}
	body, err := s.get(ctx, "identity?audience="+url.QueryEscape(audience)+"&format=full")
	if err != nil {
		return broker.Token{}, err
	}
	tok := strings.TrimSpace(string(body))
	exp, err := jwtclaims.Expiry(tok)
	if err != nil {
		return broker.Token{}, broker.Transientf("metadata server %s: the identity answer %v", s.host, err)
	}
	return broker.Token{Value: tok, Expiry: exp}, nil
}

// get fetches one leaf, retrying transient failures.
func (s *Source) get(ctx context.Context, leaf string) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		body, err := s.getOnce(ctx, leaf)
		if err == nil || !broker.IsTransient(err) || attempt >= maxAttempts {
			return body, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(s.backoff << (attempt - 1)):
		}
	}
}

func (s *Source) getOnce(ctx context.Context, leaf string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+leaf, nil)
	if err != nil {
		return nil, broker.Fatalf("metadata server %s: %w", s.host, err)
	}
	req.Header.Set("Metadata-Flavor", "Google")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, broker.Transientf("metadata server %s: %w", s.host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, broker.Transientf("metadata server %s: reading the answer: %w", s.host, err)
	}
	if resp.StatusCode == http.StatusOK {
		if resp.Header.Get("Metadata-Flavor") != "Google" {
			// Something else answers on that address (a captive portal,
			// a proxy): not a metadata server.
			return nil, broker.Fatalf("metadata server %s: the answer lacks Metadata-Flavor: Google", s.host)
		}
		return body, nil
	}
	what := strings.SplitN(leaf, "?", 2)[0]
	err = fmt.Errorf("metadata server %s: %s of account %q: HTTP %d: %s", s.host, what, s.account, resp.StatusCode, safetext.Line(string(body), 200))
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return nil, broker.NewTransient(err)
	}
	return nil, broker.NewFatal(err)
}
