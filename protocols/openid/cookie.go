package openid

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"time"
)

// Cookie names. Under https the __Host- prefix makes browsers insist on
// Secure, Path=/ and no Domain, so no sibling subdomain can plant one.
const (
	sessionCookie = "credbroker_session"
	loginCookie   = "credbroker_login"
	hostPrefix    = "__Host-"
)

// Associated data of the sealed values, so one kind never opens as another.
var (
	adSession = []byte("openid session cookie v1")
	adLogin   = []byte("openid login cookie v1")
)

// refLen is the size of a session's random reference: 256 bits.
const refLen = 32

// sessionRef is what the session cookie carries: a random reference to a
// Store record and when the cookie stops being accepted.
type sessionRef struct {
	ref     []byte
	expires time.Time
}

func (s *Server) cookieName(base string) string {
	if s.secure {
		return hostPrefix + base
	}
	return base
}

func (s *Server) sealSession(ref sessionRef) string {
	pt := make([]byte, 1+8, 1+8+len(ref.ref))
	pt[0] = 1
	binary.BigEndian.PutUint64(pt[1:], uint64(ref.expires.Unix()))
	pt = append(pt, ref.ref...)
	return s.keys.seal(pt, adSession)
}

// openSession returns the reference in r's session cookie, if there is
// one that opens and has not expired. present reports whether a cookie
// was sent at all, so a bad one can be cleared.
func (s *Server) openSession(r *http.Request) (ref sessionRef, ok, present bool) {
	c, err := r.Cookie(s.cookieName(sessionCookie))
	if err != nil {
		return sessionRef{}, false, false
	}
	pt, err := s.keys.open(c.Value, adSession)
	if err != nil || len(pt) != 1+8+refLen || pt[0] != 1 {
		return sessionRef{}, false, true
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(pt[1:9])), 0)
	if !s.now().Before(exp) {
		return sessionRef{}, false, true
	}
	return sessionRef{ref: pt[9:], expires: exp}, true, true
}

// storeID is the Store key for a reference or a state: its hash, so a
// reader of the store cannot rebuild a cookie (nor could one without the
// keys).
func storeID(secret []byte) string {
	h := sha256.Sum256(secret)
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func (s *Server) setCookie(w http.ResponseWriter, base, value string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieName(base),
		Value:    value,
		Path:     "/",
		Expires:  expires.UTC(),
		MaxAge:   int(expires.Sub(s.now()).Seconds()),
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearCookie(w http.ResponseWriter, base string) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieName(base),
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// loginState is what the login cookie carries between /login and
// /callback: it binds the sign-in to the browser that started it.
type loginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Return   string `json:"r"`
	Expires  int64  `json:"e"`
}

func (s *Server) sealLogin(l loginState) string {
	b, _ := json.Marshal(l) // plain strings and an int: cannot fail
	return s.keys.seal(b, adLogin)
}

func (s *Server) openLogin(r *http.Request) (loginState, bool) {
	c, err := r.Cookie(s.cookieName(loginCookie))
	if err != nil {
		return loginState{}, false
	}
	pt, err := s.keys.open(c.Value, adLogin)
	if err != nil {
		return loginState{}, false
	}
	var l loginState
	if json.Unmarshal(pt, &l) != nil || !s.now().Before(time.Unix(l.Expires, 0)) {
		return loginState{}, false
	}
	return l, true
}
