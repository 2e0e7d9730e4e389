package fakeoidc

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// authorize runs the authorization endpoint and returns the code.
func authorize(t *testing.T, s *Server, challenge string) string {
	t.Helper()
	q := url.Values{
		"client_id": {s.ClientID}, "redirect_uri": {"http://127.0.0.1:1/cb"}, "response_type": {"code"},
		"scope": {"openid email"}, "state": {"st"}, "nonce": {"n"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	c := s.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(s.URL + AuthorizePath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || loc.Query().Get("state") != "st" {
		t.Fatalf("authorize: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("code")
}

func token(t *testing.T, s *Server, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := s.Client().PostForm(s.URL+TokenPath, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func challengeOf(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestCodeFlow(t *testing.T) {
	s := New(t)
	verifier := strings.Repeat("v", 43)
	form := func(code, v, secret string) url.Values {
		return url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {v},
			"redirect_uri": {"http://127.0.0.1:1/cb"}, "client_id": {s.ClientID}, "client_secret": {secret},
		}
	}
	tests := []struct {
		name     string
		form     func(code string) url.Values
		wantCode int
		wantErr  string
	}{
		{"wrong verifier", func(c string) url.Values { return form(c, strings.Repeat("w", 43), s.ClientSecret) }, 400, "invalid_grant"},
		{"wrong secret", func(c string) url.Values { return form(c, verifier, "nope") }, 401, "invalid_client"},
		{"unknown code", func(string) url.Values { return form("forged", verifier, s.ClientSecret) }, 400, "invalid_grant"},
		{"good", func(c string) url.Values { return form(c, verifier, s.ClientSecret) }, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := authorize(t, s, challengeOf(verifier))
			status, body := token(t, s, tt.form(code))
			if status != tt.wantCode || (tt.wantErr != "" && body["error"] != tt.wantErr) {
				t.Fatalf("got %d %v", status, body)
			}
			if tt.wantErr != "" {
				return
			}
			if _, ok := s.AccessTokenUser(body["access_token"].(string)); !ok {
				t.Error("access token not live")
			}
			// A code is good once.
			if status, _ := token(t, s, tt.form(code)); status != 400 {
				t.Errorf("code reused: %d", status)
			}
			rt := body["refresh_token"].(string)
			refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {s.ClientID}, "client_secret": {s.ClientSecret}}
			if status, body := token(t, s, refresh); status != 200 || body["id_token"] == nil {
				t.Errorf("refresh: %d %v", status, body)
			}
			s.RevokeUser("user@example.com")
			if status, body := token(t, s, refresh); status != 400 || body["error"] != "invalid_grant" {
				t.Errorf("refresh after revocation: %d %v", status, body)
			}
		})
	}
}

func TestAuthorizeRefusesUnknownRedirect(t *testing.T) {
	s := New(t)
	s.AllowRedirect("http://127.0.0.1:1/cb")
	q := url.Values{"client_id": {s.ClientID}, "redirect_uri": {"http://127.0.0.1:2/cb"}, "response_type": {"code"}}
	resp, err := s.Client().Get(s.URL + AuthorizePath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("got %d", resp.StatusCode)
	}
}
