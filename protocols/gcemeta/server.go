package gcemeta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
)

// Tokens is the part of the token core the server uses; *broker.Broker
// implements it.
type Tokens interface {
	AccessToken(ctx context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error)
	IDToken(ctx context.Context, account, audience string, minLifetime time.Duration) (broker.Token, error)
}

// MinTokenLifetime is the least lifetime a token handed out here has. It
// covers the refresh margins of the clients of this protocol: x/oauth2
// refreshes 225 s before expiry and google-auth about as early, so a
// shorter token would be re-fetched on every use.
const MinTokenLifetime = 5 * time.Minute

// DefaultMaxWait bounds a wait_for_change request when Server.MaxWait is
// zero.
const DefaultMaxWait = 5 * time.Minute

// Account is a service account the server mounts under
// instance/service-accounts/.
type Account struct {
	ID     string   // the token core's account id
	Email  string   // the account's email; also its directory name
	Scopes []string // default scopes: served by scopes, used by token without ?scopes=
}

// Server is a fake GCE metadata server. Set the fields, then Start.
type Server struct {
	// Tokens mints the tokens; required when Accounts is not empty.
	Tokens Tokens

	// ProjectID is project/project-id; "none" when empty, so that tools
	// on a real VM do not pick up the VM's project.
	ProjectID string
	// NumericProjectID is project/numeric-project-id, digits only
	// (gcloud's on-GCE test); "0" when empty.
	NumericProjectID string

	// InstanceID (digits), InstanceName, Hostname and Zone are served
	// under instance/ when set, and absent (404) when empty. Zone is
	// served as given; GCE's form is "projects/NUM/zones/ZONE".
	InstanceID   string
	InstanceName string
	Hostname     string
	Zone         string

	// Accounts are the service accounts served.
	Accounts []Account
	// DefaultAccount is the ID of the account behind "default/"; the
	// first account when empty.
	DefaultAccount string

	// Port to listen on; 0 picks a free one.
	Port int
	// MaxWait bounds wait_for_change requests; DefaultMaxWait when zero.
	MaxWait time.Duration
	// AllowPeer, when set, is asked about every connection before its
	// first request; false refuses it. The metadata protocol carries no
	// secret, so this is where the peer-uid check (loopback.SameUser)
	// plugs in.
	AllowPeer func(net.Conn) bool
	// Logger gets one debug line per token handed out (never the token)
	// and the server's own errors. slog.Default() when nil.
	Logger *slog.Logger

	// Test hooks: the clock used for expires_in, and the wait timer.
	now   func() time.Time
	after func(time.Duration) (<-chan time.Time, func())

	mu        sync.Mutex
	srv       *loopback.HTTPServer
	started   bool
	closed    bool
	closing   chan struct{}
	tree      *node
	defaultID string
	port      atomic.Int32 // set once listening; read by the handler
	hostNames atomic.Pointer[hostNames]
	lastToken atomic.Pointer[tokenBody] // the latest token answer, encoded
}

// Info is what clients need to find a started server.
type Info struct {
	Addr string // "127.0.0.1:PORT"
	Port int
}

// Env lists the environment variables ("NAME=value") that point a child
// process's Google client libraries at the server:
//   - GCE_METADATA_HOST: Go, newer Python google-auth, Java, .NET, Node;
//   - GCE_METADATA_IP: the on-GCE ping of Python google-auth and
//     oauth2client, and Node (where it wins over GCE_METADATA_HOST);
//   - GCE_METADATA_ROOT: gcloud, older google-auth and oauth2client;
//   - METADATA_SERVER_DETECTION=assume-present: Node skips its probe.
//
// Variables that would make clients prefer other credentials
// (GOOGLE_APPLICATION_CREDENTIALS, NO_GCE_CHECK, ...) are the caller's to
// remove.
func (i Info) Env() []string {
	return []string{
		"GCE_METADATA_HOST=" + i.Addr,
		"GCE_METADATA_IP=" + i.Addr,
		"GCE_METADATA_ROOT=" + i.Addr,
		"METADATA_SERVER_DETECTION=assume-present",
	}
}

// Start checks the configuration and starts serving on loopback. ctx
// bounds only the start; the server runs until Close.
func (s *Server) Start(ctx context.Context) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return Info{}, errors.New("gcemeta: server already started")
	}
	if err := s.validate(); err != nil {
		return Info{}, fmt.Errorf("gcemeta: %w", err)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.after == nil {
		s.after = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTimer(d)
			return t.C, func() { t.Stop() }
		}
	}
	s.closing = make(chan struct{})
	s.tree = s.buildTree()
	srv, err := loopback.ServeHTTP(s, loopback.HTTPOptions{
		Port:      s.Port,
		AllowPeer: s.AllowPeer,
		DualIPv6:  true, // clients given "localhost" may dial ::1
		// A GET has no body, so the whole-request read timeout only has to
		// outlast a slow mint: net/http cancels the request's context when
		// it fires. Waits extend both deadlines themselves.
		ReadTimeout:  2 * time.Minute,
		WriteTimeout: 2 * time.Minute,
		Logger:       s.logger(),
	})
	if err != nil {
		return Info{}, fmt.Errorf("gcemeta: %w", err)
	}
	s.srv, s.started = srv, true
	s.port.Store(int32(srv.Port()))
	return Info{Addr: srv.Addr(), Port: srv.Port()}, nil
}

func (s *Server) validate() error {
	if s.NumericProjectID != "" && !isDigits(s.NumericProjectID) {
		return fmt.Errorf("numeric project id %q is not all digits", s.NumericProjectID)
	}
	if s.InstanceID != "" && !isDigits(s.InstanceID) {
		return fmt.Errorf("instance id %q is not all digits", s.InstanceID)
	}
	if len(s.Accounts) > 0 && s.Tokens == nil {
		return errors.New("accounts given without Tokens")
	}
	ids, emails := map[string]bool{}, map[string]bool{}
	for _, a := range s.Accounts {
		switch {
		case a.ID == "":
			return errors.New("account with an empty id")
		case a.Email == "" || a.Email == "default" || strings.ContainsAny(a.Email, "/\x00"):
			return fmt.Errorf("account %q: unusable email %q", a.ID, a.Email)
		case ids[a.ID]:
			return fmt.Errorf("account %q given twice", a.ID)
		case emails[a.Email]:
			return fmt.Errorf("email %q given twice", a.Email)
		}
		ids[a.ID], emails[a.Email] = true, true
	}
	s.defaultID = s.DefaultAccount
	switch {
	case s.defaultID == "" && len(s.Accounts) > 0:
		s.defaultID = s.Accounts[0].ID
	case s.defaultID != "" && !ids[s.defaultID]:
		return fmt.Errorf("default account %q is not among the accounts", s.defaultID)
	}
	return nil
}

func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func (s *Server) projectID() string {
	if s.ProjectID == "" {
		return "none"
	}
	return s.ProjectID
}

func (s *Server) numericProjectID() string {
	if s.NumericProjectID == "" {
		return "0"
	}
	return s.NumericProjectID
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Close stops the server and closes every connection, ending waits at
// once. Safe to call more than once, and before Start.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if !s.started {
		return nil
	}
	close(s.closing)
	return s.srv.Close()
}

// response is a successful answer.
type response struct {
	status      int
	contentType string
	body        []byte
	etag        string // empty for expensive leaves and redirects
	location    string // redirects only
}

// httpError is an answer other than success: GCE's status and message.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func notFound(msg string) error { return &httpError{code: http.StatusNotFound, msg: msg} }

// ServeHTTP answers one request. It sets the headers GCE puts on every
// response, then hands over to handle, whose error writeError turns into
// the answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Shared value slices, set without canonicalizing the (canonical)
	// names: net/http only reads them.
	h["Metadata-Flavor"] = hdrGoogle
	h["Server"] = hdrServer
	h["X-Xss-Protection"] = hdrXSS
	h["X-Frame-Options"] = hdrFrame
	resp, err := s.handle(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	switch resp.contentType {
	case "":
	case contentJSON:
		h["Content-Type"] = hdrJSON
	case contentText:
		h["Content-Type"] = hdrText
	default:
		h.Set("Content-Type", resp.contentType)
	}
	if resp.etag != "" {
		h.Set("Etag", resp.etag)
	}
	if resp.location != "" {
		h.Set("Location", resp.location)
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

// Values of the headers every answer carries.
var (
	hdrGoogle = []string{"Google"}
	hdrServer = []string{"Metadata Server for VM"}
	hdrXSS    = []string{"0"}
	hdrFrame  = []string{"SAMEORIGIN"}
	hdrJSON   = []string{contentJSON}
	hdrText   = []string{contentText}
)

// writeError is the one place errors become answers, in the format of
// Go's http.Error, as the reference server writes them.
func writeError(w http.ResponseWriter, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = &httpError{code: http.StatusInternalServerError, msg: "internal error"}
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(he.code)
	_, _ = fmt.Fprintln(w, he.msg)
}

// handle checks a request and answers it. The checks run in this order:
// the Host header (DNS rebinding), browser headers, the method, the
// request target, Metadata-Flavor, X-Forwarded-For; then the tree.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) (response, error) {
	if !s.hostAllowed(r.Host) {
		return response{}, &httpError{http.StatusForbidden, fmt.Sprintf("Forbidden Host header %q", r.Host)}
	}
	if loopback.FromBrowser(r) {
		return response{}, &httpError{http.StatusForbidden, "Requests from browsers are not allowed"}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return response{}, &httpError{http.StatusMethodNotAllowed, "Method not allowed"}
	}
	if !strings.HasPrefix(r.RequestURI, "/") {
		return response{}, &httpError{http.StatusBadRequest, "Request target must be a path"}
	}
	q, err := parseRequest(r.URL.Path, r.URL.RawQuery)
	if err != nil {
		return response{}, err
	}
	// The plain root listing is GCE's liveness probe; clients send it
	// without the header (the boto plugin) and it reveals nothing.
	probe := len(q.segments) == 0 && !q.recursive
	if v := r.Header.Get("Metadata-Flavor"); v != "Google" && !probe {
		return response{}, &httpError{http.StatusForbidden, fmt.Sprintf("Bad Metadata-Flavor: got %q, want %q", v, "Google")}
	}
	if v, ok := r.Header["X-Forwarded-For"]; ok {
		return response{}, &httpError{http.StatusForbidden, fmt.Sprintf("Forbidden X-Forwarded-For header %q", strings.Join(v, ", "))}
	}

	at, err := walk(s.tree, q)
	if err != nil {
		return response{}, err
	}
	n := at.node
	var resp response
	switch {
	case n.isDir() && !q.listing && len(q.segments) > 0:
		return s.redirect(at.path(), r.URL.RawQuery), nil
	case n.isDir() && !q.recursive:
		if q.altGiven {
			return response{}, &httpError{http.StatusBadRequest, "Non-recursive directory listings do not support ?alt."}
		}
		resp = response{contentType: contentText, body: renderListing(n)}
	case n.isDir():
		resp.body, resp.contentType = renderRecursive(n, q.alt)
	case n.mint != nil:
		v, err := n.mint(r, q)
		if err != nil {
			return response{}, err
		}
		if t, ok := v.(tokenAnswer); ok {
			if q.alt != "text" { // a map: JSON unless text is asked for
				resp.body, resp.contentType = s.tokenJSON(t), contentJSON
				resp.status = http.StatusOK
				return resp, nil
			}
			v = t.asMap()
		}
		resp.body, resp.contentType = renderLeaf(v, q.alt)
		resp.status = http.StatusOK
		return resp, nil // expensive: no ETag, no waiting
	default:
		resp.body, resp.contentType = renderLeaf(n.value, q.alt)
	}
	resp.status = http.StatusOK
	resp.etag = etagOf(resp.body)
	if q.waitForChange && (!q.hasLastETag || q.lastETag == resp.etag) {
		if err := s.waitForChange(w, r, q); err != nil {
			return response{}, err
		}
	}
	return resp, nil
}

// redirect sends a directory asked for without its slash to the slash
// form. The Location names this server itself, never the request's Host
// (which a rebinding page controls), and keeps the query string.
func (s *Server) redirect(dirPath, rawQuery string) response {
	loc := "http://" + net.JoinHostPort(loopback.IPv4, strconv.Itoa(int(s.port.Load()))) + dirPath + "/"
	if rawQuery != "" {
		loc += "?" + rawQuery
	}
	return response{
		status:      http.StatusMovedPermanently,
		contentType: "text/html",
		body:        []byte(dirPath + "/\n"),
		location:    loc,
	}
}

// hostAllowed accepts the names clients use for the metadata server:
// this server's loopback address with its port, and GCE's own names.
func (s *Server) hostAllowed(host string) bool {
	port := int(s.port.Load())
	names := s.hostNames.Load()
	if names == nil || names.port != port {
		p := strconv.Itoa(port)
		names = &hostNames{port: port, names: []string{"metadata.google.internal:" + p, "169.254.169.254:" + p}}
		s.hostNames.Store(names)
	}
	if loopback.HostAllowed(host, port, names.names...) {
		return true
	}
	switch strings.ToLower(host) {
	case "metadata.google.internal", "metadata", "169.254.169.254":
		return true
	}
	return false
}

// hostNames are GCE's names with this server's port, made once rather
// than per request.
type hostNames struct {
	port  int
	names []string
}

// waitForChange holds a wait_for_change request. Values are fixed for the
// server's life, so a wait ends with its timeout (timeout_sec, bounded by
// MaxWait), when the client goes away, or when the server closes; it
// never spins.
func (s *Server) waitForChange(w http.ResponseWriter, r *http.Request, q request) error {
	d := s.MaxWait
	if d <= 0 {
		d = DefaultMaxWait
	}
	if q.timeout > 0 && q.timeout < d {
		d = q.timeout
	}
	// The server's own read and write timeouts are shorter than a wait;
	// net/http would cancel the request at the read one.
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(d + time.Minute)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)

	fire, stop := s.after(d)
	defer stop()
	select {
	case <-fire:
		return nil
	case <-s.closing:
		return &httpError{http.StatusServiceUnavailable, "Server is shutting down"}
	case <-r.Context().Done():
		return &httpError{http.StatusServiceUnavailable, "Request cancelled"}
	}
}
