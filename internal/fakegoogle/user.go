package fakegoogle

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// Paths of the user-login endpoints, relative to the Server's URL.
const (
	AuthPath      = "/o/oauth2/v2/auth"
	RevokePath    = "/revoke"
	TokenInfoPath = "/tokeninfo"
)

// DefaultUser is who "signs in" at the authorization endpoint unless
// SetUser names someone else.
const DefaultUser = "user@example.com"

// userState is the Server's memory of OAuth clients, codes and the
// refresh tokens of users' logins.
type userState struct {
	email   string
	deny    bool              // the user refuses consent
	clients map[string]string // client id -> secret
	codes   map[string]*codeGrant
	refresh map[string]*codeGrant // refresh token -> its grant
	actAs   map[[2]string]bool    // (caller, target) -> may impersonate
	iamFail Fault
	iamLeft int
}

// codeGrant is what one consent granted.
type codeGrant struct {
	clientID, redirectURI, challenge string
	email                            string
	scopes                           []string
	used, revoked                    bool
}

// AddClient registers an OAuth client (an "installed app") the
// authorization and token endpoints accept.
func (s *Server) AddClient(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userInit()
	s.user.clients[id] = secret
}

// SetUser sets the email of the user who consents at the authorization
// endpoint; deny makes them refuse (the redirect carries
// error=access_denied).
func (s *Server) SetUser(email string, deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userInit()
	s.user.email, s.user.deny = email, deny
}

// RefreshTokenLive reports whether rt was issued and is not revoked.
func (s *Server) RefreshTokenLive(rt string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.user.refresh[rt]
	return g != nil && !g.revoked
}

// RevokeAll revokes every refresh token, as a user removing the app's
// access would.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.user.refresh {
		g.revoked = true
	}
}

// AuthURL is the authorization endpoint a browser is sent to.
func (s *Server) AuthURL() string { return s.URL + AuthPath }

// RevokeURL is the token revocation endpoint.
func (s *Server) RevokeURL() string { return s.URL + RevokePath }

// TokenInfoURL is the tokeninfo endpoint.
func (s *Server) TokenInfoURL() string { return s.URL + TokenInfoPath }

func (s *Server) userInit() {
	if s.user.clients == nil {
		s.user.clients = map[string]string{}
		s.user.codes = map[string]*codeGrant{}
		s.user.refresh = map[string]*codeGrant{}
		s.user.actAs = map[[2]string]bool{}
		if s.user.email == "" {
			s.user.email = DefaultUser
		}
	}
}

// routeUserAndIAM adds the user-login and IAM Credentials routes.
func (s *Server) routeUserAndIAM(mux *http.ServeMux) {
	s.mu.Lock()
	s.userInit()
	s.mu.Unlock()
	// A browser (or a test's HTTP client following redirects) is sent
	// here by `credbroker login`.
	mux.HandleFunc("GET "+AuthPath, s.serveAuthorize)
	// `credbroker logout` revokes the refresh token here.
	mux.HandleFunc("POST "+RevokePath, s.serveRevoke)
	// Tests and tools ask who a token belongs to.
	mux.HandleFunc("GET "+TokenInfoPath, s.serveTokenInfo)
	mux.HandleFunc("POST "+TokenInfoPath, s.serveTokenInfo)
	// Impersonation: generateAccessToken and generateIdToken.
	mux.HandleFunc("POST "+IAMPrefix, s.serveIAM)
}

// serveAuthorize plays the user's consent: it checks the request the way
// Google does for an installed app with a loopback redirect and PKCE, then
// redirects back with a code at once.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail := func(msg string) { http.Error(w, "Error 400: invalid_request\n"+msg, http.StatusBadRequest) }
	s.mu.Lock()
	_, known := s.user.clients[q.Get("client_id")]
	email, deny := s.user.email, s.user.deny
	s.mu.Unlock()
	if !known {
		http.Error(w, "Error 401: invalid_client\nThe OAuth client was not found.", http.StatusUnauthorized)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme != "http" || (redirect.Hostname() != "127.0.0.1" && redirect.Hostname() != "localhost" && redirect.Hostname() != "::1") {
		fail("redirect_uri must be a loopback http URL")
		return
	}
	if q.Get("response_type") != "code" {
		fail("response_type must be code")
		return
	}
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
		fail("PKCE with S256 is required")
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	if len(scopes) == 0 {
		fail("Missing required parameter: scope")
		return
	}
	back := redirect.Query()
	if st := q.Get("state"); st != "" {
		back.Set("state", st)
	}
	if deny {
		back.Set("error", "access_denied")
	} else {
		code := "fake-code-" + randomB64(24)
		s.mu.Lock()
		s.user.codes[code] = &codeGrant{
			clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"),
			challenge: q.Get("code_challenge"), email: email, scopes: scopes,
		}
		s.mu.Unlock()
		back.Set("code", code)
		back.Set("scope", strings.Join(scopes, " "))
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// clientAuth checks the client's credentials, in the form or in basic
// auth, in constant time.
func (s *Server) clientAuth(r *http.Request) (string, *oauthError) {
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	s.mu.Lock()
	want, ok := s.user.clients[id]
	s.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		return "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client", description: "Unauthorized"}
	}
	return id, nil
}

func (s *Server) exchangeCode(r *http.Request) ([]byte, *oauthError) {
	client, oerr := s.clientAuth(r)
	if oerr != nil {
		return nil, oerr
	}
	code := r.PostForm.Get("code")
	s.mu.Lock()
	g := s.user.codes[code]
	if g != nil && g.used {
		g = nil
	}
	if g != nil {
		g.used = true
	}
	s.mu.Unlock()
	if g == nil || g.clientID != client {
		return nil, invalidGrant("Malformed auth code.")
	}
	if r.PostForm.Get("redirect_uri") != g.redirectURI {
		return nil, &oauthError{status: http.StatusBadRequest, code: "redirect_uri_mismatch", description: "Bad Request"}
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		return nil, invalidGrant("Invalid code verifier.")
	}
	rt := "fake-rt-" + randomB64(32)
	s.mu.Lock()
	s.user.refresh[rt] = g
	s.mu.Unlock()
	return s.userToken(g, g.scopes, rt, "authorization_code")
}

func (s *Server) refresh(r *http.Request) ([]byte, *oauthError) {
	client, oerr := s.clientAuth(r)
	if oerr != nil {
		return nil, oerr
	}
	s.mu.Lock()
	g := s.user.refresh[r.PostForm.Get("refresh_token")]
	s.mu.Unlock()
	if g == nil || g.revoked || g.clientID != client {
		return nil, invalidGrant("Token has been expired or revoked.")
	}
	scopes := g.scopes
	if sc := strings.Fields(r.PostForm.Get("scope")); len(sc) > 0 {
		for _, want := range sc {
			if !slices.Contains(g.scopes, want) {
				return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_scope", description: "Bad Request"}
			}
		}
		scopes = sc
	}
	return s.userToken(g, scopes, "", "refresh_token")
}

// userToken answers a user grant: an access token, the refresh token on
// the first exchange, and an ID token whose audience is the OAuth client
// when the login asked for openid or email.
func (s *Server) userToken(g *codeGrant, scopes []string, rt, grant string) ([]byte, *oauthError) {
	s.mu.Lock()
	s.serial++
	tok := fmt.Sprintf("fake-user-at-%d-%s", s.serial, randomB64(24))
	lifetime := s.lifetime
	now := time.Now()
	secs := int64(lifetime / time.Second)
	s.mints = append(s.mints, Mint{
		Email: g.email, Scopes: slices.Clone(scopes), Token: tok, Grant: grant, ClientID: g.clientID,
		Expiry: now.Add(time.Duration(secs) * time.Second),
	})
	s.mu.Unlock()
	resp := map[string]any{
		"access_token": tok, "expires_in": secs, "token_type": "Bearer", "scope": strings.Join(scopes, " "),
	}
	if rt != "" {
		resp["refresh_token"] = rt
	}
	if slices.Contains(g.scopes, "openid") || slices.Contains(g.scopes, "email") ||
		slices.Contains(g.scopes, "https://www.googleapis.com/auth/userinfo.email") {
		iat := now.Truncate(time.Second)
		idt, err := jwt.Signed(s.signer).Claims(idClaims{
			Issuer: Issuer, Audience: g.clientID, AuthorizedBy: g.clientID, Subject: userSub(g.email),
			Email: g.email, EmailVerified: true, IssuedAt: iat.Unix(), Expiry: iat.Add(lifetime.Truncate(time.Second)).Unix(),
		}).Serialize()
		if err != nil {
			return nil, &oauthError{status: http.StatusInternalServerError, code: "internal_failure", description: "signing failed"}
		}
		resp["id_token"] = idt
	}
	body, _ := json.Marshal(resp)
	return body, nil
}

// userSub is a stable numeric-looking subject for an email.
func userSub(email string) string {
	sum := sha256.Sum256([]byte(email))
	n := uint64(0)
	for _, b := range sum[:8] {
		n = n<<8 | uint64(b)
	}
	return "1" + strconv.FormatUint(n%1e18, 10)
}

func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeError(w, &oauthError{status: http.StatusBadRequest, code: "invalid_request"})
		return
	}
	tok := r.Form.Get("token")
	s.mu.Lock()
	g := s.user.refresh[tok]
	if g != nil && !g.revoked {
		g.revoked = true
	} else {
		g = nil
	}
	s.mu.Unlock()
	if g == nil {
		writeError(w, &oauthError{status: http.StatusBadRequest, code: "invalid_token", description: "Token expired or revoked"})
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write([]byte("{}"))
}

// lookupToken finds a live access token this Server minted.
func (s *Server) lookupToken(tok string) (Mint, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.mints {
		if m.Token == tok && m.Audience == "" && time.Now().Before(m.Expiry) {
			return m, true
		}
	}
	return Mint{}, false
}

func (s *Server) serveTokenInfo(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	m, ok := s.lookupToken(r.Form.Get("access_token"))
	if !ok {
		writeError(w, &oauthError{status: http.StatusBadRequest, code: "invalid_token", description: "Invalid Value"})
		return
	}
	aud := m.ClientID
	if aud == "" {
		aud = m.KeyID
	}
	body, _ := json.Marshal(map[string]string{
		"azp": aud, "aud": aud, "scope": strings.Join(m.Scopes, " "),
		"exp":            strconv.FormatInt(m.Expiry.Unix(), 10),
		"expires_in":     strconv.FormatInt(int64(time.Until(m.Expiry)/time.Second), 10),
		"email":          m.Email,
		"email_verified": "true",
	})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(body)
}
