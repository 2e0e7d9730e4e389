package loopback

import (
	"net"
	"net/http"
	"strconv"
	"strings"
)

// HostAllowed reports whether a request's Host header names this server:
// 127.0.0.1, [::1] or localhost with the server's port, or one of extra,
// each given as "name" (any port or none) or "name:port". It is the check
// that defeats DNS rebinding: a rebound page sends its own host name.
//
// Names compare without regard to case. A Host without a port means port
// 80, as it does on the wire, so "metadata.google.internal:80" in extra
// admits both "metadata.google.internal" and "metadata.google.internal:80"
// while a bare "metadata.google.internal" admits any port.
func HostAllowed(host string, port int, extra ...string) bool {
	return isLoopbackHost(host, port) || hostAllowed(host, port, extra)
}

// hostAllowed is HostAllowed without the quick path.
func hostAllowed(host string, port int, extra []string) bool {
	name, hostPort, ok := splitHost(host)
	if !ok {
		return false
	}
	if hostPort == "" {
		hostPort = "80"
	}
	if hostPort == strconv.Itoa(port) && (name == IPv4 || name == IPv6 || name == "localhost") {
		return true
	}
	for _, e := range extra {
		eName, ePort, ok := splitHost(e)
		if ok && eName == name && (ePort == "" || ePort == hostPort) {
			return true
		}
	}
	return false
}

// isLoopbackHost is HostAllowed's quick yes for what local clients send,
// "127.0.0.1:PORT", "localhost:PORT" or "[::1]:PORT" in lower case, with
// no allocation; anything else takes the general path.
func isLoopbackHost(host string, port int) bool {
	var rest string
	var ok bool
	switch {
	case strings.HasPrefix(host, "127.0.0.1:"):
		rest, ok = host[len("127.0.0.1:"):], true
	case strings.HasPrefix(host, "localhost:"):
		rest, ok = host[len("localhost:"):], true
	case strings.HasPrefix(host, "[::1]:"):
		rest, ok = host[len("[::1]:"):], true
	}
	if !ok || rest == "" || len(rest) > 5 || rest[0] == '0' || port <= 0 {
		return false
	}
	n := 0
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n == port
}

// splitHost splits "name", "name:port", "[v6]" or "[v6]:port" into a
// lower-case name without brackets and the port ("" when absent). A bare
// IPv6 address is accepted as a name so that extra may list "::1".
func splitHost(s string) (name, port string, ok bool) {
	s = strings.ToLower(s)
	if s == "" {
		return "", "", false
	}
	if n, p, err := net.SplitHostPort(s); err == nil {
		if n == "" {
			return "", "", false
		}
		return n, p, true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		n := s[1 : len(s)-1]
		return n, "", n != "" && !strings.ContainsAny(n, "[]")
	}
	if strings.ContainsAny(s, "[]") || strings.Count(s, ":") == 1 {
		return "", "", false // malformed, e.g. "[::1" or "name:port:"
	}
	return s, "", true
}

// browserHeaders are sent by web browsers and not by programs. Browsers
// send Sec-Fetch-Site and Sec-Fetch-Dest on every request; Sec-Fetch-Mode
// alone is not listed because Node's built-in fetch sends it too, and
// Node programs (Google's client libraries, firebase-tools) are clients.
var browserHeaders = []string{"Origin", "Referer", "Sec-Fetch-Site", "Sec-Fetch-Dest", "Sec-Fetch-User"}

// FromBrowser reports whether a request carries headers only browsers
// send. Token endpoints that no web page should call refuse such requests.
func FromBrowser(r *http.Request) bool {
	for _, h := range browserHeaders {
		// The names are canonical already: index the map directly
		// rather than through Get, which canonicalizes every time.
		if v := r.Header[h]; len(v) > 0 && v[0] != "" {
			return true
		}
	}
	return false
}
