package fakegoogle

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// login runs the authorization-code flow with PKCE against s, with an
// HTTP client standing in for the browser, and returns the token.
func login(t *testing.T, s *Server, cfg *oauth2.Config) (*oauth2.Token, error) {
	t.Helper()
	codes := make(chan url.Values, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		codes <- r.URL.Query()
		io.WriteString(w, "done")
	}))
	defer cb.Close()
	cfg.RedirectURL = cb.URL + "/"
	verifier := oauth2.GenerateVerifier()
	u := cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier))
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	q := <-codes
	if q.Get("state") != "st4te" {
		t.Fatalf("state %q", q.Get("state"))
	}
	if e := q.Get("error"); e != "" {
		return nil, &oauth2.RetrieveError{ErrorCode: e}
	}
	return cfg.Exchange(clientCtx(t, s), q.Get("code"), oauth2.VerifierOption(verifier))
}

func userConfig(s *Server) *oauth2.Config {
	s.AddClient("cid.apps", "csecret")
	return &oauth2.Config{
		ClientID: "cid.apps", ClientSecret: "csecret",
		Endpoint: oauth2.Endpoint{AuthURL: s.AuthURL(), TokenURL: s.TokenURL(), AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   []string{"openid", "https://www.googleapis.com/auth/userinfo.email", cloudPlatform},
	}
}

func TestUserLoginRefreshRevoke(t *testing.T) {
	s := New(t)
	s.SetUser("alice@example.com", false)
	cfg := userConfig(s)
	tok, err := login(t, s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.AccessToken == "" || tok.Extra("id_token") == nil {
		t.Fatalf("token %+v", tok)
	}
	claims := verifyIDToken(t, s, tok.Extra("id_token").(string))
	if claims.Email != "alice@example.com" || claims.Audience != "cid.apps" {
		t.Errorf("id token claims %+v", claims)
	}

	// Refresh, narrowing the scopes.
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
		"client_id": {"cid.apps"}, "client_secret": {"csecret"}, "scope": {cloudPlatform}}
	code, body := post(t, s, form)
	var rt struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	json.Unmarshal([]byte(body), &rt)
	if code != 200 || rt.Scope != cloudPlatform {
		t.Fatalf("refresh: %d %s", code, body)
	}
	if m, ok := s.lookupToken(rt.AccessToken); !ok || m.Email != "alice@example.com" || m.Grant != "refresh_token" {
		t.Errorf("mint %+v", m)
	}
	// tokeninfo knows it.
	resp, err := http.Get(s.TokenInfoURL() + "?access_token=" + url.QueryEscape(rt.AccessToken))
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]string
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info["email"] != "alice@example.com" || info["aud"] != "cid.apps" {
		t.Errorf("tokeninfo %v", info)
	}

	// Wider scopes than granted are refused.
	form.Set("scope", "https://www.googleapis.com/auth/gerritcodereview")
	if code, body := post(t, s, form); code != 400 || !strings.Contains(body, "invalid_scope") {
		t.Errorf("wider refresh: %d %s", code, body)
	}

	// Revoke, then the refresh token is dead.
	resp, err = http.PostForm(s.RevokeURL(), url.Values{"token": {tok.RefreshToken}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	form.Del("scope")
	if code, body := post(t, s, form); code != 400 || !strings.Contains(body, "invalid_grant") {
		t.Errorf("refresh after revoke: %d %s", code, body)
	}
	if s.RefreshTokenLive(tok.RefreshToken) {
		t.Error("still live after revoke")
	}
}

func TestUserLoginRefusals(t *testing.T) {
	s := New(t)
	cfg := userConfig(s)
	s.SetUser("bob@example.com", true)
	if _, err := login(t, s, cfg); err == nil || !strings.Contains(err.Error(), "access_denied") {
		t.Errorf("denied consent: %v", err)
	}
	s.SetUser("bob@example.com", false)
	cfg.ClientSecret = "wrong"
	if _, err := login(t, s, cfg); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("wrong secret: %v", err)
	}
	cfg.ClientSecret = "csecret"
	if _, err := cfg.Exchange(context.Background(), "fake-code-unknown", oauth2.VerifierOption("x")); err == nil {
		t.Error("unknown code accepted")
	}
	// Without PKCE the authorization endpoint refuses to redirect.
	resp, err := http.Get(cfg.AuthCodeURL("s"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("authorize without PKCE: %d", resp.StatusCode)
	}
}

func TestImpersonation(t *testing.T) {
	s := New(t)
	key, err := s.NewKey(testEmail)
	if err != nil {
		t.Fatal(err)
	}
	const target = "target@proj-1.iam.gserviceaccount.com"
	caller := mintWithKey(t, s, key, cloudPlatform)
	call := func(method, body, bearer string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.IAMURL()+IAMPrefix+url.PathEscape(target)+":"+method, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, out := call("generateAccessToken", `{"scope":["s1"]}`, caller); code != 403 {
		t.Errorf("without the role: %d %v", code, out)
	}
	s.AllowImpersonation(testEmail, target)
	code, out := call("generateAccessToken", `{"scope":["s1"]}`, caller)
	if code != 200 {
		t.Fatalf("generateAccessToken: %d %v", code, out)
	}
	if m, ok := s.lookupToken(out["accessToken"].(string)); !ok || m.Email != target || m.Actor != testEmail {
		t.Errorf("mint %+v", m)
	}
	code, out = call("generateIdToken", `{"audience":"https://aud","includeEmail":true}`, caller)
	if code != 200 {
		t.Fatalf("generateIdToken: %d %v", code, out)
	}
	if c := verifyIDToken(t, s, out["token"].(string)); c.Email != target || c.Audience != "https://aud" {
		t.Errorf("claims %+v", c)
	}
	if code, _ := call("generateAccessToken", `{"scope":["s1"]}`, "bogus"); code != 401 {
		t.Errorf("bogus bearer: %d", code)
	}
	s.SetIAMFault(Fault{Status: 503, Times: 1})
	if code, _ := call("generateAccessToken", `{"scope":["s1"]}`, caller); code != 503 {
		t.Errorf("fault: %d", code)
	}
}

// mintWithKey gets an access token for key through the JWT-bearer grant.
func mintWithKey(t *testing.T, s *Server, key *Key, scope string) string {
	t.Helper()
	a := signAssertion(t, key.Private, key.KeyID, map[string]any{
		"iss": key.Email, "aud": s.TokenURL(), "scope": scope,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	})
	code, body := post(t, s, url.Values{"grant_type": {JWTBearerGrant}, "assertion": {a}})
	var r struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal([]byte(body), &r); code != 200 || r.AccessToken == "" {
		t.Fatalf("mint: %d %s", code, body)
	}
	return r.AccessToken
}
