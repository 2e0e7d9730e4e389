//go:build !unix

package loopback

import "net"

// hasInput cannot tell on this platform; new connections are judged by
// their age alone.
func hasInput(net.Conn) bool { return false }

// MayHaveInput reports whether bytes the peer sent may wait unread on c,
// which closing c would answer with a reset instead of a clean end. On
// this platform it cannot tell, so it is always true.
func MayHaveInput(net.Conn) bool { return true }
