package loopback

import (
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
)

// haveIPv6Loopback reports whether ::1 can be bound here; some containers
// run without it.
func haveIPv6Loopback(t *testing.T) bool {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func closeAll(t *testing.T, lns []net.Listener) {
	t.Helper()
	t.Cleanup(func() {
		for _, ln := range lns {
			ln.Close()
		}
	})
}

// dialOK checks that something accepts on addr.
func dialOK(t *testing.T, network, addr string) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	c.Close()
}

func TestListenDualSamePort(t *testing.T) {
	if !haveIPv6Loopback(t) {
		t.Skip("no IPv6 loopback on this machine")
	}
	lns, port, err := Listen(0, true)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, lns)
	if len(lns) != 2 {
		t.Fatalf("got %d listeners, want 2", len(lns))
	}
	want := []string{"127.0.0.1:" + strconv.Itoa(port), "[::1]:" + strconv.Itoa(port)}
	for i, ln := range lns {
		if got := ln.Addr().String(); got != want[i] {
			t.Errorf("listener %d on %s, want %s", i, got, want[i])
		}
	}
	dialOK(t, "tcp4", want[0])
	dialOK(t, "tcp6", want[1])
}

func TestListenIPv4Only(t *testing.T) {
	lns, port, err := Listen(0, false)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, lns)
	if len(lns) != 1 {
		t.Fatalf("got %d listeners, want 1", len(lns))
	}
	if got, want := lns[0].Addr().String(), "127.0.0.1:"+strconv.Itoa(port); got != want {
		t.Fatalf("listening on %s, want %s", got, want)
	}
}

func TestListenFixedPort(t *testing.T) {
	lns, port, err := Listen(0, false)
	if err != nil {
		t.Fatal(err)
	}
	lns[0].Close()
	lns, got, err := Listen(port, false)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, lns)
	if got != port {
		t.Fatalf("bound %d, want %d", got, port)
	}
	if _, _, err := Listen(port, false); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second Listen on a taken port: err = %v, want EADDRINUSE", err)
	}
}

func TestListenFixedPortIPv6Taken(t *testing.T) {
	if !haveIPv6Loopback(t) {
		t.Skip("no IPv6 loopback on this machine")
	}
	v6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer v6.Close()
	port := v6.Addr().(*net.TCPAddr).Port
	if _, _, err := Listen(port, true); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("err = %v, want EADDRINUSE", err)
	}
	// The IPv4 half must have been released again.
	lns, _, err := Listen(port, false)
	if err != nil {
		t.Fatalf("IPv4 port not released after the failed dual listen: %v", err)
	}
	closeAll(t, lns)
}

// fakeListen binds real IPv4 listeners and answers IPv6 ones from v6.
type fakeListen struct {
	v6     func(call int) error // nil error: bind for real
	calls  int
	opened []*trackedListener
}

type trackedListener struct {
	net.Listener
	closed atomic.Bool
}

func (l *trackedListener) Close() error {
	l.closed.Store(true)
	return l.Listener.Close()
}

func (f *fakeListen) listen(network, addr string) (net.Listener, error) {
	if network == "tcp6" {
		f.calls++
		if err := f.v6(f.calls); err != nil {
			return nil, &net.OpError{Op: "listen", Net: network, Err: err}
		}
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	tl := &trackedListener{Listener: ln}
	f.opened = append(f.opened, tl)
	return tl, nil
}

func TestListenRetries(t *testing.T) {
	tests := []struct {
		name      string
		port      int
		v6        func(call int) error
		wantLns   int
		wantErr   error
		wantCalls int
	}{
		{
			name: "IPv6 port taken once, second port used",
			v6: func(call int) error {
				if call == 1 {
					return syscall.EADDRINUSE
				}
				return nil
			},
			wantLns: 2, wantCalls: 2,
		},
		{
			name:    "IPv6 port always taken",
			v6:      func(int) error { return syscall.EADDRINUSE },
			wantErr: syscall.EADDRINUSE, wantCalls: 10,
		},
		{
			name:    "no IPv6 loopback",
			v6:      func(int) error { return syscall.EADDRNOTAVAIL },
			wantLns: 1, wantCalls: 1,
		},
		{
			name:    "no IPv6 support",
			v6:      func(int) error { return syscall.EAFNOSUPPORT },
			wantLns: 1, wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantLns == 2 && !haveIPv6Loopback(t) {
				t.Skip("no IPv6 loopback on this machine")
			}
			f := &fakeListen{v6: tt.v6}
			lns, port, err := listen(tt.port, true, f.listen)
			closeAll(t, lns)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(lns) != tt.wantLns {
				t.Fatalf("got %d listeners, want %d", len(lns), tt.wantLns)
			}
			if f.calls != tt.wantCalls {
				t.Errorf("%d IPv6 attempts, want %d", f.calls, tt.wantCalls)
			}
			// Every listener not returned must be closed, every returned
			// one open and on the returned port.
			returned := map[net.Listener]bool{}
			for _, ln := range lns {
				returned[ln] = true
				if p := ln.Addr().(*net.TCPAddr).Port; p != port {
					t.Errorf("listener on port %d, Listen said %d", p, port)
				}
			}
			for _, ln := range f.opened {
				if ln.closed.Load() == returned[ln] {
					t.Errorf("listener %s: closed=%v, returned=%v", ln.Addr(), ln.closed.Load(), returned[ln])
				}
			}
		})
	}
}
