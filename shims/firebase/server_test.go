package firebase

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"os/exec"
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
	testScopes  = []string{"https://www.googleapis.com/auth/cloud-platform", Scope}
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
	return broker.Token{Value: "tok1", Expiry: testNow.Add(1799*time.Second + 500*time.Millisecond)}, nil
}

func start(t *testing.T, s *Server) Info {
	t.Helper()
	if s.Account == "" {
		s.Account = "acct"
	}
	if s.Scopes == nil {
		s.Scopes = testScopes
	}
	s.Logger = quietLogger
	s.Now = func() time.Time { return testNow }
	info, err := s.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return info
}

// firebaseToolsBody builds the body firebase-tools' refreshTokens sends:
// multipart/form-data with the fields in its order.
func firebaseToolsBody(t *testing.T, refresh, grant string) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, kv := range [][2]string{
		{"refresh_token", refresh},
		{"client_id", "563584335869-fgrhgmd47bqnekij5i8b5pr03ho849e6.apps.googleusercontent.com"},
		{"client_secret", "j9iVZfS8kkCEFUPaAeJV0sAi"},
		{"grant_type", grant},
		{"scope", "email openid https://www.googleapis.com/auth/cloudplatformprojects.readonly https://www.googleapis.com/auth/firebase https://www.googleapis.com/auth/cloud-platform"},
	} {
		if err := w.WriteField(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	return w.FormDataContentType(), b.Bytes()
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
	secret := info.Secret
	mp := func(refresh, grant string) (string, []byte) { return firebaseToolsBody(t, refresh, grant) }
	form := func(v url.Values) (string, []byte) { return "application/x-www-form-urlencoded", []byte(v.Encode()) }

	okBody := `{"access_token":"tok1","expires_in":1799,"token_type":"Bearer"}` + "\n"
	badRT := `{"error":"invalid_grant","error_description":"wrong refresh_token (FIREBASE_TOKEN)"}` + "\n"
	badGrant := `{"error":"unsupported_grant_type","error_description":"expecting 'refresh_token' grant type"}` + "\n"
	badForm := `{"error":"invalid_request","error_description":"cannot parse the form body"}` + "\n"
	type body func() (string, []byte)
	tests := []struct {
		name       string
		method     string
		path       string
		body       body
		hdr        map[string]string
		wantStatus int
		wantBody   string
	}{
		{"firebase-tools multipart", "POST", TokenPath, func() (string, []byte) { return mp(secret, "refresh_token") }, nil, 200, okBody},
		{"url-encoded", "POST", TokenPath, func() (string, []byte) {
			return form(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {secret}})
		}, nil, 200, okBody},
		{"localhost host", "POST", TokenPath, func() (string, []byte) { return mp(secret, "refresh_token") },
			map[string]string{"Host": "localhost:" + strconv.Itoa(info.Port)}, 200, okBody},
		{"wrong secret", "POST", TokenPath, func() (string, []byte) { return mp(otherLast(secret), "refresh_token") }, nil, 400, badRT},
		{"LUCI's placeholder", "POST", TokenPath, func() (string, []byte) { return mp("ignored-non-empty-value", "refresh_token") }, nil, 400, badRT},
		{"secret with suffix", "POST", TokenPath, func() (string, []byte) { return mp(secret+"x", "refresh_token") }, nil, 400, badRT},
		{"no secret", "POST", TokenPath, func() (string, []byte) { return form(url.Values{"grant_type": {"refresh_token"}}) }, nil, 400, badRT},
		{"wrong grant", "POST", TokenPath, func() (string, []byte) { return mp(secret, "authorization_code") }, nil, 400, badGrant},
		{"json body", "POST", TokenPath, func() (string, []byte) { return "application/json", []byte(`{"grant_type":"refresh_token"}`) }, nil, 400, badForm},
		{"no content type", "POST", TokenPath, func() (string, []byte) { return "", []byte("grant_type=refresh_token") }, nil, 400, badForm},
		{"broken multipart", "POST", TokenPath, func() (string, []byte) { return "multipart/form-data; boundary=x", []byte("--x\r\nnope") }, nil, 400, badForm},
		{"GET", "GET", TokenPath, func() (string, []byte) { return "", nil }, nil, 405,
			`{"error":"invalid_request","error_description":"the token endpoint takes POST"}` + "\n"},
		{"other path", "POST", "/token", func() (string, []byte) { return mp(secret, "refresh_token") }, nil, 404, "404 page not found\n"},
		{"rebinding host", "POST", TokenPath, func() (string, []byte) { return mp(secret, "refresh_token") },
			map[string]string{"Host": "evil.example:" + strconv.Itoa(info.Port)}, 403,
			`{"error":"invalid_request","error_description":"unexpected Host header"}` + "\n"},
		{"browser form post", "POST", TokenPath, func() (string, []byte) {
			return form(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {secret}})
		}, map[string]string{"Origin": "https://evil.example"}, 403,
			`{"error":"invalid_request","error_description":"browser requests are not served"}` + "\n"},
		{"browser navigation", "POST", TokenPath, func() (string, []byte) { return mp(secret, "refresh_token") },
			map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}, 403,
			`{"error":"invalid_request","error_description":"browser requests are not served"}` + "\n"},
		{"node fetch's Sec-Fetch-Mode", "POST", TokenPath, func() (string, []byte) { return mp(secret, "refresh_token") },
			map[string]string{"Sec-Fetch-Mode": "cors"}, 200, okBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, b := tt.body()
			status, _, got := post(t, tt.method, info.URL+tt.path, ct, b, tt.hdr)
			if status != tt.wantStatus || got != tt.wantBody {
				t.Errorf("got %d %q\nwant %d %q", status, got, tt.wantStatus, tt.wantBody)
			}
			if strings.Contains(got, secret) {
				t.Error("response holds the secret")
			}
		})
	}
	if fmt.Sprint(tokens.scopes) != fmt.Sprint(testScopes) || tokens.minLife != MinLifetime {
		t.Errorf("token core asked for %q, %v", tokens.scopes, tokens.minLife)
	}
}

func TestInfo(t *testing.T) {
	s := &Server{Tokens: &fakeTokens{}}
	info := start(t, s)
	env := info.Env()
	if env["FIREBASE_TOKEN_URL"] != "http://127.0.0.1:"+strconv.Itoa(info.Port) || env["FIREBASE_TOKEN"] != info.Secret || len(env) != 2 {
		t.Errorf("Env() = %v", env)
	}
	if len(info.Secret) != 43 || strings.ContainsAny(info.Secret, "+/=") {
		t.Errorf("secret of %d characters in an unexpected alphabet", len(info.Secret))
	}
	other := &Server{Tokens: &fakeTokens{}}
	if start(t, other).Secret == info.Secret {
		t.Error("two servers share a secret")
	}
}

func TestCloseDropsKeepAlive(t *testing.T) {
	s := &Server{Tokens: &fakeTokens{}}
	info := start(t, s)
	client := &http.Client{Transport: &http.Transport{}}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {info.Secret}}
	resp, err := client.PostForm(info.URL+TokenPath, form)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if resp, err := client.PostForm(info.URL+TokenPath, form); err == nil {
		resp.Body.Close()
		t.Fatalf("kept-alive connection served a token after Close: %d", resp.StatusCode)
	}
	if _, err := s.Start(t.Context()); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestStartErrors(t *testing.T) {
	for _, s := range []*Server{{}, {Tokens: &fakeTokens{}}, {Tokens: &fakeTokens{}, Account: "a"}} {
		if _, err := s.Start(t.Context()); err == nil {
			t.Errorf("%+v started", s)
		}
	}
}

func TestRealBroker(t *testing.T) {
	b := broker.New(broker.Options{})
	t.Cleanup(b.Close)
	if err := b.AddAccount("main", &brokertest.Source{Prefix: "real-tok-", Mail: "real@example.com"}); err != nil {
		t.Fatal(err)
	}
	s := &Server{Tokens: b, Account: "main", Scopes: testScopes, Logger: quietLogger}
	info, err := s.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for range 2 {
		ct, body := firebaseToolsBody(t, info.Secret, "refresh_token")
		status, _, got := post(t, "POST", info.URL+TokenPath, ct, body, nil)
		if status != 200 || !strings.HasPrefix(got, `{"access_token":"real-tok-1","expires_in":3`) {
			t.Errorf("got %d %s", status, got)
		}
	}
}

// TestNodeClient posts from Node.js with its own FormData, the way
// firebase-tools builds its refresh request, and reads the token the way
// it does.
func TestNodeClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	s := &Server{Tokens: &fakeTokens{}}
	info := start(t, s)
	script := `
const form = new FormData();
for (const [k, v] of Object.entries({refresh_token: process.env.FIREBASE_TOKEN, client_id: "c", client_secret: "s",
    grant_type: "refresh_token", scope: "email openid"})) form.append(k, v);
fetch(process.env.FIREBASE_TOKEN_URL + "/oauth2/v3/token", {method: "POST", body: form}).then(async (res) => {
  const body = await res.json();
  console.log(res.status, body.access_token, body.expires_in);
}).catch((e) => { console.error(e); process.exit(1); });
`
	for _, tt := range []struct{ secret, want string }{
		{info.Secret, "200 tok1 1799\n"},
		{"wrong", "400 undefined undefined\n"},
	} {
		cmd := exec.Command(node, "-e", script)
		cmd.Env = []string{"FIREBASE_TOKEN=" + tt.secret, "FIREBASE_TOKEN_URL=" + info.URL}
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != tt.want {
			t.Errorf("node: %q, %v; want %q", out, err, tt.want)
		}
	}
}

func FuzzTokenRequest(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=x")
	f.Add("multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nrefresh_token\r\n--b--\r\n")
	f.Add("multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nx\r\n--b--\r\n")
	f.Add("text/plain", "")
	s := &Server{Tokens: &fakeTokens{}, Account: "a", Scopes: testScopes, Logger: quietLogger}
	info, err := s.Start(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	client := &http.Client{Transport: &http.Transport{}}
	f.Fuzz(func(t *testing.T, ctype, body string) {
		req, err := http.NewRequest("POST", info.URL+TokenPath, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", ctype)
		resp, err := client.Do(req)
		if err != nil {
			return // a header the client itself refuses to send
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && !strings.Contains(body, info.Secret) {
			t.Fatalf("token served without the secret: %q %q", ctype, body)
		}
		if resp.StatusCode != 200 && resp.StatusCode != 400 {
			t.Fatalf("status %d: %s", resp.StatusCode, got)
		}
	})
}

// otherLast returns s with its last character changed, so it is never s.
func otherLast(s string) string {
	last := byte('x')
	if s[len(s)-1] == last {
		last = 'y'
	}
	return s[:len(s)-1] + string(last)
}
