package openid

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"credbroker/broker"

	"golang.org/x/oauth2"
)

// Paths of the endpoints.
const (
	PathLogin    = "/auth/openid/login"
	PathCallback = "/auth/openid/callback"
	PathLogout   = "/auth/openid/logout"
	PathState    = "/auth/openid/state"
)

// routes lists every path the server answers, in one place.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// The app's pages send the browser here to sign in (top-level
	// navigation, so the session cookie can be set).
	mux.Handle("GET "+PathLogin, s.handle(s.login))
	// The identity provider sends the browser back here with a code.
	mux.Handle("GET "+PathCallback, s.handle(s.callback))
	// The app's pages send the browser here to sign out.
	mux.Handle("GET "+PathLogout, s.handle(s.logout))
	// The app's JavaScript fetches this (credentials: "same-origin") for
	// the identity and fresh tokens.
	mux.Handle("GET "+PathState, s.handle(s.state))
	// Anything else under /auth/openid/ is ours and does not exist.
	mux.Handle("/auth/openid/", s.handle(func(http.ResponseWriter, *http.Request) error {
		return httpErr(http.StatusNotFound, "no such endpoint")
	}))
	// Everything else belongs to the app or the dashboard.
	mux.Handle("/", s.Home)
	return s.guard(mux)
}

// guard applies the checks every request passes, whatever its path.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			writeError(w, httpErr(http.StatusForbidden, "unexpected Host header"))
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// statusError is an error with the status and plain-text message the
// client gets. Messages never hold a secret.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func httpErr(code int, format string, args ...any) error {
	return &statusError{code: code, msg: fmt.Sprintf(format, args...)}
}

// handle adapts a handler that returns an error.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			var se *statusError
			if !errors.As(err, &se) {
				s.log.Error("openid: request failed", "path", r.URL.Path, "err", err)
				err = httpErr(http.StatusInternalServerError, "internal error: %v", err)
			}
			writeError(w, err)
		}
	})
}

// writeError is the one place errors are written: a status and one line
// of plain text, as the protocol's clients expect.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var se *statusError
	if errors.As(err, &se) {
		code = se.code
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, err.Error())
}

func redirect(w http.ResponseWriter, to string) {
	// Written by hand: http.Redirect would rewrite the already checked
	// path.
	w.Header().Set("Location", to)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

// randomString returns n random bytes in base64url.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	back, err := returnPath(r.URL.Query().Get("r"))
	if err != nil {
		return httpErr(http.StatusBadRequest, "%v", err)
	}
	if s.mode == Local {
		// Nothing to ask anyone: the broker's own account is the user.
		if err := s.startSession(r.Context(), w, Session{Subject: "local"}, nil); err != nil {
			return err
		}
		s.log.Info("openid: local sign-in")
		redirect(w, back)
		return nil
	}
	state := randomString(32)
	l := loginState{
		State:    state,
		Nonce:    randomString(32),
		Verifier: oauth2.GenerateVerifier(),
		Return:   back,
		Expires:  s.now().Add(loginTTL).Unix(),
	}
	now := s.now()
	if err := s.Store.Create(r.Context(), Session{ID: storeID([]byte(state)), Login: true, Created: now, Expires: now.Add(loginTTL), LastUsed: now}); err != nil {
		return fmt.Errorf("session store: %w", err)
	}
	s.setCookie(w, loginCookie, s.sealLogin(l), now.Add(loginTTL))
	redirect(w, s.provider.authURL(state, l.Nonce, l.Verifier))
	return nil
}

// startSession creates a session record and sets its cookie. seed, when
// set, is the grant that came with the sign-in: it serves the first /state
// without another call to the provider.
func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, sess Session, seed *grant) error {
	now := s.now()
	ref := make([]byte, refLen)
	rand.Read(ref)
	sess.ID = storeID(ref)
	sess.Created, sess.LastUsed = now, now
	sess.Expires = now.Add(s.SessionTTL)
	if seed != nil {
		sess.RefreshToken = []byte(s.keys.seal([]byte(seed.refresh), refreshAD(sess.ID)))
	}
	if err := s.Store.Create(ctx, sess); err != nil {
		return fmt.Errorf("session store: %w", err)
	}
	if seed != nil {
		src := &userSource{s: s, id: sess.ID, email: sess.Email, access: seed.access, idTok: seed.id}
		if err := s.addUser(sess.ID, src); err != nil {
			return err
		}
	}
	s.setCookie(w, sessionCookie, s.sealSession(sessionRef{ref: ref, expires: sess.Expires}), sess.Expires)
	return nil
}

func (s *Server) callback(w http.ResponseWriter, r *http.Request) error {
	if s.mode == Local {
		return httpErr(http.StatusNotFound, "local mode has no identity provider to come back from")
	}
	q := r.URL.Query()
	l, ok := s.openLogin(r)
	// The login cookie is single use whatever happens next.
	s.clearCookie(w, loginCookie)
	if !ok {
		return httpErr(http.StatusBadRequest, "no sign-in in progress in this browser (it expired, or came from another site)")
	}
	state := q.Get("state")
	if state == "" || !equalSecret(state, l.State) {
		return httpErr(http.StatusBadRequest, "the sign-in state does not match this browser")
	}
	// One use per state, even across servers sharing the store.
	fresh, err := s.Store.Delete(r.Context(), storeID([]byte(state)))
	if err != nil {
		return fmt.Errorf("session store: %w", err)
	}
	if !fresh {
		return httpErr(http.StatusBadRequest, "this sign-in was already used")
	}
	if e := q.Get("error"); e != "" {
		return httpErr(http.StatusForbidden, "the identity provider refused the sign-in: %.100q", e)
	}
	code := q.Get("code")
	if code == "" {
		return httpErr(http.StatusBadRequest, "no authorization code")
	}
	g, err := s.provider.exchange(r.Context(), code, l.Verifier, l.Nonce)
	if err != nil {
		if broker.IsTransient(err) {
			return err
		}
		s.log.Warn("openid: sign-in refused", "err", err)
		return httpErr(http.StatusForbidden, "sign-in failed: %v", err)
	}
	if g.refresh == "" {
		return httpErr(http.StatusForbidden, "the identity provider gave no refresh token")
	}
	sess := Session{Subject: g.claims.Subject, Email: g.claims.Email, Picture: g.claims.Picture}
	if err := s.startSession(r.Context(), w, sess, &g); err != nil {
		return err
	}
	s.log.Info("openid: signed in", "email", sess.Email)
	redirect(w, l.Return)
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	back, err := returnPath(r.URL.Query().Get("r"))
	if err != nil {
		return httpErr(http.StatusBadRequest, "%v", err)
	}
	if ref, ok, present := s.openSession(r); ok {
		id := storeID(ref.ref)
		sess, err := s.Store.Get(r.Context(), id, s.now())
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("session store: %w", err)
		}
		if _, err := s.Store.Delete(r.Context(), id); err != nil {
			return fmt.Errorf("session store: %w", err)
		}
		s.dropUser(id)
		if err == nil && s.provider != nil && len(sess.RefreshToken) > 0 {
			s.revoke(r.Context(), sess)
		}
		s.log.Info("openid: signed out", "email", sess.Email)
		s.clearCookie(w, sessionCookie)
	} else if present {
		s.clearCookie(w, sessionCookie)
	}
	redirect(w, back)
	return nil
}

// revoke tells the provider the refresh token is no longer needed, so a
// copy of the store taken later holds nothing usable.
func (s *Server) revoke(ctx context.Context, sess Session) {
	rt, err := s.keys.open(string(sess.RefreshToken), refreshAD(sess.ID))
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.provider.revoke(ctx, string(rt)); err != nil {
		s.log.Warn("openid: revoking the refresh token at sign-out failed", "err", err)
	}
}

// stateResponse is /state's JSON; the field names and order are the
// protocol's.
type stateResponse struct {
	Identity             string `json:"identity"`
	Email                string `json:"email,omitempty"`
	Picture              string `json:"picture,omitempty"`
	AccessToken          string `json:"accessToken,omitempty"`
	AccessTokenExpiry    int64  `json:"accessTokenExpiry,omitempty"`
	AccessTokenExpiresIn int64  `json:"accessTokenExpiresIn,omitempty"`
	IDToken              string `json:"idToken,omitempty"`
	IDTokenExpiry        int64  `json:"idTokenExpiry,omitempty"`
	IDTokenExpiresIn     int64  `json:"idTokenExpiresIn,omitempty"`
}

// Anonymous is the identity /state reports without a session.
const Anonymous = "anonymous:anonymous"

func (s *Server) state(w http.ResponseWriter, r *http.Request) error {
	// No page of another site has a reason to read tokens; a browser
	// says when one tries.
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return httpErr(http.StatusForbidden, "cross-site requests are refused")
	}
	resp, err := s.stateOf(w, r)
	if err != nil {
		return err
	}
	body, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.Write(append(body, '\n'))
	return nil
}

func (s *Server) stateOf(w http.ResponseWriter, r *http.Request) (stateResponse, error) {
	anon := stateResponse{Identity: Anonymous}
	ref, ok, present := s.openSession(r)
	if !ok {
		if present {
			s.clearCookie(w, sessionCookie)
		}
		return anon, nil
	}
	ctx := r.Context()
	now := s.now()
	sess, err := s.Store.Get(ctx, storeID(ref.ref), now)
	if errors.Is(err, ErrNotFound) || (err == nil && sess.Login) {
		s.clearCookie(w, sessionCookie)
		return anon, nil
	}
	if err != nil {
		return anon, fmt.Errorf("session store: %w", err)
	}
	if now.Sub(sess.LastUsed) >= touchEvery {
		if err := s.Store.Touch(ctx, sess.ID, now); err != nil && !errors.Is(err, ErrNotFound) {
			s.log.Warn("openid: recording last use failed", "err", err)
		}
	}
	access, id, email, err := s.tokensFor(ctx, sess)
	if errors.Is(err, errRevoked) {
		s.log.Info("openid: sign-in no longer accepted by the provider; session ended", "email", sess.Email)
		if _, err := s.Store.Delete(ctx, sess.ID); err != nil {
			s.log.Warn("openid: deleting a revoked session failed", "err", err)
		}
		s.dropUser(sess.ID)
		s.clearCookie(w, sessionCookie)
		return anon, nil
	}
	if err != nil {
		return anon, err
	}
	return stateResponse{
		Identity:             "user:" + email,
		Email:                email,
		Picture:              sess.Picture,
		AccessToken:          access.Value,
		AccessTokenExpiry:    access.Expiry.Unix(),
		AccessTokenExpiresIn: int64(access.Lifetime(now) / time.Second),
		IDToken:              id.Value,
		IDTokenExpiry:        id.Expiry.Unix(),
		IDTokenExpiresIn:     int64(id.Lifetime(now) / time.Second),
	}, nil
}

// tokensFor gets the session's tokens through the broker: the default
// account in local mode, the session's own account in production.
func (s *Server) tokensFor(ctx context.Context, sess Session) (access, id broker.Token, email string, err error) {
	if s.mode == Local {
		acct := s.Tokens.Default()
		if acct == "" {
			return access, id, "", errors.New("the broker has no default account")
		}
		email, err = s.Tokens.Email(acct)
		if err != nil {
			return access, id, "", err
		}
		if email == "" {
			email = acct
		}
		if access, err = s.Tokens.AccessToken(ctx, acct, s.scopes, MinTokenLifetime); err != nil {
			return access, id, "", err
		}
		id, err = s.Tokens.IDToken(ctx, acct, s.audience, MinTokenLifetime)
		return access, id, email, err
	}
	acct := userAccount(sess.ID)
	if err := s.addUser(sess.ID, &userSource{s: s, id: sess.ID, email: sess.Email}); err != nil {
		return access, id, "", err
	}
	if access, err = s.UserTokens.AccessToken(ctx, acct, s.scopes, MinTokenLifetime); err != nil {
		return access, id, "", err
	}
	id, err = s.UserTokens.IDToken(ctx, acct, s.audience, MinTokenLifetime)
	return access, id, sess.Email, err
}

func userAccount(storeID string) string { return "browser:" + storeID }

// accountRemover is implemented by token cores that can forget an
// account (*broker.Broker does), so ended browser sessions leave nothing
// behind in the cache.
type accountRemover interface {
	RemoveAccount(id string)
}

// dropUser forgets a browser session's account and its cached tokens.
func (s *Server) dropUser(id string) {
	s.usersMu.Lock()
	delete(s.users, id)
	s.usersMu.Unlock()
	if r, ok := s.UserTokens.(accountRemover); ok {
		r.RemoveAccount(userAccount(id))
	}
}

// addUser gives a browser session its account in UserTokens, once per
// server: the session may have signed in through another server sharing
// the store.
func (s *Server) addUser(id string, src *userSource) error {
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	if s.users[id] {
		return nil
	}
	if err := s.UserTokens.AddAccount(userAccount(id), src); err != nil {
		return err
	}
	s.users[id] = true
	return nil
}
