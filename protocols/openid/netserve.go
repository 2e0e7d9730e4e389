package openid

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"credbroker/internal/loopback"

	"golang.org/x/net/netutil"
)

// Limits of a server on Addr or with TLS: loopback.ServeHTTP's defaults,
// which matter more where the server faces a network.
const (
	netMaxConns          = 256
	netReadHeaderTimeout = 10 * time.Second // also bounds the TLS handshake
	netReadTimeout       = 30 * time.Second
	netWriteTimeout      = 90 * time.Second
	netIdleTimeout       = 2 * time.Minute
	netMaxHeaderBytes    = 64 << 10
)

// netServer serves on an address of the caller's choosing, optionally
// over TLS, with the same timeouts, connection cap and Close semantics as
// a loopback.HTTPServer. At the cap a newcomer waits in the kernel's
// backlog until a connection closes; idle ones close after netIdleTimeout.
type netServer struct {
	srv    *http.Server
	ip     net.IP
	port   int
	cancel context.CancelFunc
	done   sync.WaitGroup
	once   sync.Once
	err    error
}

// serveNet listens on addr and serves h there; with cfg, HTTPS only.
func serveNet(h http.Handler, addr string, cfg *tls.Config, allowPeer func(net.Conn) bool, log *slog.Logger) (*netServer, error) {
	if cfg != nil && len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
		return nil, errors.New("TLSConfig has no certificate")
	}
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	bound := raw.Addr().(*net.TCPAddr)
	if allowPeer != nil {
		raw = &peerListener{Listener: raw, allow: allowPeer, log: log}
	}
	// The cap wraps the TCP listener, under TLS: a connection holds its
	// slot from accept, through the handshake, to close. A refused peer
	// takes none.
	ln := netutil.LimitListener(raw, netMaxConns)
	if cfg != nil {
		cfg = cfg.Clone()
		if cfg.MinVersion < tls.VersionTLS12 {
			cfg.MinVersion = tls.VersionTLS12
		}
		if len(cfg.NextProtos) == 0 {
			// HTTP/1.1 only, as on loopback: the timeouts and Close
			// above are those of HTTP/1 connections.
			cfg.NextProtos = []string{"http/1.1"}
		}
		ln = tls.NewListener(ln, cfg)
	}
	// Handlers see their request context cancelled by Close, as on
	// loopback.
	base, cancel := context.WithCancel(context.Background())
	s := &netServer{ip: bound.IP, port: bound.Port, cancel: cancel}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: netReadHeaderTimeout,
		ReadTimeout:       netReadTimeout,
		WriteTimeout:      netWriteTimeout,
		IdleTimeout:       netIdleTimeout,
		MaxHeaderBytes:    netMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("openid: http server stopped", "err", err)
		}
	}()
	return s, nil
}

// Port is the TCP port bound.
func (s *netServer) Port() int { return s.port }

// Addr is the address to give clients: the one bound, or loopback's
// for a wildcard bind.
func (s *netServer) Addr() string {
	host := s.ip.String()
	if s.ip.IsUnspecified() {
		host = loopback.IPv4
	}
	return net.JoinHostPort(host, strconv.Itoa(s.port))
}

// Close stops the listener, closes every connection, idle ones included,
// and cancels the context of requests still being handled. Safe to call
// more than once.
func (s *netServer) Close() error {
	s.once.Do(func() {
		s.err = s.srv.Close()
		s.cancel()
		s.done.Wait()
	})
	return s.err
}

// peerListener closes connections from peers allow refuses before
// anything is read from them, the TLS handshake included.
type peerListener struct {
	net.Listener
	allow func(net.Conn) bool
	log   *slog.Logger
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.allow(c) {
			return c, nil
		}
		l.log.Warn("openid: refused a connection from another user", "remote", c.RemoteAddr().String())
		c.Close()
	}
}
