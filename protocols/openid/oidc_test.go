package openid

import (
	"context"
	"strings"
	"testing"
	"time"

	"credbroker/internal/fakeoidc"
)

func TestVerifyIDToken(t *testing.T) {
	p := fakeoidc.New(t)
	now := time.Unix(1800000000, 0)
	prov, err := discover(context.Background(), OIDC{
		Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		RedirectURL: "http://127.0.0.1:1" + PathCallback, HTTPClient: p.Client(),
	}, loginScopes, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	claims := func(change func(map[string]any)) string {
		c := map[string]any{
			"iss": p.URL, "aud": p.ClientID, "sub": "42", "email": "u@example.com", "email_verified": true,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "nonce": "n1",
		}
		if change != nil {
			change(c)
		}
		return p.SignIDToken(c)
	}
	tests := []struct {
		name  string
		token string
		nonce string
		want  string // "" for valid
	}{
		{"valid", claims(nil), "n1", ""},
		{"valid without a nonce check (refresh)", claims(func(c map[string]any) { delete(c, "nonce") }), "", ""},
		{"email_verified as a string", claims(func(c map[string]any) { c["email_verified"] = "true" }), "n1", ""},
		{"wrong nonce", claims(nil), "n2", "nonce does not match"},
		{"missing nonce", claims(func(c map[string]any) { delete(c, "nonce") }), "n1", "nonce does not match"},
		{"other issuer", claims(func(c map[string]any) { c["iss"] = "https://evil.example" }), "n1", "issuer"},
		{"other audience", claims(func(c map[string]any) { c["aud"] = "someone-else" }), "n1", "not valid here"},
		{"expired", claims(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() }), "n1", "not valid here"},
		{"no exp", claims(func(c map[string]any) { delete(c, "exp") }), "n1", "lacks exp"},
		{"no sub", claims(func(c map[string]any) { delete(c, "sub") }), "n1", "lacks exp or sub"},
		{"unverified email", claims(func(c map[string]any) { c["email_verified"] = false }), "n1", "no verified email"},
		{"tampered payload", tamper(claims(nil)), "n1", "signature"},
		{"not a JWT", "abc", "n1", "malformed"},
		{"alg none", "eyJhbGciOiJub25lIn0.eyJzdWIiOiI0MiJ9.", "n1", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := prov.verify(context.Background(), tt.token, tt.nonce)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want == "" && c.Email != "u@example.com":
				t.Errorf("claims %+v", c)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// tamper changes one character of a JWT's payload.
func tamper(jwt string) string {
	parts := strings.Split(jwt, ".")
	b := []byte(parts[1])
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	parts[1] = string(b)
	return strings.Join(parts, ".")
}

func TestDiscoveryRefusesWrongIssuer(t *testing.T) {
	p := fakeoidc.New(t)
	_, err := discover(context.Background(), OIDC{
		Issuer: p.URL + "/", ClientID: "c", ClientSecret: "s", RedirectURL: "http://x", HTTPClient: p.Client(),
	}, loginScopes, time.Now)
	if err == nil || !strings.Contains(err.Error(), "names issuer") {
		t.Errorf("err = %v", err)
	}
	_, err = discover(context.Background(), OIDC{Issuer: p.URL}, loginScopes, time.Now)
	if err == nil || !strings.Contains(err.Error(), "client id") {
		t.Errorf("err = %v", err)
	}
}
