//go:build unix

package loopback

import (
	"net"
	"syscall"
)

// hasInput reports whether bytes (or the end of input) wait unread on c:
// a client that has sent its request and waits for the server to read it.
// It peeks without blocking and without taking c's read lock, so it is
// safe while another goroutine reads c.
func hasInput(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	pending := false
	_ = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		pending = err == nil && n > 0
	})
	return pending
}

// MayHaveInput reports whether bytes the peer sent may wait unread on c,
// which closing c would answer with a reset instead of a clean end. It is true
// when it cannot tell (c is not a socket).
func MayHaveInput(c net.Conn) bool {
	if _, ok := c.(syscall.Conn); !ok {
		return true
	}
	return hasInput(c)
}
