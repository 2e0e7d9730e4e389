package serviceaccount

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/internal/fakegoogle"
)

const testEmail = "robot@proj-7.iam.gserviceaccount.com"

// waits records the delays a Source asked to sleep, without sleeping.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.d)
}

// testSource makes a Source for a new key of fg, with retries that do not
// sleep and are recorded instead.
func testSource(t *testing.T, fg *fakegoogle.Server) (*Source, *fakegoogle.Key, *waits) {
	t.Helper()
	k, err := fg.NewKey(testEmail)
	if err != nil {
		t.Fatal(err)
	}
	path, err := k.WriteFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := FromFile(path, Options{HTTPClient: fg.Client(), MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	w := &waits{}
	s.sleep = w.sleep
	return s, k, w
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestAccessToken(t *testing.T) {
	fg := fakegoogle.New(t)
	s, k, _ := testSource(t, fg)
	fg.SetTokenLifetime(20 * time.Minute)
	before := time.Now()
	tok, err := s.AccessToken(ctxTimeout(t, time.Minute), []string{"scope-a", "scope-b"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	mints := fg.Mints()
	if len(mints) != 1 {
		t.Fatalf("%d mints, want 1", len(mints))
	}
	m := mints[0]
	if m.Token != tok.Value || m.Email != testEmail || m.KeyID != k.KeyID || !slices.Equal(m.Scopes, []string{"scope-a", "scope-b"}) {
		t.Errorf("minted %+v for token %q", m, tok.Value)
	}
	if tok.Expiry.Before(before.Add(20*time.Minute-time.Second)) || tok.Expiry.After(after.Add(20*time.Minute)) {
		t.Errorf("expiry %v not 20 minutes after the call", tok.Expiry)
	}
	if s.Email() != testEmail || s.ProjectID() != "proj-7" || s.KeyID() != k.KeyID {
		t.Errorf("Email, ProjectID, KeyID = %q, %q, %q", s.Email(), s.ProjectID(), s.KeyID())
	}
}

func TestIDToken(t *testing.T) {
	fg := fakegoogle.New(t)
	s, _, _ := testSource(t, fg)
	fg.SetTokenLifetime(15 * time.Minute)
	tok, err := s.IDToken(ctxTimeout(t, time.Minute), "https://svc.example/", 0)
	if err != nil {
		t.Fatal(err)
	}
	mints := fg.Mints()
	if len(mints) != 1 || mints[0].Audience != "https://svc.example/" || mints[0].Token != tok.Value {
		t.Fatalf("mints = %+v", mints)
	}
	// The expiry comes from the JWT's exp, which the fake recorded.
	if !tok.Expiry.Equal(mints[0].Expiry) {
		t.Errorf("expiry %v, want the JWT's exp %v", tok.Expiry, mints[0].Expiry)
	}
}

func TestFromJSON(t *testing.T) {
	fg := fakegoogle.New(t)
	k, err := fg.NewKey(testEmail)
	if err != nil {
		t.Fatal(err)
	}
	s, err := FromJSON(k.JSON, Options{HTTPClient: fg.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AccessToken(ctxTimeout(t, time.Minute), []string{"x"}, 0); err != nil {
		t.Fatal(err)
	}
}

func TestEndpointFailures(t *testing.T) {
	tests := []struct {
		name     string
		fault    fakegoogle.Fault
		timeout  time.Duration
		class    broker.Class // 0: success
		requests int
		waits    []time.Duration // nil: any; checked when set
		contains string
	}{
		{
			name:     "400 is fatal with Google's text",
			fault:    fakegoogle.Fault{Status: 400, Description: "Invalid JWT Signature."},
			class:    broker.Fatal,
			requests: 1,
			contains: "token endpoint " + "URI" + " answered HTTP 400: invalid_grant: Invalid JWT Signature.",
		},
		{
			name:     "403 is fatal",
			fault:    fakegoogle.Fault{Status: 403, Error: "access_denied", Description: "Account disabled."},
			class:    broker.Fatal,
			requests: 1,
			contains: "HTTP 403: access_denied: Account disabled.",
		},
		{
			name:     "500 is retried, then transient",
			fault:    fakegoogle.Fault{Status: 500},
			class:    broker.Transient,
			requests: 3,
			contains: "giving up after 3 attempts: token endpoint URI answered HTTP 500: internal_failure: Internal Server Error",
		},
		{
			name:     "503 twice, then a token",
			fault:    fakegoogle.Fault{Status: 503, Times: 2},
			requests: 3,
		},
		{
			name:     "429 with a short Retry-After is waited for",
			fault:    fakegoogle.Fault{Status: 429, RetryAfter: 2 * time.Second, Times: 1},
			requests: 2,
			waits:    []time.Duration{2 * time.Second},
		},
		{
			name:     "429 with a long Retry-After ends at once",
			fault:    fakegoogle.Fault{Status: 429, RetryAfter: time.Minute},
			class:    broker.Transient,
			requests: 1,
			waits:    []time.Duration{},
			contains: "HTTP 429: rate_limit_exceeded: Too Many Requests (retry after 1m0s)",
		},
		{
			name:     "429 with a Retry-After past the deadline ends at once",
			fault:    fakegoogle.Fault{Status: 429, RetryAfter: 5 * time.Second},
			timeout:  2 * time.Second,
			class:    broker.Transient,
			requests: 1,
			waits:    []time.Duration{},
		},
		{
			name:     "a hang is bounded by the deadline",
			fault:    fakegoogle.Fault{Hang: true},
			timeout:  200 * time.Millisecond,
			class:    broker.Transient,
			requests: 1,
			contains: "context deadline exceeded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fg := fakegoogle.New(t)
			s, k, w := testSource(t, fg)
			fg.SetFault(tt.fault)
			timeout := tt.timeout
			if timeout == 0 {
				timeout = time.Minute
			}
			tok, err := s.AccessToken(ctxTimeout(t, timeout), []string{"s"}, 0)
			if tt.class == 0 {
				if err != nil {
					t.Fatalf("err = %v, want a token", err)
				}
			} else {
				if err == nil {
					t.Fatalf("got a token, want a %v error", tt.class)
				}
				if c := broker.ClassOf(err); c != tt.class {
					t.Errorf("class %v, want %v (err: %v)", c, tt.class, err)
				}
				want := strings.ReplaceAll(tt.contains, "URI", fg.TokenURL())
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
				if !strings.HasPrefix(err.Error(), "service account "+testEmail+": minting an access token: ") {
					t.Errorf("error %q does not name the account", err)
				}
				assertNoSecrets(t, err, k, fg)
			}
			if n := fg.Requests(); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if tt.waits != nil && !slices.Equal(w.all(), tt.waits) {
				t.Errorf("waited %v, want %v", w.all(), tt.waits)
			}
			if tt.class == 0 && tok.Value == "" {
				t.Error("empty token")
			}
		})
	}
}

// assertNoSecrets fails if err carries key material, an assertion or a
// token minted by fg.
func assertNoSecrets(t *testing.T, err error, k *fakegoogle.Key, fg *fakegoogle.Server) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, "eyJ") {
		t.Errorf("error %q looks like it carries a JWT", msg)
	}
	if k != nil {
		for _, line := range strings.Split(string(k.JSON), "\\n") {
			if len(line) >= 16 && !strings.Contains(line, "PRIVATE KEY") && strings.Contains(msg, line) {
				t.Errorf("error %q carries a line of the private key", msg)
			}
		}
	}
	if fg != nil {
		for _, m := range fg.Mints() {
			if strings.Contains(msg, m.Token) {
				t.Errorf("error %q carries a token", msg)
			}
		}
	}
}

// TestBackoffGrows checks the retry delays of a persistent 5xx: jittered
// within [d/2, d] of an exponential that starts at the base.
func TestBackoffGrows(t *testing.T) {
	fg := fakegoogle.New(t)
	s, _, w := testSource(t, fg)
	s.maxAttempts = 4
	fg.SetFault(fakegoogle.Fault{Status: 502})
	if _, err := s.AccessToken(ctxTimeout(t, time.Minute), []string{"s"}, 0); !broker.IsTransient(err) {
		t.Fatalf("err = %v, want transient", err)
	}
	got := w.all()
	if len(got) != 3 {
		t.Fatalf("waited %v, want 3 waits", got)
	}
	for i, d := range got {
		hi := s.backoffBase << i
		if d < hi/2 || d > hi {
			t.Errorf("wait %d = %v, want within [%v, %v]", i, d, hi/2, hi)
		}
	}
}

// TestErrorBodies covers answers that the fake does not produce: an error
// object in the style of Google APIs, a body that is not JSON (never
// quoted), and a redirect (never followed).
func TestErrorBodies(t *testing.T) {
	fg := fakegoogle.New(t)
	k, err := fg.NewKey(testEmail)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		class   broker.Class
		want    string
	}{
		{"API error object", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(403)
			w.Write([]byte(`{"error":{"code":403,"message":"Permission denied.","status":"PERMISSION_DENIED"}}`))
		}, broker.Fatal, "answered HTTP 403: PERMISSION_DENIED: Permission denied."},
		{"HTML body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(404)
			w.Write([]byte(`<html>secret-looking page</html>`))
		}, broker.Fatal, "answered HTTP 404 without an OAuth error"},
		{"control characters", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"invalid_grant","error_description":"line1\nline2\u001b[31m"}`))
		}, broker.Fatal, "invalid_grant: line1 line2 [31m"},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, fg.TokenURL(), http.StatusTemporaryRedirect)
		}, broker.Fatal, "answered HTTP 307 without an OAuth error"},
		{"200 without a token", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"token_type":"Bearer"}`))
		}, broker.Transient, "answered without an access_token"},
		{"200 not JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`ok`))
		}, broker.Transient, "answered 200 without a JSON token response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			data := strings.Replace(string(k.JSON), fg.TokenURL(), srv.URL+"/token", 1)
			s, err := FromJSON([]byte(data), Options{MaxAttempts: 1})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.AccessToken(ctxTimeout(t, time.Minute), []string{"s"}, 0)
			if broker.ClassOf(err) != tt.class || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v (%v)\nwant %v containing %q", err, broker.ClassOf(err), tt.class, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret-looking") {
				t.Errorf("error %q quotes the body", err)
			}
		})
	}
	if n := fg.Requests(); n != 0 {
		t.Errorf("the redirect was followed: %d requests reached its target", n)
	}
}

func TestIDTokenBadJWT(t *testing.T) {
	fg := fakegoogle.New(t)
	k, err := fg.NewKey(testEmail)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id_token":"abc.!!!.def"}`))
	}))
	defer srv.Close()
	data := strings.Replace(string(k.JSON), fg.TokenURL(), srv.URL+"/token", 1)
	s, err := FromJSON([]byte(data), Options{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.IDToken(ctxTimeout(t, time.Minute), "aud", 0)
	if !broker.IsTransient(err) || !strings.Contains(err.Error(), "answered with an id_token that has a payload that is not base64url") {
		t.Errorf("err = %v", err)
	}
	if strings.Contains(err.Error(), "abc") {
		t.Errorf("error %q quotes the token", err)
	}
}

func TestEmptyRequests(t *testing.T) {
	fg := fakegoogle.New(t)
	s, _, _ := testSource(t, fg)
	if _, err := s.AccessToken(context.Background(), nil, 0); broker.ClassOf(err) != broker.Fatal {
		t.Errorf("no scopes: err = %v, want fatal", err)
	}
	if _, err := s.IDToken(context.Background(), "", 0); broker.ClassOf(err) != broker.Fatal {
		t.Errorf("no audience: err = %v, want fatal", err)
	}
	if fg.Requests() != 0 {
		t.Error("an empty request reached the endpoint")
	}
}

// TestThroughBroker serves a key through a real broker: the second
// request is a cache hit, so the endpoint sees one mint.
func TestThroughBroker(t *testing.T) {
	fg := fakegoogle.New(t)
	s, _, _ := testSource(t, fg)
	b := broker.New(broker.Options{})
	defer b.Close()
	if err := b.AddAccount("robot", s); err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, time.Minute)
	first, err := b.AccessToken(ctx, "robot", []string{"b", "a"}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	second, err := b.AccessToken(ctx, "robot", []string{"a", "b", "a"}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Error("second request got a different token")
	}
	mints := fg.Mints()
	if len(mints) != 1 || !slices.Equal(mints[0].Scopes, []string{"a", "b"}) {
		t.Errorf("mints = %+v, want one for [a b]", mints)
	}
	if email, _ := b.Email("robot"); email != testEmail {
		t.Errorf("email = %q", email)
	}

	fg.SetFault(fakegoogle.Fault{Status: 400, Description: "Invalid JWT Signature."})
	_, err = b.IDToken(ctx, "robot", "aud", 5*time.Minute)
	if broker.ClassOf(err) != broker.Fatal || !strings.Contains(err.Error(), "Invalid JWT Signature.") {
		t.Errorf("err = %v, want fatal with Google's text", err)
	}
}
