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
func HostAllowed(host string, port int, extra ...string) bool {
	host = strings.ToLower(host)
	p := strconv.Itoa(port)
	for _, h := range []string{IPv4, "[" + IPv6 + "]", "localhost"} {
		if host == h+":"+p {
			return true
		}
	}
	name, _, err := net.SplitHostPort(host)
	if err != nil {
		name = host
	}
	for _, e := range extra {
		e = strings.ToLower(e)
		if host == e || (!strings.Contains(e, ":") && name == e) {
			return true
		}
	}
	return false
}

// FromBrowser reports whether a request carries headers only browsers send
// (Origin, Referer or any Sec-Fetch-*). Token endpoints that no web page
// should call refuse such requests.
func FromBrowser(r *http.Request) bool {
	if r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" {
		return true
	}
	for k := range r.Header {
		if strings.HasPrefix(k, "Sec-Fetch-") {
			return true
		}
	}
	return false
}
