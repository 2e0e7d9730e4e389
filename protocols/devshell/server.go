package devshell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
)

// EnvVar is the environment variable clients read the port from.
const EnvVar = "DEVSHELL_CLIENT_PORT"

// MinLifetime is the least lifetime a served token has left. Clients
// refresh some minutes before expiry (google-auth 3m45s, x/oauth2 225s);
// a shorter token would make them ask again on every call.
const MinLifetime = 5 * time.Minute

// DefaultScopes are the scopes tokens are minted for when Server.Scopes is
// empty: what Cloud Shell's own tokens carry and what gsutil and Java ADC
// expect.
var DefaultScopes = []string{
	"https://www.googleapis.com/auth/cloud-platform",
	"https://www.googleapis.com/auth/userinfo.email",
}

const (
	defaultDeadline = 30 * time.Second
	// lingerTimeout bounds how long a finished connection waits for the
	// client to close, so unread extra bytes do not turn the close into a
	// reset that could destroy the reply in flight.
	lingerTimeout = time.Second
	// writeTimeout bounds writing the reply, a single small frame.
	writeTimeout = 5 * time.Second
)

// Tokens is the part of the token core the server uses; *broker.Broker
// implements it.
type Tokens interface {
	AccessToken(ctx context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error)
}

// Server serves one account's access tokens over the devshell protocol.
// Set the fields, then call Start; fields must not change afterwards.
type Server struct {
	// Tokens mints the tokens. Required.
	Tokens Tokens
	// Account is the broker account whose tokens are served. Required.
	Account string
	// Email is sent as the reply's first element.
	Email string
	// ProjectID is sent as the second element; empty sends null.
	ProjectID string
	// Scopes of the served token; DefaultScopes when empty.
	Scopes []string
	// MinLifetime overrides the package's MinLifetime; values below it
	// are raised to it.
	MinLifetime time.Duration

	// Port to listen on; 0 picks a free one.
	Port int
	// Deadline bounds a whole connection (read, mint and write);
	// 30 seconds when zero.
	Deadline time.Duration
	// MaxConns caps open connections (the loopback default when zero).
	MaxConns int
	// AllowPeer, when set, is asked about every connection before
	// anything is read; false refuses it with an error reply. It is where
	// the peer-uid check plugs in.
	AllowPeer func(net.Conn) bool

	// Logger gets one debug line per request and warnings for refusals.
	Logger *slog.Logger
	// Now is the clock used for expires_in; time.Now when nil.
	Now func() time.Time

	mu       sync.Mutex
	srv      *loopback.TCPServer
	last     atomic.Pointer[lastFrame]
	started  bool
	deadline time.Duration
}

// Info tells clients where to find a started server.
type Info struct {
	Port int
}

// Env returns the environment variables that point clients at the server.
func (i Info) Env() map[string]string {
	return map[string]string{EnvVar: strconv.Itoa(i.Port)}
}

// Start opens the listeners (127.0.0.1 and ::1 on one port) and returns
// once clients can connect. ctx bounds only the start.
func (s *Server) Start(ctx context.Context) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	if s.Tokens == nil || s.Account == "" {
		return Info{}, errors.New("devshell: Tokens and Account must be set")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return Info{}, errors.New("devshell: already started")
	}
	s.started = true
	s.deadline = s.Deadline
	if s.deadline <= 0 {
		s.deadline = defaultDeadline
	}
	srv, err := loopback.ServeTCP(s.serveConn, loopback.TCPOptions{
		Port:     s.Port,
		DualIPv6: true,
		MaxConns: s.MaxConns,
		Deadline: s.deadline,
		Logger:   s.logger(),
	})
	if err != nil {
		return Info{}, fmt.Errorf("devshell: %w", err)
	}
	s.srv = srv
	return Info{Port: srv.Port()}, nil
}

// Close stops the listeners and ends every open connection. It is safe to
// call more than once, and before Start.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.started = true // a closed server cannot be started
	s.mu.Unlock()
	if srv != nil {
		return srv.Close()
	}
	return nil
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

// serveConn answers the one request of a connection. The loopback server
// has set the connection's deadline and closes it afterwards.
func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	start := time.Now()
	r, err := s.handle(ctx, c)
	var frame []byte
	if err == nil {
		frame, err = s.replyFrame(r)
	}
	if err != nil {
		frame = errorFrame(s.publicMessage(err))
	}
	// A read that hit the connection's deadline (or a mint that took
	// nearly all of it) still gets its reply: the write has its own short
	// allowance when less than that is left. Only then: a timer earlier
	// than every other wakes the runtime's network poller, a system call
	// pair per connection for a client that asks one token at a time.
	// The connection's deadline was set just before serveConn began.
	if time.Since(start) >= s.deadline-writeTimeout {
		_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
	}
	lg := s.logger()
	// The per-connection logger is made only when its lines are written.
	debug := lg.Enabled(ctx, slog.LevelDebug)
	if debug {
		lg = lg.With("frontend", "devshell", "account", s.Account, "peer", c.RemoteAddr().String())
	}
	if _, werr := c.Write(frame); werr != nil {
		if debug {
			lg.Debug("write failed", "err", werr)
		}
		return
	}
	if debug {
		if err != nil {
			lg.Debug("request failed", "err", err, "latency", time.Since(start))
		} else {
			lg.Debug("token issued", "scopes", s.scopes(), "expires_in", r.ExpiresIn, "latency", time.Since(start))
		}
	}
	// A refused peer's request was never read and may still be on its
	// way, after the peek linger would make.
	linger(c, err == errPeerRefused)
}

// errPeerRefused answers a connection AllowPeer refused, before its
// request is read.
var errPeerRefused error = &protocolError{msg: "connection refused: peer not allowed"}

// replyFrame encodes r, reusing the frame of the previous reply when it
// is the same: clients ask for the same cached token over and over, and
// the reply changes only when the token does or expires_in ticks.
func (s *Server) replyFrame(r reply) ([]byte, error) {
	if f := s.last.Load(); f != nil && f.r == r {
		return f.frame, nil
	}
	frame, err := encodeReply(r)
	if err != nil {
		return nil, err
	}
	s.last.Store(&lastFrame{r: r, frame: frame})
	return frame, nil
}

// lastFrame is a reply and its encoding.
type lastFrame struct {
	r     reply
	frame []byte
}

// readers hold the request readers of finished connections: a request
// is a few bytes, and a fresh buffer per connection was garbage at once.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 512) }}

// handle reads the request and fetches the token.
func (s *Server) handle(ctx context.Context, c net.Conn) (reply, error) {
	if s.AllowPeer != nil && !s.AllowPeer(c) {
		s.logger().Warn("devshell: peer refused", "peer", c.RemoteAddr().String())
		return reply{}, errPeerRefused
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(c)
	err := readRequest(br)
	br.Reset(nil) // keep no connection alive from the pool
	readers.Put(br)
	if err != nil {
		return reply{}, err
	}
	// The mint must not outlive the connection's deadline.
	ctx, cancel := context.WithTimeout(ctx, s.deadline)
	defer cancel()
	minLife := max(s.MinLifetime, MinLifetime)
	tok, err := s.Tokens.AccessToken(ctx, s.Account, s.scopes(), minLife)
	if err != nil {
		return reply{}, err
	}
	return reply{
		Email:     s.Email,
		ProjectID: s.ProjectID,
		Token:     tok.Value,
		ExpiresIn: expiresIn(tok, s.now()),
	}, nil
}

func (s *Server) scopes() []string {
	if len(s.Scopes) > 0 {
		return s.Scopes
	}
	return DefaultScopes
}

// publicMessage is the one place that turns a failure into the text sent
// to the client. Protocol errors are sent as they are; token-core errors
// are reduced to a short reason, the details going to the log only.
func (s *Server) publicMessage(err error) string {
	var pe *protocolError
	if errors.As(err, &pe) {
		return pe.msg
	}
	s.logger().Warn("devshell: cannot get access token", "account", s.Account, "class", broker.ClassOf(err).String(), "err", err)
	return "cannot get access token: " + broker.PublicReason(err)
}

// expiresIn is the remaining lifetime in whole seconds, truncated, but at
// least 1: clients read 0 as "no token".
func expiresIn(t broker.Token, now time.Time) int64 {
	if t.Expiry.IsZero() {
		return int64(time.Hour / time.Second)
	}
	return max(int64(t.Expiry.Sub(now)/time.Second), 1)
}

// linger, when the client has sent more than was read (a trailing
// newline, extra bytes, or a whole request when unread is set),
// half-closes the connection and reads the rest until the client closes,
// for at most lingerTimeout: closing with unread input would send a
// reset instead of a clean end, and the client could lose the reply. A
// client that sent its request alone, as most do, is closed at once.
func linger(c net.Conn, unread bool) {
	if !unread && !loopback.MayHaveInput(c) {
		return
	}
	type closeWriter interface{ CloseWrite() error }
	cw, ok := c.(closeWriter)
	if !ok {
		return
	}
	if cw.CloseWrite() != nil {
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.Copy(io.Discard, io.LimitReader(c, MaxRequest))
}
