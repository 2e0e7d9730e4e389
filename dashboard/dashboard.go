package dashboard

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"credbroker/authtoken"
	"credbroker/daemon"
)

// Daemon is the part of the daemon the dashboard uses; *daemon.Daemon
// implements it.
type Daemon interface {
	Overview(ctx context.Context) (daemon.Overview, error)
	// RevokeBy ends a session at once and records who asked.
	RevokeBy(ctx context.Context, id, who string) error
}

// DefaultSignIn is where the refusal page sends a person to sign in: the
// openid server's login, coming back to the dashboard.
const DefaultSignIn = "/auth/openid/login?r=/"

// Options configure the dashboard.
type Options struct {
	Daemon Daemon
	// Authorize names the person behind a request and says whether they
	// may see and use the dashboard. Required.
	Authorize func(*http.Request) (who string, ok bool)
	// SignIn is the link on the refusal page; DefaultSignIn when empty.
	SignIn string
	// SignOut, when set, is linked from the page's header (production
	// mode: "/auth/openid/logout?r=/").
	SignOut string
	// Location is the time zone of the times on the page; time.Local
	// when nil.
	Location *time.Location
	// Logger gets a line per revoke and per refused request; defaults to
	// slog.Default().
	Logger *slog.Logger
}

// Handler serves the dashboard.
type Handler struct {
	opts    Options
	log     *slog.Logger
	csrfKey []byte
	mux     *http.ServeMux
}

//go:embed static
var static embed.FS

// pages are parsed on first use, not at init: every credbroker command,
// `run -- true` included, pays for each package's init at start.
var pages = sync.OnceValue(func() *template.Template {
	return template.Must(template.ParseFS(static, "static/*.html"))
})

// New makes the dashboard's handler.
func New(o Options) (*Handler, error) {
	if o.Daemon == nil {
		return nil, errors.New("dashboard: no daemon")
	}
	if o.Authorize == nil {
		return nil, errors.New("dashboard: no Authorize function")
	}
	if o.SignIn == "" {
		o.SignIn = DefaultSignIn
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &Handler{opts: o, log: o.Logger, csrfKey: make([]byte, 32)}
	rand.Read(h.csrfKey)
	h.mux = h.routes()
	return h, nil
}

// routes lists every path the dashboard answers, in one place.
func (h *Handler) routes() *http.ServeMux {
	mux := http.NewServeMux()
	// The owner's browser opens the page.
	mux.Handle("GET /{$}", h.handle(h.home))
	// The page's revoke buttons post here.
	mux.Handle("POST /sessions/{id}/revoke", h.handle(h.revoke))
	mux.Handle("/sessions/{id}/revoke", h.handle(func(w http.ResponseWriter, _ *http.Request) error {
		w.Header().Set("Allow", "POST")
		return pageErr(http.StatusMethodNotAllowed, "Revoking takes the button on the dashboard.")
	}))
	// The page's style sheet; served to anyone, since the refusal page
	// uses it too and it holds nothing of the daemon's.
	mux.Handle("GET /static/", http.FileServerFS(static))
	mux.Handle("/", h.handle(func(http.ResponseWriter, *http.Request) error {
		return pageErr(http.StatusNotFound, "There is no such page.")
	}))
	return mux
}

// ServeHTTP serves the dashboard's routes with its security headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

// pageError is a refusal or failure with the status and the sentence
// the person sees. Messages never hold a secret.
type pageError struct {
	code int
	msg  string
}

func (e *pageError) Error() string { return e.msg }

func pageErr(code int, format string, args ...any) error {
	return &pageError{code: code, msg: fmt.Sprintf(format, args...)}
}

// errSignIn is the refusal of a person Authorize does not allow.
var errSignIn = pageErr(http.StatusForbidden, "Sign in as the broker's owner to see this page.")

// handle adapts a handler that returns an error.
func (h *Handler) handle(f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			h.writeError(w, r, err)
		}
	})
}

// writeError is the one place errors are written: a small HTML page with
// the status, the sentence, and a way on (sign in, or back to the
// dashboard).
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var pe *pageError
	if !errors.As(err, &pe) {
		h.log.Error("dashboard: request failed", "path", r.URL.Path, "err", err)
		pe = &pageError{code: http.StatusInternalServerError, msg: "The daemon could not answer; see its log."}
	}
	if pe.code == http.StatusForbidden {
		h.log.Warn("dashboard: request refused", "method", r.Method, "path", r.URL.Path, "why", pe.msg)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(pe.code)
	pages().ExecuteTemplate(w, "error.html", struct {
		Status  int
		Title   string
		Message string
		SignIn  string
	}{pe.code, http.StatusText(pe.code), pe.msg, signInFor(err, h.opts.SignIn)})
}

func signInFor(err error, link string) string {
	if err == errSignIn {
		return link
	}
	return ""
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) error {
	who, ok := h.opts.Authorize(r)
	if !ok {
		return errSignIn
	}
	o, err := h.opts.Daemon.Overview(r.Context())
	if err != nil {
		return err
	}
	// Rendered whole before the first byte goes out, so a failure is
	// still an error page and not half a dashboard.
	var buf bytes.Buffer
	if err := pages().ExecuteTemplate(&buf, "page.html", newPage(o, who, h.csrf(who), h.opts.SignOut, h.opts.Location)); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	buf.WriteTo(w) // a client gone away is nothing to report
	return nil
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) error {
	who, ok := h.opts.Authorize(r)
	if !ok {
		return errSignIn
	}
	if err := sameOrigin(r); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		return pageErr(http.StatusBadRequest, "The form could not be read.")
	}
	if !h.validCSRF(who, r.PostForm.Get("csrf")) {
		return pageErr(http.StatusForbidden, "The form is out of date or did not come from this page; reload the dashboard and try again.")
	}
	id := r.PathValue("id")
	if !authtoken.ValidPublicID(id) {
		return pageErr(http.StatusNotFound, "There is no such session.")
	}
	err := h.opts.Daemon.RevokeBy(r.Context(), id, who)
	if errors.Is(err, authtoken.ErrNotFound) {
		return pageErr(http.StatusNotFound, "Session %s has already ended.", id)
	}
	if err != nil {
		return err
	}
	h.log.Info("dashboard: session revoked", "session", id, "by", who)
	w.Header().Set("Location", "/")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
	return nil
}

// sameOrigin refuses a request a browser says came from another site.
// Browsers send Sec-Fetch-Site (and Origin) with every form POST; a
// client that sends neither is not a browser another site can drive, and
// still needs the CSRF token.
func sameOrigin(r *http.Request) error {
	refuse := pageErr(http.StatusForbidden, "Requests from other sites are refused.")
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return refuse
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	// The scheme is not compared: behind a proxy that ends TLS the
	// request arrives as plain HTTP from an https page.
	if err != nil || u.Host != r.Host || (u.Scheme != "http" && u.Scheme != "https") {
		return refuse
	}
	return nil
}

// csrf is the form token for who.
func (h *Handler) csrf(who string) string {
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte("credbroker dashboard form\x00" + who))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (h *Handler) validCSRF(who, got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(h.csrf(who))) == 1
}
