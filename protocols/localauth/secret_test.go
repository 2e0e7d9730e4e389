package localauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// TestGivenSecret checks that a Secret set before Start is the one
// clients must send, as a daemon restoring a session needs.
func TestGivenSecret(t *testing.T) {
	secret := []byte("0SessionTokenValueInBase62abcdefghijklmnopqrs")
	s := &Server{Tokens: &fakeTokens{}, Accounts: []Account{{ID: "task"}}, DefaultAccount: "task", Secret: secret, Logger: quiet}
	info, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !bytes.Equal(info.Secret, secret) {
		t.Fatal("Info.Secret is not the given secret")
	}
	secret[0] = 'X' // the server keeps its own copy
	tests := []struct {
		name   string
		secret []byte
		ok     bool
	}{
		{"given secret", []byte("0SessionTokenValueInBase62abcdefghijklmnopqrs"), true},
		{"other secret", []byte("XSessionTokenValueInBase62abcdefghijklmnopqrs"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			la := info.LocalAuth()
			la.Secret = tt.secret
			cl, err := NewClient(la)
			if err != nil {
				t.Fatal(err)
			}
			_, err = cl.AccessToken(context.Background(), []string{"scope"}, time.Minute)
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestRecentRequestIsNoShortcut shows that keeping the decoding of the
// latest good request changes no answer: the same body again is served
// the same, a body that differs in the secret alone is refused, and the
// same body on the other method is read as that method's.
func TestRecentRequestIsNoShortcut(t *testing.T) {
	_, info, fake := startFake(t)
	good := `{"scopes":["b","a"],"secret":"{{SECRET}}","account_id":"task"}`
	wrong := base64.StdEncoding.EncodeToString(otherSecret(info.Secret))
	tests := []struct {
		name     string
		req      rawReq
		status   int
		body     string
		wantCall string
	}{
		{"first", rawReq{body: good}, 200, `{"access_token":"tok[a,b]lt=3m0s","expiry":1795375074}` + "\n", `access task ["a" "b"] 3m0s`},
		{"again", rawReq{body: good}, 200, `{"access_token":"tok[a,b]lt=3m0s","expiry":1795375074}` + "\n", `access task ["a" "b"] 3m0s`},
		{"same length, wrong secret", rawReq{body: strings.Replace(good, "{{SECRET}}", wrong, 1)}, 403, "Invalid secret.\n", ""},
		{"same body, GetIDToken", rawReq{uri: "/rpc/LuciLocalAuthService.GetIDToken", body: good}, 400, `Bad request: field "audience" is required.` + "\n", ""},
		{"other scopes", rawReq{body: strings.Replace(good, `"b","a"`, `"c"`, 1)}, 200, `{"access_token":"tok[c]lt=3m0s","expiry":1795375074}` + "\n", `access task ["c"] 3m0s`},
		{"first body once more", rawReq{body: good}, 200, `{"access_token":"tok[a,b]lt=3m0s","expiry":1795375074}` + "\n", `access task ["a" "b"] 3m0s`},
	}
	for _, tt := range tests {
		raw, half := tt.req.bytes(info)
		fake.record("")
		status, body := parseResponse(t, exchange(t, info.Port, raw, half))
		if status != tt.status || body != tt.body {
			t.Errorf("%s: got %d %q, want %d %q", tt.name, status, body, tt.status, tt.body)
		}
		if got := fake.lastCall(); got != tt.wantCall {
			t.Errorf("%s: token core asked %q, want %q", tt.name, got, tt.wantCall)
		}
	}
}

// otherSecret is secret with its first byte changed, so the encoded
// bodies have the same length.
func otherSecret(secret []byte) []byte {
	s := bytes.Clone(secret)
	s[0] ^= 1
	return s
}
