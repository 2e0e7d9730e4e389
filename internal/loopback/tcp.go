package loopback

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// TCPOptions configure a raw TCP front-end (one request per connection).
type TCPOptions struct {
	Port     int
	DualIPv6 bool
	MaxConns int           // default 256; extra connections are closed at once
	Deadline time.Duration // whole-connection deadline; default 30s

	// AllowPeer, when set, is asked for each connection before handle
	// sees it (SameUser is the usual choice); a refused connection is
	// closed without a byte written and logged as a warning.
	AllowPeer func(net.Conn) bool

	Logger *slog.Logger
}

// TCPServer runs a handler per accepted connection and tracks them, so
// Close ends every one.
type TCPServer struct {
	lns    []net.Listener
	port   int
	opts   TCPOptions
	handle func(context.Context, net.Conn)
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	once   sync.Once
}

// ServeTCP starts accepting on loopback. handle owns the connection until
// it returns; the server closes it afterwards. ctx passed to handle is
// cancelled by Close, and carries the connection for ConnFromContext.
func ServeTCP(handle func(context.Context, net.Conn), o TCPOptions) (*TCPServer, error) {
	if o.MaxConns <= 0 {
		o.MaxConns = 256
	}
	if o.Deadline <= 0 {
		o.Deadline = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	lns, port, err := Listen(o.Port, o.DualIPv6)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &TCPServer{lns: lns, port: port, opts: o, handle: handle, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	for _, ln := range lns {
		s.wg.Add(1)
		go s.accept(ln)
	}
	return s, nil
}

func (s *TCPServer) accept(ln net.Listener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Running out of file descriptors and similar passing
			// failures must not end the server; back off as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.opts.Logger.Warn("accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		if !s.track(c) {
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			_ = c.SetDeadline(time.Now().Add(s.opts.Deadline))
			if s.opts.AllowPeer != nil && !s.opts.AllowPeer(c) {
				s.opts.Logger.Warn("refused a connection from another user", "remote", c.RemoteAddr().String())
				return
			}
			s.handle(context.WithValue(s.ctx, connKey{}, &connInfo{conn: c}), c)
		}()
	}
}

func (s *TCPServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.conns) >= s.opts.MaxConns {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *TCPServer) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// Port is the TCP port the server listens on.
func (s *TCPServer) Port() int { return s.port }

// Addr is "127.0.0.1:PORT".
func (s *TCPServer) Addr() string { return net.JoinHostPort(IPv4, strconv.Itoa(s.port)) }

// Close stops accepting, closes every open connection and waits for the
// handlers to return. Safe to call more than once.
func (s *TCPServer) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		for _, ln := range s.lns {
			ln.Close()
		}
		s.wg.Wait()
	})
	return nil
}
