package firebase

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
	"credbroker/internal/refreshgrant"
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
	mux.Handle(TokenPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := s.grant()
		g.Wrap(g.ServeToken).ServeHTTP(w, r)
	}))
	return mux
}

// grant is the refresh-token exchange with the server's settings, read
// per request like the rest of the configuration.
func (s *Server) grant() *refreshgrant.Grant {
	return &refreshgrant.Grant{
		Secret:      s.secret,
		Tokens:      s.Tokens,
		Account:     s.Account,
		Scopes:      s.Scopes,
		MinLifetime: MinLifetime,
		// firebase-tools posts multipart forms.
		Multipart:   true,
		Label:       "firebase",
		WrongSecret: "wrong refresh_token (" + EnvToken + ")",
		Logger:      s.logger(),
		Now:         s.now,
		FromBrowser: fromBrowser,
	}
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
