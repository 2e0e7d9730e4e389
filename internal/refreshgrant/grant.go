package refreshgrant

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
)

// Tokens is the part of the token core the grant uses; *broker.Broker
// implements it.
type Tokens interface {
	AccessToken(ctx context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error)
}

// Grant exchanges a session's secret for access tokens. Set the fields
// before serving; they are read, never written, by requests.
type Grant struct {
	// Secret is the refresh token clients must present; a credential.
	Secret []byte
	// Tokens mints the tokens.
	Tokens Tokens
	// Account is the broker account whose tokens are served.
	Account string
	// Scopes of the served token.
	Scopes []string
	// MinLifetime is the least lifetime a served token has left.
	MinLifetime time.Duration
	// Multipart also accepts multipart/form-data bodies and refuses
	// bodies that are not forms. Without it the body is read as
	// net/http does for url-encoded forms: a body of another type
	// yields no fields.
	Multipart bool
	// Label names the front end in log lines, e.g. "gsutil".
	Label string
	// WrongSecret is the error_description for a wrong refresh_token,
	// so the client's user learns where the secret comes from.
	WrongSecret string
	// Logger gets one debug line per token and warnings for failures;
	// slog.Default when nil.
	Logger *slog.Logger
	// Now is the clock used for expires_in; time.Now when nil.
	Now func() time.Time
	// FromBrowser tells requests from web pages, which Wrap refuses;
	// loopback.FromBrowser when nil.
	FromBrowser func(*http.Request) bool

	// recent is the latest url-encoded body that passed the checks:
	// clients send the same one over and over (see authorize).
	recent atomic.Pointer[[]byte]
	// last is the latest answer written, kept encoded (see answerFor).
	last atomic.Pointer[answer]
}

// answer is the encoded success response for one token and expires_in:
// it changes once a second, not once a request.
type answer struct {
	token  string
	exp    int64
	body   []byte   // JSON and a newline
	length []string // the Content-Length header value
}

// Header values shared by every answer: net/http only reads them.
var (
	contentTypeJSON = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// Error is a failure with its status and OAuth 2.0 error code (RFC 6749
// §5.2). Descriptions never hold a token or a secret.
type Error struct {
	Status      int
	Code        string
	Description string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// maxForm bounds the request body.
const maxForm = 64 << 10

// tokenResponse keeps the field order of Google's (and luci-go's) answer.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

// ServeToken answers one token request. It writes the success response
// itself and returns any failure for WriteError.
func (g *Grant) ServeToken(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	if r.Method != http.MethodPost {
		return &Error{http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := g.authorize(r); err != nil {
		return err
	}
	tok, err := g.Tokens.AccessToken(r.Context(), g.Account, g.Scopes, g.MinLifetime)
	if err != nil {
		return err
	}
	exp := int64(time.Hour / time.Second)
	if !tok.Expiry.IsZero() {
		// Truncated seconds, never 0: oauth2 clients read 0 as "no expiry"
		// or an incomplete token.
		exp = max(int64(tok.Expiry.Sub(g.now())/time.Second), 1)
	}
	a, err := g.answerFor(tok.Value, exp)
	if err != nil {
		return err
	}
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = noStore
	h["Content-Length"] = a.length
	_, _ = w.Write(a.body)
	if l := g.logger(); l.Enabled(r.Context(), slog.LevelDebug) {
		l.Debug("token issued", "frontend", g.Label, "account", g.Account, "scopes", g.Scopes,
			"expires_in", exp, "peer", r.RemoteAddr, "latency", time.Since(start))
	}
	return nil
}

// authorize checks that the request is a refresh-token grant with the
// session's secret. A url-encoded body equal, byte for byte, to the
// latest one that passed is not parsed again; the comparison takes
// constant time, because the body holds the secret.
func (g *Grant) authorize(r *http.Request) error {
	if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.ContentLength <= 0 || r.ContentLength > maxForm {
		return g.checkForm(r)
	}
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return &Error{http.StatusBadRequest, "invalid_request", "cannot parse the form body"}
	}
	if rc := g.recent.Load(); rc != nil && len(*rc) == len(body) && subtle.ConstantTimeCompare(*rc, body) == 1 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := g.checkForm(r); err != nil {
		return err
	}
	g.recent.Store(&body)
	return nil
}

// checkForm parses the form and checks the grant type and the secret.
func (g *Grant) checkForm(r *http.Request) error {
	form, err := g.parseForm(r)
	if err != nil {
		return &Error{http.StatusBadRequest, "invalid_request", "cannot parse the form body"}
	}
	if form("grant_type") != "refresh_token" {
		return &Error{http.StatusBadRequest, "unsupported_grant_type", "expecting 'refresh_token' grant type"}
	}
	if subtle.ConstantTimeCompare([]byte(form("refresh_token")), g.Secret) != 1 {
		g.logger().Warn(g.Label+": wrong refresh token", "peer", r.RemoteAddr)
		return &Error{http.StatusBadRequest, "invalid_grant", g.WrongSecret}
	}
	return nil
}

// answerFor returns the encoded answer for a token and its expires_in,
// the latest one again when they are the same.
func (g *Grant) answerFor(token string, exp int64) (*answer, error) {
	if a := g.last.Load(); a != nil && a.exp == exp && a.token == token {
		return a, nil
	}
	body, err := json.Marshal(tokenResponse{token, exp, "Bearer"})
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	a := &answer{token: token, exp: exp, body: body, length: []string{strconv.Itoa(len(body))}}
	g.last.Store(a)
	return a, nil
}

// Wrap adds the checks every route of a token endpoint needs (the Host a
// local client sends, no browser) and writes h's errors with WriteError.
func (g *Grant) Wrap(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	fromBrowser := g.FromBrowser
	if fromBrowser == nil {
		fromBrowser = loopback.FromBrowser
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		switch {
		case !loopback.HostAllowed(r.Host, localPort(r)):
			// A page rebound to 127.0.0.1 sends its own host name.
			err = &Error{http.StatusForbidden, "invalid_request", "unexpected Host header"}
		case fromBrowser(r):
			err = &Error{http.StatusForbidden, "invalid_request", "browser requests are not served"}
		default:
			err = h(w, r)
		}
		if err != nil {
			g.WriteError(w, err)
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

// WriteError is the one place that turns an error into a response. An
// *Error is written as it is; anything else is a token-core failure: the
// client gets a short reason, the log the details.
func (g *Grant) WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		g.logger().Warn(g.Label+": cannot get access token", "account", g.Account, "class", broker.ClassOf(err).String(), "err", err)
		e = &Error{http.StatusBadRequest, "invalid_grant", "cannot get access token: " + broker.PublicReason(err)}
		if broker.IsTransient(err) || errors.Is(err, context.DeadlineExceeded) {
			e.Status, e.Code = http.StatusInternalServerError, "temporarily_unavailable"
		}
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{e.Code, e.Description})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if e.Status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(body, '\n'))
}

func (g *Grant) logger() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return slog.Default()
}

func (g *Grant) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// parseForm reads the body and returns a lookup of its fields.
func (g *Grant) parseForm(r *http.Request) (func(string) string, error) {
	if !g.Multipart {
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		return r.PostForm.Get, nil
	}
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
		// Multipart file parts are refused.
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
