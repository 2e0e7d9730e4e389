package gsutil

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/broker/brokertest"
)

var (
	quietLogger = slog.New(slog.DiscardHandler)
	testNow     = time.Date(2026, 8, 21, 12, 0, 0, 0, time.UTC)
)

type fakeTokens struct {
	mu      sync.Mutex
	err     error
	calls   int
	scopes  []string
	minLife time.Duration
}

func (f *fakeTokens) AccessToken(_ context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.scopes, f.minLife = scopes, minLifetime
	if f.err != nil {
		return broker.Token{}, f.err
	}
	return broker.Token{Value: "tok1", Expiry: time.Now().Add(1799*time.Second + 500*time.Millisecond)}, nil
}

func start(t *testing.T, s *Server) Info {
	t.Helper()
	if s.Account == "" {
		s.Account = "acct"
	}
	if s.Dir == "" {
		s.Dir = t.TempDir()
	}
	if s.Logger == nil {
		s.Logger = quietLogger
	}
	s.SkipUserConfig = s.SkipUserConfig || s.UserConfig == ""
	info, err := s.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return info
}

// rawRequest sends req as written and returns the response with the Date
// header removed, for comparison with the golden transcripts.
func do(t *testing.T, method, u string, form url.Values, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestTokenEndpoint(t *testing.T) {
	tokens := &fakeTokens{}
	s := &Server{Tokens: tokens}
	info := start(t, s)
	secret := string(s.secret)
	base := "http://127.0.0.1:" + strconv.Itoa(info.Port)
	good := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {secret}, "client_id": {"x"}, "client_secret": {"y"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range good {
			f[kk] = vv
		}
		if v == "<none>" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	// A secret that differs from the real one in its last character only
	// (picking a fixed character would match the real one in 1 run of 64).
	wrong := secret[:63] + "A"
	if secret[63] == 'A' {
		wrong = secret[:63] + "B"
	}
	okBody := `{"access_token":"tok1","expires_in":1799,"token_type":"Bearer"}` + "\n"
	badRT := `{"error":"invalid_grant","error_description":"wrong refresh_token (if running via gcloud, set pass_credentials_to_gsutil = false)"}` + "\n"
	badGrant := `{"error":"unsupported_grant_type","error_description":"expecting 'refresh_token' grant type"}` + "\n"
	tests := []struct {
		name       string
		method     string
		path       string
		form       url.Values
		hdr        map[string]string
		wantStatus int
		wantType   string
		wantBody   string
	}{
		{"ok", "POST", "/token", good, nil, 200, "application/json", okBody},
		{"ok on the luci-go path", "POST", "/gsutil/token", good, nil, 200, "application/json", okBody},
		{"ok with localhost host", "POST", "/token", good, map[string]string{"Host": "localhost:" + strconv.Itoa(info.Port)}, 200, "application/json", okBody},
		{"wrong refresh token", "POST", "/token", with("refresh_token", wrong), nil, 400, "application/json", badRT},
		{"missing refresh token", "POST", "/token", with("refresh_token", "<none>"), nil, 400, "application/json", badRT},
		{"secret with a suffix", "POST", "/token", with("refresh_token", secret+"x"), nil, 400, "application/json", badRT},
		{"wrong grant", "POST", "/token", with("grant_type", "authorization_code"), nil, 400, "application/json", badGrant},
		{"missing grant", "POST", "/gsutil/token", with("grant_type", "<none>"), nil, 400, "application/json", badGrant},
		{"GET", "GET", "/token", nil, nil, 405, "application/json",
			`{"error":"invalid_request","error_description":"the token endpoint takes POST"}` + "\n"},
		{"grant in query only", "POST", "/token?grant_type=refresh_token&refresh_token=" + url.QueryEscape(secret), url.Values{}, nil, 400, "application/json", badGrant},
		{"authorization", "GET", "/authorization", nil, nil, 501, "", ""},
		{"authorization on the luci-go path", "POST", "/gsutil/authorization", good, nil, 501, "", ""},
		{"other path", "GET", "/other", nil, nil, 404, "text/plain; charset=utf-8", "404 page not found\n"},
		{"rebinding host", "POST", "/token", good, map[string]string{"Host": "evil.example:" + strconv.Itoa(info.Port)}, 403, "application/json",
			`{"error":"invalid_request","error_description":"unexpected Host header"}` + "\n"},
		{"browser", "POST", "/token", good, map[string]string{"Origin": "https://evil.example"}, 403, "application/json",
			`{"error":"invalid_request","error_description":"browser requests are not served"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := do(t, tt.method, base+tt.path, tt.form, tt.hdr)
			if status != tt.wantStatus || hdr.Get("Content-Type") != tt.wantType || body != tt.wantBody {
				t.Errorf("got %d %q %q\nwant %d %q %q", status, hdr.Get("Content-Type"), body, tt.wantStatus, tt.wantType, tt.wantBody)
			}
			if strings.Contains(body, secret) {
				t.Errorf("response holds the refresh token")
			}
		})
	}
	if strings.Join(tokens.scopes, " ") != strings.Join(DefaultScopes, " ") || tokens.minLife != MinLifetime {
		t.Errorf("token core asked for %q, %v", tokens.scopes, tokens.minLife)
	}
}

// TestPlusInSecret checks that a refresh token with '+' works when the
// client form-encodes it (as OAuth clients do) and fails when it is sent
// raw, where '+' decodes to a space.
func TestPlusInSecret(t *testing.T) {
	s := &Server{Tokens: &fakeTokens{}}
	info := start(t, s)
	s.tokenGrant.Secret = []byte("abc+def/ghi=") // before any request, so no race
	u := "http://127.0.0.1:" + strconv.Itoa(info.Port) + "/token"
	tests := []struct {
		name string
		body string
		want int
	}{
		{"form-encoded", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"abc+def/ghi="}}.Encode(), 200},
		{"raw plus", "grant_type=refresh_token&refresh_token=abc+def/ghi=", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(u, "application/x-www-form-urlencoded", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestSecretShape(t *testing.T) {
	s := &Server{Tokens: &fakeTokens{}}
	start(t, s)
	if len(s.secret) != 64 || strings.ContainsAny(string(s.secret), "=-_") {
		t.Errorf("secret of %d chars in an unexpected alphabet", len(s.secret))
	}
}

func TestFilesAndClose(t *testing.T) {
	for _, mode := range []Mode{TokenServer, GCE} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			s := &Server{Tokens: &fakeTokens{}, Mode: mode}
			info := start(t, s)
			st, err := os.Stat(info.StateDir)
			if err != nil || st.Mode().Perm() != 0o700 {
				t.Fatalf("state dir: %v %v", st.Mode(), err)
			}
			fst, err := os.Stat(info.BotoPath)
			if err != nil || fst.Mode().Perm() != 0o600 || filepath.Dir(info.BotoPath) != info.StateDir {
				t.Fatalf(".boto: %v %v", fst.Mode(), err)
			}
			if (mode == GCE) != (info.Port == 0) {
				t.Errorf("port %d in mode %v", info.Port, mode)
			}
			env := info.Env()
			if env["BOTO_CONFIG"] != info.BotoPath || env["CLOUDSDK_CORE_PASS_CREDENTIALS_TO_GSUTIL"] != "false" || len(env) != 2 {
				t.Errorf("Env() = %v", env)
			}
			if u := info.Unset(); len(u) != 1 || u[0] != "BOTO_PATH" {
				t.Errorf("Unset() = %v", u)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := os.Stat(info.StateDir); !os.IsNotExist(err) {
				t.Errorf("state dir left after Close: %v", err)
			}
			if mode == TokenServer {
				if _, err := http.Get("http://127.0.0.1:" + strconv.Itoa(info.Port) + "/token"); err == nil {
					t.Errorf("token server still answering after Close")
				}
			}
			if _, err := s.Start(t.Context()); err == nil {
				t.Errorf("Start after Close succeeded")
			}
		})
	}
}

func TestCloseDropsKeepAlive(t *testing.T) {
	s := &Server{Tokens: &fakeTokens{}}
	info := start(t, s)
	client := &http.Client{Transport: &http.Transport{}}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {string(s.secret)}}
	u := "http://127.0.0.1:" + strconv.Itoa(info.Port) + "/token"
	resp, err := client.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.Close()
	if resp, err := client.PostForm(u, form); err == nil {
		resp.Body.Close()
		t.Fatalf("kept-alive connection served a token after Close: %d", resp.StatusCode)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := (&Server{Dir: t.TempDir()}).Start(t.Context()); err == nil {
		t.Error("token-server mode without Tokens started")
	}
	s := &Server{Tokens: &fakeTokens{}, Dir: t.TempDir(), UserConfig: filepath.Join(t.TempDir(), "missing")}
	if _, err := s.Start(t.Context()); err == nil {
		t.Error("missing explicit user config accepted")
	}
	if entries, _ := os.ReadDir(s.Dir); len(entries) != 0 {
		t.Errorf("failed Start left %d entries", len(entries))
	}
}

func TestRealBroker(t *testing.T) {
	b := broker.New(broker.Options{})
	t.Cleanup(b.Close)
	if err := b.AddAccount("main", &brokertest.Source{Prefix: "real-tok-", Mail: "real@example.com"}); err != nil {
		t.Fatal(err)
	}
	s := &Server{Tokens: b, Account: "main"}
	info := start(t, s)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {string(s.secret)}}
	for range 2 {
		status, _, body := do(t, "POST", "http://127.0.0.1:"+strconv.Itoa(info.Port)+"/token", form, nil)
		if status != 200 || !strings.HasPrefix(body, `{"access_token":"real-tok-1","expires_in":3`) {
			t.Errorf("got %d %s", status, body)
		}
	}
}
