package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"credbroker/authtoken"
	"credbroker/broker"
)

// fakeSource mints numbered opaque tokens that live an hour.
type fakeSource struct{ n atomic.Int64 }

func (s *fakeSource) AccessToken(ctx context.Context, scopes []string, _ time.Duration) (broker.Token, error) {
	return broker.Token{Value: fmt.Sprintf("ya29.fake-%d", s.n.Add(1)), Expiry: time.Now().Add(time.Hour)}, nil
}

func (s *fakeSource) IDToken(ctx context.Context, aud string, _ time.Duration) (broker.Token, error) {
	return broker.Token{Value: fmt.Sprintf("eyJ.fake-%d", s.n.Add(1)), Expiry: time.Now().Add(time.Hour)}, nil
}

func (s *fakeSource) Email() string { return "robot@example.iam.gserviceaccount.com" }

func newBroker(t *testing.T) *broker.Broker { return newBrokerB(t) }

func newBrokerB(t testing.TB) *broker.Broker {
	t.Helper()
	b := broker.New(broker.Options{Logger: quietLogger()})
	for _, id := range []string{"task", "other"} {
		if err := b.AddAccount(id, &fakeSource{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func createOpts() authtoken.CreateOptions { return authtoken.CreateOptions{TTL: time.Hour} }

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testPaths makes short directories: a unix socket path must fit in 108
// bytes, which t.TempDir() names do not always.
func testPaths(t *testing.T) Paths { return testPathsB(t) }

func testPathsB(t testing.TB) Paths {
	t.Helper()
	root, err := os.MkdirTemp("", "cbd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	return Paths{Runtime: filepath.Join(root, "run"), State: filepath.Join(root, "state"), Config: filepath.Join(root, "config")}
}

// clock is a settable clock for the token records.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	paths Paths
	key   []byte
	clock *clock
	b     *broker.Broker
	d     *Daemon
	c     *Client
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{paths: testPaths(t), key: make([]byte, 32), clock: &clock{t: time.Now()}, b: newBroker(t)}
	copy(h.key, "0123456789abcdef0123456789abcdef")
	h.start(t)
	return h
}

// start starts (or restarts) the daemon on the harness's paths and key.
func (h *harness) start(t *testing.T) {
	t.Helper()
	d, err := New(context.Background(), Options{Paths: h.paths, Key: h.key, Broker: h.b, Logger: quietLogger(), Now: h.clock.Now, SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	h.d = d
	h.c = NewClient(h.paths.Socket())
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	if err := h.d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func allFrontends() Frontends {
	return Frontends{LocalAuth: true, GCEMeta: true, Devshell: true, Gsutil: true}
}

func (h *harness) create(t *testing.T, req CreateRequest) *Created {
	t.Helper()
	if req.Scopes == nil {
		req.Scopes = []string{"https://www.googleapis.com/auth/cloud-platform"}
	}
	out, err := h.c.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func envOf(c *Created, name string) string {
	for _, v := range c.Set {
		if v.Name == name {
			return v.Value
		}
	}
	return ""
}

func endpoint(in Info, name string) string {
	for _, ep := range in.Endpoints {
		if ep.Name == name {
			return ep.Addr
		}
	}
	return ""
}

const metaTokenRequest = "GET /computeMetadata/v1/instance/service-accounts/default/token HTTP/1.1\r\nHost: %s\r\nMetadata-Flavor: Google\r\n\r\n"

// keepAlive is one client connection to a front-end, kept open across
// requests.
type keepAlive struct {
	c net.Conn
	r *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr string) *keepAlive {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{c: c, r: bufio.NewReader(c)}
}

// get sends one metadata token request and returns the status, or an
// error when the connection no longer answers.
func (k *keepAlive) get(addr string) (int, error) {
	k.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(k.c, metaTokenRequest, addr); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// metaToken asks a metadata server for a token on a fresh connection.
func metaToken(addr string) (int, error) {
	req, _ := http.NewRequest("GET", "http://"+addr+"/computeMetadata/v1/instance/service-accounts/default/token", nil)
	req.Header.Set("Metadata-Flavor", "Google")
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// botoToken reads a .boto the way gsutil does (refresh token and token
// URI) and redeems the refresh token at the URI.
func botoToken(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var refresh, uri string
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "gs_oauth2_refresh_token":
			refresh = strings.TrimSpace(v)
		case "provider_token_uri":
			uri = strings.TrimSpace(v)
		}
	}
	if refresh == "" || uri == "" {
		return 0, fmt.Errorf("no refresh token or token URI in %s", path)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {"x"}, "client_secret": {"y"}}
	resp, err := http.PostForm(uri, form)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
