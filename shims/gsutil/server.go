package gsutil

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
	"credbroker/internal/refreshgrant"
)

// MinLifetime is the least lifetime a served token has left, enough for
// oauth2client's and gsutil's refresh margins.
const MinLifetime = 5 * time.Minute

// DefaultScopes are the scopes of the served token when Server.Scopes is
// empty. gsutil's refresh request names no scope; cloud-platform covers
// every Cloud Storage call.
var DefaultScopes = []string{
	"https://www.googleapis.com/auth/cloud-platform",
	"https://www.googleapis.com/auth/userinfo.email",
}

// Environment variables the session changes for gsutil.
const (
	// EnvBotoConfig makes boto read our file and nothing else.
	EnvBotoConfig = "BOTO_CONFIG"
	// EnvBotoPath is removed: boto ignores it when BOTO_CONFIG is set,
	// but gcloud's gsutil wrapper turns BOTO_CONFIG into a BOTO_PATH
	// entry and keeps the rest.
	EnvBotoPath = "BOTO_PATH"
	// EnvPassCredentials stops gcloud's gsutil wrapper from appending the
	// gcloud account's own .boto, whose refresh token would win over ours.
	EnvPassCredentials = "CLOUDSDK_CORE_PASS_CREDENTIALS_TO_GSUTIL"
)

// Mode is how gsutil gets its tokens.
type Mode int

const (
	// TokenServer writes a refresh token into the .boto and runs the
	// token endpoint gsutil exchanges it at.
	TokenServer Mode = iota
	// GCE writes "[GoogleCompute] service_account = default" so gsutil
	// asks the (emulated) metadata server; no server runs.
	GCE
)

// secretBytes is the size of the refresh token's randomness. It is
// written in standard base64 (64 characters, no padding needed), which
// may contain '+' and '/': clients must form-encode it, as OAuth clients
// do.
const secretBytes = 48

// Server writes a session's .boto and, in TokenServer mode, serves the
// token endpoint it names. Set the fields, then call Start.
type Server struct {
	// Tokens mints the tokens; required in TokenServer mode.
	Tokens Tokens
	// Account is the broker account whose tokens are served.
	Account string
	// Scopes of the served token; DefaultScopes when empty.
	Scopes []string
	// MinLifetime overrides MinLifetime; values below it are raised.
	MinLifetime time.Duration
	// Mode chooses between the token server and the metadata server.
	Mode Mode

	// Dir is where the private state directory is created; the system
	// temporary directory when empty.
	Dir string
	// UserConfig is the user's boto configuration to merge. Empty means
	// FindUserConfig(os.Getenv); see also SkipUserConfig.
	UserConfig string
	// SkipUserConfig leaves the user's configuration out entirely.
	SkipUserConfig bool

	// Port of the token server; 0 picks a free one.
	Port int
	// Logger gets one debug line per request and warnings for failures.
	Logger *slog.Logger
	// Now is the clock used for expires_in; time.Now when nil.
	Now func() time.Time

	mu       sync.Mutex
	started  bool
	closed   bool
	srv      *loopback.HTTPServer
	stateDir string
	secret   []byte
	// tokenGrant serves the token endpoint (tests change its secret).
	tokenGrant *refreshgrant.Grant
}

// Tokens is the part of the token core the server uses; *broker.Broker
// implements it.
type Tokens interface {
	AccessToken(ctx context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error)
}

// Info is what a session needs from a started Server.
type Info struct {
	// Port of the token server; 0 in GCE mode.
	Port int
	// BotoPath is the .boto file gsutil must read.
	BotoPath string
	// StateDir holds the .boto and gsutil's state; removed by Close.
	StateDir string
}

// Env returns the variables to set in the child's environment.
func (i Info) Env() map[string]string {
	return map[string]string{EnvBotoConfig: i.BotoPath, EnvPassCredentials: "false"}
}

// Unset returns the variables to remove from the child's environment.
func (i Info) Unset() []string { return []string{EnvBotoPath} }

// Start creates the state directory, starts the token server (TokenServer
// mode) and writes the .boto. ctx bounds only the start.
func (s *Server) Start(ctx context.Context) (info Info, err error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	if s.Mode == TokenServer && (s.Tokens == nil || s.Account == "") {
		return Info{}, errors.New("gsutil: Tokens and Account must be set")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return Info{}, errors.New("gsutil: already started")
	}
	s.started = true
	defer func() {
		if err != nil {
			s.closeLocked()
		}
	}()

	user, err := s.readUserConfig()
	if err != nil {
		return Info{}, err
	}
	dir := s.Dir
	if dir == "" {
		dir = os.TempDir()
	}
	// MkdirTemp makes a new directory with mode 0700.
	s.stateDir, err = os.MkdirTemp(dir, "gsutil-")
	if err != nil {
		return Info{}, fmt.Errorf("gsutil: state directory: %w", err)
	}
	b := Boto{StateDir: s.stateDir, User: user, GCE: s.Mode == GCE}
	info = Info{StateDir: s.stateDir, BotoPath: filepath.Join(s.stateDir, ".boto")}

	if s.Mode == TokenServer {
		s.secret = make([]byte, base64.StdEncoding.EncodedLen(secretBytes))
		raw := make([]byte, secretBytes)
		_, _ = rand.Read(raw) // never fails (crypto/rand panics instead)
		base64.StdEncoding.Encode(s.secret, raw)
		s.srv, err = loopback.ServeHTTP(s.routes(), loopback.HTTPOptions{Port: s.Port, Logger: s.logger()})
		if err != nil {
			return Info{}, fmt.Errorf("gsutil: %w", err)
		}
		info.Port = s.srv.Port()
		base := "http://" + s.srv.Addr()
		b.RefreshToken = string(s.secret)
		b.TokenURI = base + "/token"
		b.AuthorizationURI = base + "/authorization"
	}
	if err := writeNew(info.BotoPath, b.Render()); err != nil {
		return Info{}, fmt.Errorf("gsutil: %w", err)
	}
	return info, nil
}

func (s *Server) readUserConfig() (string, error) {
	if s.SkipUserConfig {
		return "", nil
	}
	path := s.UserConfig
	if path == "" {
		path = FindUserConfig(os.Getenv)
	}
	if path == "" {
		return "", nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("gsutil: user boto config: %w", err)
	}
	return string(data), nil
}

// writeNew creates path (which must not exist) with mode 0600.
func writeNew(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close stops the token server, closing every connection, and removes the
// state directory with the .boto. Safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeLocked()
}

func (s *Server) closeLocked() error {
	s.closed = true
	var errs []error
	if s.srv != nil {
		errs = append(errs, s.srv.Close())
		s.srv = nil
	}
	if s.stateDir != "" {
		errs = append(errs, os.RemoveAll(s.stateDir))
		s.stateDir = ""
	}
	return errors.Join(errs...)
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

func (s *Server) scopes() []string {
	if len(s.Scopes) > 0 {
		return s.Scopes
	}
	return DefaultScopes
}

// routes lists every path the server answers. Anything else is 404.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// The grant is made once: its settings are fixed once Start has
	// made the secret, and a grant per request was garbage at once.
	g := s.grant()
	s.tokenGrant = g
	token := g.Wrap(g.ServeToken)
	authz := g.Wrap(notImplemented)
	// gsutil's refresh: oauth2client (JSON API) and gcs-oauth2-boto-plugin
	// (XML API) POST the refresh token to [OAuth2] provider_token_uri.
	mux.Handle("/token", token)
	// [OAuth2] provider_authorization_uri must name something; only an
	// interactive "gsutil config" would open it, never a refresh.
	mux.Handle("/authorization", authz)
	// The paths luci-go's .boto files name, for clients handed such a file.
	mux.Handle("/gsutil/token", token)
	mux.Handle("/gsutil/authorization", authz)
	return mux
}

// grant is the refresh-token exchange with the server's settings, read
// per request like the rest of the configuration.
func (s *Server) grant() *refreshgrant.Grant {
	return &refreshgrant.Grant{
		Secret:      s.secret,
		Tokens:      s.Tokens,
		Account:     s.Account,
		Scopes:      s.scopes(),
		MinLifetime: max(s.MinLifetime, MinLifetime),
		// oauth2client and gcs-oauth2-boto-plugin post url-encoded forms.
		Multipart:   false,
		Label:       "gsutil",
		WrongSecret: "wrong refresh_token (if running via gcloud, set pass_credentials_to_gsutil = false)",
		Logger:      s.logger(),
		Now:         s.now,
	}
}

// notImplemented answers with the status alone.
func notImplemented(w http.ResponseWriter, _ *http.Request) error {
	w.WriteHeader(http.StatusNotImplemented)
	return nil
}
