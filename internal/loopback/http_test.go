package loopback

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func serveHTTP(t *testing.T, h http.Handler, o HTTPOptions) *HTTPServer {
	t.Helper()
	s, err := ServeHTTP(h, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawRequest sends req on a new connection and returns everything the
// server wrote until it closed the connection.
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// keepAlive is a client connection on which requests are sent one after
// another, as an HTTP/1.1 client with keep-alive does.
type keepAlive struct {
	net.Conn
	br *bufio.Reader
}

func dialKeepAlive(t *testing.T, network, addr string) *keepAlive {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{Conn: c, br: bufio.NewReader(c)}
}

func (k *keepAlive) send(path string) error {
	_, err := io.WriteString(k, "GET "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	return err
}

func (k *keepAlive) read() (string, error) {
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.Status + " " + string(b), err
}

func (k *keepAlive) do(t *testing.T, path string) string {
	t.Helper()
	if err := k.send(path); err != nil {
		t.Fatal(err)
	}
	got, err := k.read()
	if err != nil {
		t.Fatal(err)
	}
	return got
}

var echoPath = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, r.URL.Path)
})

func TestServeHTTPOptions(t *testing.T) {
	type limits struct {
		readHeader, read, write, idle time.Duration
		maxHeader                     int
	}
	tests := []struct {
		name string
		in   HTTPOptions
		want limits
	}{
		{"defaults", HTTPOptions{}, limits{10 * time.Second, 30 * time.Second, 90 * time.Second, 2 * time.Minute, 64 << 10}},
		{
			"given",
			HTTPOptions{ReadHeaderTimeout: 1 * time.Second, ReadTimeout: 2 * time.Second,
				WriteTimeout: 3 * time.Second, IdleTimeout: 4 * time.Second, MaxHeaderBytes: 5},
			limits{1 * time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serveHTTP(t, echoPath, tt.in).srv
			got := limits{srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes}
			if got != tt.want {
				t.Fatalf("server limits %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestServeHTTPReadHeaderTimeout shows the timeout is live: a client that
// never finishes its headers is disconnected.
func TestServeHTTPReadHeaderTimeout(t *testing.T) {
	s := serveHTTP(t, echoPath, HTTPOptions{ReadHeaderTimeout: 20 * time.Millisecond})
	c := dialKeepAlive(t, "tcp", s.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n") // no blank line
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("want the server to close the connection, got %v", err)
	}
}

func TestServeHTTPAddresses(t *testing.T) {
	s := serveHTTP(t, echoPath, HTTPOptions{DualIPv6: true})
	if want := "127.0.0.1:" + strconv.Itoa(s.Port()); s.Addr() != want {
		t.Fatalf("Addr = %q, want %q", s.Addr(), want)
	}
	addrs := []struct{ network, addr string }{{"tcp4", s.Addr()}}
	if haveIPv6Loopback(t) {
		addrs = append(addrs, struct{ network, addr string }{"tcp6", "[::1]:" + strconv.Itoa(s.Port())})
	}
	for _, a := range addrs {
		if got := dialKeepAlive(t, a.network, a.addr).do(t, "/x"); got != "200 OK /x" {
			t.Errorf("%s: got %q", a.addr, got)
		}
	}
}

// waitConns returns once ok holds for the number of s's counted
// connections that are idle and the number counted in all, so a test
// knows where the server stands without sleeping.
func waitConns(t *testing.T, s *HTTPServer, ok func(idle, total int) bool) {
	t.Helper()
	for {
		s.tr.mu.Lock()
		s.tr.waiting.Store(true) // as a waiting newcomer: idle transitions notify
		idle, total := 0, len(s.tr.conns)
		for c := range s.tr.conns {
			if st, _ := unpackState(c.state.Load()); st == http.StateIdle {
				idle++
			}
		}
		changed := s.tr.changedLocked()
		s.tr.mu.Unlock()
		if ok(idle, total) {
			return
		}
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d connections, %d idle: not the state waited for", total, idle)
		}
	}
}

func waitIdle(t *testing.T, s *HTTPServer, n int) {
	t.Helper()
	waitConns(t, s, func(idle, _ int) bool { return idle >= n })
}

// TestServeHTTPConnCap: with MaxConns=2, spread over both listeners, a
// third connection takes the slot of the connection idle longest and is
// served at once; when both connections have a request in flight it waits,
// unserved, until one of them is done.
func TestServeHTTPConnCap(t *testing.T) {
	entered := make(chan struct{}, 2)
	release := make(chan struct{})
	s := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, r.URL.Path)
	}), HTTPOptions{MaxConns: 2, DualIPv6: true})
	network, addr := "tcp", s.Addr()
	if haveIPv6Loopback(t) {
		network, addr = "tcp6", "[::1]:"+strconv.Itoa(s.Port())
	}

	t.Run("idle", func(t *testing.T) {
		first := dialKeepAlive(t, network, addr)
		if got := first.do(t, "/held"); got != "200 OK /held" {
			t.Fatalf("got %q", got)
		}
		waitIdle(t, s, 1)
		second := dialKeepAlive(t, "tcp", s.Addr())
		if got := second.do(t, "/held"); got != "200 OK /held" {
			t.Fatalf("got %q", got)
		}
		waitIdle(t, s, 2)

		third := dialKeepAlive(t, "tcp", s.Addr())
		if got := third.do(t, "/third"); got != "200 OK /third" {
			t.Fatalf("third connection: %q", got)
		}
		if got, err := first.read(); err == nil {
			t.Fatalf("longest-idle connection still open: read %q", got)
		}
		if got := second.do(t, "/again"); got != "200 OK /again" {
			t.Fatalf("second connection after the eviction: %q", got)
		}
		third.Close()
		second.Close()
	})

	t.Run("active", func(t *testing.T) {
		// The previous case's connections must be gone first, and each
		// connection must be busy before the next is dialed: at the cap a
		// connection that has not sent its request yet is fair game.
		waitConns(t, s, func(_, total int) bool { return total == 0 })
		first := dialKeepAlive(t, network, addr)
		if err := first.send("/slow"); err != nil {
			t.Fatal(err)
		}
		<-entered
		second := dialKeepAlive(t, "tcp", s.Addr())
		if err := second.send("/slow"); err != nil {
			t.Fatal(err)
		}
		<-entered

		third := dialKeepAlive(t, "tcp", s.Addr())
		if err := third.send("/third"); err != nil {
			t.Fatal(err)
		}
		// Showing that nothing happens needs a wait; a slow machine can
		// only make this test pass wrongly, never fail wrongly.
		third.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if got, err := third.read(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("third connection served while both were busy: %q, %v", got, err)
		}
		third.SetReadDeadline(time.Time{})

		close(release)
		for _, c := range []*keepAlive{first, second} {
			if got, err := c.read(); err != nil || got != "200 OK /slow" {
				t.Fatalf("in-flight request: %q, %v", got, err)
			}
		}
		if got, err := third.read(); err != nil || got != "200 OK /third" {
			t.Fatalf("after a request finished: %q, %v", got, err)
		}
	})
}

// TestServeHTTPClose: Close ends an idle keep-alive connection and one
// with a request in flight, cancels the handler's context, refuses new
// connections and can be called again.
func TestServeHTTPClose(t *testing.T) {
	entered := make(chan struct{})
	handlerCtxDone := make(chan error, 1)
	s := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			io.WriteString(w, "fast")
			return
		}
		close(entered)
		<-r.Context().Done()
		handlerCtxDone <- r.Context().Err()
	}), HTTPOptions{})

	idle := dialKeepAlive(t, "tcp", s.Addr())
	if got := idle.do(t, "/fast"); got != "200 OK fast" {
		t.Fatalf("got %q", got)
	}
	busy := dialKeepAlive(t, "tcp", s.Addr())
	if err := busy.send("/slow"); err != nil {
		t.Fatal(err)
	}
	<-entered

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	if got, err := busy.read(); err == nil {
		t.Errorf("in-flight request answered after Close: %q", got)
	}
	if err := <-handlerCtxDone; !errors.Is(err, context.Canceled) {
		t.Errorf("handler context: %v, want canceled", err)
	}
	// The write may still succeed into the socket buffer; the read cannot.
	idle.send("/fast")
	if got, err := idle.read(); err == nil {
		t.Errorf("second request on an old keep-alive connection answered after Close: %q", got)
	}
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Errorf("new connection accepted after Close")
	}
}

func TestConn(t *testing.T) {
	type seen struct {
		remote string
		isTCP  bool
	}
	got := make(chan seen, 1)
	s := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := Conn(r)
		_, isTCP := c.(*net.TCPConn)
		got <- seen{c.RemoteAddr().String(), isTCP}
	}), HTTPOptions{})
	c := dialKeepAlive(t, "tcp", s.Addr())
	c.do(t, "/")
	g := <-got
	if g.remote != c.LocalAddr().String() {
		t.Errorf("Conn(r).RemoteAddr() = %s, want the client's %s", g.remote, c.LocalAddr())
	}
	if !g.isTCP {
		t.Errorf("Conn(r) is not the *net.TCPConn")
	}
	if c := Conn(httptest.NewRequest("GET", "/", nil)); c != nil {
		t.Errorf("Conn of a request not served here = %v, want nil", c)
	}
}

const refusedResponse = "HTTP/1.1 403 Forbidden\r\n" +
	"Connection: close\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"X-Content-Type-Options: nosniff\r\n" +
	"Date: DATE\r\n" +
	"Content-Length: 37\r\n" +
	"\r\n" +
	"connection from another user refused\n"

// stripDate replaces the Date header's value so responses compare exactly.
func stripDate(resp string) string {
	i := strings.Index(resp, "\r\nDate: ")
	if i < 0 {
		return resp
	}
	j := strings.Index(resp[i+2:], "\r\n")
	return resp[:i] + "\r\nDate: DATE" + resp[i+2+j:]
}

func TestAllowPeerHTTP(t *testing.T) {
	tests := []struct {
		name  string
		allow bool
		want  string
	}{
		{"refused", false, refusedResponse},
		{"allowed", true, "HTTP/1.1 200 OK\r\nDate: DATE\r\nContent-Length: 2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked atomic.Int32
			var handled atomic.Int32
			s := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handled.Add(1)
				io.WriteString(w, r.URL.Path)
			}), HTTPOptions{Logger: quiet, AllowPeer: func(c net.Conn) bool {
				asked.Add(1)
				return tt.allow
			}})
			// Two pipelined requests on one connection: the peer is asked
			// once, and a refused connection is closed after the first.
			got := rawRequest(t, s.Addr(), "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			want := tt.want
			if tt.allow {
				want += strings.Replace(want, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1)
			}
			var resps []string
			for _, r := range strings.SplitAfter(got, "/a") {
				resps = append(resps, stripDate(r))
			}
			if g := strings.Join(resps, ""); g != want {
				t.Errorf("response:\n%q\nwant\n%q", g, want)
			}
			if n := asked.Load(); n != 1 {
				t.Errorf("AllowPeer asked %d times, want once per connection", n)
			}
			if n, want := handled.Load(), map[bool]int32{true: 2, false: 0}[tt.allow]; n != want {
				t.Errorf("handler ran %d times, want %d", n, want)
			}
		})
	}
}

func TestRequirePeer(t *testing.T) {
	allowAll := func(net.Conn) bool { return true }
	// Outside this package's servers the connection is unknown: refuse.
	rec := httptest.NewRecorder()
	RequirePeer(allowAll, echoPath).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != http.StatusForbidden || rec.Body.String() != PeerRefusedMessage+"\n" {
		t.Fatalf("unknown connection: %d %q", rec.Code, rec.Body.String())
	}

	for _, allow := range []bool{true, false} {
		s := serveHTTP(t, RequirePeer(func(net.Conn) bool { return allow }, echoPath), HTTPOptions{})
		got := stripDate(rawRequest(t, s.Addr(), "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		want := refusedResponse
		if allow {
			want = "HTTP/1.1 200 OK\r\nDate: DATE\r\nContent-Length: 2\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n/a"
		}
		if got != want {
			t.Errorf("allow=%v: got\n%q\nwant\n%q", allow, got, want)
		}
	}
}
