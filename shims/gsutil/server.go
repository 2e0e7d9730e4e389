package gsutil

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
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
	token := s.handler(s.token)
	authz := s.handler(notImplemented)
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

// httpError is a failure with its status and OAuth 2.0 error code
// (RFC 6749 §5.2). Descriptions never hold a token or a secret.
type httpError struct {
	status int
	code   string
	desc   string
}

func (e *httpError) Error() string { return e.code + ": " + e.desc }

// errEmpty answers with the status alone.
type errEmpty int

func (e errEmpty) Error() string { return http.StatusText(int(e)) }

// handler adds the checks every route needs and writes errors.
func (s *Server) handler(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		switch {
		case !loopback.HostAllowed(r.Host, localPort(r)):
			// A page rebound to 127.0.0.1 sends its own host name.
			err = &httpError{http.StatusForbidden, "invalid_request", "unexpected Host header"}
		case loopback.FromBrowser(r):
			err = &httpError{http.StatusForbidden, "invalid_request", "browser requests are not served"}
		default:
			err = h(w, r)
		}
		if err != nil {
			s.writeError(w, err)
		}
	})
}

// localPort is the port the request arrived on.
func localPort(r *http.Request) int {
	if c := loopback.Conn(r); c != nil {
		if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
			return a.Port
		}
	}
	return -1
}

// writeError is the one place that turns an error into a response.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	var he *httpError
	var empty errEmpty
	switch {
	case errors.As(err, &empty):
		w.WriteHeader(int(empty))
		return
	case errors.As(err, &he):
	default:
		// A token-core failure: the client gets a short reason, the log
		// the details.
		s.logger().Warn("gsutil: cannot get access token", "account", s.Account, "class", broker.ClassOf(err).String(), "err", err)
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

func notImplemented(http.ResponseWriter, *http.Request) error {
	return errEmpty(http.StatusNotImplemented)
}

const maxForm = 64 << 10

// tokenResponse keeps the field order of luci-go's answer.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

// token exchanges the session's refresh token for an access token.
func (s *Server) token(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	if r.Method != http.MethodPost {
		return &httpError{http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return &httpError{http.StatusBadRequest, "invalid_request", "cannot parse the form body"}
	}
	if gt := r.PostForm.Get("grant_type"); gt != "refresh_token" {
		return &httpError{http.StatusBadRequest, "unsupported_grant_type", "expecting 'refresh_token' grant type"}
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("refresh_token")), s.secret) != 1 {
		s.logger().Warn("gsutil: wrong refresh token", "peer", r.RemoteAddr)
		return &httpError{http.StatusBadRequest, "invalid_grant",
			"wrong refresh_token (if running via gcloud, set pass_credentials_to_gsutil = false)"}
	}
	minLife := max(s.MinLifetime, MinLifetime)
	tok, err := s.Tokens.AccessToken(r.Context(), s.Account, s.scopes(), minLife)
	if err != nil {
		return err
	}
	exp := int64(time.Hour / time.Second)
	if !tok.Expiry.IsZero() {
		// Truncated seconds, never 0: oauth2 clients read 0 as "no expiry"
		// or an incomplete token.
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
	s.logger().Debug("token issued", "frontend", "gsutil", "account", s.Account, "scopes", s.scopes(),
		"expires_in", exp, "peer", r.RemoteAddr, "latency", time.Since(start))
	return nil
}
