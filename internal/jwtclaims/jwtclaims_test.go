package jwtclaims

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func jwt(payload string) string {
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
}

func TestExpiry(t *testing.T) {
	tests := []struct {
		name, tok, err string
		want           int64
	}{
		{"exp", jwt(`{"exp":1700000000}`), "", 1700000000},
		{"fractional exp", jwt(`{"exp":1700000000.9}`), "", 1700000000},
		{"padded payload", "a." + base64.URLEncoding.EncodeToString([]byte(`{"exp":1}`)) + ".c", "", 1},
		{"two parts", "a.b", "is not a JWT", 0},
		{"bad base64", "a.!!.c", "has a payload that is not base64url", 0},
		{"not JSON", jwt(`[`), "has a payload that is not JSON", 0},
		{"no exp", jwt(`{}`), "has no valid exp claim", 0},
		{"negative exp", jwt(`{"exp":-5}`), "has no valid exp claim", 0},
		{"far future", jwt(`{"exp":1e300}`), "has no valid exp claim", 0},
		{"exp as string", jwt(`{"exp":"1700000000"}`), "has a payload that is not JSON", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expiry(tt.tok)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got.Unix() != tt.want {
				t.Fatalf("Expiry = %v, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestEmail(t *testing.T) {
	if got := Email(jwt(`{"email":"a@b"}`)); got != "a@b" {
		t.Errorf("Email = %q", got)
	}
	if got := Email("junk"); got != "" {
		t.Errorf("Email of junk = %q", got)
	}
}

// FuzzExpiry feeds arbitrary tokens: no panic, no expiry before 1970 or
// beyond the bound, and no error quoting the token.
func FuzzExpiry(f *testing.F) {
	f.Add(jwt(`{"exp":1700000000,"email":"a@b"}`))
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, tok string) {
		exp, err := Expiry(tok)
		if err == nil && (exp.Unix() <= 0 || exp.After(time.Unix(maxExp, 0))) {
			t.Fatalf("accepted exp %v", exp)
		}
		if err != nil && len(tok) > 8 && strings.Contains(err.Error(), tok) {
			t.Fatal("error quotes the token")
		}
		Email(tok)
	})
}
