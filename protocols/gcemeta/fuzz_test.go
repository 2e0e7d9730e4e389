package gcemeta

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzRequest feeds arbitrary paths and query strings to the parser and
// to the whole handler: no panic, no hang, and every answer is one the
// protocol knows, with GCE's headers and well-formed JSON.
func FuzzRequest(f *testing.F) {
	seeds := [][2]string{
		{"/", ""},
		{"/", "recursive=1"},
		{"/computeMetadata/v1/", "recursive=true&alt=text"},
		{"/computeMetadata/v1/instance", "recursive=true"},
		{"/computeMetadata/v1/instance/service-accounts/default/token", "scopes=b,%20a,,b"},
		{"/computeMetadata/v1/instance/service-accounts/sa-x@example.com/identity", "format=full&audience=https://x/?a=b&c=d"},
		{"/computeMetadata/v1/instance/service-accounts/default/identity", "audience=%zz&licenses=TRUE"},
		{"/computeMetadata/v1/instance/name", "wait_for_change=true&last_etag=5bce98f73f3ed0c8&timeout_sec=3"},
		{"/computeMetadata/v1/instance/name", "wait_for_change=1&timeout_sec=-1"},
		{"/computeMetadata//v1/../", "alt=json;x=y&&="},
		{"/computeMetadata/v1/instance/name/", "alt"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	ft := &fakeTokens{}
	w := &waits{fire: true}
	s := &Server{Tokens: ft, Logger: slog.New(slog.DiscardHandler), now: func() time.Time { return fakeNow }, after: w.after}
	goldenConfig(s)
	if err := s.validate(); err != nil {
		f.Fatal(err)
	}
	s.closing = make(chan struct{})
	s.tree = s.buildTree()
	s.port.Store(8080)

	f.Fuzz(func(t *testing.T, path, rawQuery string) {
		q, err := parseRequest(path, rawQuery)
		if err == nil {
			joined := "/" + strings.Join(q.segments, "/")
			if q.listing && len(q.segments) > 0 {
				joined += "/"
			}
			if strings.HasPrefix(path, "/") && joined != path {
				t.Fatalf("segments %q do not rebuild path %q", q.segments, path)
			}
		}
		if !strings.HasPrefix(path, "/") {
			return // net/http never hands such a path to a handler
		}
		r := (&http.Request{
			Method:     http.MethodGet,
			URL:        &url.URL{Path: path, RawQuery: rawQuery},
			Host:       "metadata.google.internal",
			RequestURI: path,
			Header:     http.Header{"Metadata-Flavor": {"Google"}},
			RemoteAddr: "127.0.0.1:1",
		}).WithContext(context.Background())
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		switch rec.Code {
		case 200, 301, 400, 404:
		default:
			t.Fatalf("status %d for %q?%q: %s", rec.Code, path, rawQuery, rec.Body)
		}
		if rec.Header().Get("Metadata-Flavor") != "Google" || rec.Header().Get("Server") != "Metadata Server for VM" {
			t.Fatalf("headers missing: %v", rec.Header())
		}
		if rec.Header().Get("Content-Type") == contentJSON && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("invalid JSON for %q?%q: %q", path, rawQuery, rec.Body)
		}
		if rec.Code == 301 && !strings.HasPrefix(rec.Header().Get("Location"), "http://127.0.0.1:8080/") {
			t.Fatalf("redirect to %q", rec.Header().Get("Location"))
		}
	})
}
