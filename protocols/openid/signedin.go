package openid

import "net/http"

// LocalOwner is who SignedIn reports in local mode when the broker's
// default account has no email.
const LocalOwner = "owner:local"

// SignedIn tells who is signed in for r, for pages beside /auth/openid/
// (a dashboard) that decide access by it. Valid after Start.
//
// In local mode everyone who reaches the server is the broker's owner,
// whose tokens /state serves anyway: SignedIn reports the email of the
// broker's default account (LocalOwner when it has none) and true. In
// production mode it reports the email of the browser session r's cookie
// refers to, when the cookie opens with the server's keys, has not
// expired and its session is still in the Store; otherwise "", false.
// It never writes: a bad cookie is cleared by the endpoints, not here.
func (s *Server) SignedIn(r *http.Request) (email string, ok bool) {
	if s.mode == Local {
		if acct := s.Tokens.Default(); acct != "" {
			if e, err := s.Tokens.Email(acct); err == nil && e != "" {
				return e, true
			}
		}
		return LocalOwner, true
	}
	if s.mode != Production {
		return "", false // not started
	}
	ref, ok, _ := s.openSession(r)
	if !ok {
		return "", false
	}
	sess, err := s.Store.Get(r.Context(), storeID(ref.ref), s.now())
	if err != nil || sess.Login || sess.Email == "" {
		return "", false
	}
	return sess.Email, true
}
