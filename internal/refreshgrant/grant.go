package refreshgrant

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
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
}

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
	body, err := json.Marshal(tokenResponse{tok.Value, exp, "Bearer"})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	_, _ = w.Write(append(body, '\n'))
	g.logger().Debug("token issued", "frontend", g.Label, "account", g.Account, "scopes", g.Scopes,
		"expires_in", exp, "peer", r.RemoteAddr, "latency", time.Since(start))
	return nil
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
