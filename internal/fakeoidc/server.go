package fakeoidc

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Paths of the endpoints, below the issuer URL.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	AuthorizePath = "/authorize"
	TokenPath     = "/token"
	JWKSPath      = "/jwks"
	RevokePath    = "/revoke"
	UserinfoPath  = "/userinfo"
)

// User is who signs in at the authorization endpoint.
type User struct {
	Subject string
	Email   string
	Picture string
}

// Server is a running fake provider. Its URL is the issuer.
type Server struct {
	URL          string
	ClientID     string
	ClientSecret string

	srv  *httptest.Server
	key  *rsa.PrivateKey
	kid  string
	jwks []byte

	mu        sync.Mutex
	now       func() time.Time
	lifetime  time.Duration
	user      User
	codes     map[string]*codeGrant
	refresh   map[string]User   // live refresh tokens
	access    map[string]access // live access tokens
	redirects []string          // redirect URIs accepted; empty accepts any loopback http URI
	refreshes int
	exchanges int
	revokes   int
}

type codeGrant struct {
	user      User
	redirect  string
	challenge string
	nonce     string
	scope     string
	expires   time.Time
}

type access struct {
	user    User
	expires time.Time
}

// Start runs a provider on loopback with a fresh client id and secret and
// the user "user@example.com".
func Start() (*Server, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("fakeoidc: generating a key: %w", err)
	}
	s := &Server{
		ClientID:     "fake-client-" + random(6) + ".apps.example.com",
		ClientSecret: "fake-secret-" + random(12),
		key:          key,
		kid:          random(8),
		now:          time.Now,
		lifetime:     time.Hour,
		user:         User{Subject: "1000001", Email: "user@example.com", Picture: "https://example.com/pic.png"},
		codes:        map[string]*codeGrant{},
		refresh:      map[string]User{},
		access:       map[string]access{},
	}
	s.jwks, _ = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: s.kid, Algorithm: "RS256", Use: "sig"}}})
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+DiscoveryPath, s.serveDiscovery)
	mux.HandleFunc("GET "+AuthorizePath, s.serveAuthorize)
	mux.HandleFunc("POST "+TokenPath, s.serveToken)
	mux.HandleFunc("GET "+JWKSPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.jwks)
	})
	mux.HandleFunc("POST "+RevokePath, s.serveRevoke)
	mux.HandleFunc("GET "+UserinfoPath, s.serveUserinfo)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s, nil
}

// New starts a provider closed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the provider.
func (s *Server) Close() { s.srv.Close() }

// Client is an HTTP client for the provider.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// SetUser chooses who signs in next.
func (s *Server) SetUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user = u
}

// SetClock sets the provider's clock (for iat/exp and expiries).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetTokenLifetime sets the lifetime of access and ID tokens minted next.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = d
}

// AllowRedirect restricts the accepted redirect URIs to those given.
func (s *Server) AllowRedirect(uris ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirects = append(s.redirects, uris...)
}

// RevokeUser forgets every refresh and access token of the user with
// email, as when the user removes the app's access in their account.
func (s *Server) RevokeUser(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, u := range s.refresh {
		if u.Email == email {
			delete(s.refresh, t)
		}
	}
	for t, a := range s.access {
		if a.user.Email == email {
			delete(s.access, t)
		}
	}
}

// Counts reports the code exchanges, refresh grants and revocations served.
func (s *Server) Counts() (exchanges, refreshes, revokes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exchanges, s.refreshes, s.revokes
}

// LiveRefreshTokens is how many refresh tokens the provider still accepts.
func (s *Server) LiveRefreshTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.refresh)
}

// AccessTokenUser returns the user an access token was issued to, if it is
// live: what a backend learns from the userinfo endpoint.
func (s *Server) AccessTokenUser(tok string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.access[tok]
	if !ok || !s.now().Before(a.expires) {
		return User{}, false
	}
	return a.user, true
}

func (s *Server) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                s.URL,
		"authorization_endpoint":                s.URL + AuthorizePath,
		"token_endpoint":                        s.URL + TokenPath,
		"jwks_uri":                              s.URL + JWKSPath,
		"revocation_endpoint":                   s.URL + RevokePath,
		"userinfo_endpoint":                     s.URL + UserinfoPath,
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
	})
}

// serveAuthorize signs the current user in without asking and sends the
// browser back with a code, or with error=... for a bad request whose
// redirect URI is trustworthy.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	if q.Get("client_id") != s.ClientID {
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	}
	if !s.redirectAllowed(redirect) {
		http.Error(w, "redirect_uri not registered", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(redirect)
	bq := back.Query()
	bq.Set("state", q.Get("state"))
	switch {
	case q.Get("response_type") != "code":
		bq.Set("error", "unsupported_response_type")
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		bq.Set("error", "invalid_request")
	case !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		bq.Set("error", "invalid_scope")
	default:
		code := random(24)
		s.mu.Lock()
		s.codes[code] = &codeGrant{
			user: s.user, redirect: redirect, challenge: q.Get("code_challenge"),
			nonce: q.Get("nonce"), scope: q.Get("scope"), expires: s.now().Add(5 * time.Minute),
		}
		s.mu.Unlock()
		bq.Set("code", code)
	}
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (s *Server) redirectAllowed(uri string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.redirects) > 0 {
		return slices.Contains(s.redirects, uri)
	}
	u, err := url.Parse(uri)
	return err == nil && u.Scheme == "http" && (u.Hostname() == "127.0.0.1" || u.Hostname() == "localhost" || u.Hostname() == "::1")
}

type oauthError struct {
	code   int
	Error  string `json:"error"`
	Detail string `json:"error_description,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_request"})
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	if id != s.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) != 1 {
		writeJSON(w, http.StatusUnauthorized, oauthError{Error: "invalid_client"})
		return
	}
	var body map[string]any
	var e *oauthError
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		body, e = s.exchange(r.PostForm)
	case "refresh_token":
		body, e = s.refreshGrant(r.PostForm.Get("refresh_token"))
	default:
		e = &oauthError{code: http.StatusBadRequest, Error: "unsupported_grant_type"}
	}
	if e != nil {
		writeJSON(w, e.code, e)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) exchange(f url.Values) (map[string]any, *oauthError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	code := f.Get("code")
	g := s.codes[code]
	delete(s.codes, code) // one use, whatever follows
	bad := &oauthError{code: http.StatusBadRequest, Error: "invalid_grant"}
	if g == nil || !s.now().Before(g.expires) || f.Get("redirect_uri") != g.redirect {
		return nil, bad
	}
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		bad.Detail = "code_verifier does not match the challenge"
		return nil, bad
	}
	s.exchanges++
	rt := "fake-refresh-" + random(24)
	s.refresh[rt] = g.user
	body := s.mintLocked(g.user, g.nonce)
	body["refresh_token"] = rt
	body["scope"] = g.scope
	return body, nil
}

func (s *Server) refreshGrant(rt string) (map[string]any, *oauthError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.refresh[rt]
	if !ok {
		return nil, &oauthError{code: http.StatusBadRequest, Error: "invalid_grant", Detail: "Token has been expired or revoked."}
	}
	s.refreshes++
	return s.mintLocked(u, ""), nil
}

// mintLocked makes an access token and an ID token for u.
func (s *Server) mintLocked(u User, nonce string) map[string]any {
	now := s.now()
	at := "fake-access-" + random(24)
	s.access[at] = access{user: u, expires: now.Add(s.lifetime)}
	claims := map[string]any{
		"iss":            s.URL,
		"aud":            s.ClientID,
		"azp":            s.ClientID,
		"sub":            u.Subject,
		"email":          u.Email,
		"email_verified": true,
		"iat":            now.Unix(),
		"exp":            now.Add(s.lifetime).Unix(),
	}
	if u.Picture != "" {
		claims["picture"] = u.Picture
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	return map[string]any{
		"access_token": at,
		"token_type":   "Bearer",
		"expires_in":   int(s.lifetime / time.Second),
		"id_token":     s.sign(claims),
	}
}

// SignIDToken signs arbitrary claims with the provider's key, for tests
// of ID-token checks.
func (s *Server) SignIDToken(claims map[string]any) string { return s.sign(claims) }

func (s *Server) sign(claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: s.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", s.kid))
	if err != nil {
		panic(err) // a valid RSA key and algorithm: cannot fail
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		panic(err)
	}
	return tok
}

func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	tok := r.PostForm.Get("token")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokes++
	delete(s.refresh, tok)
	delete(s.access, tok)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	u, live := s.AccessTokenUser(tok)
	if !ok || !live {
		writeJSON(w, http.StatusUnauthorized, oauthError{Error: "invalid_token"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sub": u.Subject, "email": u.Email, "email_verified": true, "picture": u.Picture})
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
