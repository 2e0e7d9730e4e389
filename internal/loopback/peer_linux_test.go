//go:build linux

package loopback

import (
	"credbroker/internal/otheruser"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// lookups are the ways PeerUID can find an owner; each must agree.
var lookups = []struct {
	name string
	fn   func(c net.Conn) (uint32, error)
}{
	{"PeerUID", PeerUID},
	{"netlink", func(c net.Conn) (uint32, error) {
		l, r, err := tcpEnds(c)
		if err != nil {
			return 0, err
		}
		return peerUIDNetlink(l, r)
	}},
	{"proc", func(c net.Conn) (uint32, error) {
		l, r, err := tcpEnds(c)
		if err != nil {
			return 0, err
		}
		return peerUIDProc(l, r)
	}},
}

// acceptedPair returns both ends of a loopback connection: the one the
// server accepted and the client's, dialled with dial.
func acceptedPair(t testing.TB, network, addr string, dial func(addr string) (net.Conn, error)) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	defer ln.Close()
	client, err = dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}

func dialTCPAddr(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }

// dialMapped connects from an IPv6 socket to an IPv4 listener through an
// IPv4-mapped address, as dual-stack clients (Python, Java) often do.
func dialMapped(addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "mapped")
	defer f.Close()
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
		return nil, err
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: netip.AddrFrom16(ap.Addr().As16()).As16()}
	if err := unix.Connect(fd, sa); err != nil {
		return nil, err
	}
	return net.FileConn(f)
}

func TestPeerUIDOwnConnection(t *testing.T) {
	want := uint32(os.Getuid())
	pairs := []struct {
		name          string
		network, addr string
		dial          func(string) (net.Conn, error)
	}{
		{"IPv4", "tcp4", "127.0.0.1:0", dialTCPAddr},
		{"IPv6", "tcp6", "[::1]:0", dialTCPAddr},
		{"IPv6 socket to IPv4 listener", "tcp4", "127.0.0.1:0", dialMapped},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			server, _ := acceptedPair(t, p.network, p.addr, p.dial)
			for _, l := range lookups {
				uid, err := l.fn(server)
				if err != nil || uid != want {
					t.Errorf("%s: uid %d, %v; want %d", l.name, uid, err, want)
				}
			}
			if !SameUser(server) {
				t.Errorf("SameUser = false for this process's own connection")
			}
		})
	}
}

// TestPeerUIDClientGone: once the client has closed its socket no process
// owns it, and the kernel would report uid 0; that must be an error.
func TestPeerUIDClientGone(t *testing.T) {
	server, client := acceptedPair(t, "tcp4", "127.0.0.1:0", dialTCPAddr)
	client.Close()
	for _, l := range lookups {
		if uid, err := l.fn(server); err == nil {
			t.Errorf("%s: uid %d for a closed peer, want an error", l.name, uid)
		}
	}
	if SameUser(server) {
		t.Errorf("SameUser = true for a closed peer")
	}
}

func TestPeerUIDNotTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := PeerUID(a); err == nil {
		t.Fatal("PeerUID of a pipe succeeded")
	}
	if SameUser(a) {
		t.Fatal("SameUser of a pipe = true")
	}
}

// TestSameUserServers: SameUser as AllowPeer lets this process's own
// requests through on both kinds of server.
func TestSameUserServers(t *testing.T) {
	h := serveHTTP(t, echoPath, HTTPOptions{AllowPeer: SameUser})
	if got := dialKeepAlive(t, "tcp", h.Addr()).do(t, "/ok"); got != "200 OK /ok" {
		t.Errorf("HTTP: %q", got)
	}
	s := serveTCP(t, echoLine, TCPOptions{AllowPeer: SameUser})
	c := dialTCP(t, "tcp", s.Addr())
	io.WriteString(c, "me\n")
	if got := readAll(t, c); got != "you said: me\n" {
		t.Errorf("TCP: %q", got)
	}
}

// recordPeer wraps SameUser and reports the uid each connection came from.
func recordPeer(uids chan<- string) func(net.Conn) bool {
	return func(c net.Conn) bool {
		uid, err := PeerUID(c)
		if err != nil {
			uids <- err.Error()
		} else {
			uids <- strconv.FormatUint(uint64(uid), 10)
		}
		return SameUser(c)
	}
}

func TestOtherUserRefused(t *testing.T) {
	otheruser.NeedRoot(t)
	bin := otheruser.Binary(t)
	const httpReq = "GET /secret HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
	tests := []struct {
		name     string
		uid      uint32
		wantHTTP string
		wantTCP  string
	}{
		{"same user", 0, "HTTP/1.1 200 OK\r\nDate: DATE\r\nContent-Length: 7\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n/secret", "you said: hi\n"},
		{"nobody", otheruser.Nobody, refusedResponse, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uids := make(chan string, 2)
			want := strconv.Itoa(int(tt.uid))

			h := serveHTTP(t, echoPath, HTTPOptions{Logger: quiet, AllowPeer: recordPeer(uids)})
			if got := stripDate(otheruser.Run(t, bin, tt.uid, "tcp:"+h.Addr(), httpReq)); got != tt.wantHTTP {
				t.Errorf("HTTP answer:\n%q\nwant\n%q", got, tt.wantHTTP)
			}
			if got := <-uids; got != want {
				t.Errorf("HTTP peer uid %s, want %s", got, want)
			}

			s := serveTCP(t, echoLine, TCPOptions{Logger: quiet, AllowPeer: recordPeer(uids)})
			if got := otheruser.Run(t, bin, tt.uid, "tcp:"+s.Addr(), "hi\n"); got != tt.wantTCP {
				t.Errorf("TCP answer %q, want %q", got, tt.wantTCP)
			}
			if got := <-uids; got != want {
				t.Errorf("TCP peer uid %s, want %s", got, want)
			}
		})
	}
}

// BenchmarkPeerUID measures one peer lookup per op, by each method, next
// to a bare loopback connect+accept+close measured in the same run
// (baseline-connect); the x-connect metric is the lookup's cost in units of that baseline. The
// /proc scan grows with the number of sockets on the machine, so each
// method runs with only the test's sockets and with 1000 more open.
func BenchmarkPeerUID(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	connect := func() (client, server net.Conn) {
		client, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		return client, <-accepted
	}
	// The baseline runs as a sub-benchmark; its last, longest round sets
	// the unit the lookups are reported in.
	var baseNs float64
	b.Run("baseline-connect", func(b *testing.B) {
		for b.Loop() {
			c, s := connect()
			c.Close()
			s.Close()
		}
		baseNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})

	client, server := connect()
	defer client.Close()
	defer server.Close()
	for _, extra := range []int{0, 1000} {
		var open []net.Conn
		for range extra / 2 {
			c, s := connect()
			open = append(open, c, s)
		}
		for _, l := range lookups {
			b.Run(fmt.Sprintf("%s/extra-sockets=%d", l.name, extra), func(b *testing.B) {
				for b.Loop() {
					if _, err := l.fn(server); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/baseNs, "x-connect")
			})
		}
		for _, c := range open {
			c.Close()
		}
	}
}
