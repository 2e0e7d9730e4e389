package openid_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/protocols/openid"
	"credbroker/protocols/openid/openidtest"
)

func TestLocalSignInStateSignOut(t *testing.T) {
	c := newClock()
	_, info, b := startLocal(t, c, nil)
	br := openidtest.NewBrowser(t)

	code, body := br.Get(info.URL + openid.PathState)
	if code != http.StatusOK || body != `{"identity":"anonymous:anonymous"}`+"\n" {
		t.Fatalf("anonymous state = %d %q", code, body)
	}

	st := br.SignIn(info.URL)
	wantAccess, err := b.AccessToken(context.Background(), "default", openid.DefaultLocalScopes, openid.MinTokenLifetime)
	if err != nil {
		t.Fatal(err)
	}
	wantID, err := b.IDToken(context.Background(), "default", openid.DefaultLocalAudience, openid.MinTokenLifetime)
	if err != nil {
		t.Fatal(err)
	}
	want := openidtest.State{
		Identity: "user:dev@example.com", Email: "dev@example.com",
		AccessToken: wantAccess.Value, AccessTokenExpiry: wantAccess.Expiry.Unix(), AccessTokenExpiresIn: 3600,
		IDToken: wantID.Value, IDTokenExpiry: wantID.Expiry.Unix(), IDTokenExpiresIn: 3600,
	}
	if st != want {
		t.Errorf("state = %+v\nwant    %+v", st, want)
	}

	if code, _ := br.Get(info.URL + openid.PathLogout + "?r=/"); code != http.StatusOK {
		t.Fatalf("logout ended with %d", code)
	}
	if st := br.State(info.URL); st.Identity != openid.Anonymous {
		t.Errorf("after logout: %+v", st)
	}
}

// fakeTokens is a Tokens with fixed answers, for exact bytes.
type fakeTokens struct {
	err error
}

func (f fakeTokens) AccessToken(context.Context, string, []string, time.Duration) (broker.Token, error) {
	return broker.Token{Value: "ya29.fixed", Expiry: time.Unix(1700003600, 0)}, f.err
}
func (f fakeTokens) IDToken(context.Context, string, string, time.Duration) (broker.Token, error) {
	return broker.Token{Value: "eyJ.fixed", Expiry: time.Unix(1700001800, 0)}, f.err
}
func (fakeTokens) Default() string              { return "default" }
func (fakeTokens) Email(string) (string, error) { return "dev@example.com", nil }

func TestStateExactBytes(t *testing.T) {
	c := &clock{t: time.Unix(1700000000, 0)}
	tests := []struct {
		name     string
		tokens   fakeTokens
		wantCode int
		wantType string
		wantBody string
	}{
		{
			name:     "signed in",
			wantCode: 200,
			wantType: "application/json",
			wantBody: `{"identity":"user:dev@example.com","email":"dev@example.com",` +
				`"accessToken":"ya29.fixed","accessTokenExpiry":1700003600,"accessTokenExpiresIn":3600,` +
				`"idToken":"eyJ.fixed","idTokenExpiry":1700001800,"idTokenExpiresIn":1800}` + "\n",
		},
		{
			name:     "transient failure",
			tokens:   fakeTokens{err: broker.Transientf("upstream unavailable")},
			wantCode: 500,
			wantType: "text/plain; charset=utf-8",
			wantBody: "internal error: upstream unavailable\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, info := start(t, &openid.Server{Tokens: tt.tokens, Now: c.Now, Logger: quietLogger()})
			br := openidtest.NewBrowser(t)
			br.Get(info.URL + openid.PathLogin)
			resp, body := get(t, br.Client, info.URL+openid.PathState)
			if resp.StatusCode != tt.wantCode || body != tt.wantBody || resp.Header.Get("Content-Type") != tt.wantType {
				t.Errorf("got %d %q %q\nwant %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.wantCode, tt.wantType, tt.wantBody)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
		})
	}
}

func TestOpenRedirectRefused(t *testing.T) {
	c := newClock()
	_, info, _ := startLocal(t, c, nil)
	tests := []struct {
		r        string
		wantCode int
		wantLoc  string
	}{
		{"", 302, "/"},
		{"/", 302, "/"},
		{"/app/page?x=1&y=%2F#frag", 302, "/app/page?x=1&y=%2F#frag"},
		{"/%2F%2Fevil.example", 302, "/%2F%2Fevil.example"},
		{"//evil.example", 400, ""},
		{"///evil.example", 400, ""},
		{"/\\evil.example", 400, ""},
		{"\\\\evil.example", 400, ""},
		{"https://evil.example/", 400, ""},
		{"http:/evil.example", 400, ""},
		{"javascript:alert(1)", 400, ""},
		{"evil.example", 400, ""},
		{"/\t/evil.example", 400, ""},
		{"/\n/evil.example", 400, ""},
		{"/" + strings.Repeat("a", 3000), 400, ""},
	}
	client := noRedirect(openidtest.NewBrowser(t).Client)
	for _, path := range []string{openid.PathLogin, openid.PathLogout} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s %q", path, tt.r), func(t *testing.T) {
				resp, body := get(t, client, info.URL+path+"?r="+urlEscape(tt.r))
				if resp.StatusCode != tt.wantCode || resp.Header.Get("Location") != tt.wantLoc {
					t.Errorf("got %d Location %q (%s), want %d %q", resp.StatusCode, resp.Header.Get("Location"), trim(body), tt.wantCode, tt.wantLoc)
				}
				if tt.wantCode == 400 && body != "r must be a path on this site, like /app\n" {
					t.Errorf("body = %q", body)
				}
			})
		}
	}
}

func TestHostAndCrossSiteRefused(t *testing.T) {
	c := newClock()
	_, info, _ := startLocal(t, c, func(s *openid.Server) { s.Hosts = []string{"app.localhost"} })
	tests := []struct {
		name     string
		host     string
		site     string
		wantCode int
	}{
		{"loopback", "", "", 200},
		{"extra host", "app.localhost", "", 200},
		{"same-origin fetch", "", "same-origin", 200},
		{"rebound name", "evil.example", "", 403},
		{"cross-site fetch", "", "cross-site", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, info.URL+openid.PathState, nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			if tt.site != "" {
				req.Header.Set("Sec-Fetch-Site", tt.site)
			}
			resp, body := do(t, http.DefaultClient, req)
			if resp.StatusCode != tt.wantCode {
				t.Errorf("got %d %q, want %d", resp.StatusCode, body, tt.wantCode)
			}
		})
	}
}

func TestLocalCookieAttributes(t *testing.T) {
	c := newClock()
	_, info, _ := startLocal(t, c, nil)
	resp, _ := get(t, noRedirect(openidtest.NewBrowser(t).Client), info.URL+openid.PathLogin+"?r=/x")
	ck := cookieNamed(resp, "credbroker_session")
	if ck == nil {
		t.Fatalf("no session cookie in %q", resp.Header["Set-Cookie"])
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure || ck.Path != "/" || ck.MaxAge != int(openid.DefaultSessionTTL/time.Second) {
		t.Errorf("cookie attributes: %+v", ck)
	}
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/x" {
		t.Errorf("login answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestLocalNeedsTokens(t *testing.T) {
	s := &openid.Server{}
	if _, err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "Tokens") {
		t.Errorf("Start without Tokens = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if _, err := s.Start(context.Background()); err == nil {
		t.Error("Start after Close succeeded")
	}
}
