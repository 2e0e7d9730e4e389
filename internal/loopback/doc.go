// Package loopback is the one place in credbroker that opens listeners.
//
// Every front-end serves on the loopback interface only, and goes through
// this package to get there, so the security baseline is written once:
//
//   - bind 127.0.0.1 (and ::1 on the same port where clients dial
//     "localhost"), never a wildcard address (Listen);
//   - header, read, write and idle timeouts on HTTP servers, a header size
//     limit, and a cap on open connections shared by both addresses: an
//     HTTP connection over the cap waits unserved until another closes, a
//     raw TCP one is closed at once (ServeHTTP, ServeTCP);
//   - Close stops the listeners and every open connection, idle keep-alive
//     ones included, and cancels the context handlers were given, so no
//     token flows after a session ends; the TCP server also waits for its
//     handlers to return;
//   - HostAllowed, the Host-header allow-list against DNS rebinding, and
//     FromBrowser, for refusing requests a web page made;
//   - the peer check for protocols that carry no secret (metadata,
//     devshell), below.
//
// # Peer identity
//
// PeerUID returns the uid of the process at the other end of a loopback
// TCP connection. The client's socket is the one whose local address is
// the connection's remote address; on Linux the kernel is asked for its
// owner with a NETLINK_SOCK_DIAG exact lookup (inet_diag, one round trip
// whatever the number of sockets), and /proc/net/tcp and /proc/net/tcp6
// are scanned when netlink is unavailable. IPv6 clients reaching the IPv4
// listener through an IPv4-mapped address are found too. A peer whose
// socket no process owns any more (it closed, or is in TIME_WAIT) is an
// error, never uid 0. Process ids are not looked up: the kernel does not
// report them for sockets, and finding them means reading every process's
// file table.
//
// SameUser is the policy front-ends use: the peer must run as this
// process's uid, and any lookup failure counts as another user. Set it as
// HTTPOptions.AllowPeer (asked once per connection; a refused request gets
// 403 with the plain-text body PeerRefusedMessage and the connection is
// closed) or TCPOptions.AllowPeer (a refused connection is closed without
// a byte). RequirePeer applies the same check to a single handler.
//
// Other systems build a PeerUID that always fails with an error wrapping
// errors.ErrUnsupported, so SameUser would refuse everyone there; set
// AllowPeer only when PeerUIDSupported is true.
package loopback
