package dev

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"credbroker/broker"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newSource(t *testing.T) *Source {
	t.Helper()
	s, err := New(Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAccessToken(t *testing.T) {
	s := newSource(t)
	tests := []struct {
		name        string
		minLifetime time.Duration
		want        time.Duration
	}{
		{"default", 0, time.Hour},
		{"short minimum", 3 * time.Minute, time.Hour},
		{"long minimum", 2 * time.Hour, 2 * time.Hour},
		{"capped", 100 * time.Hour, 24 * time.Hour},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := s.AccessToken(context.Background(), []string{"a", "b"}, tt.minLifetime)
			if err != nil {
				t.Fatal(err)
			}
			if got := tok.Lifetime(t0); got != tt.want {
				t.Errorf("lifetime %v, want %v", got, tt.want)
			}
			raw, ok := strings.CutPrefix(tok.Value, TokenPrefix)
			if !ok {
				t.Fatalf("token lacks the %q prefix", TokenPrefix)
			}
			if b, err := base64.RawURLEncoding.DecodeString(raw); err != nil || len(b) != 32 {
				t.Errorf("token body is not 32 bytes of base64url")
			}
			if seen[tok.Value] {
				t.Error("token repeated")
			}
			seen[tok.Value] = true
		})
	}
}

func TestRefusesEmptyRequests(t *testing.T) {
	s := newSource(t)
	if _, err := s.AccessToken(context.Background(), nil, 0); broker.ClassOf(err) != broker.Fatal {
		t.Errorf("no scopes: err = %v, want fatal", err)
	}
	if _, err := s.IDToken(context.Background(), "", 0); broker.ClassOf(err) != broker.Fatal {
		t.Errorf("no audience: err = %v, want fatal", err)
	}
}

// verify checks tok against the Source's published JWKS and returns its
// claims.
func verify(t *testing.T, s *Source, tok string) Claims {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", parsed.Headers[0].KeyID)
	}
	var c Claims
	if err := parsed.Claims(keys[0].Key, &c); err != nil {
		t.Fatalf("ID token does not verify: %v", err)
	}
	return c
}

func TestIDToken(t *testing.T) {
	s := newSource(t)
	tok, err := s.IDToken(context.Background(), "https://svc.example", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{
		Issuer:        Issuer,
		Audience:      "https://svc.example",
		Subject:       Subject,
		Email:         Email,
		EmailVerified: true,
		IssuedAt:      t0.Unix(),
		Expiry:        t0.Add(time.Hour).Unix(),
	}
	if got := verify(t, s, tok.Value); got != want {
		t.Errorf("claims = %+v\nwant %+v", got, want)
	}
	if !tok.Expiry.Equal(t0.Add(time.Hour)) {
		t.Errorf("expiry %v, want %v", tok.Expiry, t0.Add(time.Hour))
	}
	// Standard validation agrees on time and audience.
	parsed, _ := jwt.ParseSigned(tok.Value, []jose.SignatureAlgorithm{jose.RS256})
	var std jwt.Claims
	if err := parsed.UnsafeClaimsWithoutVerification(&std); err != nil {
		t.Fatal(err)
	}
	if err := std.Validate(jwt.Expected{Issuer: Issuer, AnyAudience: jwt.Audience{"https://svc.example"}, Time: t0.Add(time.Minute)}); err != nil {
		t.Error(err)
	}
	if parsed.Headers[0].KeyID != s.KeyID() {
		t.Errorf("kid %q, want %q", parsed.Headers[0].KeyID, s.KeyID())
	}
}

// TestKeysDifferPerSource checks that one Source's tokens do not verify
// with another's JWKS: the key is per process, never shared.
func TestKeysDifferPerSource(t *testing.T) {
	a, b := newSource(t), newSource(t)
	tok, err := a.IDToken(context.Background(), "aud", 0)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	parsed, _ := jwt.ParseSigned(tok.Value, []jose.SignatureAlgorithm{jose.RS256})
	var c Claims
	if err := parsed.Claims(set.Keys[0].Key, &c); err == nil {
		t.Error("token of one dev Source verified with another's key")
	}
}

func TestJWKSIsPublicOnly(t *testing.T) {
	s := newSource(t)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || !set.Keys[0].IsPublic() || set.Keys[0].Algorithm != "RS256" || set.Keys[0].Use != "sig" {
		t.Errorf("JWKS = %s", s.JWKS())
	}
	if strings.Contains(string(s.JWKS()), `"d"`) {
		t.Error("JWKS carries a private exponent")
	}
}

func TestWarning(t *testing.T) {
	s := newSource(t)
	if w := s.Warning(); !strings.Contains(w, "not Google tokens") || !strings.Contains(w, Email) {
		t.Errorf("Warning() = %q", w)
	}
}

// TestThroughBroker serves the dev identity through a real broker.
func TestThroughBroker(t *testing.T) {
	s := newSource(t)
	b := broker.New(broker.Options{Now: func() time.Time { return t0 }})
	defer b.Close()
	if err := b.AddAccount("dev", s); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := b.AccessToken(ctx, "dev", []string{"x"}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.AccessToken(ctx, "dev", []string{"x", "x"}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if first != again {
		t.Error("second request was not served from the cache")
	}
	id, err := b.IDToken(ctx, "dev", "aud", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c := verify(t, s, id.Value); c.Audience != "aud" {
		t.Errorf("aud = %q", c.Audience)
	}
	if email, _ := b.Email("dev"); email != Email {
		t.Errorf("email = %q", email)
	}
}
