package openid_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/internal/fakeoidc"
	"credbroker/protocols/openid"
)

// clock is a settable clock shared by a server, its broker and the fake
// provider.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// devSource is a small broker.Source for local mode: numbered tokens.
type devSource struct {
	now   func() time.Time
	n     atomic.Int64
	email string
}

func (d *devSource) AccessToken(_ context.Context, scopes []string, _ time.Duration) (broker.Token, error) {
	return broker.Token{Value: fmt.Sprintf("dev-access-%d", d.n.Add(1)), Expiry: d.now().Add(time.Hour)}, nil
}

func (d *devSource) IDToken(_ context.Context, aud string, _ time.Duration) (broker.Token, error) {
	return broker.Token{Value: fmt.Sprintf("dev-id-%d-%s", d.n.Add(1), aud), Expiry: d.now().Add(time.Hour)}, nil
}

func (d *devSource) Email() string { return d.email }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startLocal starts a local-mode server on a real broker.
func startLocal(t *testing.T, c *clock, mutate func(*openid.Server)) (*openid.Server, openid.Info, *broker.Broker) {
	t.Helper()
	b := broker.New(broker.Options{Now: c.Now, Logger: quietLogger()})
	t.Cleanup(b.Close)
	if err := b.AddAccount("default", &devSource{now: c.Now, email: "dev@example.com"}); err != nil {
		t.Fatal(err)
	}
	s := &openid.Server{Tokens: b, Now: c.Now, Logger: quietLogger()}
	if mutate != nil {
		mutate(s)
	}
	s, info := start(t, s)
	return s, info, b
}

func start(t *testing.T, s *openid.Server) (*openid.Server, openid.Info) {
	t.Helper()
	info, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, info
}

// startProd starts a production-mode server against the fake provider.
func startProd(t *testing.T, p *fakeoidc.Server, st openid.Store, keys *openid.Keyring, c *clock) (*openid.Server, openid.Info) {
	t.Helper()
	s := &openid.Server{
		OIDC: &openid.OIDC{
			Issuer:       p.URL,
			ClientID:     p.ClientID,
			ClientSecret: p.ClientSecret,
			RedirectURL:  "", // set below once the port is known
			HTTPClient:   p.Client(),
		},
		Store:  st,
		Keys:   keys,
		Now:    c.Now,
		Logger: quietLogger(),
	}
	// The redirect URL names the server's own port, so pick it first.
	port := freePort(t)
	s.Port = port
	s.OIDC.RedirectURL = fmt.Sprintf("http://127.0.0.1:%d%s", port, openid.PathCallback)
	return start(t, s)
}

func mustKeys(t *testing.T, keys ...openid.Key) *openid.Keyring {
	t.Helper()
	kr, err := openid.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// noRedirect is a client that stops at redirects, keeping cookies in jar.
func noRedirect(c *http.Client) *http.Client {
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func trim(s string) string { return strings.TrimSpace(s) }

func urlEscape(s string) string { return url.QueryEscape(s) }

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// The token core is what the server is given in both modes.
var (
	_ openid.Tokens     = (*broker.Broker)(nil)
	_ openid.UserTokens = (*broker.Broker)(nil)
)
