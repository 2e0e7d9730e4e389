package loopback

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// HTTPOptions configure an HTTP front-end's server. Zero fields take the
// defaults below, which suit token requests: small, quick, local.
type HTTPOptions struct {
	Port     int  // 0 picks a free port
	DualIPv6 bool // also listen on [::1] with the same port

	MaxConns          int           // open connections at once, both listeners together; default 256
	ReadHeaderTimeout time.Duration // default 10s
	ReadTimeout       time.Duration // default 30s
	WriteTimeout      time.Duration // default 90s (covers a slow upstream mint)
	IdleTimeout       time.Duration // default 2m
	MaxHeaderBytes    int           // default 64 KiB

	// AllowPeer, when set, is asked once per connection, before its first
	// request reaches the handler, whether the connecting process may be
	// served (SameUser is the usual choice). Requests on a refused
	// connection get 403 with PeerRefusedMessage and the connection is
	// closed. Protocols without a secret (metadata, devshell) set it.
	AllowPeer func(net.Conn) bool

	// Context, when set, is the parent of every request's context: when
	// it ends, requests in progress see their context cancelled (the
	// listeners stay open until Close). Setting it here saves a handler
	// from joining two contexts on every request.
	Context context.Context

	// Logger gets the server's own errors (bad TLS, accept failures) and
	// a warning per refused peer.
	Logger *slog.Logger
}

func (o *HTTPOptions) setDefaults() {
	if o.MaxConns <= 0 {
		o.MaxConns = 256
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 30 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 90 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// HTTPServer is a running loopback HTTP server.
type HTTPServer struct {
	srv    *http.Server
	tr     *connTracker
	port   int
	cancel context.CancelFunc
	done   sync.WaitGroup
	once   sync.Once
	err    error
}

// connInfo travels in each connection's context: the raw connection for
// Conn, and the peer decision, made once per connection rather than once
// per request because a keep-alive connection keeps its peer.
type connInfo struct {
	conn    net.Conn
	once    sync.Once
	allowed bool
}

type connKey struct{}

// ServeHTTP starts serving h on loopback and returns once the listeners
// are open, so the port can be handed to clients at once.
func ServeHTTP(h http.Handler, o HTTPOptions) (*HTTPServer, error) {
	o.setDefaults()
	lns, port, err := Listen(o.Port, o.DualIPv6)
	if err != nil {
		return nil, err
	}
	if o.AllowPeer != nil {
		h = &peerGuard{allow: o.AllowPeer, next: h, log: o.Logger}
	}
	// Handlers see their request context cancelled by Close, so a slow
	// mint stops instead of finishing for a client that is gone.
	parent := o.Context
	if parent == nil {
		parent = context.Background()
	}
	base, cancel := context.WithCancel(parent)
	s := &HTTPServer{port: port, cancel: cancel}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return base },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if lc, ok := c.(*limitConn); ok {
				c = lc.Conn
			}
			return context.WithValue(ctx, connKey{}, &connInfo{conn: c})
		},
	}
	// One tracker for both listeners: the cap counts connections to the
	// server, not per address family.
	tr := newConnTracker(o.MaxConns)
	s.tr = tr
	s.srv.ConnState = tr.setState
	for _, ln := range lns {
		ln := &limitListener{Listener: ln, tr: tr, closed: make(chan struct{})}
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				o.Logger.Error("http server stopped", "err", err)
			}
		}()
	}
	return s, nil
}

// Port is the TCP port the server listens on.
func (s *HTTPServer) Port() int { return s.port }

// Addr is "127.0.0.1:PORT", the address clients are given.
func (s *HTTPServer) Addr() string { return net.JoinHostPort(IPv4, strconv.Itoa(s.port)) }

// Close stops the listeners, closes every connection at once, active and
// idle, and cancels the context of requests still being handled. It does
// not wait for handlers to return; what they write goes nowhere. Safe to
// call more than once.
func (s *HTTPServer) Close() error {
	s.once.Do(func() {
		// Connections first: a handler woken by the cancellation must
		// find nothing left to answer on.
		s.err = s.srv.Close()
		s.cancel()
		s.done.Wait()
	})
	return s.err
}

// Conn returns the network connection a request arrived on, for peer
// checks. It is nil for requests not served by this package.
func Conn(r *http.Request) net.Conn {
	if ci := info(r); ci != nil {
		return ci.conn
	}
	return nil
}

func info(r *http.Request) *connInfo {
	ci, _ := r.Context().Value(connKey{}).(*connInfo)
	return ci
}

// ConnFromContext returns the connection a request's context belongs to:
// the context of an HTTP request served by ServeHTTP, or the one ServeTCP
// hands its handler, and any context derived from them. It lets code that
// only sees a context (a token-core wrapper writing an audit line) name
// the peer. It is nil for other contexts.
func ConnFromContext(ctx context.Context) net.Conn {
	if ci, _ := ctx.Value(connKey{}).(*connInfo); ci != nil {
		return ci.conn
	}
	return nil
}

// PeerRefusedMessage is the plain-text body (plus a newline) of the 403
// answer to a request from a refused peer.
const PeerRefusedMessage = "connection from another user refused"

// RequirePeer wraps h so that a request is served only when allow accepts
// the connection it came on (see Conn); others get 403 with
// PeerRefusedMessage and their connection is closed. A request whose
// connection is unknown, because it was not served by this package, is
// refused. allow runs for every request; HTTPOptions.AllowPeer is the
// cheaper choice, asking once per connection.
func RequirePeer(allow func(net.Conn) bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := Conn(r)
		if c == nil || !allow(c) {
			refusePeer(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}

type peerGuard struct {
	allow func(net.Conn) bool
	next  http.Handler
	log   *slog.Logger
}

func (g *peerGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ci := info(r)
	if ci == nil {
		refusePeer(w)
		return
	}
	ci.once.Do(func() {
		ci.allowed = g.allow(ci.conn)
		if !ci.allowed {
			g.log.Warn("refused a connection from another user", "remote", ci.conn.RemoteAddr().String())
		}
	})
	if !ci.allowed {
		refusePeer(w)
		return
	}
	g.next.ServeHTTP(w, r)
}

func refusePeer(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	http.Error(w, PeerRefusedMessage, http.StatusForbidden)
}
