package openidtest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"credbroker/protocols/openid"
)

// RunStoreTests checks that a Store keeps the contract the server relies
// on. newStore returns an empty store.
func RunStoreTests(t *testing.T, newStore func(t *testing.T) openid.Store) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sess := openid.Session{
		ID: "id-1", Subject: "sub", Email: "a@example.com", Picture: "https://p",
		RefreshToken: []byte("k1.sealed"), Created: t0, Expires: t0.Add(time.Hour), LastUsed: t0,
	}

	t.Run("create get", func(t *testing.T) {
		st := newStore(t)
		if err := st.Create(ctx, sess); err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, sess.ID, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		assertSession(t, got, sess)
		if err := st.Create(ctx, sess); !errors.Is(err, openid.ErrExists) {
			t.Errorf("second Create = %v, want ErrExists", err)
		}
		if _, err := st.Get(ctx, "other", t0); !errors.Is(err, openid.ErrNotFound) {
			t.Errorf("Get(other) = %v, want ErrNotFound", err)
		}
	})
	t.Run("login record", func(t *testing.T) {
		st := newStore(t)
		l := openid.Session{ID: "state-hash", Login: true, Created: t0, Expires: t0.Add(10 * time.Minute), LastUsed: t0}
		if err := st.Create(ctx, l); err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, l.ID, t0)
		if err != nil {
			t.Fatal(err)
		}
		assertSession(t, got, l)
	})
	t.Run("expiry", func(t *testing.T) {
		st := newStore(t)
		if err := st.Create(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, sess.ID, sess.Expires); !errors.Is(err, openid.ErrNotFound) {
			t.Errorf("Get at expiry = %v, want ErrNotFound", err)
		}
		other := sess
		other.ID, other.Expires = "id-2", t0.Add(2*time.Hour)
		if err := st.Create(ctx, other); err != nil {
			t.Fatal(err)
		}
		ids, err := st.DeleteExpired(ctx, t0.Add(90*time.Minute))
		if err != nil || len(ids) != 1 || ids[0] != sess.ID {
			t.Fatalf("DeleteExpired = %q, %v; want [%q]", ids, err, sess.ID)
		}
		if ids, err := st.DeleteExpired(ctx, t0.Add(90*time.Minute)); err != nil || len(ids) != 0 {
			t.Errorf("second DeleteExpired = %q, %v; want nothing", ids, err)
		}
		if _, err := st.Get(ctx, other.ID, t0); err != nil {
			t.Errorf("the live record went: %v", err)
		}
		if ok, _ := st.Delete(ctx, sess.ID); ok {
			t.Error("the expired record is still there after DeleteExpired")
		}
	})
	t.Run("update", func(t *testing.T) {
		st := newStore(t)
		if err := st.Create(ctx, sess); err != nil {
			t.Fatal(err)
		}
		up := sess
		up.RefreshToken = []byte("k2.rotated")
		up.LastUsed = t0.Add(5 * time.Minute)
		up.Email = "ignored@example.com" // only the token and last use change
		if err := st.Update(ctx, up); err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, sess.ID, t0)
		if err != nil {
			t.Fatal(err)
		}
		want := sess
		want.RefreshToken, want.LastUsed = up.RefreshToken, up.LastUsed
		assertSession(t, got, want)
		missing := sess
		missing.ID = "gone"
		if err := st.Update(ctx, missing); !errors.Is(err, openid.ErrNotFound) {
			t.Errorf("Update(missing) = %v, want ErrNotFound", err)
		}

		// Touch changes the last use only.
		if err := st.Touch(ctx, sess.ID, t0.Add(7*time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, err = st.Get(ctx, sess.ID, t0)
		if err != nil {
			t.Fatal(err)
		}
		want.LastUsed = t0.Add(7 * time.Minute)
		assertSession(t, got, want)
		if err := st.Touch(ctx, "gone", t0); !errors.Is(err, openid.ErrNotFound) {
			t.Errorf("Touch(missing) = %v, want ErrNotFound", err)
		}
	})
	t.Run("delete once", func(t *testing.T) {
		st := newStore(t)
		if err := st.Create(ctx, sess); err != nil {
			t.Fatal(err)
		}
		results := make(chan bool, 8)
		for range cap(results) {
			go func() {
				ok, err := st.Delete(ctx, sess.ID)
				if err != nil {
					t.Error(err)
				}
				results <- ok
			}()
		}
		won := 0
		for range cap(results) {
			if <-results {
				won++
			}
		}
		if won != 1 {
			t.Errorf("%d concurrent deletes reported the record, want exactly 1", won)
		}
	})
}

func assertSession(t *testing.T, got, want openid.Session) {
	t.Helper()
	same := got.ID == want.ID && got.Login == want.Login && got.Subject == want.Subject &&
		got.Email == want.Email && got.Picture == want.Picture &&
		string(got.RefreshToken) == string(want.RefreshToken) &&
		got.Created.Equal(want.Created) && got.Expires.Equal(want.Expires) && got.LastUsed.Equal(want.LastUsed)
	if !same {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

// Browser is an HTTP client that keeps cookies like a browser and can
// follow redirects or stop at them.
type Browser struct {
	t      testing.TB
	Client *http.Client
}

// NewBrowser returns a Browser with an empty cookie jar that follows
// redirects.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Browser{t: t, Client: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// Get fetches url and returns the final response's status and body.
func (b *Browser) Get(url string) (int, string) {
	b.t.Helper()
	resp, err := b.Client.Get(url)
	if err != nil {
		b.t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// State is /auth/openid/state's JSON.
type State struct {
	Identity             string `json:"identity"`
	Email                string `json:"email"`
	Picture              string `json:"picture"`
	AccessToken          string `json:"accessToken"`
	AccessTokenExpiry    int64  `json:"accessTokenExpiry"`
	AccessTokenExpiresIn int64  `json:"accessTokenExpiresIn"`
	IDToken              string `json:"idToken"`
	IDTokenExpiry        int64  `json:"idTokenExpiry"`
	IDTokenExpiresIn     int64  `json:"idTokenExpiresIn"`
}

// State fetches base + /auth/openid/state and fails the test unless it
// answers 200 with JSON.
func (b *Browser) State(base string) State {
	b.t.Helper()
	code, body := b.Get(base + openid.PathState)
	if code != http.StatusOK {
		b.t.Fatalf("state: %d %s", code, strings.TrimSpace(body))
	}
	var s State
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		b.t.Fatalf("state: %v in %q", err, body)
	}
	return s
}

// SignIn follows /auth/openid/login?r=/ on base through whatever identity
// provider it redirects to, and fails the test unless the browser ends up
// signed in.
func (b *Browser) SignIn(base string) State {
	b.t.Helper()
	if code, body := b.Get(base + openid.PathLogin + "?r=/"); code != http.StatusOK && code != http.StatusNotFound {
		b.t.Fatalf("sign-in ended with %d %s", code, strings.TrimSpace(body))
	}
	s := b.State(base)
	if s.Identity == openid.Anonymous {
		b.t.Fatal("still anonymous after signing in")
	}
	return s
}

// CheckSharedSessions checks that two servers sharing a store and keys
// serve one browser session, as behind a load balancer: signed in through
// a, the browser is signed in on b too, and signing out on b ends it on a.
// Both must be on 127.0.0.1, where cookies do not depend on the port.
func CheckSharedSessions(t *testing.T, a, b string) {
	t.Helper()
	br := NewBrowser(t)
	sa := br.SignIn(a)
	sb := br.State(b)
	if sb.Identity != sa.Identity || sb.Email != sa.Email || sb.AccessToken == "" || sb.IDToken == "" {
		t.Fatalf("the second server sees %+v, want %s", sb, sa.Identity)
	}
	if code, body := br.Get(b + openid.PathLogout + "?r=/"); code != http.StatusOK {
		t.Fatalf("logout on the second server: %d %s", code, body)
	}
	if s := br.State(a); s.Identity != openid.Anonymous {
		t.Errorf("signed out on one server, still signed in on the other: %+v", s)
	}
}
