package refreshgrant

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
)

var (
	quietLogger = slog.New(slog.DiscardHandler)
	testNow     = time.Date(2026, 8, 21, 12, 0, 0, 0, time.UTC)
	testScopes  = []string{"https://www.googleapis.com/auth/cloud-platform"}
)

const testSecret = "abc+def/ghi"

type fakeTokens struct {
	mu      sync.Mutex
	err     error
	calls   int
	account string
	scopes  []string
	minLife time.Duration
}

func (f *fakeTokens) AccessToken(_ context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.account, f.scopes, f.minLife = account, scopes, minLifetime
	if f.err != nil {
		return broker.Token{}, f.err
	}
	return broker.Token{Value: "tok1", Expiry: testNow.Add(1799*time.Second + 500*time.Millisecond)}, nil
}

// serve runs g on a real loopback server and returns the token URL.
func serve(t *testing.T, g *Grant) string {
	t.Helper()
	srv, err := loopback.ServeHTTP(g.Wrap(g.ServeToken), loopback.HTTPOptions{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "http://" + srv.Addr() + "/token"
}

func newGrant(tokens Tokens, multipart bool) *Grant {
	return &Grant{
		Secret:      []byte(testSecret),
		Tokens:      tokens,
		Account:     "acct",
		Scopes:      testScopes,
		MinLifetime: 7 * time.Minute,
		Multipart:   multipart,
		Label:       "test",
		WrongSecret: "wrong refresh_token (TEST_TOKEN)",
		Logger:      quietLogger,
		Now:         func() time.Time { return testNow },
	}
}

func post(t *testing.T, method, u, ctype string, body []byte, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func multipartBody(t *testing.T, fields [][2]string) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, kv := range fields {
		if err := w.WriteField(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	return w.FormDataContentType(), b.Bytes()
}

func TestServeToken(t *testing.T) {
	const (
		okBody   = `{"access_token":"tok1","expires_in":1799,"token_type":"Bearer"}` + "\n"
		badRT    = `{"error":"invalid_grant","error_description":"wrong refresh_token (TEST_TOKEN)"}` + "\n"
		badGrant = `{"error":"unsupported_grant_type","error_description":"expecting 'refresh_token' grant type"}` + "\n"
		badForm  = `{"error":"invalid_request","error_description":"cannot parse the form body"}` + "\n"
		badMeth  = `{"error":"invalid_request","error_description":"the token endpoint takes POST"}` + "\n"
		browser  = `{"error":"invalid_request","error_description":"browser requests are not served"}` + "\n"
	)
	good := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {testSecret}}.Encode()
	mpCT, mpGood := multipartBody(t, [][2]string{{"refresh_token", testSecret}, {"grant_type", "refresh_token"}})
	const formCT = "application/x-www-form-urlencoded"
	tests := []struct {
		name       string
		multipart  bool
		method     string
		ctype      string
		body       string
		hdr        map[string]string
		wantStatus int
		wantBody   string
	}{
		{"url-encoded", false, "POST", formCT, good, nil, 200, okBody},
		{"url-encoded, multipart on", true, "POST", formCT, good, nil, 200, okBody},
		{"multipart", true, "POST", mpCT, string(mpGood), nil, 200, okBody},
		// Without Multipart the body is not a url-encoded form, so it has
		// no grant_type.
		{"multipart, multipart off", false, "POST", mpCT, string(mpGood), nil, 400, badGrant},
		{"json, multipart off", false, "POST", "application/json", `{}`, nil, 400, badGrant},
		{"json, multipart on", true, "POST", "application/json", `{}`, nil, 400, badForm},
		{"no content type, multipart on", true, "POST", "", good, nil, 400, badForm},
		{"broken multipart", true, "POST", "multipart/form-data; boundary=x", "--x\r\nnope", nil, 400, badForm},
		{"raw plus decodes to space", false, "POST", formCT, "grant_type=refresh_token&refresh_token=" + testSecret, nil, 400, badRT},
		{"wrong secret", false, "POST", formCT, "grant_type=refresh_token&refresh_token=x", nil, 400, badRT},
		{"no secret", false, "POST", formCT, "grant_type=refresh_token", nil, 400, badRT},
		{"wrong grant", false, "POST", formCT, "grant_type=authorization_code", nil, 400, badGrant},
		{"bad escape", false, "POST", formCT, "grant_type=%zz", nil, 400, badForm},
		{"too big", false, "POST", formCT, strings.Repeat("a", maxForm+1), nil, 400, badForm},
		{"GET", false, "GET", "", "", nil, 405, badMeth},
		{"browser", false, "POST", formCT, good, map[string]string{"Origin": "https://evil.example"}, 403, browser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens := &fakeTokens{}
			u := serve(t, newGrant(tokens, tt.multipart))
			status, hdr, body := post(t, tt.method, u, tt.ctype, []byte(tt.body), tt.hdr)
			if status != tt.wantStatus || body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", status, body, tt.wantStatus, tt.wantBody)
			}
			if hdr.Get("Content-Type") != "application/json" || hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v", hdr)
			}
			wantAllow := ""
			if status == 405 {
				wantAllow = "POST"
			}
			if hdr.Get("Allow") != wantAllow {
				t.Errorf("Allow %q, want %q", hdr.Get("Allow"), wantAllow)
			}
			wantCalls := 0
			if status == 200 {
				wantCalls = 1
				if hdr.Get("Content-Length") != fmt.Sprint(len(okBody)) {
					t.Errorf("Content-Length %q", hdr.Get("Content-Length"))
				}
			}
			if tokens.calls != wantCalls {
				t.Errorf("token core called %d times, want %d", tokens.calls, wantCalls)
			}
			if wantCalls == 1 && (tokens.account != "acct" || strings.Join(tokens.scopes, " ") != testScopes[0] || tokens.minLife != 7*time.Minute) {
				t.Errorf("token core asked for %q %q %v", tokens.account, tokens.scopes, tokens.minLife)
			}
		})
	}
}

// TestExpiresIn checks the rounding of expires_in: truncated seconds,
// never 0, and an hour for a token without expiry.
func TestExpiresIn(t *testing.T) {
	tests := []struct {
		left time.Duration
		zero bool
		want string
	}{
		{1799*time.Second + 999*time.Millisecond, false, "1799"},
		{500 * time.Millisecond, false, "1"},
		{-time.Minute, false, "1"},
		{0, true, "3600"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			exp := testNow.Add(tt.left)
			if tt.zero {
				exp = time.Time{}
			}
			g := newGrant(tokenFunc(func() (broker.Token, error) { return broker.Token{Value: "t", Expiry: exp}, nil }), false)
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {testSecret}}.Encode()
			_, _, body := post(t, "POST", serve(t, g), "application/x-www-form-urlencoded", []byte(form), nil)
			want := `{"access_token":"t","expires_in":` + tt.want + `,"token_type":"Bearer"}` + "\n"
			if body != want {
				t.Errorf("got %q, want %q", body, want)
			}
		})
	}
}

type tokenFunc func() (broker.Token, error)

func (f tokenFunc) AccessToken(context.Context, string, []string, time.Duration) (broker.Token, error) {
	return f()
}

// TestTokenCoreErrors checks that token-core failures reach the client
// as a short public reason, never the error's details.
func TestTokenCoreErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantBody   string
	}{
		{"transient", broker.Transientf("upstream 503 secret-detail"), 500,
			`{"error":"temporarily_unavailable","error_description":"cannot get access token: temporary failure, try again"}`},
		{"deadline", fmt.Errorf("minting: %w", context.DeadlineExceeded), 500,
			`{"error":"temporarily_unavailable","error_description":"cannot get access token: timed out, try again"}`},
		{"fatal", broker.Fatalf("revoked secret-detail"), 400,
			`{"error":"invalid_grant","error_description":"cannot get access token: the credential was refused, see the broker's log"}`},
		{"unknown account", broker.NewFatal(fmt.Errorf("%w %q", broker.ErrUnknownAccount, "secret-detail")), 400,
			`{"error":"invalid_grant","error_description":"cannot get access token: the account is not served"}`},
		{"plain error", errors.New("secret-detail"), 400,
			`{"error":"invalid_grant","error_description":"cannot get access token: the credential was refused, see the broker's log"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, mp := range []bool{false, true} {
				u := serve(t, newGrant(&fakeTokens{err: tt.err}, mp))
				form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {testSecret}}.Encode()
				status, _, body := post(t, "POST", u, "application/x-www-form-urlencoded", []byte(form), nil)
				if status != tt.wantStatus || body != tt.wantBody+"\n" {
					t.Errorf("multipart=%v: got %d %s, want %d %s", mp, status, body, tt.wantStatus, tt.wantBody)
				}
			}
		})
	}
}

func FuzzServeToken(f *testing.F) {
	f.Add(false, "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=x")
	f.Add(true, "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nrefresh_token\r\n--b--\r\n")
	f.Add(true, "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nx\r\n--b--\r\n")
	f.Add(false, "text/plain", "")
	grants := map[bool]*Grant{false: newGrant(&fakeTokens{}, false), true: newGrant(&fakeTokens{}, true)}
	f.Fuzz(func(t *testing.T, mp bool, ctype, body string) {
		g := grants[mp]
		req, err := http.NewRequest("POST", "/token", strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", ctype)
		rec := &recorder{header: http.Header{}}
		if err := g.ServeToken(rec, req); err != nil {
			g.WriteError(rec, err)
		}
		if rec.status == 0 {
			rec.status = 200
		}
		if rec.status == 200 && !strings.Contains(body, "def") {
			t.Fatalf("token served without the secret: %q %q", ctype, body)
		}
		if rec.status != 200 && rec.status != 400 {
			t.Fatalf("status %d: %s", rec.status, rec.body.String())
		}
	})
}

// recorder is the least http.ResponseWriter the fuzz target needs.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int)   { r.status = s }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(b)
}

// TestRecentBodyIsNoShortcut shows that keeping the latest good body
// changes no answer: the same body is served again, one that differs in
// the secret alone (same length) or in the grant type is refused, and
// the answer follows the token's expiry as it moves.
func TestRecentBodyIsNoShortcut(t *testing.T) {
	now := testNow
	g := newGrant(&fakeTokens{}, false)
	g.Now = func() time.Time { return now }
	u := serve(t, g)
	const form = "application/x-www-form-urlencoded"
	good := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {testSecret}}.Encode()
	wrongSecret := strings.Replace(good, url.QueryEscape(testSecret), url.QueryEscape("abc+def/ghj"), 1)
	wrongGrant := strings.Replace(good, "refresh_token&", "refresh_tokeN&", 1)
	if len(wrongSecret) != len(good) || len(wrongGrant) != len(good) || wrongGrant == good {
		t.Fatal("the test bodies must differ from the good one at equal length")
	}
	answer := func(exp int) string {
		return fmt.Sprintf(`{"access_token":"tok1","expires_in":%d,"token_type":"Bearer"}`+"\n", exp)
	}
	steps := []struct {
		name   string
		body   string
		later  time.Duration
		status int
		want   string
	}{
		{"first", good, 0, 200, answer(1799)},
		{"again", good, 0, 200, answer(1799)},
		{"wrong secret", wrongSecret, 0, 400, `{"error":"invalid_grant","error_description":"wrong refresh_token (TEST_TOKEN)"}` + "\n"},
		{"wrong grant type", wrongGrant, 0, 400, `{"error":"unsupported_grant_type","error_description":"expecting 'refresh_token' grant type"}` + "\n"},
		{"a second later", good, time.Second, 200, answer(1798)},
	}
	for _, st := range steps {
		now = now.Add(st.later)
		status, _, body := post(t, http.MethodPost, u, form, []byte(st.body), nil)
		if status != st.status || body != st.want {
			t.Errorf("%s: got %d %q, want %d %q", st.name, status, body, st.status, st.want)
		}
	}
}
