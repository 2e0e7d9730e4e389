package loopback

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
)

// procNetEntry is one socket line of /proc/net/tcp or /proc/net/tcp6.
type procNetEntry struct {
	local, remote netip.AddrPort
	state         uint8
	uid           uint32
	inode         uint64 // 0 when no process owns the socket any more
}

// parseProcNetLine parses one line of /proc/net/tcp{,6}:
//
//	sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  timeout inode ...
//	0: 0100007F:1F90 0100007F:D4C2 01 00000000:00000000 00:00000000 00000000  1000        0 424242 ...
//
// Addresses are the kernel's in-memory bytes printed as 32-bit words in
// the machine's byte order, so they are decoded with the native order.
// The header line and anything malformed give ok == false.
func parseProcNetLine(line string) (e procNetEntry, ok bool) {
	f := strings.Fields(line)
	if len(f) < 10 || !strings.HasSuffix(f[0], ":") {
		return e, false
	}
	if _, err := strconv.ParseUint(strings.TrimSuffix(f[0], ":"), 10, 32); err != nil {
		return e, false
	}
	if e.local, ok = parseProcAddrPort(f[1]); !ok {
		return e, false
	}
	if e.remote, ok = parseProcAddrPort(f[2]); !ok || e.local.Addr().Is4() != e.remote.Addr().Is4() {
		return e, false
	}
	st, err := parseHex(f[3], 2)
	if err != nil {
		return e, false
	}
	uid, err := strconv.ParseUint(f[7], 10, 32)
	if err != nil {
		return e, false
	}
	inode, err := strconv.ParseUint(f[9], 10, 64)
	if err != nil {
		return e, false
	}
	e.state, e.uid, e.inode = uint8(st), uint32(uid), inode
	return e, true
}

// parseProcAddrPort parses "0100007F:1F90" (IPv4) or a 32-digit IPv6
// address followed by ":PORT".
func parseProcAddrPort(s string) (netip.AddrPort, bool) {
	addr, port, found := strings.Cut(s, ":")
	if !found {
		return netip.AddrPort{}, false
	}
	p, err := parseHex(port, 4)
	if err != nil {
		return netip.AddrPort{}, false
	}
	var b [16]byte
	switch len(addr) {
	case 8, 32:
	default:
		return netip.AddrPort{}, false
	}
	for i := 0; i < len(addr); i += 8 {
		w, err := parseHex(addr[i:i+8], 8)
		if err != nil {
			return netip.AddrPort{}, false
		}
		binary.NativeEndian.PutUint32(b[i/2:], uint32(w))
	}
	var a netip.Addr
	if len(addr) == 8 {
		a = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		a = netip.AddrFrom16(b)
	}
	return netip.AddrPortFrom(a, uint16(p)), true
}

// parseHex parses exactly n hex digits; strconv alone would accept a sign
// or a shorter field.
func parseHex(s string, n int) (uint64, error) {
	if len(s) != n {
		return 0, strconv.ErrSyntax
	}
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseUint(s, 16, 64)
}
