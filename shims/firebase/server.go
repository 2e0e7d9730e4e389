package firebase

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
)

// MinLifetime is the least lifetime a served token has left: firebase-tools
// refreshes tokens with less than fifteen minutes to go.
const MinLifetime = 15 * time.Minute

// Scope is the scope firebase-tools' calls need besides cloud-platform.
const Scope = "https://www.googleapis.com/auth/firebase"

// TokenPath is the path firebase-tools POSTs to.
const TokenPath = "/oauth2/v3/token"

// Environment variables the session sets for firebase-tools.
const (
	EnvToken    = "FIREBASE_TOKEN"
	EnvTokenURL = "FIREBASE_TOKEN_URL"
)

// Tokens is the part of the token core the server uses; *broker.Broker
// implements it.
type Tokens interface {
	AccessToken(ctx context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error)
}

// Server is the token endpoint. Set the fields, then call Start.
type Server struct {
	// Tokens mints the tokens; required.
	Tokens Tokens
	// Account is the broker account whose tokens are served; required.
	Account string
	// Scopes of the served token; required.
	Scopes []string
	// Port to listen on; 0 picks a free one.
	Port int
	// Logger gets one debug line per token and warnings for failures.
	Logger *slog.Logger
	// Now is the clock used for expires_in; time.Now when nil.
	Now func() time.Time

	mu      sync.Mutex
	started bool
	srv     *loopback.HTTPServer
	secret  []byte
}

// Info is what a session needs from a started Server.
type Info struct {
	Port int
	// URL is the FIREBASE_TOKEN_URL value: http://127.0.0.1:PORT.
	URL string
	// Secret is the FIREBASE_TOKEN value. It is a credential.
	Secret string
}

// Env returns the variables to set in the child's environment.
func (i Info) Env() map[string]string {
	return map[string]string{EnvToken: i.Secret, EnvTokenURL: i.URL}
}

const secretBytes = 32

// Start makes the secret and starts serving on loopback.
func (s *Server) Start(ctx context.Context) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	if s.Tokens == nil || s.Account == "" || len(s.Scopes) == 0 {
		return Info{}, errors.New("firebase: Tokens, Account and Scopes must be set")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return Info{}, errors.New("firebase: already started")
	}
	s.started = true
	raw := make([]byte, secretBytes)
	_, _ = rand.Read(raw) // never fails (crypto/rand panics instead)
	s.secret = []byte(base64.RawURLEncoding.EncodeToString(raw))
	srv, err := loopback.ServeHTTP(s.routes(), loopback.HTTPOptions{Port: s.Port, Logger: s.logger()})
	if err != nil {
		return Info{}, err
	}
	s.srv = srv
	return Info{Port: srv.Port(), URL: "http://" + srv.Addr(), Secret: string(s.secret)}, nil
}

// Close stops the server and every open connection. Safe to call more
// than once.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = true // no Start after Close
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	s.srv = nil
	return err
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// routes lists every path the server answers; anything else is 404.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// firebase-tools' refresh (src/auth.ts refreshTokens), at the origin
	// FIREBASE_TOKEN_URL names.
	mux.Handle(TokenPath, s.handler(s.token))
	return mux
}

// httpError is a failure with its status and OAuth 2.0 error code.
// Descriptions never hold a token or a secret.
type httpError struct {
	status int
	code   string
	desc   string
}

func (e *httpError) Error() string { return e.code + ": " + e.desc }

// handler adds the checks every route needs and writes errors.
func (s *Server) handler(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		switch {
		case !loopback.HostAllowed(r.Host, localPort(r)):
			err = &httpError{http.StatusForbidden, "invalid_request", "unexpected Host header"}
		case fromBrowser(r):
			err = &httpError{http.StatusForbidden, "invalid_request", "browser requests are not served"}
		default:
			err = h(w, r)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// fromBrowser is loopback.FromBrowser without Sec-Fetch-Mode: Node's
// built-in fetch (undici) sends "Sec-Fetch-Mode: cors" on every request,
// and firebase-tools is a Node program. Browsers always add Sec-Fetch-Site
// and Sec-Fetch-Dest (and Origin on a cross-site POST), so pages are still
// refused.
func fromBrowser(r *http.Request) bool {
	for _, h := range []string{"Origin", "Referer", "Sec-Fetch-Site", "Sec-Fetch-Dest", "Sec-Fetch-User"} {
		if r.Header.Get(h) != "" {
			return true
		}
	}
	return false
}

func localPort(r *http.Request) int {
	if c := loopback.Conn(r); c != nil {
		if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
			return a.Port
		}
	}
	return -1
}

// writeError is the one place that turns an error into a response.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		s.logger().Warn("firebase: cannot get access token", "account", s.Account, "class", broker.ClassOf(err).String(), "err", err)
		he = &httpError{http.StatusBadRequest, "invalid_grant", "cannot get access token: " + broker.PublicReason(err)}
		if broker.IsTransient(err) || errors.Is(err, context.DeadlineExceeded) {
			he.status, he.code = http.StatusInternalServerError, "temporarily_unavailable"
		}
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{he.code, he.desc})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if he.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	w.WriteHeader(he.status)
	_, _ = w.Write(append(body, '\n'))
}

// maxForm bounds the request body.
const maxForm = 64 << 10

// tokenResponse keeps the field order of Google's answer.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

// token exchanges the session's secret for an access token.
func (s *Server) token(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	if r.Method != http.MethodPost {
		return &httpError{http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	form, err := parseForm(r)
	if err != nil {
		return &httpError{http.StatusBadRequest, "invalid_request", "cannot parse the form body"}
	}
	if form("grant_type") != "refresh_token" {
		return &httpError{http.StatusBadRequest, "unsupported_grant_type", "expecting 'refresh_token' grant type"}
	}
	if subtle.ConstantTimeCompare([]byte(form("refresh_token")), s.secret) != 1 {
		s.logger().Warn("firebase: wrong refresh token", "peer", r.RemoteAddr)
		return &httpError{http.StatusBadRequest, "invalid_grant", "wrong refresh_token (FIREBASE_TOKEN)"}
	}
	tok, err := s.Tokens.AccessToken(r.Context(), s.Account, s.Scopes, MinLifetime)
	if err != nil {
		return err
	}
	exp := int64(time.Hour / time.Second)
	if !tok.Expiry.IsZero() {
		exp = max(int64(tok.Expiry.Sub(s.now())/time.Second), 1)
	}
	body, err := json.Marshal(tokenResponse{tok.Value, exp, "Bearer"})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	_, _ = w.Write(append(body, '\n'))
	s.logger().Debug("token issued", "frontend", "firebase", "account", s.Account, "scopes", s.Scopes,
		"expires_in", exp, "peer", r.RemoteAddr, "latency", time.Since(start))
	return nil
}

// parseForm reads a url-encoded or multipart body and returns a lookup of
// its fields. Multipart file parts are refused by the size limit.
func parseForm(r *http.Request) (func(string) string, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	switch ct {
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		return r.PostForm.Get, nil
	case "multipart/form-data":
		// Everything stays in memory: the body is already bounded.
		if err := r.ParseMultipartForm(maxForm); err != nil {
			return nil, err
		}
		if len(r.MultipartForm.File) > 0 {
			_ = r.MultipartForm.RemoveAll()
			return nil, errors.New("file parts in the form")
		}
		return func(k string) string {
			if v := r.MultipartForm.Value[k]; len(v) > 0 {
				return v[0]
			}
			return ""
		}, nil
	}
	return nil, errors.New("not a form")
}
