package loopback

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
)

// errNoOwner means the peer's socket exists but no process holds it any
// more (the client closed it, or it is in TIME_WAIT). The kernel reports
// uid 0 for such sockets, which must not pass for root.
var errNoOwner = errors.New("peer socket is no longer owned by a process")

// selfUID is this process's uid, read once: os.Getuid is a system call
// each time, and the check runs once per connection. credbroker never
// changes its uid.
var selfUID = os.Getuid()

// SameUser reports whether the process at the other end of c runs as the
// same uid as this one. Any failure to find out counts as another user,
// so it is safe as HTTPOptions.AllowPeer or TCPOptions.AllowPeer. Where
// PeerUIDSupported is false it refuses every connection; set AllowPeer
// only where it is true.
func SameUser(c net.Conn) bool {
	uid, err := PeerUID(c)
	return err == nil && int64(uid) == int64(selfUID)
}

// tcpEnds returns c's local and remote addresses with IPv4-mapped IPv6
// addresses reduced to IPv4, the form the kernel indexes sockets by.
func tcpEnds(c net.Conn) (local, remote netip.AddrPort, err error) {
	la, ok1 := c.LocalAddr().(*net.TCPAddr)
	ra, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 || la == nil || ra == nil {
		return local, remote, fmt.Errorf("peer uid: %T is not a TCP connection", c)
	}
	local, remote = la.AddrPort(), ra.AddrPort()
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	if !local.IsValid() || !remote.IsValid() || local.Addr().Is4() != remote.Addr().Is4() {
		return local, remote, fmt.Errorf("peer uid: unusable addresses %v, %v", la, ra)
	}
	return local, remote, nil
}
