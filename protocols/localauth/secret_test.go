package localauth

import (
	"bytes"
	"context"
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
