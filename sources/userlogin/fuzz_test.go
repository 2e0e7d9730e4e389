package userlogin

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzPasted feeds arbitrary pasted text and redirect queries to the
// login's parsers: they must never panic, and only a query with the right
// state may yield a code.
func FuzzPasted(f *testing.F) {
	const state = "the-state"
	f.Add("http://127.0.0.1:1234/?code=abc&state=the-state")
	f.Add("/?error=access_denied&state=the-state")
	f.Add("4/0AbCdEf")
	f.Add("http://[::1/%zz")
	f.Fuzz(func(t *testing.T, line string) {
		results := make(chan callback, 1)
		readPasted(strings.NewReader(line), state, results)
		select {
		case cb := <-results:
			if cb.err == nil && cb.code == "" {
				t.Fatal("a callback with neither code nor error")
			}
		default:
		}
		if u, err := url.Parse(line); err == nil {
			if cb, ok := parseCallback(u.Query(), state); ok && u.Query().Get("state") != state {
				t.Fatalf("accepted state %q: %+v", u.Query().Get("state"), cb)
			}
		}
	})
}
