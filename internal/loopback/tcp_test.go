package loopback

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// quiet drops the warnings tests provoke on purpose.
var quiet = slog.New(slog.DiscardHandler)

func serveTCP(t *testing.T, handle func(context.Context, net.Conn), o TCPOptions) *TCPServer {
	t.Helper()
	s, err := ServeTCP(handle, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dialTCP(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAll returns what the server sent until it closed the connection.
func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// echoLine answers one line with "you said: " and the line.
func echoLine(ctx context.Context, c net.Conn) {
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	io.WriteString(c, "you said: "+line)
}

func TestServeTCPHandlerRuns(t *testing.T) {
	s := serveTCP(t, echoLine, TCPOptions{DualIPv6: true})
	if want := "127.0.0.1:" + strconv.Itoa(s.Port()); s.Addr() != want {
		t.Fatalf("Addr = %q, want %q", s.Addr(), want)
	}
	addrs := []struct{ network, addr string }{{"tcp4", s.Addr()}}
	if haveIPv6Loopback(t) {
		addrs = append(addrs, struct{ network, addr string }{"tcp6", "[::1]:" + strconv.Itoa(s.Port())})
	}
	for _, a := range addrs {
		c := dialTCP(t, a.network, a.addr)
		io.WriteString(c, "hello\n")
		// The server closes the connection when the handler returns.
		if got := readAll(t, c); got != "you said: hello\n" {
			t.Errorf("%s: got %q", a.addr, got)
		}
	}
}

func TestServeTCPDeadline(t *testing.T) {
	readErr := make(chan error, 1)
	s := serveTCP(t, func(ctx context.Context, c net.Conn) {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}, TCPOptions{Deadline: 20 * time.Millisecond})
	dialTCP(t, "tcp", s.Addr()) // connects and says nothing
	if err := <-readErr; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("handler read: %v, want the deadline to expire", err)
	}
}

// blockingHandler reports each connection it enters on entered and holds
// it until release is closed or the server closes.
func blockingHandler(entered chan<- net.Conn, release <-chan struct{}) func(context.Context, net.Conn) {
	return func(ctx context.Context, c net.Conn) {
		entered <- c
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
}

func TestServeTCPConnCap(t *testing.T) {
	entered := make(chan net.Conn, 4)
	release := make(chan struct{})
	s := serveTCP(t, blockingHandler(entered, release), TCPOptions{MaxConns: 2, DualIPv6: true})
	network, addr := "tcp", s.Addr()
	if haveIPv6Loopback(t) {
		network, addr = "tcp6", "[::1]:"+strconv.Itoa(s.Port()) // the cap spans both listeners
	}
	first := dialTCP(t, "tcp", s.Addr())
	<-entered
	dialTCP(t, network, addr)
	<-entered

	over := dialTCP(t, "tcp", s.Addr())
	if got := readAll(t, over); got != "" {
		t.Fatalf("connection over the cap got %q", got)
	}
	select {
	case <-entered:
		t.Fatal("handler ran for a connection over the cap")
	default:
	}

	close(release)
	readAll(t, first) // its handler has returned and its slot is free
	dialTCP(t, "tcp", s.Addr())
	<-entered
}

func TestServeTCPClose(t *testing.T) {
	var returned atomic.Int32
	entered := make(chan struct{}, 2)
	s := serveTCP(t, func(ctx context.Context, c net.Conn) {
		defer returned.Add(1)
		entered <- struct{}{}
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("read succeeded on a closed server")
		}
	}, TCPOptions{})
	var clients []net.Conn
	for range 2 {
		clients = append(clients, dialTCP(t, "tcp", s.Addr()))
		<-entered
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := returned.Load(); n != 2 {
		t.Fatalf("Close returned with %d of 2 handlers finished", n)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, c := range clients {
		if got := readAll(t, c); got != "" {
			t.Errorf("client got %q", got)
		}
	}
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Errorf("new connection accepted after Close")
	}
}

func TestServeTCPCloseCancelsContext(t *testing.T) {
	entered := make(chan net.Conn, 1)
	ctxErr := make(chan error, 1)
	s := serveTCP(t, func(ctx context.Context, c net.Conn) {
		entered <- c
		<-ctx.Done()
		ctxErr <- ctx.Err()
	}, TCPOptions{})
	dialTCP(t, "tcp", s.Addr())
	<-entered
	s.Close()
	if err := <-ctxErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("handler context: %v", err)
	}
}

func TestAllowPeerTCP(t *testing.T) {
	tests := []struct {
		allow bool
		want  string
	}{
		{false, ""},
		{true, "you said: hi\n"},
	}
	for _, tt := range tests {
		var asked atomic.Int32
		s := serveTCP(t, echoLine, TCPOptions{Logger: quiet, AllowPeer: func(c net.Conn) bool {
			asked.Add(1)
			return tt.allow
		}})
		c := dialTCP(t, "tcp", s.Addr())
		io.WriteString(c, "hi\n")
		// A refused connection is closed with "hi" unread, which the
		// kernel may answer with a reset instead of an orderly close.
		b, err := io.ReadAll(c)
		if err != nil && (tt.allow || !errors.Is(err, syscall.ECONNRESET)) {
			t.Fatalf("allow=%v: read: %v", tt.allow, err)
		}
		if got := string(b); got != tt.want {
			t.Errorf("allow=%v: got %q, want %q", tt.allow, got, tt.want)
		}
		if n := asked.Load(); n != 1 {
			t.Errorf("allow=%v: AllowPeer asked %d times", tt.allow, n)
		}
	}
}

func TestConnFromContext(t *testing.T) {
	got := make(chan bool, 2)
	tcp, err := ServeTCP(func(ctx context.Context, c net.Conn) {
		got <- ConnFromContext(ctx) == c
	}, TCPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	c, err := net.Dial("tcp", tcp.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !<-got {
		t.Error("TCP handler context does not carry its connection")
	}

	srv, err := ServeHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- ConnFromContext(r.Context()) == Conn(r) && Conn(r) != nil
	}), HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + srv.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !<-got {
		t.Error("HTTP request context does not carry its connection")
	}
	if ConnFromContext(context.Background()) != nil {
		t.Error("a plain context has a connection")
	}
}
