package loopback

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestHostAllowed(t *testing.T) {
	const port = 8123
	meta := []string{"metadata.google.internal:80", "metadata", "169.254.169.254:80"}
	tests := []struct {
		host  string
		extra []string
		want  bool
	}{
		{"127.0.0.1:8123", nil, true},
		{"localhost:8123", nil, true},
		{"LOCALHOST:8123", nil, true},
		{"LocalHost:8123", nil, true},
		{"[::1]:8123", nil, true},
		{"[0:0::1]:8123", nil, false}, // same address, other spelling: clients do not send it
		{"127.0.0.1:8124", nil, false},
		{"localhost:80", nil, false},
		{"[::1]:8124", nil, false},
		{"127.0.0.1", nil, false}, // no port means 80
		{"localhost", nil, false},
		{"::1", nil, false},
		{"", nil, false},
		{"evil.example", nil, false},
		{"evil.example:8123", nil, false},
		{"127.0.0.1.evil.example:8123", nil, false},
		{"localhost.evil.example:8123", nil, false},
		{"127.0.0.2:8123", nil, false},
		{"0.0.0.0:8123", nil, false},
		{"[::1:8123", nil, false},
		{"127.0.0.1:8123:8123", nil, false},

		// extra names with a port: that port, or none when the port is 80
		{"metadata.google.internal", meta, true},
		{"metadata.google.internal:80", meta, true},
		{"METADATA.Google.Internal", meta, true},
		{"metadata.google.internal:8080", meta, false},
		{"metadata.google.internal:8123", meta, false},
		{"169.254.169.254", meta, true},
		{"169.254.169.254:80", meta, true},
		{"169.254.169.254:8123", meta, false},
		{"169.254.169.254.evil.example", meta, false},
		// extra names without a port: any port or none
		{"metadata", meta, true},
		{"metadata:80", meta, true},
		{"metadata:8123", meta, true},
		{"Metadata:1", meta, true},
		{"metadata.evil.example", meta, false},
		{"evil.example", meta, false},
		{"127.0.0.1:8123", meta, true},
		// a non-80 port in extra
		{"broker.test:9000", []string{"broker.test:9000"}, true},
		{"broker.test", []string{"broker.test:9000"}, false},
		{"broker.test:9001", []string{"broker.test:9000"}, false},
		// extra listed in upper case
		{"metadata", []string{"METADATA"}, true},
		// IPv6 in extra, bracketed or bare
		{"[fd00::1]:5", []string{"[fd00::1]"}, true},
		{"[fd00::1]:5", []string{"fd00::1"}, true},
		{"[fd00::1]:5", []string{"[fd00::1]:6"}, false},
		// a malformed extra entry matches nothing
		{"x", []string{"[x"}, false},
		{"", []string{""}, false},
	}
	for _, tt := range tests {
		if got := HostAllowed(tt.host, port, tt.extra...); got != tt.want {
			t.Errorf("HostAllowed(%q, %d, %q) = %v, want %v", tt.host, port, tt.extra, got, tt.want)
		}
	}
}

func TestHostAllowedPort80(t *testing.T) {
	// A server on port 80 is addressed without a port.
	for _, host := range []string{"127.0.0.1", "localhost", "[::1]", "127.0.0.1:80"} {
		if !HostAllowed(host, 80) {
			t.Errorf("HostAllowed(%q, 80) = false", host)
		}
	}
}

func TestFromBrowser(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		want   bool
	}{
		{"no headers", nil, false},
		{"plain client", http.Header{"User-Agent": {"Python-urllib/3.11"}, "Metadata-Flavor": {"Google"}}, false},
		{"origin", http.Header{"Origin": {"https://evil.example"}}, true},
		{"null origin", http.Header{"Origin": {"null"}}, true},
		{"referer", http.Header{"Referer": {"https://evil.example/page"}}, true},
		{"sec-fetch-site", http.Header{"Sec-Fetch-Site": {"cross-site"}}, true},
		{"sec-fetch-mode alone (Node's fetch)", http.Header{"Sec-Fetch-Mode": {"cors"}}, false},
		{"sec-fetch-dest", http.Header{"Sec-Fetch-Dest": {"empty"}}, true},
		{"sec-fetch-user", http.Header{"Sec-Fetch-User": {"?1"}}, true},
		{"empty origin", http.Header{"Origin": {""}}, false},
		{"similar but not browser", http.Header{"Sec-Websocket-Key": {"x"}, "X-Origin": {"a"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://127.0.0.1/", nil)
			for k, v := range tt.header {
				r.Header[k] = v
			}
			if got := FromBrowser(r); got != tt.want {
				t.Fatalf("FromBrowser = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFromBrowserOnTheWire sends lower-case header names, as HTTP/2-era
// browsers write them, through a real server to check canonicalisation.
func TestFromBrowserOnTheWire(t *testing.T) {
	got := make(chan bool, 1)
	s := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- FromBrowser(r)
	}), HTTPOptions{})
	resp := rawRequest(t, s.Addr(), "GET / HTTP/1.1\r\nHost: x\r\nsec-fetch-site: same-site\r\nConnection: close\r\n\r\n")
	if !<-got {
		t.Fatalf("lower-case sec-fetch-site not recognised; response %q", resp)
	}
}

// FuzzHostAllowed checks that no Host header outside the loopback names
// gets through without an extra name, whatever its shape.
func FuzzHostAllowed(f *testing.F) {
	for _, h := range []string{"127.0.0.1:8123", "[::1]:8123", "localhost", "LOCALHOST:80", "[::1", "::1", "a:b:c", "[]:1", ":80", "evil.example:8123"} {
		f.Add(h, uint16(8123), "metadata.google.internal:80")
	}
	f.Fuzz(func(t *testing.T, host string, port uint16, extra string) {
		p := strconv.Itoa(int(port))
		h := strings.ToLower(host)
		if isLoopbackHost(host, int(port)) && !hostAllowed(host, int(port), nil) {
			t.Fatalf("the quick path admits %q for port %d, the general one does not", host, port)
		}
		if HostAllowed(host, int(port)) {
			name := strings.TrimSuffix(h, ":"+p)
			if name == h && port == 80 {
				name = strings.TrimSuffix(h, ":")
			}
			if name == h && port != 80 {
				t.Fatalf("HostAllowed(%q, %d) without the port", host, port)
			}
			switch name {
			case "127.0.0.1", "localhost", "[::1]", "::1":
			default:
				t.Fatalf("HostAllowed(%q, %d) = true", host, port)
			}
		}
		if HostAllowed(host, int(port), extra) && !HostAllowed(host, int(port)) {
			en, _, _ := splitHost(extra)
			if en == "" || !strings.Contains(h, en) {
				t.Fatalf("HostAllowed(%q, %d, %q) = true", host, port, extra)
			}
		}
	})
}
