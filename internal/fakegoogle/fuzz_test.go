package fakegoogle

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzTokenEndpoint posts arbitrary bodies: the fake must refuse them with
// an OAuth error (400, or 401 for a user grant without a known client) and
// never mint.
func FuzzTokenEndpoint(f *testing.F) {
	s := New(f)
	f.Add("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c")
	f.Add("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=eyJhbGciOiJSUzI1NiJ9.e30.")
	f.Add("grant_type=refresh_token")
	f.Add("%zz")
	f.Add("grant_type=authorization_code&code=x&client_id=c&client_secret=s")
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", TokenPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		s.serveToken(rec, req)
		if (rec.Code != http.StatusBadRequest && rec.Code != http.StatusUnauthorized) || !strings.HasPrefix(rec.Body.String(), `{"error":"`) {
			t.Fatalf("got %d %s", rec.Code, rec.Body)
		}
		if len(s.Mints()) != 0 {
			t.Fatal("minted for a fuzzed request")
		}
	})
}
