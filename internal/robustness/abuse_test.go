package robustness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/internal/bench"
)

// legitBound is how fast a well-behaved client must be served while the
// server is under abuse. The best of a few tries counts, so that one
// scheduling hiccup of a loaded machine does not decide.
const legitBound = 100 * time.Millisecond

// servedFast asks target for a token on a new connection up to three
// times and returns the fastest answer's latency.
func servedFast(t *testing.T, target bench.Target) time.Duration {
	t.Helper()
	best := time.Hour
	for range 3 {
		hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		a, err := target.Fetch(ctx, hc)
		took := time.Since(start)
		cancel()
		if err != nil {
			t.Fatalf("%s: legitimate client: %v after %v", target.Name, err, took)
		}
		if a.Outcome != bench.OK {
			t.Fatalf("%s: legitimate client: %v %q", target.Name, a.Outcome, a.Message)
		}
		best = min(best, took)
	}
	return best
}

// dialMany opens n connections to addr and runs start on each; they stay
// open until the test ends.
func dialMany(t *testing.T, addr string, n int, start func(c net.Conn) error) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 15*time.Second) // generous: a loaded machine, not the server, is slow here
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if err := start(c); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	return conns
}

// Clients that open connections and send their request a byte at a time,
// or never finish it, do not keep a well-behaved client waiting.
func TestSlowloris(t *testing.T) {
	const slow = 200 // below the connection cap: the cap's own behaviour is TestIdleFlood's
	r := newRig(t, rigOptions{})
	for _, target := range r.targets {
		t.Run(target.Name, func(t *testing.T) {
			r.fetch(t, target) // warm the cache: the subject is the server, not the mint
			partial := []byte("POST /rpc/LuciLocalAuthService.GetOAuthToken HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
			if !target.IsHTTP() {
				partial = []byte("2")
			}
			dialMany(t, target.Addr(), slow, func(c net.Conn) error {
				_, err := c.Write(partial)
				return err
			})
			if took := servedFast(t, target); took > legitBound {
				t.Errorf("legitimate client served after %v under %d slow connections, want ≤ %v", took, slow, legitBound)
			}
		})
	}
}

// Clients that open many keep-alive connections and leave them idle do not
// lock a well-behaved client out, under the connection cap (256 per HTTP
// server) or past it, where a newcomer takes the slot of the connection
// idle longest.
func TestIdleFlood(t *testing.T) {
	tests := []struct {
		idle int
	}{
		{idle: 200},
		{idle: 300},
	}
	r := newRig(t, rigOptions{})
	for _, tt := range tests {
		for _, target := range r.targets {
			if !target.IsHTTP() {
				continue // devshell closes every connection after its one reply
			}
			t.Run(fmt.Sprintf("%s/%d", target.Name, tt.idle), func(t *testing.T) {
				r.fetch(t, target)
				var wg sync.WaitGroup
				conns := dialMany(t, target.Addr(), tt.idle, func(c net.Conn) error {
					return target.NewRequest(context.Background()).Write(c)
				})
				for _, c := range conns {
					wg.Go(func() {
						_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
						if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
							drain(resp)
						}
					})
				}
				wg.Wait() // every connection answered and now idle
				if took := servedFast(t, target); took > legitBound {
					t.Errorf("legitimate client served after %v with %d idle connections open, want ≤ %v", took, tt.idle, legitBound)
				}
			})
		}
	}
}

// Oversized bodies, headers and frames are refused quickly without
// reaching the token core, and the server keeps serving.
func TestOversizedInput(t *testing.T) {
	r := newRig(t, rigOptions{})
	big := bytes.Repeat([]byte("a"), 2<<20)
	for _, target := range r.targets {
		t.Run(target.Name, func(t *testing.T) {
			before := r.fg.Requests()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if target.IsHTTP() {
				cases := map[string]func(*http.Request){
					"header": func(req *http.Request) { req.Header.Set("X-Big", string(big[:256<<10])) },
				}
				if target.Name != bench.Metadata {
					cases["body"] = func(req *http.Request) {
						req.Body = nopCloser{bytes.NewReader(big)}
						req.ContentLength = int64(len(big))
					}
				}
				for name, change := range cases {
					req := target.NewRequest(ctx)
					change(req)
					resp, err := r.client.Do(req)
					if err != nil {
						// The server may close the connection while the
						// body is still being sent: also a refusal.
						if !isTransportError(err) {
							t.Errorf("%s: %v", name, err)
						}
						continue
					}
					a, err := target.Read(resp)
					if isTransportError(err) {
						// An answer sent while the request was still
						// arriving can be lost to the reset of the close.
						continue
					}
					if err != nil || a.Outcome != bench.Refused || a.Status < 400 || a.Status >= 500 {
						t.Errorf("oversized %s: status %d, %v, %v; want a 4xx refusal", name, a.Status, a.Outcome, err)
					}
				}
			} else {
				for _, req := range [][]byte{
					[]byte("99999999\n[]"),
					append([]byte("65536\n["), big[:65535]...),
					big[:1<<20],
				} {
					frame, err := target.Exchange(ctx, req)
					if err != nil && !isTransportError(err) {
						t.Errorf("%.10q...: %v", req, err)
						continue
					}
					if err == nil && !bytes.Contains(frame, []byte(`["`)) {
						t.Errorf("%.10q...: reply %q, want an error frame", req, frame)
					}
				}
			}
			if n := r.fg.Requests() - before; n != 0 {
				t.Errorf("oversized input reached the upstream %d times", n)
			}
			if a := r.fetch(t, target); a.Outcome != bench.OK {
				t.Errorf("afterwards: %v %q", a.Outcome, a.Message)
			}
		})
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// Requests a web page could send (a DNS-rebinding Host, a browser's Origin
// or Sec-Fetch headers) are refused by every HTTP front-end before they
// reach the token core.
func TestWebPagesAreRefused(t *testing.T) {
	r := newRig(t, rigOptions{})
	for _, target := range r.targets {
		if !target.IsHTTP() {
			continue
		}
		_, port, _ := net.SplitHostPort(target.Addr())
		cases := map[string]func(*http.Request){
			"rebinding host":          func(req *http.Request) { req.Host = "attacker.example:" + port },
			"rebinding host, no port": func(req *http.Request) { req.Host = "attacker.example" },
			"localhost suffix":        func(req *http.Request) { req.Host = "localhost.attacker.example:" + port },
			"numeric lookalike":       func(req *http.Request) { req.Host = "127.0.0.1.nip.io:" + port },
			"origin":                  func(req *http.Request) { req.Header.Set("Origin", "https://attacker.example") },
			"sec-fetch":               func(req *http.Request) { req.Header.Set("Sec-Fetch-Site", "cross-site") },
			"sec-fetch-dest":          func(req *http.Request) { req.Header.Set("Sec-Fetch-Dest", "empty") },
			"referer":                 func(req *http.Request) { req.Header.Set("Referer", "https://attacker.example/") },
		}
		for name, change := range cases {
			t.Run(target.Name+"/"+name, func(t *testing.T) {
				before := r.fg.Requests()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				req := target.NewRequest(ctx)
				change(req)
				resp, err := r.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				a, err := target.Read(resp)
				if err != nil {
					t.Fatal(err)
				}
				if a.Status != http.StatusForbidden || a.Token != "" {
					t.Errorf("status %d (%v), want 403 and no token", a.Status, a.Outcome)
				}
				if n := r.fg.Requests() - before; n != 0 {
					t.Errorf("reached the upstream %d times", n)
				}
			})
		}
	}
}

// Once the session has ended, nothing is served: new connections are
// refused and keep-alive connections opened before are closed.
func TestNothingServedAfterSessionEnds(t *testing.T) {
	r := newRig(t, rigOptions{})
	for _, target := range r.targets {
		if a := r.fetch(t, target); a.Outcome != bench.OK { // also leaves keep-alive connections open
			t.Fatalf("%s: %v", target.Name, a.Outcome)
		}
	}
	if err := r.sess.Close(); err != nil {
		t.Fatal(err)
	}
	for _, target := range r.targets {
		for _, client := range []*http.Client{r.client, {Transport: &http.Transport{Proxy: nil}}} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			a, err := target.Fetch(ctx, client)
			cancel()
			if err == nil {
				t.Errorf("%s: answered %v (status %d) after the session ended", target.Name, a.Outcome, a.Status)
			} else if !isTransportError(err) {
				t.Errorf("%s: %v, want a refused or closed connection", target.Name, err)
			}
		}
	}
}

// countingSource mints distinct opaque tokens instantly, so that tests can
// drive the cache hard without an upstream.
type countingSource struct {
	mu sync.Mutex
	n  int
}

func (s *countingSource) AccessToken(_ context.Context, scopes []string, _ time.Duration) (broker.Token, error) {
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	return broker.Token{Value: "tok-" + strconv.Itoa(n), Expiry: time.Now().Add(time.Hour)}, nil
}

func (s *countingSource) IDToken(ctx context.Context, aud string, m time.Duration) (broker.Token, error) {
	return s.AccessToken(ctx, []string{aud}, m)
}

func (s *countingSource) Email() string { return robotEmail }

// shortSource is countingSource with tokens of 30 seconds, shorter than
// any front-end's minimum, which exercises the short-upstream path.
type shortSource struct{ countingSource }

func (s *shortSource) AccessToken(ctx context.Context, scopes []string, m time.Duration) (broker.Token, error) {
	tok, err := s.countingSource.AccessToken(ctx, scopes, m)
	tok.Expiry = time.Now().Add(30 * time.Second)
	return tok, err
}

// 100 000 distinct scope sets do not grow memory past what the LRU bounds,
// whether the upstream's tokens are long-lived or too short for the
// caller; a sample goes through the front-ends that take scopes.
func TestManyScopeSetsStayBounded(t *testing.T) {
	const (
		sets      = 100_000
		cacheSize = 4096
		viaHTTP   = 1000
	)
	for _, src := range []broker.Source{&countingSource{}, &shortSource{}} {
		t.Run(fmt.Sprintf("%T", src), func(t *testing.T) {
			r := newRig(t, rigOptions{source: src, cacheSize: cacheSize})
			ctx := context.Background()
			heap := func() uint64 {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc
			}
			ask := func(from, to int) {
				for i := from; i < to; i++ {
					scopes := []string{"https://www.googleapis.com/auth/scope-" + strconv.Itoa(i), "email"}
					if _, err := r.broker.AccessToken(ctx, "task", scopes, 3*time.Minute); err != nil {
						t.Fatal(err)
					}
				}
			}
			ask(0, 2*cacheSize) // fill the cache and the LRU's own structures
			base := heap()
			ask(2*cacheSize, sets)
			grown := int64(heap()) - int64(base)
			if st := r.broker.Stats(); st.Entries > cacheSize {
				t.Errorf("%d cache entries, want at most %d", st.Entries, cacheSize)
			}
			// Entries are replaced, not added: what is left is noise.
			if grown > 1<<20 {
				t.Errorf("heap grew by %d KiB over %d more scope sets, want it bounded by the cache", grown>>10, sets-2*cacheSize)
			}
			for _, name := range []string{bench.LocalAuth, bench.Metadata} {
				for i := range viaHTTP {
					ep, _ := bench.EndpointsFromEnv(r.sess.Env)
					scopes := []string{"https://www.googleapis.com/auth/http-" + strconv.Itoa(i)}
					target, _ := bench.ByName(ep.Targets(scopes), name)
					if a := r.fetch(t, target); a.Outcome != bench.OK {
						t.Fatalf("%s: %v %q", name, a.Outcome, a.Message)
					}
				}
			}
			t.Logf("heap growth over %d scope sets: %d KiB; stats %+v", sets-2*cacheSize, grown>>10, r.broker.Stats())
		})
	}
}
