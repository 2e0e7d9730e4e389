package loopback

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// procHex renders an address the way the kernel prints it in /proc/net:
// its bytes taken as 32-bit words in the machine's byte order.
func procHex(a netip.Addr) string {
	var b []byte
	if a.Is4() {
		v := a.As4()
		b = v[:]
	} else {
		v := a.As16()
		b = v[:]
	}
	var sb strings.Builder
	for i := 0; i < len(b); i += 4 {
		fmt.Fprintf(&sb, "%08X", binary.NativeEndian.Uint32(b[i:]))
	}
	return sb.String()
}

// formatProcNetLine writes e as the kernel would (get_tcp4_sock).
func formatProcNetLine(sl int, e procNetEntry) string {
	return fmt.Sprintf("%4d: %s:%04X %s:%04X %02X %08X:%08X %02X:%08X %08X %5d %8d %d %d %016x %d %d %d %d %d",
		sl, procHex(e.local.Addr()), e.local.Port(), procHex(e.remote.Addr()), e.remote.Port(), e.state,
		0, 0, 0, 0, 0, e.uid, 0, e.inode, 1, 0xdeadbeef, 20, 4, 30, 10, -1)
}

func TestParseProcNetLine(t *testing.T) {
	v4 := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	tests := []struct {
		name   string
		line   string
		want   procNetEntry
		wantOK bool
	}{
		{
			name:   "formatted here",
			line:   formatProcNetLine(3, procNetEntry{v4("127.0.0.1:8080"), v4("127.0.0.1:54466"), 1, 1000, 424242}),
			want:   procNetEntry{v4("127.0.0.1:8080"), v4("127.0.0.1:54466"), 1, 1000, 424242},
			wantOK: true,
		},
		{
			name:   "IPv6",
			line:   formatProcNetLine(0, procNetEntry{v4("[::1]:443"), v4("[::1]:40000"), 1, 65534, 7}),
			want:   procNetEntry{v4("[::1]:443"), v4("[::1]:40000"), 1, 65534, 7},
			wantOK: true,
		},
		{
			name:   "IPv4-mapped in tcp6",
			line:   formatProcNetLine(0, procNetEntry{v4("[::ffff:127.0.0.1]:443"), v4("[::ffff:127.0.0.1]:40000"), 1, 0, 9}),
			want:   procNetEntry{v4("[::ffff:127.0.0.1]:443"), v4("[::ffff:127.0.0.1]:40000"), 1, 0, 9},
			wantOK: true,
		},
		{
			name:   "TIME_WAIT: fewer columns, no owner",
			line:   formatProcNetLine(1, procNetEntry{v4("127.0.0.1:51184"), v4("127.0.0.1:42265"), 6, 0, 0})[:120],
			want:   procNetEntry{v4("127.0.0.1:51184"), v4("127.0.0.1:42265"), 6, 0, 0},
			wantOK: true,
		},
		{name: "header", line: "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"},
		{name: "empty", line: ""},
		{name: "short", line: "   0: 0100007F:1F90 0100007F:D4C2 01"},
		{name: "families differ", line: "   0: 0100007F:1F90 00000000000000000000000001000000:D4C2 01 00000000:00000000 00:00000000 00000000  1000 0 1"},
		{name: "short address", line: "   0: 100007F:1F90 0100007F:D4C2 01 00000000:00000000 00:00000000 00000000  1000 0 1"},
		{name: "short port", line: "   0: 0100007F:F90 0100007F:D4C2 01 00000000:00000000 00:00000000 00000000  1000 0 1"},
		{name: "signed hex", line: "   0: +100007F:1F90 0100007F:D4C2 01 00000000:00000000 00:00000000 00000000  1000 0 1"},
		{name: "uid too big", line: "   0: 0100007F:1F90 0100007F:D4C2 01 00000000:00000000 00:00000000 00000000  4294967296 0 1"},
		{name: "negative inode", line: "   0: 0100007F:1F90 0100007F:D4C2 01 00000000:00000000 00:00000000 00000000  1000 0 -1"},
		{name: "no colon after sl", line: "   0 0100007F:1F90 0100007F:D4C2 01 00000000:00000000 00:00000000 00000000  1000 0 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseProcNetLine(tt.line)
			if ok != tt.wantOK || (ok && got != tt.want) {
				t.Fatalf("parseProcNetLine(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func FuzzParseProcNetLine(f *testing.F) {
	f.Add("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode")
	f.Add("   0: 0100007F:1F90 0100007F:D4C2 01 00000000:00000000 00:00000000 00000000  1000        0 424242 1 0000000000000000 20 4 30 10 -1")
	f.Add("   1: 0100007F:C7F0 0100007F:A519 06 00000000:00000000 03:0000136D 00000000     0        0 0 3 000000009b6f972b")
	f.Add("   0: 00000000000000000000000001000000:992D 00000000000000000000000001000000:BE7C 06 00000000:00000000 03:00001225 00000000     0        0 0 3 000000009990c4fb")
	f.Add("   0: 0000000000000000FFFF00000100007F:01BB 0000000000000000FFFF00000100007F:9C40 01 00000000:00000000 00:00000000 00000000 65534 0 9 1 0 20 4 30 10 -1")
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		e, ok := parseProcNetLine(line)
		if !ok {
			return
		}
		if e.local.Addr().Is4() != e.remote.Addr().Is4() {
			t.Fatalf("mixed families accepted: %+v", e)
		}
		// What was accepted must survive a round trip through the
		// kernel's format unchanged.
		again, ok := parseProcNetLine(formatProcNetLine(0, e))
		if !ok || again != e {
			t.Fatalf("round trip of %q: %+v -> %+v, %v", line, e, again, ok)
		}
	})
}
