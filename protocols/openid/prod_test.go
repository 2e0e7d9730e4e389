package openid_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/internal/fakeoidc"
	"credbroker/protocols/openid"
	"credbroker/protocols/openid/openidtest"
)

func TestProductionSignIn(t *testing.T) {
	c := newClock()
	p := fakeoidc.New(t)
	p.SetClock(c.Now)
	st := openid.NewMemStore()
	_, info := startProd(t, p, st, mustKeys(t, openid.GenerateKey("k1")), c)
	br := openidtest.NewBrowser(t)

	if s := br.State(info.URL); s.Identity != openid.Anonymous {
		t.Fatalf("before sign-in: %+v", s)
	}
	s := br.SignIn(info.URL)
	if s.Identity != "user:user@example.com" || s.Email != "user@example.com" || s.Picture != "https://example.com/pic.png" {
		t.Errorf("state = %+v", s)
	}
	if s.AccessTokenExpiresIn != 3600 || s.IDTokenExpiresIn != 3600 || s.AccessTokenExpiry != c.Now().Unix()+3600 {
		t.Errorf("lifetimes: %+v", s)
	}
	if u, ok := p.AccessTokenUser(s.AccessToken); !ok || u.Email != "user@example.com" {
		t.Errorf("the provider does not know the access token served")
	}
	if ex, ref, _ := p.Counts(); ex != 1 || ref != 0 {
		t.Errorf("exchanges, refreshes = %d, %d; the sign-in's own tokens should serve the first /state", ex, ref)
	}

	// The refresh token is in the store only sealed.
	rows := storeRows(t, st)
	if len(rows) != 1 {
		t.Fatalf("%d store rows, want 1 session", len(rows))
	}
	if strings.Contains(string(rows[0].RefreshToken), "fake-refresh-") || !strings.HasPrefix(string(rows[0].RefreshToken), "k1.") {
		t.Errorf("refresh token at rest is not sealed with k1")
	}

	// An hour later the broker refreshes through the provider.
	c.Advance(56 * time.Minute)
	s2 := br.State(info.URL)
	if s2.AccessToken == s.AccessToken || s2.IDToken == s.IDToken || s2.Identity != s.Identity {
		t.Errorf("tokens not refreshed: %+v", s2)
	}
	if _, ref, _ := p.Counts(); ref != 1 {
		t.Errorf("refreshes = %d, want 1 for both tokens", ref)
	}

	// Sign-out ends the session, revokes the refresh token at the provider.
	if code, _ := br.Get(info.URL + openid.PathLogout + "?r=/"); code != 200 {
		t.Fatalf("logout: %d", code)
	}
	if s := br.State(info.URL); s.Identity != openid.Anonymous {
		t.Errorf("after logout: %+v", s)
	}
	if n := p.LiveRefreshTokens(); n != 0 {
		t.Errorf("%d refresh tokens live at the provider after logout", n)
	}
	if rows := storeRows(t, st); len(rows) != 0 {
		t.Errorf("%d rows left after logout", len(rows))
	}
}

// storeRows lists a MemStore's live rows through its public methods.
func storeRows(t *testing.T, st *openid.MemStore) []openid.Session {
	t.Helper()
	return st.All()
}

func TestProductionCookieAttributes(t *testing.T) {
	c := newClock()
	p := fakeoidc.New(t)
	p.SetClock(c.Now)
	_, info := startProd(t, p, openid.NewMemStore(), mustKeys(t, openid.GenerateKey("k1")), c)
	client := noRedirect(openidtest.NewBrowser(t).Client)
	resp, _ := get(t, client, info.URL+openid.PathLogin+"?r=/back")
	if resp.StatusCode != 302 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	auth, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(auth.String(), p.URL+fakeoidc.AuthorizePath) {
		t.Fatalf("login redirects to %q", resp.Header.Get("Location"))
	}
	q := auth.Query()
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 43 {
			t.Errorf("%s = %q, want 256 random bits", k, q.Get(k))
		}
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("scope") != "email openid profile" || q.Get("access_type") != "offline" {
		t.Errorf("authorization request: %v", q)
	}
	lc := cookieNamed(resp, "credbroker_login")
	if lc == nil || !lc.HttpOnly || lc.SameSite != http.SameSiteLaxMode || lc.MaxAge != 600 {
		t.Errorf("login cookie: %+v", lc)
	}
	if strings.Contains(lc.Value, q.Get("state")) || strings.Contains(lc.Value, q.Get("nonce")) {
		t.Error("the login cookie carries the state or nonce in the clear")
	}
}

// signedIn signs a fresh browser in and returns it with its session
// cookie.
func signedIn(t *testing.T, base string) (*openidtest.Browser, *http.Cookie) {
	t.Helper()
	br := openidtest.NewBrowser(t)
	br.SignIn(base)
	u, _ := url.Parse(base)
	for _, ck := range br.Client.Jar.Cookies(u) {
		if ck.Name == "credbroker_session" {
			return br, ck
		}
	}
	t.Fatal("no session cookie after sign-in")
	return nil, nil
}

// stateWith calls /state with exactly the given cookie value.
func stateWith(t *testing.T, base, cookie string) (openidtest.State, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+openid.PathState, nil)
	req.AddCookie(&http.Cookie{Name: "credbroker_session", Value: cookie})
	resp, body := do(t, http.DefaultClient, req)
	if resp.StatusCode != 200 {
		t.Fatalf("state: %d %q", resp.StatusCode, body)
	}
	var s openidtest.State
	if err := jsonUnmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	return s, resp
}

func TestCookieTamperingExpiryAndRotation(t *testing.T) {
	c := newClock()
	p := fakeoidc.New(t)
	p.SetClock(c.Now)
	st := openid.NewMemStore()
	k1, k2 := openid.GenerateKey("k1"), openid.GenerateKey("k2")
	_, info := startProd(t, p, st, mustKeys(t, k1), c)
	_, ck := signedIn(t, info.URL)

	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tampered := []struct {
		name  string
		value string
	}{
		{"flipped last char", flip(ck.Value, len(ck.Value)-1)},
		{"flipped middle char", flip(ck.Value, len(ck.Value)/2)},
		{"other key id", "k2" + strings.TrimPrefix(ck.Value, "k1")},
		{"truncated", ck.Value[:len(ck.Value)-10]},
		{"no key id", strings.TrimPrefix(ck.Value, "k1.")},
		{"empty", ""},
		{"garbage", "k1.!!!"},
	}
	for _, tt := range tampered {
		t.Run(tt.name, func(t *testing.T) {
			s, resp := stateWith(t, info.URL, tt.value)
			if s.Identity != openid.Anonymous {
				t.Errorf("tampered cookie accepted: %+v", s)
			}
			if tt.value != "" {
				if cl := cookieNamed(resp, "credbroker_session"); cl == nil || cl.MaxAge >= 0 {
					t.Errorf("bad cookie not cleared: %v", resp.Header["Set-Cookie"])
				}
			}
		})
	}
	if s, _ := stateWith(t, info.URL, ck.Value); s.Identity != "user:user@example.com" {
		t.Fatalf("the untouched cookie no longer works: %+v", s)
	}

	t.Run("rotated key", func(t *testing.T) {
		// A server with a new primary key still opens the old cookies...
		_, rotated := startProd(t, p, st, mustKeys(t, k2, k1), c)
		if s, _ := stateWith(t, rotated.URL, ck.Value); s.Identity != "user:user@example.com" {
			t.Errorf("cookie sealed with the previous key refused: %+v", s)
		}
		// ...and seals new ones with it.
		_, fresh := signedIn(t, rotated.URL)
		if !strings.HasPrefix(fresh.Value, "k2.") {
			t.Errorf("new cookie sealed with %q", strings.SplitN(fresh.Value, ".", 2)[0])
		}
		// Once the old key is dropped its cookies are worth nothing.
		_, dropped := startProd(t, p, st, mustKeys(t, k2), c)
		if s, _ := stateWith(t, dropped.URL, ck.Value); s.Identity != openid.Anonymous {
			t.Errorf("cookie of a dropped key accepted: %+v", s)
		}
		if s, _ := stateWith(t, dropped.URL, fresh.Value); s.Identity != "user:user@example.com" {
			t.Errorf("cookie of the current key refused: %+v", s)
		}
	})

	t.Run("expired", func(t *testing.T) {
		c.Advance(openid.DefaultSessionTTL + time.Second)
		if s, _ := stateWith(t, info.URL, ck.Value); s.Identity != openid.Anonymous {
			t.Errorf("expired cookie accepted: %+v", s)
		}
		if ids, err := st.DeleteExpired(context.Background(), c.Now()); err != nil || len(ids) == 0 {
			t.Errorf("DeleteExpired = %q, %v; want the expired sessions gone", ids, err)
		}
	})
}

func TestRevokedAccessAnswersAnonymous(t *testing.T) {
	c := newClock()
	p := fakeoidc.New(t)
	p.SetClock(c.Now)
	st := openid.NewMemStore()
	_, info := startProd(t, p, st, mustKeys(t, openid.GenerateKey("k1")), c)
	br, _ := signedIn(t, info.URL)
	p.RevokeUser("user@example.com")
	c.Advance(time.Hour) // the served tokens expire; the next /state refreshes
	if s := br.State(info.URL); s.Identity != openid.Anonymous {
		t.Errorf("after revocation: %+v", s)
	}
	if rows := st.All(); len(rows) != 0 {
		t.Errorf("revoked session still stored: %d rows", len(rows))
	}
}

func TestProviderDownIs500(t *testing.T) {
	c := newClock()
	p := fakeoidc.New(t)
	p.SetClock(c.Now)
	_, info := startProd(t, p, openid.NewMemStore(), mustKeys(t, openid.GenerateKey("k1")), c)
	br, _ := signedIn(t, info.URL)
	p.Close()
	c.Advance(time.Hour)
	resp, body := get(t, br.Client, info.URL+openid.PathState)
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || !strings.HasPrefix(body, "internal error: openid: refresh:") {
		t.Errorf("got %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if strings.Contains(body, "fake-") {
		t.Error("the error shows a token")
	}
}

// startLogin runs /login in a fresh browser and returns the callback URL
// the provider sends it back to, without following it.
func startLogin(t *testing.T, base string) (*openidtest.Browser, string) {
	t.Helper()
	br := openidtest.NewBrowser(t)
	client := noRedirect(br.Client)
	resp, _ := get(t, client, base+openid.PathLogin+"?r=/")
	resp, body := get(t, client, resp.Header.Get("Location"))
	if resp.StatusCode != 302 {
		t.Fatalf("authorize: %d %s", resp.StatusCode, body)
	}
	return br, resp.Header.Get("Location")
}

func TestCallbackRefusals(t *testing.T) {
	c := newClock()
	p := fakeoidc.New(t)
	p.SetClock(c.Now)
	_, info := startProd(t, p, openid.NewMemStore(), mustKeys(t, openid.GenerateKey("k1")), c)

	t.Run("replayed state", func(t *testing.T) {
		br, cb := startLogin(t, info.URL)
		u, _ := url.Parse(info.URL)
		saved := br.Client.Jar.Cookies(u) // the login cookie, as an attacker would copy it
		if resp, body := get(t, noRedirect(br.Client), cb); resp.StatusCode != 302 {
			t.Fatalf("first callback: %d %s", resp.StatusCode, body)
		}
		replay := openidtest.NewBrowser(t)
		replay.Client.Jar.SetCookies(u, saved)
		resp, body := get(t, noRedirect(replay.Client), cb)
		if resp.StatusCode != 400 || body != "this sign-in was already used\n" {
			t.Errorf("replay: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("login CSRF: no login cookie", func(t *testing.T) {
		_, cb := startLogin(t, info.URL) // the attacker's own sign-in
		victim := openidtest.NewBrowser(t)
		resp, body := get(t, noRedirect(victim.Client), cb)
		if resp.StatusCode != 400 || !strings.HasPrefix(body, "no sign-in in progress in this browser") {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		if cookieNamed(resp, "credbroker_session") != nil {
			t.Error("a session cookie was set")
		}
	})
	t.Run("login CSRF: another sign-in's cookie", func(t *testing.T) {
		_, attackerCB := startLogin(t, info.URL)
		victim, _ := startLogin(t, info.URL) // the victim has a sign-in of their own going
		resp, body := get(t, noRedirect(victim.Client), attackerCB)
		if resp.StatusCode != 400 || body != "the sign-in state does not match this browser\n" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})
	t.Run("login cookie expired", func(t *testing.T) {
		br, cb := startLogin(t, info.URL)
		c.Advance(11 * time.Minute)
		defer c.Advance(-11 * time.Minute)
		resp, body := get(t, noRedirect(br.Client), cb)
		if resp.StatusCode != 400 || !strings.HasPrefix(body, "no sign-in in progress") {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})
	t.Run("provider error", func(t *testing.T) {
		br, cb := startLogin(t, info.URL)
		u, _ := url.Parse(cb)
		q := u.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		u.RawQuery = q.Encode()
		resp, body := get(t, noRedirect(br.Client), u.String())
		if resp.StatusCode != 403 || body != "the identity provider refused the sign-in: \"access_denied\"\n" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})
	t.Run("forged code", func(t *testing.T) {
		br, cb := startLogin(t, info.URL)
		u, _ := url.Parse(cb)
		q := u.Query()
		q.Set("code", "forged")
		u.RawQuery = q.Encode()
		resp, body := get(t, noRedirect(br.Client), u.String())
		if resp.StatusCode != 403 || strings.Contains(body, "fake-") {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})
}

func TestTwoServersShareSessions(t *testing.T) {
	c := newClock()
	p := fakeoidc.New(t)
	p.SetClock(c.Now)
	st := openid.NewMemStore()
	keys := mustKeys(t, openid.GenerateKey("k1"))
	_, a := startProd(t, p, st, keys, c)
	_, b := startProd(t, p, st, keys, c)
	openidtest.CheckSharedSessions(t, a.URL, b.URL)
}

// TestSignOutForgetsTheAccount checks that a browser session's account and
// its cached tokens leave the token core when the user signs out.
func TestSignOutForgetsTheAccount(t *testing.T) {
	c := newClock()
	p := fakeoidc.New(t)
	p.SetClock(c.Now)
	b := broker.New(broker.Options{Now: c.Now, Logger: quietLogger()})
	t.Cleanup(b.Close)
	s := &openid.Server{
		OIDC:       &openid.OIDC{Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret, HTTPClient: p.Client()},
		Store:      openid.NewMemStore(),
		Keys:       mustKeys(t, openid.GenerateKey("k1")),
		UserTokens: b,
		Now:        c.Now,
		Logger:     quietLogger(),
	}
	s.Port = freePort(t)
	s.OIDC.RedirectURL = fmt.Sprintf("http://127.0.0.1:%d%s", s.Port, openid.PathCallback)
	_, info := start(t, s)
	br := openidtest.NewBrowser(t)
	if st := br.SignIn(info.URL); st.Identity != "user:user@example.com" {
		t.Fatalf("sign-in: %+v", st)
	}
	if len(b.Accounts()) != 1 || b.Stats().Entries == 0 {
		t.Fatalf("after sign-in: accounts %v, %d cached tokens", b.Accounts(), b.Stats().Entries)
	}
	if code, _ := br.Get(info.URL + openid.PathLogout + "?r=/"); code != 200 {
		t.Fatalf("logout: %d", code)
	}
	if len(b.Accounts()) != 0 || b.Stats().Entries != 0 {
		t.Errorf("after sign-out: accounts %v, %d cached tokens", b.Accounts(), b.Stats().Entries)
	}
}
