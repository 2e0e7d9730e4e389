package userlogin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/internal/fakegoogle"
	"credbroker/tokencache"
)

const (
	testClient = "test-client.apps.example"
	testSecret = "test-client-secret"
	testUser   = "alice@example.com"
	cloud      = scopePrefix + "cloud-platform"
	email      = scopePrefix + "userinfo.email"
)

func fakeConfig(t *testing.T) (*fakegoogle.Server, Config) {
	t.Helper()
	fg := fakegoogle.New(t)
	fg.AddClient(testClient, testSecret)
	fg.SetUser(testUser, false)
	return fg, Config{ClientID: testClient, ClientSecret: testSecret, AuthURL: fg.AuthURL(), TokenURL: fg.TokenURL(), RevokeURL: fg.RevokeURL()}
}

// browser follows the authorization URL like a browser would, landing on
// the loopback redirect.
func browser(u string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return errors.New(resp.Status)
	}
	return nil
}

func cacheIn(t *testing.T, dir string) *tokencache.Cache {
	t.Helper()
	c, err := tokencache.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func loggedIn(t *testing.T) (*fakegoogle.Server, Config, *tokencache.Cache, string) {
	t.Helper()
	fg, cfg := fakeConfig(t)
	dir := filepath.Join(t.TempDir(), "cache")
	cache := cacheIn(t, dir)
	res, err := Login(context.Background(), cfg, cache, LoginOptions{OpenBrowser: browser})
	if err != nil {
		t.Fatal(err)
	}
	if res.Email != testUser || strings.Join(res.Scopes, " ") != strings.Join(DefaultScopes, " ") {
		t.Fatalf("login result %+v", res)
	}
	return fg, cfg, cache, dir
}

func mint(t *testing.T, fg *fakegoogle.Server, tok string) fakegoogle.Mint {
	t.Helper()
	for _, m := range fg.Mints() {
		if m.Token == tok {
			return m
		}
	}
	t.Fatalf("token not minted by the fake")
	return fakegoogle.Mint{}
}

func TestLoginThenTokens(t *testing.T) {
	fg, cfg, _, dir := loggedIn(t)
	// A fresh process: a new Cache on the same directory.
	src, err := New(cfg, cacheIn(t, dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if src.Email() != testUser {
		t.Errorf("Email = %q", src.Email())
	}
	ctx := context.Background()
	tok, err := src.AccessToken(ctx, []string{cloud, email}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if m := mint(t, fg, tok.Value); m.Email != testUser || m.ClientID != testClient {
		t.Errorf("minted %+v", m)
	}
	// "email" is the short name of userinfo.email.
	if _, err := src.AccessToken(ctx, []string{"email", "openid"}, time.Minute); err != nil {
		t.Errorf("short scope names: %v", err)
	}
	idt, err := src.IDToken(ctx, testClient, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if idt.Expiry.Before(time.Now().Add(50 * time.Minute)) {
		t.Errorf("ID token expiry %v", idt.Expiry)
	}
	// The refresh token never appears in the cache directory in clear.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if bytes.Contains(data, []byte("fake-rt-")) {
			t.Errorf("%s holds the refresh token in clear", e.Name())
		}
	}
}

func TestScopesAndAudience(t *testing.T) {
	_, cfg, cache, _ := loggedIn(t)
	var logs bytes.Buffer
	tests := []struct {
		name    string
		allow   bool
		scopes  []string
		aud     string
		wantErr string
	}{
		{"within the login", false, []string{cloud}, "", ""},
		{"beyond the login", false, []string{scopePrefix + "gerritcodereview", cloud}, "", "does not cover gerritcodereview"},
		{"beyond, allowed", true, []string{scopePrefix + "gerritcodereview"}, "", ""},
		{"ID token for the client", false, nil, testClient, ""},
		{"ID token for another audience", false, nil, "https://aud.example", "not \"https://aud.example\""},
		{"other audience, allowed", true, nil, "https://aud.example", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(cfg, cache, Options{AllowOtherScopes: tt.allow, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if tt.aud != "" {
				_, err = src.IDToken(context.Background(), tt.aud, time.Minute)
			} else {
				_, err = src.AccessToken(context.Background(), tt.scopes, time.Minute)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if err != nil && broker.ClassOf(err) != broker.Fatal {
				t.Errorf("class %v, want fatal", broker.ClassOf(err))
			}
		})
	}
	if !strings.Contains(logs.String(), "without the requested scopes") || !strings.Contains(logs.String(), "another audience") {
		t.Errorf("no warnings for allowed mismatches: %s", logs.String())
	}
}

func TestRefreshAndErrors(t *testing.T) {
	fg, cfg, cache, _ := loggedIn(t)
	var now time.Time
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setNow := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	setNow(time.Now())
	src, err := New(cfg, cache, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := src.AccessToken(ctx, []string{cloud}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Still fresh: served from the cache, no call.
	before := fg.Requests()
	if again, _ := src.AccessToken(ctx, []string{cloud}, time.Minute); again.Value != first.Value || fg.Requests() != before {
		t.Error("a fresh token was refreshed")
	}
	// 59 minutes later it has less than the minimum left: refreshed.
	setNow(time.Now().Add(59 * time.Minute))
	second, err := src.AccessToken(ctx, []string{cloud}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if second.Value == first.Value || mint(t, fg, second.Value).Grant != "refresh_token" {
		t.Error("an expiring token was not refreshed")
	}

	tests := []struct {
		name      string
		fault     fakegoogle.Fault
		revoke    bool
		wantClass broker.Class
		wantText  string
	}{
		{"one 503 is retried", fakegoogle.Fault{Status: 503, Times: 1}, false, 0, ""},
		{"5xx that lasts is transient", fakegoogle.Fault{Status: 500}, false, broker.Transient, "HTTP 500"},
		{"429 is transient", fakegoogle.Fault{Status: 429}, false, broker.Transient, "HTTP 429"},
		{"401 is fatal", fakegoogle.Fault{Status: 401}, false, broker.Fatal, "HTTP 401: unauthorized_client"},
		{"revoked login is fatal", fakegoogle.Fault{}, true, broker.Fatal, "run `credbroker login`"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fg.SetFault(tt.fault)
			defer fg.SetFault(fakegoogle.Fault{})
			if tt.revoke {
				fg.RevokeAll()
			}
			setNow(time.Now().Add(time.Duration(i+1) * time.Hour * 2)) // always expired
			_, err := src.AccessToken(ctx, []string{cloud}, time.Minute)
			if tt.wantClass == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || broker.ClassOf(err) != tt.wantClass || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("err = %v (class %v), want %v containing %q", err, broker.ClassOf(err), tt.wantClass, tt.wantText)
			}
			if tt.revoke && !errors.Is(err, ErrLoginRequired) {
				t.Error("revoked login is not ErrLoginRequired")
			}
			if strings.Contains(err.Error(), "fake-rt-") || strings.Contains(err.Error(), testSecret) {
				t.Errorf("secret in error: %v", err)
			}
		})
	}
}

func TestNoLogin(t *testing.T) {
	_, cfg := fakeConfig(t)
	_, err := New(cfg, tokencache.Memory(), Options{})
	if !errors.Is(err, ErrLoginRequired) || !strings.Contains(err.Error(), "credbroker login") {
		t.Errorf("New without a login = %v", err)
	}
	if _, err := New(Config{}, tokencache.Memory(), Options{}); !errors.Is(err, ErrLoginRequired) {
		t.Errorf("New without a client or a login = %v", err)
	}
}

// urlCatcher captures what Login prints for the user and hands on the
// authorization URL.
type urlCatcher struct {
	mu  sync.Mutex
	buf bytes.Buffer
	got chan string
}

var authURLRe = regexp.MustCompile(`http://127\.0\.0\.1:\d+/o/oauth2/v2/auth\?\S+`)

func (c *urlCatcher) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if u := authURLRe.FindString(c.buf.String()); u != "" && c.got != nil {
		c.got <- u
		c.got = nil
	}
	return len(p), nil
}

func TestLoginNoBrowserPaste(t *testing.T) {
	fg, cfg := fakeConfig(t)
	cache := tokencache.Memory()
	pr, pw := io.Pipe()
	defer pw.Close()
	urls := make(chan string, 1)
	out := &urlCatcher{got: urls}
	go func() {
		u := <-urls
		// The browser runs elsewhere: it cannot reach the loopback
		// redirect, so the user copies the address it was sent to.
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(u)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		resp.Body.Close()
		io.WriteString(pw, "\n"+resp.Header.Get("Location")+"\n")
	}()
	opened := false
	res, err := Login(context.Background(), cfg, cache, LoginOptions{
		NoBrowser: true, Out: out, In: pr,
		OpenBrowser: func(string) error { opened = true; return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if opened {
		t.Error("--no-browser opened a browser")
	}
	if res.Email != testUser {
		t.Errorf("result %+v", res)
	}
	e, ok, _ := cache.Get(CacheKey(testClient))
	if !ok || !fg.RefreshTokenLive(e.RefreshToken) {
		t.Errorf("stored login %v", ok)
	}
}

func TestLoginRefused(t *testing.T) {
	fg, cfg := fakeConfig(t)
	fg.SetUser(testUser, true)
	_, err := Login(context.Background(), cfg, tokencache.Memory(), LoginOptions{OpenBrowser: browser})
	if err == nil || !strings.Contains(err.Error(), "access_denied") {
		t.Errorf("denied login = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Login(ctx, cfg, tokencache.Memory(), LoginOptions{OpenBrowser: func(string) error { return nil }}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled login = %v", err)
	}
}

func TestLogout(t *testing.T) {
	fg, cfg, cache, _ := loggedIn(t)
	e, _, _ := cache.Get(CacheKey(testClient))
	ok, err := Logout(context.Background(), cfg, cache, nil)
	if !ok || err != nil {
		t.Fatalf("Logout = %v, %v", ok, err)
	}
	if fg.RefreshTokenLive(e.RefreshToken) {
		t.Error("refresh token not revoked upstream")
	}
	if _, found, _ := cache.Get(CacheKey(testClient)); found {
		t.Error("login still stored")
	}
	if ok, err := Logout(context.Background(), cfg, cache, nil); ok || err != nil {
		t.Errorf("second Logout = %v, %v", ok, err)
	}
}

func TestAuthorizedUserFile(t *testing.T) {
	fg, _, cache, _ := loggedIn(t)
	e, _, _ := cache.Get(CacheKey(testClient))
	path := filepath.Join(t.TempDir(), "adc.json")
	data, _ := json.Marshal(map[string]string{
		"type": "authorized_user", "client_id": testClient, "client_secret": testSecret,
		"refresh_token": e.RefreshToken, "token_uri": fg.TokenURL(),
	})
	os.WriteFile(path, data, 0o600)
	src, err := FromAuthorizedUser(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.AccessToken(context.Background(), []string{cloud}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if m := mint(t, fg, tok.Value); m.Email != testUser || m.Grant != "refresh_token" {
		t.Errorf("minted %+v", m)
	}
	if src.Email() != testUser {
		t.Errorf("email %q learned from the id_token", src.Email())
	}
	if _, err := src.AccessToken(context.Background(), []string{scopePrefix + "gerritcodereview"}, time.Minute); err == nil {
		t.Error("scopes beyond the file's grant served")
	}

	bad := []struct{ name, content, want string }{
		{"not JSON", "{", "not JSON"},
		{"service account", `{"type":"service_account","client_id":"x","refresh_token":"y"}`, "want authorized_user"},
		{"no refresh token", `{"type":"authorized_user","client_id":"x"}`, "no refresh_token"},
	}
	for _, b := range bad {
		p := filepath.Join(t.TempDir(), "f.json")
		os.WriteFile(p, []byte(b.content), 0o600)
		if _, err := FromAuthorizedUser(p, Options{}); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v", b.name, err)
		}
	}
}

// Brokers sharing one cache directory refresh an expiring token once.
func TestSharedCacheRefreshesOnce(t *testing.T) {
	fg, cfg, _, dir := loggedIn(t)
	later := func() time.Time { return time.Now().Add(59 * time.Minute) }
	// The login's token expires within the minimum lifetime at "later";
	// a refreshed one does not.
	fg.SetTokenLifetime(2 * time.Hour)
	before := len(fg.Mints())
	var wg sync.WaitGroup
	toks := make([]string, 6)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src, err := New(cfg, cacheIn(t, dir), Options{Now: later})
			if err != nil {
				t.Error(err)
				return
			}
			tok, err := src.AccessToken(context.Background(), []string{cloud}, 5*time.Minute)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok.Value
		}()
	}
	wg.Wait()
	if n := len(fg.Mints()) - before; n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	for _, tok := range toks[1:] {
		if tok != toks[0] {
			t.Error("brokers got different tokens")
		}
	}
}

func TestStoredConfig(t *testing.T) {
	fg, cfg, cache, _ := loggedIn(t)
	// No OAuth flags at all: the stored login's client and endpoints.
	src, err := New(Config{}, cache, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := src.AccessToken(context.Background(), []string{cloud}, time.Minute); err != nil || mint(t, fg, tok.Value).Email != testUser {
		t.Fatalf("token: %v", err)
	}
	cache.Put(CacheKey("second-client"), tokencache.Entry{RefreshToken: "x"})
	if _, err := New(Config{}, cache, Options{}); err == nil || !strings.Contains(err.Error(), "--oauth-client-id") {
		t.Errorf("two logins: %v", err)
	}
	if _, err := New(cfg, cache, Options{}); err != nil {
		t.Errorf("explicit client with two logins: %v", err)
	}
	if ok, err := Logout(context.Background(), Config{ClientID: testClient}, cache, nil); !ok || err != nil {
		t.Errorf("Logout by client id only: %v %v", ok, err)
	}
}
