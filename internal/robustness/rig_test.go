package robustness

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/internal/bench"
	"credbroker/internal/fakegoogle"
	"credbroker/session"
	"credbroker/sources/serviceaccount"
)

const robotEmail = "robot@proj-1.iam.gserviceaccount.com"

// quiet drops the logs of the code under test; set ROBUSTNESS_LOG=1 to
// see them.
func quiet() *slog.Logger {
	if os.Getenv("ROBUSTNESS_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// rigOptions shape a rig; zero fields take the defaults in newRig.
type rigOptions struct {
	mintTimeout time.Duration // broker's bound on one upstream mint
	maxAttempts int           // service-account source's attempts per token
	skew        time.Duration // added to the source's clock
	source      broker.Source // replaces the service-account source
	cacheSize   int
}

// rig is a running session over a real broker and front-ends.
type rig struct {
	fg      *fakegoogle.Server
	resets  *resetter
	broker  *broker.Broker
	sess    *session.Session
	targets []bench.Target
	client  *http.Client
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	if o.mintTimeout == 0 {
		o.mintTimeout = 10 * time.Second
	}
	if o.maxAttempts == 0 {
		o.maxAttempts = 2
	}
	r := &rig{fg: fakegoogle.New(t), resets: newResetter(t)}
	src := o.source
	if src == nil {
		var err error
		now := time.Now
		if o.skew != 0 {
			now = func() time.Time { return time.Now().Add(o.skew) }
		}
		src, err = serviceaccount.FromFile(r.fg.KeyFile(t, robotEmail), serviceaccount.Options{
			HTTPClient:  &http.Client{Transport: r.resets.transport(r.fg.URL)},
			MaxAttempts: o.maxAttempts,
			Now:         now,
			Logger:      quiet(),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	r.broker = broker.New(broker.Options{MintTimeout: o.mintTimeout, CacheSize: o.cacheSize, Logger: quiet()})
	t.Cleanup(r.broker.Close)
	if err := r.broker.AddAccount("task", src); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	sess, err := session.Start(context.Background(), session.Config{
		Broker:    r.broker,
		Scopes:    bench.DefaultScopes,
		ProjectID: "proj-1",
		Frontends: session.AllFrontends(),
		ParentEnv: []string{"HOME=" + home, "PATH=/usr/bin:/bin"},
		TempDir:   t.TempDir(),
		Logger:    quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	r.sess = sess
	ep, err := bench.EndpointsFromEnv(sess.Env)
	if err != nil {
		t.Fatal(err)
	}
	r.targets = ep.Targets(nil)
	if len(r.targets) != len(bench.Frontends) {
		t.Fatalf("session announced %d front-ends, want %d", len(r.targets), len(bench.Frontends))
	}
	r.client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
	t.Cleanup(r.client.CloseIdleConnections)
	return r
}

// fetch asks target for a token and fails the test on a transport error.
func (r *rig) fetch(t *testing.T, target bench.Target) bench.Answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := target.Fetch(ctx, r.client)
	if err != nil {
		t.Fatalf("%s: %v", target.Name, err)
	}
	return a
}

// resetter stands between the source and the fake Google endpoint: while
// on, every new upstream connection is accepted and reset (RST) as soon as
// the request arrives.
type resetter struct {
	on  atomic.Bool
	ln  net.Listener
	hit atomic.Int64
	// open and maxOpen count upstream connections open at once.
	open, maxOpen atomic.Int64
}

// countedConn keeps resetter.open up to date.
type countedConn struct {
	net.Conn
	r    *resetter
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.r.open.Add(-1) })
	return c.Conn.Close()
}

func (r *resetter) track(c net.Conn, err error) (net.Conn, error) {
	if err != nil {
		return nil, err
	}
	n := r.open.Add(1)
	for {
		m := r.maxOpen.Load()
		if n <= m || r.maxOpen.CompareAndSwap(m, n) {
			break
		}
	}
	return &countedConn{Conn: c, r: r}, nil
}

func newResetter(t *testing.T) *resetter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &resetter{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.hit.Add(1)
			go func() {
				buf := make([]byte, 512)
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Read(buf)
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // close with RST
				}
				c.Close()
			}()
		}
	}()
	return r
}

// transport dials the fake Google endpoint at base, or the resetting
// listener while resets are on. Keep-alive is off so each upstream call
// dials anew and a fault applies to the next call at once.
func (r *resetter) transport(base string) *http.Transport {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	var d net.Dialer
	return &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			if r.on.Load() {
				return r.track(d.DialContext(ctx, network, r.ln.Addr().String()))
			}
			return r.track(d.DialContext(ctx, network, u.Host))
		},
	}
}

// drain reads and closes a response body.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// isTransportError reports whether err is a failed exchange rather than an
// answer: what a client sees from a closed or refused server.
func isTransportError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return err != nil && (errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF))
}
