package gcemeta

import (
	"strings"
	"testing"
)

// The token answer encoded directly, and again from the kept copy, is
// what toJSON makes of its map, for plain tokens and ones that need
// escaping.
func TestTokenJSONMatchesMap(t *testing.T) {
	s := &Server{}
	for _, tok := range []string{"ya29.plain-token_0123", "a<b>&", `q"b\s`, "caf\u00e9\u2028", "ctl\x01", "bad\xff", strings.Repeat("x", 2000)} {
		for _, secs := range []int64{3599, 3599, 1} {
			ta := tokenAnswer{token: tok, expiresIn: secs}
			if got, want := string(s.tokenJSON(ta)), string(toJSON(ta.asMap())); got != want {
				t.Errorf("%q, %d: %s, want %s", tok, secs, got, want)
			}
		}
	}
}
