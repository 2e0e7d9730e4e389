package openid_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"credbroker/internal/fakeoidc"
	"credbroker/protocols/openid"
)

// requestWith is a request to base carrying the session cookie value, or
// none when value is "".
func requestWith(t *testing.T, base, value string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if value != "" {
		req.AddCookie(&http.Cookie{Name: "credbroker_session", Value: value})
	}
	return req
}

// noEmail is a local token core whose default account has no email.
type noEmail struct{ fakeTokens }

func (noEmail) Email(string) (string, error) { return "", nil }

func TestSignedInLocal(t *testing.T) {
	c := newClock()
	tests := []struct {
		name   string
		tokens openid.Tokens // nil: a real broker whose default is dev@example.com
		want   string
	}{
		{"default account's email", nil, "dev@example.com"},
		{"no email", noEmail{}, openid.LocalOwner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, info, _ := startLocal(t, c, func(s *openid.Server) {
				if tt.tokens != nil {
					s.Tokens = tt.tokens
				}
			})
			// No sign-in needed: whoever reaches a local server is the owner.
			if email, ok := s.SignedIn(requestWith(t, info.URL, "")); !ok || email != tt.want {
				t.Errorf("SignedIn = %q, %v; want %q, true", email, ok, tt.want)
			}
		})
	}
}

func TestSignedInProduction(t *testing.T) {
	c := newClock()
	p := fakeoidc.New(t)
	p.SetClock(c.Now)
	st := openid.NewMemStore()
	s, info := startProd(t, p, st, mustKeys(t, openid.GenerateKey("k1")), c)
	_, ck := signedIn(t, info.URL)

	flipped := []byte(ck.Value)
	flipped[len(flipped)/2] ^= 1
	tests := []struct {
		name   string
		cookie string
		want   string
		ok     bool
	}{
		{"signed in", ck.Value, "user@example.com", true},
		{"no cookie", "", "", false},
		{"tampered", string(flipped), "", false},
		{"truncated", ck.Value[:len(ck.Value)-4], "", false},
		{"garbage", "k1.!!!", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			email, ok := s.SignedIn(requestWith(t, info.URL, tt.cookie))
			if email != tt.want || ok != tt.ok {
				t.Errorf("SignedIn = %q, %v; want %q, %v", email, ok, tt.want, tt.ok)
			}
		})
	}

	t.Run("cookie of another server's keys", func(t *testing.T) {
		// Same key id, other key material.
		s2, info2 := startProd(t, p, st, mustKeys(t, openid.GenerateKey("k1")), c)
		if email, ok := s2.SignedIn(requestWith(t, info2.URL, ck.Value)); ok {
			t.Errorf("a cookie sealed with other keys opened: %q", email)
		}
	})

	t.Run("session gone from the store", func(t *testing.T) {
		_, ck2 := signedIn(t, info.URL)
		for _, row := range st.All() {
			if ok, err := st.Delete(context.Background(), row.ID); !ok || err != nil {
				t.Fatalf("Delete: %v %v", ok, err)
			}
		}
		if email, ok := s.SignedIn(requestWith(t, info.URL, ck2.Value)); ok {
			t.Errorf("SignedIn after the session was deleted = %q", email)
		}
	})

	t.Run("expired", func(t *testing.T) {
		_, ck3 := signedIn(t, info.URL)
		if _, ok := s.SignedIn(requestWith(t, info.URL, ck3.Value)); !ok {
			t.Fatal("fresh session not signed in")
		}
		c.Advance(openid.DefaultSessionTTL - time.Second)
		if _, ok := s.SignedIn(requestWith(t, info.URL, ck3.Value)); !ok {
			t.Error("signed out a second before expiry")
		}
		c.Advance(time.Second)
		if email, ok := s.SignedIn(requestWith(t, info.URL, ck3.Value)); ok {
			t.Errorf("expired session signed in as %q", email)
		}
	})
}

func TestSignedInBeforeStart(t *testing.T) {
	s := &openid.Server{Tokens: fakeTokens{}}
	if email, ok := s.SignedIn(requestWith(t, "http://127.0.0.1:1", "")); ok {
		t.Errorf("an unstarted server reports %q signed in", email)
	}
}
