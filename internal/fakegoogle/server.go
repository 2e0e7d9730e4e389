package fakegoogle

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Paths the Server answers, relative to its URL.
const (
	TokenPath = "/token"
	CertsPath = "/oauth2/v3/certs"
)

// Issuer is the iss of the ID tokens the Server signs. It is Google's own
// issuer so that client libraries that check it accept the tokens; they
// still never verify against Google's keys, only against JWKS.
const Issuer = "https://accounts.google.com"

// JWTBearerGrant is the grant_type of a service-account token request.
const JWTBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// DefaultTokenLifetime is how long minted tokens live unless
// SetTokenLifetime says otherwise; it is what Google gives.
const DefaultTokenLifetime = time.Hour

// clockSkew is how far in the future an assertion's iat may be.
const clockSkew = time.Minute

// Mint records one token the Server handed out.
type Mint struct {
	Email    string   // the service account (the assertion's iss)
	KeyID    string   // the private_key_id that signed the assertion
	Scopes   []string // for an access token, as requested
	Audience string   // for an ID token
	Subject  string   // the assertion's sub, if any (domain-wide delegation)
	Token    string   // the access token or ID token returned
	Expiry   time.Time
	// Grant says how the token was obtained: "jwt-bearer" (a key),
	// "authorization_code" or "refresh_token" (a user's login, Email is
	// the user), or "impersonation" (IAM Credentials; Email is the
	// impersonated account and Actor the caller).
	Grant    string
	ClientID string // the OAuth client of a user's login
	Actor    string // the caller of an impersonation
}

// Fault makes the token endpoint misbehave. The zero Fault is none.
type Fault struct {
	// Status, when not zero, is returned instead of a token. For 4xx the
	// body is {"error":Error,"error_description":Description}; Error
	// defaults to invalid_grant for 400 and to a fitting OAuth error
	// otherwise.
	Status      int
	Error       string
	Description string
	// RetryAfter, when not zero, is sent as a Retry-After header in whole
	// seconds (rounded up).
	RetryAfter time.Duration
	// Latency delays every answer, faulty or not.
	Latency time.Duration
	// Hang makes the endpoint never answer: the request waits until the
	// client goes away or the Server is closed.
	Hang bool
	// Times limits the fault to the next Times requests; 0 means until
	// the fault is replaced.
	Times int
}

// Server is a fake Google token endpoint on loopback. Its methods are safe
// for concurrent use.
type Server struct {
	// URL is the base URL, http://127.0.0.1:<port>.
	URL string

	srv    *httptest.Server
	signer jose.Signer
	jwks   []byte
	done   chan struct{}
	close  sync.Once

	mu       sync.Mutex
	keys     map[string]*Key // by private_key_id
	mints    []Mint
	requests int
	fault    Fault
	left     int // requests the fault still applies to, when fault.Times > 0
	lifetime time.Duration
	serial   int
	user     userState
}

// Start starts a Server. The caller must Close it.
func Start() (*Server, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("fakegoogle: generating the signing key: %w", err)
	}
	kid := randomHex(8)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("fakegoogle: %w", err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &priv.PublicKey, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"},
	}})
	if err != nil {
		return nil, fmt.Errorf("fakegoogle: %w", err)
	}
	s := &Server{
		signer:   signer,
		jwks:     jwks,
		done:     make(chan struct{}),
		keys:     map[string]*Key{},
		lifetime: DefaultTokenLifetime,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+TokenPath, s.serveToken)
	mux.HandleFunc("GET "+CertsPath, s.serveCerts)
	s.routeUserAndIAM(mux)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s, nil
}

// New starts a Server that is closed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the Server, ending hung requests first. It is safe to call
// more than once.
func (s *Server) Close() {
	s.close.Do(func() {
		close(s.done)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// TokenURL is the token endpoint, the token_uri of the Server's keys and
// the aud their assertions must carry.
func (s *Server) TokenURL() string { return s.URL + TokenPath }

// CertsURL is where the JWKS of the ID-token signing key is served.
func (s *Server) CertsURL() string { return s.URL + CertsPath }

// JWKS returns the JSON Web Key Set that verifies the ID tokens the Server
// signs.
func (s *Server) JWKS() []byte { return slices.Clone(s.jwks) }

// Client returns an HTTP client for the Server (no proxy, loopback only).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// SetFault replaces the current fault; SetFault(Fault{}) clears it.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
	s.left = f.Times
}

// SetTokenLifetime sets the lifetime (expires_in, or exp-iat for ID tokens)
// of tokens minted from now on. Lifetimes under one second become one
// second, because expires_in is in whole seconds.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = max(d, time.Second)
}

// Mints returns every token minted so far, oldest first.
func (s *Server) Mints() []Mint {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Mint, len(s.mints))
	for i, m := range s.mints {
		m.Scopes = slices.Clone(m.Scopes)
		out[i] = m
	}
	return out
}

// Requests returns how many token requests arrived, refused ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Server) serveCerts(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.jwks)
}

// oauthError is a refusal in the token endpoint's format.
type oauthError struct {
	status      int
	code        string
	description string
	retryAfter  time.Duration
}

func invalidGrant(description string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_grant", description: description}
}

// writeError is the one place that writes refusals.
func writeError(w http.ResponseWriter, e *oauthError) {
	if e.retryAfter > 0 {
		secs := int((e.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.status)
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.code, e.description})
	w.Write(body)
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	f := s.takeFault()
	if f.Latency > 0 {
		select {
		case <-time.After(f.Latency):
		case <-r.Context().Done():
			return
		case <-s.done:
			panic(http.ErrAbortHandler) // drop the connection: no answer at all
		}
	}
	if f.Hang {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		panic(http.ErrAbortHandler)
	}
	if f.Status != 0 {
		writeError(w, faultError(f))
		return
	}
	resp, oerr := s.mint(r)
	if oerr != nil {
		writeError(w, oerr)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	w.Write(resp)
}

// takeFault counts the request and returns the fault that applies to it.
func (s *Server) takeFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	f := s.fault
	if f.Times > 0 {
		s.left--
		if s.left <= 0 {
			s.fault = Fault{}
		}
	}
	return f
}

func faultError(f Fault) *oauthError {
	e := &oauthError{status: f.Status, code: f.Error, description: f.Description, retryAfter: f.RetryAfter}
	if e.code == "" {
		switch {
		case f.Status == http.StatusBadRequest:
			e.code = "invalid_grant"
		case f.Status == http.StatusUnauthorized:
			e.code = "unauthorized_client"
		case f.Status == http.StatusTooManyRequests:
			e.code = "rate_limit_exceeded"
		case f.Status >= 500:
			e.code = "internal_failure"
		default:
			e.code = "invalid_request"
		}
	}
	if e.description == "" {
		e.description = http.StatusText(f.Status)
	}
	return e
}

// assertionClaims are the claims of a service-account assertion.
type assertionClaims struct {
	jwt.Claims
	Scope          string `json:"scope"`
	TargetAudience string `json:"target_audience"`
}

// mint verifies the assertion in r and returns the response body.
func (s *Server) mint(r *http.Request) ([]byte, *oauthError) {
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_request", description: "Malformed request body."}
	}
	switch g := r.PostForm.Get("grant_type"); g {
	case JWTBearerGrant:
	case "authorization_code":
		return s.exchangeCode(r)
	case "refresh_token":
		return s.refresh(r)
	default:
		return nil, &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type", description: "Invalid grant_type: " + g}
	}
	a, err := parseAssertion(r.PostForm.Get("assertion"))
	if err != nil {
		return nil, invalidGrant("Invalid JWT.")
	}
	key := s.lookup(a.kid, a.claims.Issuer)
	if key == nil {
		return nil, invalidGrant("Invalid grant: account not found")
	}
	if !a.verify(&key.Private.PublicKey) {
		return nil, invalidGrant("Invalid JWT Signature.")
	}
	c := a.claims
	if c.Issuer != key.Email {
		return nil, invalidGrant("Invalid JWT: iss does not match the key's client_email.")
	}
	if !slices.Contains(c.Audience, s.TokenURL()) {
		return nil, invalidGrant("Invalid JWT: aud must be the token endpoint.")
	}
	now := time.Now()
	if c.IssuedAt == nil || c.Expiry == nil ||
		c.IssuedAt.Time().After(now.Add(clockSkew)) || !c.Expiry.Time().After(now) ||
		c.Expiry.Time().Sub(c.IssuedAt.Time()) > time.Hour {
		return nil, invalidGrant("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
	}
	switch {
	case c.TargetAudience != "" && c.Scope != "":
		return nil, invalidGrant("Invalid JWT: both scope and target_audience are set.")
	case c.TargetAudience != "":
		return s.mintIDToken(key, c, now)
	case c.Scope != "":
		return s.mintAccessToken(key, c)
	}
	return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_scope", description: "Empty or missing scope not allowed."}
}

// lookup finds the key that should have signed an assertion: by kid when
// there is one, else the only key of the issuer.
func (s *Server) lookup(kid, iss string) *Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kid != "" {
		return s.keys[kid]
	}
	var found *Key
	for _, k := range s.keys {
		if k.Email == iss {
			if found != nil {
				return nil // ambiguous without a kid; Google refuses too
			}
			found = k
		}
	}
	return found
}

func (s *Server) mintAccessToken(key *Key, c assertionClaims) ([]byte, *oauthError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serial++
	tok := fmt.Sprintf("fake-at-%d-%s", s.serial, randomB64(24))
	secs := int64(s.lifetime / time.Second)
	s.mints = append(s.mints, Mint{
		Email:   key.Email,
		KeyID:   key.KeyID,
		Scopes:  strings.Fields(c.Scope),
		Subject: c.Subject,
		Grant:   "jwt-bearer",
		Token:   tok,
		Expiry:  time.Now().Add(time.Duration(secs) * time.Second),
	})
	body, _ := json.Marshal(struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}{tok, secs, "Bearer"})
	return body, nil
}

// idClaims are the claims of the ID tokens the Server signs, shaped like
// Google's for a service account.
type idClaims struct {
	Issuer        string `json:"iss"`
	Audience      string `json:"aud"`
	AuthorizedBy  string `json:"azp"`
	Subject       string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	IssuedAt      int64  `json:"iat"`
	Expiry        int64  `json:"exp"`
}

func (s *Server) mintIDToken(key *Key, c assertionClaims, now time.Time) ([]byte, *oauthError) {
	s.mu.Lock()
	lifetime := s.lifetime
	s.mu.Unlock()
	iat := now.Truncate(time.Second)
	exp := iat.Add(lifetime.Truncate(time.Second))
	tok, err := jwt.Signed(s.signer).Claims(idClaims{
		Issuer:        Issuer,
		Audience:      c.TargetAudience,
		AuthorizedBy:  key.ClientID,
		Subject:       key.ClientID,
		Email:         key.Email,
		EmailVerified: true,
		IssuedAt:      iat.Unix(),
		Expiry:        exp.Unix(),
	}).Serialize()
	if err != nil {
		return nil, &oauthError{status: http.StatusInternalServerError, code: "internal_failure", description: "signing failed"}
	}
	s.mu.Lock()
	s.serial++
	s.mints = append(s.mints, Mint{
		Email:    key.Email,
		KeyID:    key.KeyID,
		Audience: c.TargetAudience,
		Subject:  c.Subject,
		Grant:    "jwt-bearer",
		Token:    tok,
		Expiry:   exp,
	})
	s.mu.Unlock()
	body, _ := json.Marshal(struct {
		IDToken string `json:"id_token"`
	}{tok})
	return body, nil
}

func randomB64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}
