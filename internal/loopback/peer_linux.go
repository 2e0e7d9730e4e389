//go:build linux

package loopback

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// PeerUIDSupported reports whether PeerUID can find a peer's uid on this
// system.
const PeerUIDSupported = true

// PeerUID returns the uid of the process at the other end of c, a TCP
// connection accepted on this machine: the owner of the client's socket,
// whose local address is c's remote address. It asks the kernel through
// a NETLINK_SOCK_DIAG exact lookup (one round trip, independent of how
// many sockets exist) and, if netlink is unavailable, scans /proc/net/tcp
// and /proc/net/tcp6, which takes milliseconds on a busy machine. A peer
// that has already closed its socket is an error, not uid 0.
func PeerUID(c net.Conn) (uid uint32, err error) {
	local, remote, err := tcpEnds(c)
	if err != nil {
		return 0, err
	}
	uid, nlErr := peerUIDNetlink(local, remote)
	// When netlink answered, its answer stands: /proc reads the same
	// kernel tables, and scanning them costs milliseconds, which a client
	// that connects and vanishes at once must not be able to make us pay.
	switch {
	case nlErr == nil:
		return uid, nil
	case errors.Is(nlErr, errNoOwner) || errors.Is(nlErr, unix.ENOENT):
		return 0, fmt.Errorf("peer uid of %v: %w", remote, nlErr)
	}
	uid, procErr := peerUIDProc(local, remote)
	if procErr != nil {
		return 0, fmt.Errorf("peer uid of %v: netlink: %w; /proc: %w", remote, nlErr, procErr)
	}
	return uid, nil
}

// Sizes of the kernel's inet_diag_req_v2 and inet_diag_msg
// (linux/inet_diag.h); x/sys/unix does not define these structures.
const (
	sizeofInetDiagReqV2 = 56
	sizeofInetDiagMsg   = 72
)

// diag is the process's one sock_diag socket, kept open between lookups:
// opening and closing a netlink socket per connection cost more than the
// lookup itself. Lookups take turns on it; each is a single request and
// reply, done before the lock is released.
var diag = struct {
	mu  sync.Mutex
	fd  int // -1 when not open
	seq uint32
	req [unix.SizeofNlMsghdr + sizeofInetDiagReqV2]byte
	buf [4096]byte
}{fd: -1}

// peerUIDNetlink asks the kernel (NETLINK_SOCK_DIAG) for the socket whose
// source is peer and destination self: the client's end of the
// connection, which holds the client's uid.
func peerUIDNetlink(self, peer netip.AddrPort) (uint32, error) {
	diag.mu.Lock()
	defer diag.mu.Unlock()
	uid, err := diagLookupLocked(self, peer)
	if err != nil && !errors.Is(err, errNoOwner) && !errors.Is(err, unix.ENOENT) {
		// Start from a fresh socket next time rather than reason about
		// what state a failed exchange left this one in.
		diagCloseLocked()
	}
	return uid, err
}

func diagCloseLocked() {
	if diag.fd >= 0 {
		unix.Close(diag.fd)
		diag.fd = -1
	}
}

func diagLookupLocked(self, peer netip.AddrPort) (uint32, error) {
	if diag.fd < 0 {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_SOCK_DIAG)
		if err != nil {
			return 0, fmt.Errorf("netlink socket: %w", err)
		}
		// Non-blocking and connected to the kernel, so plain write and read carry the
		// messages without an address to allocate.
		if err := unix.Connect(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			unix.Close(fd)
			return 0, fmt.Errorf("netlink connect: %w", err)
		}
		diag.fd = fd
	}
	diag.seq++
	seq := diag.seq
	ne := binary.NativeEndian
	req := diag.req[:]
	clear(req)
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST) // no NLM_F_DUMP: exact lookup
	ne.PutUint32(req[8:], seq)
	b := req[unix.SizeofNlMsghdr:]
	b[0] = unix.AF_INET6
	if peer.Addr().Is4() {
		b[0] = unix.AF_INET
	}
	b[1] = unix.IPPROTO_TCP
	ne.PutUint32(b[4:], ^uint32(0)) // any state
	id := b[8:]                     // inet_diag_sockid: ports and addresses in network order
	binary.BigEndian.PutUint16(id[0:], peer.Port())
	binary.BigEndian.PutUint16(id[2:], self.Port())
	putAddr(id[4:20], peer.Addr())
	putAddr(id[20:36], self.Addr())
	ne.PutUint32(id[40:], ^uint32(0)) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], ^uint32(0))

	if _, err := unix.Write(diag.fd, req); err != nil {
		return 0, fmt.Errorf("netlink send: %w", err)
	}
	// The kernel answers an exact lookup while handling the send, so the
	// reply is already queued: the non-blocking read never waits. Replies
	// to earlier sequence numbers, if any were left, are skipped.
	for range 4 {
		n, err := unix.Read(diag.fd, diag.buf[:])
		if err != nil {
			return 0, fmt.Errorf("netlink receive: %w", err)
		}
		uid, done, err := parseDiagReply(diag.buf[:n], seq, self, peer)
		if done {
			return uid, err
		}
	}
	return 0, errors.New("netlink reply: no answer")
}

// parseDiagReply reads one datagram of replies; done is false when none
// of its messages answers seq.
func parseDiagReply(msg []byte, seq uint32, self, peer netip.AddrPort) (uid uint32, done bool, err error) {
	ne := binary.NativeEndian
	for len(msg) >= unix.SizeofNlMsghdr {
		size := int(ne.Uint32(msg[0:]))
		if size < unix.SizeofNlMsghdr || size > len(msg) {
			return 0, true, errors.New("netlink reply: bad message length")
		}
		typ, gotSeq, d := ne.Uint16(msg[4:]), ne.Uint32(msg[8:]), msg[unix.SizeofNlMsghdr:size]
		msg = msg[min(nlAlign(size), len(msg)):]
		if gotSeq != seq {
			continue
		}
		switch typ {
		case unix.NLMSG_ERROR:
			if len(d) < 4 {
				return 0, true, errors.New("netlink reply: short error message")
			}
			if errno := -int32(ne.Uint32(d)); errno != 0 {
				return 0, true, fmt.Errorf("sock_diag lookup: %w", unix.Errno(errno))
			}
		case unix.SOCK_DIAG_BY_FAMILY:
			if len(d) < sizeofInetDiagMsg {
				return 0, true, errors.New("netlink reply: short inet_diag_msg")
			}
			if binary.BigEndian.Uint16(d[4:]) != peer.Port() || binary.BigEndian.Uint16(d[6:]) != self.Port() {
				return 0, true, errors.New("netlink reply: answer is for another socket")
			}
			if ne.Uint32(d[68:]) == 0 { // idiag_inode
				return 0, true, errNoOwner
			}
			return ne.Uint32(d[64:]), true, nil // idiag_uid
		}
	}
	return 0, false, nil
}

func nlAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

func putAddr(dst []byte, a netip.Addr) {
	if a.Is4() {
		b := a.As4()
		copy(dst, b[:])
		return
	}
	b := a.As16()
	copy(dst, b[:])
}

// peerUIDProc finds the same socket by scanning /proc/net. An IPv4 peer
// may own an IPv6 socket with a mapped address, so both files are read.
func peerUIDProc(self, peer netip.AddrPort) (uint32, error) {
	files := []string{"/proc/net/tcp6"}
	if peer.Addr().Is4() {
		files = []string{"/proc/net/tcp", "/proc/net/tcp6"}
	}
	for _, name := range files {
		e, found, err := scanProcNet(name, self, peer)
		if err != nil {
			return 0, err
		}
		if found {
			if e.inode == 0 {
				return 0, errNoOwner
			}
			return e.uid, nil
		}
	}
	return 0, fmt.Errorf("no socket %v -> %v in /proc/net", peer, self)
}

func scanProcNet(name string, self, peer netip.AddrPort) (procNetEntry, bool, error) {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return procNetEntry{}, false, nil // no IPv6 on this kernel
	}
	if err != nil {
		return procNetEntry{}, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		e, ok := parseProcNetLine(sc.Text())
		if !ok {
			continue
		}
		if unmapPort(e.local) == peer && unmapPort(e.remote) == self {
			return e, true, nil
		}
	}
	return procNetEntry{}, false, sc.Err()
}

func unmapPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
