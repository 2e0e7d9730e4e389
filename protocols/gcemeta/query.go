package gcemeta

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// request is what the server needs from a request line, parsed once.
type request struct {
	segments []string // path below "/", split on "/"; nil for the root
	listing  bool     // the path ends with "/": list a directory

	recursive bool
	alt       string // "json", "text" or "" (other values are ignored, as GCE does)
	altGiven  bool   // any alt was given: plain listings refuse it

	waitForChange bool
	lastETag      string
	hasLastETag   bool
	timeout       time.Duration // 0 when timeout_sec is absent

	params map[string]string // first value of every parameter
}

// paramsAfterAudience are the parameters that may follow "audience=" in an
// identity request. Node's gcp-metadata appends the audience without
// escaping it, so an audience such as "https://x/?a=b&c=d" arrives split;
// everything up to the next known parameter belongs to the audience.
var paramsAfterAudience = []string{
	"alt", "audience", "format", "last_etag", "licenses", "recursive",
	"scopes", "timeout_sec", "wait_for_change",
}

// errBadTimeout is the answer to a timeout_sec that is not a number of
// seconds.
var errBadTimeout = &httpError{code: 400, msg: "Invalid timeout_sec: want a non-negative number of seconds"}

// parseRequest parses a request's path (already unescaped, as in
// URL.Path) and its raw query string. It never fails on odd input: bad
// escapes are kept as given, and unknown parameters are kept and ignored.
// The only error is an invalid timeout_sec.
func parseRequest(path, rawQuery string) (request, error) {
	var q request
	p := strings.TrimPrefix(path, "/")
	if p == "" {
		q.listing = true // the root
	} else {
		q.listing = strings.HasSuffix(p, "/")
		q.segments = strings.Split(strings.TrimSuffix(p, "/"), "/")
	}

	q.params = parseQuery(rawQuery)
	q.recursive = isTrue(q.params["recursive"])
	alt, ok := q.params["alt"]
	q.altGiven = ok
	if alt == "json" || alt == "text" {
		q.alt = alt
	}
	q.waitForChange = isTrue(q.params["wait_for_change"])
	q.lastETag, q.hasLastETag = q.params["last_etag"]
	if v, ok := q.params["timeout_sec"]; ok && v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n < 0 {
			return q, errBadTimeout
		}
		q.timeout = time.Duration(n) * time.Second
	}
	return q, nil
}

// parseQuery splits a raw query on "&" and keeps the first value of each
// key. Unlike url.ParseQuery it keeps pairs with bad escapes (raw) and
// semicolons, and it reads "audience" leniently (see paramsAfterAudience).
func parseQuery(raw string) map[string]string {
	if raw == "" {
		return nil // reads as empty; most requests have no query
	}
	params := map[string]string{}
	parts := strings.Split(raw, "&")
	for i := 0; i < len(parts); i++ {
		part := parts[i]
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key := unescape(k, url.QueryUnescape)
		if key == "audience" {
			for i+1 < len(parts) && !startsKnownParam(parts[i+1]) {
				i++
				v += "&" + parts[i]
			}
			// PathUnescape keeps "+": an unescaped audience may hold one,
			// and no audience holds a space.
			setFirst(params, key, unescape(v, url.PathUnescape))
			continue
		}
		setFirst(params, key, unescape(v, url.QueryUnescape))
	}
	return params
}

func startsKnownParam(part string) bool {
	k, _, _ := strings.Cut(part, "=")
	return slices.Contains(paramsAfterAudience, unescape(k, url.QueryUnescape))
}

func setFirst(m map[string]string, k, v string) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

func unescape(s string, f func(string) (string, error)) string {
	if u, err := f(s); err == nil {
		return u
	}
	return s
}

// isTrue reads a boolean parameter the way GCE does.
func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "yes":
		return true
	}
	return false
}

// parseScopes reads token's scopes parameter: comma (or space) separated,
// trimmed, empty entries dropped, de-duplicated and sorted.
func parseScopes(v string) []string {
	fields := strings.FieldsFunc(v, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(fields) == 0 {
		return nil
	}
	slices.Sort(fields)
	return slices.Compact(fields)
}
