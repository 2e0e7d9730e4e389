package localauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
	"credbroker/lucictx"
)

// fakeServer answers every request with status and body, and records the
// last request.
type fakeServer struct {
	*httptest.Server
	mu     sync.Mutex
	method string
	path   string
	ct     string
	body   map[string]any
}

func newFakeServer(t *testing.T, status int, body string) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.method, f.path, f.ct = r.Method, r.URL.Path, r.Header.Get("Content-Type")
		f.body = nil
		json.Unmarshal(data, &f.body)
		f.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) localAuth(t *testing.T) *lucictx.LocalAuth {
	t.Helper()
	_, port, err := net.SplitHostPort(f.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return &lucictx.LocalAuth{
		RPCPort:          uint32(p),
		Secret:           []byte("foo"),
		Accounts:         []lucictx.LocalAuthAccount{{ID: "acc_id", Email: "some@example.com"}, {ID: "other", Email: "-"}},
		DefaultAccountID: "acc_id",
	}
}

func TestNewClient(t *testing.T) {
	la := &lucictx.LocalAuth{RPCPort: 1, Accounts: []lucictx.LocalAuthAccount{{ID: "a", Email: "-"}}, DefaultAccountID: "a"}
	tests := []struct {
		name    string
		la      *lucictx.LocalAuth
		wantErr string
	}{
		{name: "ok", la: la},
		{name: "no section", la: nil, wantErr: `no "local_auth" in LUCI_CONTEXT`},
		{name: "no default", la: &lucictx.LocalAuth{RPCPort: 1}, wantErr: `no "default_account_id" in LUCI_CONTEXT["local_auth"]`},
		{name: "default not listed", la: &lucictx.LocalAuth{RPCPort: 1, DefaultAccountID: "x"}, wantErr: "no such local_auth account"},
		{name: "no port", la: &lucictx.LocalAuth{Accounts: la.Accounts, DefaultAccountID: "a"}, wantErr: "rpc_port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.la)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Account() != "a" || c.Email() != "" {
				t.Errorf("account %q email %q", c.Account(), c.Email())
			}
		})
	}
}

func TestClientRequests(t *testing.T) {
	f := newFakeServer(t, 200, `{"access_token":"tok","expiry":1454474106}`)
	c, err := NewClient(f.localAuth(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	tok, err := c.AccessToken(context.Background(), []string{"B", "A"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := (broker.Token{Value: "tok", Expiry: time.Unix(1454474106, 0).UTC()}); tok != want {
		t.Errorf("token = %+v, want %+v", tok, want)
	}
	if tok.Expiry.Location() != time.UTC {
		t.Errorf("expiry not in UTC")
	}
	f.mu.Lock()
	if f.method != "POST" || f.path != "/rpc/LuciLocalAuthService.GetOAuthToken" || f.ct != "application/json" {
		t.Errorf("request %s %s %q", f.method, f.path, f.ct)
	}
	// Scopes go in the caller's order; the secret as standard base64.
	wantBody := map[string]any{"scopes": []any{"B", "A"}, "secret": "Zm9v", "account_id": "acc_id"}
	if fmt.Sprint(f.body) != fmt.Sprint(wantBody) {
		t.Errorf("body = %v, want %v", f.body, wantBody)
	}
	f.mu.Unlock()
	if c.Email() != "some@example.com" {
		t.Errorf("email = %q", c.Email())
	}

	f2 := newFakeServer(t, 200, `{"id_token":"idtok","expiry":1454474106}`)
	c2, err := NewClientFor(f2.localAuth(t), "other")
	if err != nil {
		t.Fatal(err)
	}
	tok, err = c2.IDToken(context.Background(), "https://aud", 0)
	if err != nil || tok.Value != "idtok" {
		t.Fatalf("IDToken = %+v, %v", tok, err)
	}
	f2.mu.Lock()
	wantBody = map[string]any{"audience": "https://aud", "secret": "Zm9v", "account_id": "other"}
	if f2.path != "/rpc/LuciLocalAuthService.GetIDToken" || fmt.Sprint(f2.body) != fmt.Sprint(wantBody) {
		t.Errorf("request %s %v", f2.path, f2.body)
	}
	f2.mu.Unlock()
	if c2.Email() != "" {
		t.Errorf("email of an account without one = %q", c2.Email())
	}
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		transient bool
		code      int
		msg       string
	}{
		{name: "500", status: 500, body: "Transient error - boom\n", transient: true, code: -1, msg: "local auth - HTTP 500: Transient error - boom"},
		{name: "502", status: 502, body: "x", transient: true, code: -1, msg: "local auth - HTTP 502: x"},
		{name: "403", status: 403, body: "Invalid secret.\n", code: -1, msg: "local auth - HTTP 403: Invalid secret."},
		{name: "404", status: 404, body: "", code: -1, msg: "local auth - HTTP 404: "},
		{name: "rpc code", status: 200, body: `{"error_code":123,"error_message":"omg, error"}`, code: 123, msg: "local auth - RPC code 123: omg, error"},
		{name: "rpc code, no message", status: 200, body: `{"error_code":-1}`, code: -1, msg: "local auth - RPC code -1: unknown error"},
		{name: "rpc message, no code", status: 200, body: `{"error_message":"bad"}`, code: -1, msg: "local auth - RPC code 0: bad"},
		{name: "not JSON", status: 200, body: `<html>`, code: -1, msg: "not JSON"},
		{name: "no token", status: 200, body: `{"expiry":5}`, code: -1, msg: "no token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t, tt.status, tt.body)
			c, err := NewClient(f.localAuth(t))
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseIdleConnections()
			for _, call := range []func() (broker.Token, error){
				func() (broker.Token, error) { return c.AccessToken(context.Background(), []string{"s"}, 0) },
				func() (broker.Token, error) { return c.IDToken(context.Background(), "aud", 0) },
			} {
				_, err := call()
				if err == nil {
					t.Fatal("no error")
				}
				if broker.IsTransient(err) != tt.transient || broker.CodeOf(err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("err = %q (transient %v, code %d), want %q (transient %v, code %d)",
						err, broker.IsTransient(err), broker.CodeOf(err), tt.msg, tt.transient, tt.code)
				}
			}
		})
	}
}

func TestClientNetworkErrorIsTransient(t *testing.T) {
	lns, port, err := loopback.Listen(0, false)
	if err != nil {
		t.Fatal(err)
	}
	lns[0].Close() // nothing listens there now
	c, err := NewClient(&lucictx.LocalAuth{RPCPort: uint32(port), Secret: []byte("secret-bytes"), Accounts: []lucictx.LocalAuthAccount{{ID: "a"}}, DefaultAccountID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AccessToken(context.Background(), []string{"s"}, 0)
	if !broker.IsTransient(err) {
		t.Fatalf("err = %v, want transient", err)
	}
	if strings.Contains(err.Error(), "secret-bytes") || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatalf("error shows the secret: %v", err)
	}
}

// countingSource is a broker.Source that mints numbered tokens and records
// what it was asked for.
type countingSource struct {
	mu    sync.Mutex
	n     int
	asked []string
}

func (s *countingSource) mint(what string) broker.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, what)
	tok := broker.Token{Value: fmt.Sprintf("fake_token_%d", s.n), Expiry: time.Now().Add(time.Hour).Truncate(time.Second)}
	s.n++
	return tok
}

func (s *countingSource) AccessToken(ctx context.Context, scopes []string, _ time.Duration) (broker.Token, error) {
	return s.mint(fmt.Sprint(scopes)), nil
}

func (s *countingSource) IDToken(ctx context.Context, audience string, _ time.Duration) (broker.Token, error) {
	return s.mint("audience:" + audience), nil
}

func (s *countingSource) Email() string { return "fake@example.com" }

// startBroker starts a server on a real broker with accounts "task"
// (countingSource) and "system".
func startBroker(t testing.TB) (*Server, Info, *countingSource, *broker.Broker) {
	t.Helper()
	b := broker.New(broker.Options{Logger: quiet})
	t.Cleanup(b.Close)
	src := &countingSource{}
	if err := b.AddAccount("task", src); err != nil {
		t.Fatal(err)
	}
	if err := b.AddAccount("system", &countingSource{}); err != nil {
		t.Fatal(err)
	}
	var accounts []Account
	for _, a := range b.Accounts() {
		accounts = append(accounts, Account{ID: a.ID})
	}
	s := &Server{Tokens: b, Accounts: accounts, DefaultAccount: "task", Logger: quiet}
	info, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, info, src, b
}

// TestEndToEnd runs the whole chain a child sees: a server on a real
// broker, its LUCI_CONTEXT file written and read back, and the client.
func TestEndToEnd(t *testing.T) {
	_, info, src, _ := startBroker(t)

	parent, _, err := lucictx.Parse([]byte(`{"realm":{"name":"proj:realm"}}`))
	if err != nil {
		t.Fatal(err)
	}
	path, err := parent.SetLocalAuth(info.LocalAuth()).Export(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := lucictx.SetInEnv(os.Environ(), path)
	got, ok := lucictx.LookupEnv(env)
	if !ok || got != path {
		t.Fatalf("LUCI_CONTEXT in env = %q", got)
	}
	ctx, warns, err := lucictx.Load(got)
	if err != nil || len(warns) > 0 {
		t.Fatalf("Load: %v %q", err, warns)
	}
	la, err := ctx.LocalAuth()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(la)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	if c.Email() != "fake@example.com" {
		t.Errorf("email = %q", c.Email())
	}

	bg := context.Background()
	tokens := map[string]broker.Token{}
	for _, req := range []struct {
		name   string
		scopes []string
		want   string
	}{
		{"first", []string{"zzz", "A"}, "fake_token_0"},
		{"cached, other order", []string{"A", "zzz", "A"}, "fake_token_0"},
		{"other scopes", []string{"B"}, "fake_token_1"},
	} {
		tok, err := c.AccessToken(bg, req.scopes, 0)
		if err != nil {
			t.Fatalf("%s: %v", req.name, err)
		}
		if tok.Value != req.want {
			t.Errorf("%s: token %q, want %q", req.name, tok.Value, req.want)
		}
		tokens[tok.Value] = tok
	}
	for _, aud := range []string{"A", "B", "A"} {
		tok, err := c.IDToken(bg, aud, 0)
		if err != nil {
			t.Fatal(err)
		}
		tokens[tok.Value] = tok
	}
	src.mu.Lock()
	asked := slices.Clone(src.asked)
	src.mu.Unlock()
	if want := []string{"[A zzz]", "[B]", "audience:A", "audience:B"}; !slices.Equal(asked, want) {
		t.Errorf("source asked for %q, want %q", asked, want)
	}
	if len(tokens) != 4 {
		t.Errorf("distinct tokens = %d, want 4", len(tokens))
	}

	// The other account, through a switched context.
	switched, err := ctx.SwitchLocalAccount("system")
	if err != nil {
		t.Fatal(err)
	}
	la2, _ := switched.LocalAuth()
	c2, err := NewClient(la2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseIdleConnections()
	if tok, err := c2.AccessToken(bg, []string{"A"}, 0); err != nil || tok.Value != "fake_token_0" {
		t.Errorf("system account: %+v, %v", tok, err)
	}
	if _, err := c2.IDToken(bg, "", 0); err == nil || broker.IsTransient(err) || !strings.Contains(err.Error(), "HTTP 400") {
		t.Errorf("empty audience: %v", err)
	}

	// A wrong secret is refused, and the client says so without the secret.
	bad := *la
	bad.Secret = []byte("not the secret")
	c3, _ := NewClient(&bad)
	defer c3.CloseIdleConnections()
	if _, err := c3.AccessToken(bg, []string{"A"}, 0); err == nil || !strings.Contains(err.Error(), "HTTP 403: Invalid secret.") {
		t.Errorf("bad secret: %v", err)
	}
}

// BenchmarkCachedToken measures a cached GetOAuthToken through the real
// server and broker against a bare net/http handler that returns a body of
// the same size, over the same kind of loopback connection, and reports
// the ratio.
func BenchmarkCachedToken(b *testing.B) {
	_, info, _, _ := startBroker(b)
	c, err := NewClient(info.LocalAuth())
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseIdleConnections()
	ctx := context.Background()
	scopes := []string{"https://www.googleapis.com/auth/cloud-platform"}
	tok, err := c.AccessToken(ctx, scopes, 0) // fills the cache
	if err != nil {
		b.Fatal(err)
	}
	same, _ := json.Marshal(oauthResponse{AccessToken: tok.Value, Expiry: tok.Expiry.Unix()})
	same = append(same, '\n')
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(same)))
		w.Write(same)
	}))
	defer bare.Close()
	_, bport, _ := net.SplitHostPort(bare.Listener.Addr().String())
	p, _ := strconv.Atoi(bport)
	bareLA := info.LocalAuth()
	bareLA.RPCPort = uint32(p)
	bc, err := NewClient(bareLA)
	if err != nil {
		b.Fatal(err)
	}
	defer bc.CloseIdleConnections()
	if _, err := bc.AccessToken(ctx, scopes, 0); err != nil {
		b.Fatal(err)
	}

	// Interleaved, so that load from elsewhere on the machine hits both
	// sides alike.
	call := func(c *Client) time.Duration {
		start := time.Now()
		if _, err := c.AccessToken(ctx, scopes, 0); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var baseline, served time.Duration
	b.ResetTimer()
	for range b.N {
		baseline += call(bc)
		served += call(c)
	}
	b.StopTimer()
	b.ReportMetric(float64(served.Nanoseconds())/float64(b.N), "served-ns/op")
	b.ReportMetric(float64(baseline.Nanoseconds())/float64(b.N), "bare-ns/op")
	b.ReportMetric(float64(served)/float64(baseline), "x-bare")
}
