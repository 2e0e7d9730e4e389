package localauth

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
)

// rpcPrefix starts the raw request URI of every method, as LUCI's server
// matches it: a query string or an absolute-form URI is a wrong path.
const rpcPrefix = "/rpc/LuciLocalAuthService."

// rpcMethod returns the method name of a raw request URI: what follows
// rpcPrefix, one or more of [a-zA-Z0-9_] and nothing else.
func rpcMethod(uri string) (string, bool) {
	m, ok := strings.CutPrefix(uri, rpcPrefix)
	if !ok || m == "" {
		return "", false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return "", false
		}
	}
	return m, true
}

// maxBody is the first body size refused; 65535 bytes still pass.
const maxBody = 64 << 10

// Method names, the only routes. Both are used by luci-go's auth library
// (auth/internal/luci_ctx.go); GetOAuthToken also by depot_tools and
// luci-py clients.
const (
	methodOAuth = "GetOAuthToken"
	methodID    = "GetIDToken"
)

// httpError is a failure answered with a status and a plain-text body.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// rpcError is a fatal token-core failure, answered with 200 and an
// error_code in the JSON body, which clients take as "do not retry".
type rpcError struct {
	Code    int    `json:"error_code,omitempty"`
	Message string `json:"error_message,omitempty"`
}

func (e *rpcError) Error() string { return e.Message }

// request is the body of both methods; encoding/json matches its keys
// without regard to case, as clients expect.
type request struct {
	Scopes    []string `json:"scopes"`
	Audience  string   `json:"audience"`
	Secret    []byte   `json:"secret"`
	AccountID string   `json:"account_id"`
}

type oauthResponse struct {
	AccessToken string `json:"access_token"`
	Expiry      int64  `json:"expiry"`
}

type idResponse struct {
	IDToken string `json:"id_token"`
	Expiry  int64  `json:"expiry"`
}

// routes is the server's whole HTTP surface: the two RPC methods under one
// path pattern (see rpcPath and the method constants), behind the guards
// against web pages.
func (s *Server) routes() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.Logger.Error("localauth: panic while serving", slog.String("uri", r.RequestURI), slog.Any("panic", p))
			writeError(w, errorf(http.StatusInternalServerError, "Internal Server Error. See logs."))
		}
	}()
	// The request's context already ends with Start's (see the
	// loopback server's Context option in Start).
	resp, err := s.handle(r.Context(), r)
	if err != nil {
		writeError(w, err)
		return
	}
	if a, ok := resp.(*answer); ok {
		a.write(w)
		return
	}
	writeJSON(w, resp)
}

// guard refuses what no local_auth client sends but a web page might.
func guard(r *http.Request) error {
	if !loopback.HostAllowed(r.Host, localPort(r)) {
		return errorf(http.StatusForbidden, "Host not allowed.")
	}
	if loopback.FromBrowser(r) {
		return errorf(http.StatusForbidden, "Requests from browsers are not allowed.")
	}
	return nil
}

// localPort is the port the request arrived on, taken from the connection
// so the check works before Start has returned the port.
func localPort(r *http.Request) int {
	addr, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.Port
	}
	return -1
}

// handle runs the checks in the order LUCI's server does (see the package
// doc) and returns the response body or the failure.
func (s *Server) handle(ctx context.Context, r *http.Request) (any, error) {
	if err := guard(r); err != nil {
		return nil, err
	}
	if r.Method != http.MethodPost {
		return nil, errorf(http.StatusMethodNotAllowed, "Expecting POST")
	}
	method, ok := rpcMethod(r.RequestURI)
	if !ok {
		return nil, errorf(http.StatusNotFound, "Expecting /rpc/LuciLocalAuthService.<method>")
	}
	// What clients send is taken as is; anything else goes through the
	// full media type parser, whose verdict and messages are the protocol's.
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "Can't parse Content-Type: %s", err)
		}
		if mt != "application/json" {
			return nil, errorf(http.StatusBadRequest, "Expecting 'application/json' Content-Type")
		}
	}
	if r.ContentLength < 0 || r.ContentLength >= maxBody {
		return nil, errorf(http.StatusBadRequest, "Expecting 'Content-Length' header, <64Kb")
	}
	buf := getBody(int(r.ContentLength))
	defer putBody(buf)
	body := *buf
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return nil, errorf(http.StatusBadGateway, "Can't read the request body")
	}
	if method != methodOAuth && method != methodID {
		return nil, errorf(http.StatusNotFound, "Unknown RPC method %q", method)
	}
	req, own, err := s.decode(method, body)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(req.Secret, s.secret) != 1 {
		return nil, errorf(http.StatusForbidden, "Invalid secret.")
	}
	if !s.accounts[req.AccountID] {
		return nil, errorf(http.StatusNotFound, "Unrecognized account ID %q.", req.AccountID)
	}
	if own != nil {
		s.recent.Store(&recentRequest{method: method, body: own, req: req})
	}

	var start time.Time
	if s.debug {
		start = time.Now()
	}
	var tok broker.Token
	// what is made only when the debug line is written: a cached token
	// is served in far less time than the attributes take to build.
	what := func() slog.Attr { return slog.String("audience", req.Audience) }
	if method == methodOAuth {
		what = func() slog.Attr { return slog.Any("scopes", req.Scopes) }
		tok, err = s.Tokens.AccessToken(ctx, req.AccountID, req.Scopes, MinTokenLifetime)
	} else {
		tok, err = s.Tokens.IDToken(ctx, req.AccountID, req.Audience, MinTokenLifetime)
	}
	if s.debug {
		s.logIssue(r, req.AccountID, what(), start, tok, err)
	}
	if err != nil {
		if broker.IsTransient(err) {
			return nil, errorf(http.StatusInternalServerError, "Transient error - %s", err)
		}
		return nil, &rpcError{Code: broker.CodeOf(err), Message: err.Error()}
	}
	if method == methodOAuth {
		return s.oauthAnswer(tok), nil
	}
	return idResponse{IDToken: tok.Value, Expiry: tok.Expiry.Unix()}, nil
}

// recentRequest is the latest request that passed the secret and account
// checks, with its decoding: clients send the same body over and over,
// and an equal body need not be decoded again.
type recentRequest struct {
	method string
	body   []byte // a copy: the decoded strings point into it
	req    *request
}

// decode returns the request in body: when body is byte for byte the
// recent request's, that one's decoding, else a new one, made from a
// copy of body (own) that its strings point into, since the caller
// reuses body. The comparison takes constant time, because the body
// holds the secret.
func (s *Server) decode(method string, body []byte) (req *request, own []byte, err error) {
	if rc := s.recent.Load(); rc != nil && rc.method == method && len(rc.body) == len(body) &&
		subtle.ConstantTimeCompare(rc.body, body) == 1 {
		return rc.req, nil, nil
	}
	own = bytes.Clone(body)
	req, err = decodeRequest(method, own)
	return req, own, err
}

// bodies holds request body buffers between requests; most bodies are a
// few hundred bytes.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// getBody returns a buffer of n bytes from the pool (or a new one when n
// is larger than pooled buffers keep).
func getBody(n int) *[]byte {
	if n > maxPooledBody {
		b := make([]byte, n)
		return &b
	}
	b := bodies.Get().(*[]byte)
	if cap(*b) < n {
		*b = make([]byte, n, maxPooledBody)
	}
	*b = (*b)[:n]
	return b
}

func putBody(b *[]byte) {
	if cap(*b) <= maxPooledBody {
		bodies.Put(b)
	}
}

const maxPooledBody = 4 << 10

// decodeRequest parses and validates a body. Scopes come back sorted and
// de-duplicated. Fields are checked for presence in LUCI's order (what is
// asked for, then secret, then account) before the secret is compared.
func decodeRequest(method string, body []byte) (*request, error) {
	var req request
	if !decodeSimple(body, &req) {
		req = request{}
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, errorf(http.StatusBadRequest, "Not JSON body - %s", err)
		}
	}
	missing := ""
	switch {
	case method == methodOAuth && len(req.Scopes) == 0:
		missing = "scopes"
	case method == methodID && req.Audience == "":
		missing = "audience"
	case len(req.Secret) == 0:
		missing = "secret"
	case req.AccountID == "":
		missing = "account_id"
	}
	if missing != "" {
		return nil, errorf(http.StatusBadRequest, "Bad request: field %q is required.", missing)
	}
	if method == methodOAuth && !normalized(req.Scopes) {
		req.Scopes = broker.NormalizeScopes(req.Scopes)
	}
	return &req, nil
}

// logIssue writes the one debug line per token-core call: who asked for
// what and how it went, never the token.
func (s *Server) logIssue(r *http.Request, account string, what slog.Attr, start time.Time, tok broker.Token, err error) {
	attrs := []slog.Attr{
		slog.String("frontend", "localauth"),
		slog.String("account", account),
		what,
		slog.String("peer", r.RemoteAddr),
		slog.Duration("latency", time.Since(start)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("outcome", broker.ClassOf(err).String()), slog.Any("err", err))
	} else {
		attrs = append(attrs, slog.String("outcome", "issued"), slog.Time("expiry", tok.Expiry))
	}
	s.Logger.LogAttrs(context.Background(), slog.LevelDebug, "token request", attrs...)
}

// writeError is the one place failures are put on the wire.
func writeError(w http.ResponseWriter, err error) {
	var he *httpError
	var re *rpcError
	switch {
	case errors.As(err, &re):
		writeJSON(w, re)
	case errors.As(err, &he):
		http.Error(w, he.msg, he.status)
	default:
		http.Error(w, "Internal Server Error. See logs.", http.StatusInternalServerError)
	}
}

// writeJSON sends v as LUCI's server does: JSON, a newline, an explicit
// length.
func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "Internal Server Error. See logs.", http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// contentTypeJSON is the Content-Type of every JSON answer, shared by
// all of them: net/http only reads header values.
var contentTypeJSON = []string{"application/json; charset=utf-8"}

// normalized reports whether scopes are sorted without duplicates, as
// clients usually send them, so normalizing would only copy them.
func normalized(scopes []string) bool {
	for i := 1; i < len(scopes); i++ {
		if scopes[i-1] >= scopes[i] {
			return false
		}
	}
	return true
}
