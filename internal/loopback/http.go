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

	"golang.org/x/net/netutil"
)

// HTTPOptions configure an HTTP front-end's server. Zero fields take the
// defaults below, which suit token requests: small, quick, local.
type HTTPOptions struct {
	Port     int  // 0 picks a free port
	DualIPv6 bool // also listen on [::1] with the same port

	MaxConns          int           // open connections at once; default 256
	ReadHeaderTimeout time.Duration // default 10s
	ReadTimeout       time.Duration // default 30s
	WriteTimeout      time.Duration // default 90s (covers a slow upstream mint)
	IdleTimeout       time.Duration // default 2m
	MaxHeaderBytes    int           // default 64 KiB

	// Logger gets the server's own errors (bad TLS, accept failures).
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
	srv  *http.Server
	port int
	done sync.WaitGroup
	once sync.Once
	err  error
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
	s := &HTTPServer{port: port}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	for _, ln := range lns {
		ln := netutil.LimitListener(ln, o.MaxConns)
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

// Close stops the listeners and closes every connection at once, active
// and idle. Safe to call more than once.
func (s *HTTPServer) Close() error {
	s.once.Do(func() {
		s.err = s.srv.Close()
		s.done.Wait()
	})
	return s.err
}

// Conn returns the network connection a request arrived on, for peer
// checks. It is nil for requests not served by this package.
func Conn(r *http.Request) net.Conn {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	return c
}
