//go:build unix

package loopback

import (
	"net"
	"syscall"
	"testing"
)

// TestAcceptedConnectionsHaveNoKeepAlive checks that Listen's connections
// skip the TCP keep-alive setup net.Listen does for every accepted
// connection (see Listen for why).
func TestAcceptedConnectionsHaveNoKeepAlive(t *testing.T) {
	lns, _, err := Listen(0, false)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, lns)
	client, err := net.Dial("tcp", lns[0].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := lns[0].Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var on int
	var optErr error
	if err := raw.Control(func(fd uintptr) {
		on, optErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil {
		t.Fatal(err)
	}
	if optErr != nil {
		t.Fatal(optErr)
	}
	if on != 0 {
		t.Errorf("SO_KEEPALIVE = %d on an accepted connection, want 0", on)
	}
}
