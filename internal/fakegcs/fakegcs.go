package fakegcs

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
)

// Server is a running fake. Its buckets are fixed at creation.
type Server struct {
	*httptest.Server

	buckets map[string][]string // bucket -> object names

	mu       sync.Mutex
	requests []Request
}

// Request is what the fake saw of one request.
type Request struct {
	Method string
	Path   string
	Query  string
	// Token is the bearer token, or "" when the request had none.
	Token string
}

// New starts a plain-HTTP fake with the given buckets and object names.
func New(buckets map[string][]string) *Server {
	s := newServer(buckets)
	s.Server = httptest.NewServer(s.handler())
	return s
}

// NewTLS starts the fake over HTTPS with httptest's self-signed
// certificate (valid for 127.0.0.1): gsutil's JSON API always speaks
// https. CertPEM gives the certificate for a client's trust store.
func NewTLS(buckets map[string][]string) *Server {
	s := newServer(buckets)
	s.Server = httptest.NewTLSServer(s.handler())
	return s
}

func newServer(buckets map[string][]string) *Server {
	s := &Server{buckets: map[string][]string{}}
	for b, objs := range buckets {
		s.buckets[b] = slices.Sorted(slices.Values(objs))
	}
	return s
}

// CertPEM returns the server certificate in PEM, or nil for plain HTTP.
func (s *Server) CertPEM() []byte {
	c := s.Certificate()
	if c == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// CertPool is a pool holding the server certificate, for Go clients.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	if c := s.Certificate(); c != nil {
		p.AddCert(c)
	}
	return p
}

// Requests returns the requests seen so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Tokens returns the distinct bearer tokens seen so far, in order.
func (s *Server) Tokens() []string {
	var out []string
	for _, r := range s.Requests() {
		if r.Token != "" && !slices.Contains(out, r.Token) {
			out = append(out, r.Token)
		}
	}
	return out
}

const apiPrefix = "/storage/v1/b/"

func (s *Server) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Token: tok})
		s.mu.Unlock()

		if tok == "" {
			writeError(w, http.StatusUnauthorized, "Anonymous caller does not have storage.objects.list access.")
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, apiPrefix)
		if !ok || r.Method != http.MethodGet {
			writeError(w, http.StatusNotFound, "Not Found")
			return
		}
		bucket, sub, _ := strings.Cut(rest, "/")
		objs, ok := s.buckets[bucket]
		if !ok {
			writeError(w, http.StatusNotFound, "The specified bucket does not exist.")
			return
		}
		switch sub {
		case "": // buckets.get
			writeJSON(w, map[string]any{
				"kind": "storage#bucket", "id": bucket, "name": bucket,
				"location": "US", "storageClass": "STANDARD", "metageneration": "1",
				"timeCreated": "2026-01-01T00:00:00.000Z", "updated": "2026-01-01T00:00:00.000Z",
			})
		case "o": // objects.list
			writeJSON(w, list(bucket, objs, r.URL.Query().Get("prefix"), r.URL.Query().Get("delimiter")))
		default:
			writeError(w, http.StatusNotFound, "No such object.")
		}
	})
}

// list answers objects.list with prefix and delimiter, in one page.
func list(bucket string, objs []string, prefix, delim string) map[string]any {
	items := []map[string]any{}
	var prefixes []string
	for _, name := range objs {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		if delim != "" {
			if i := strings.Index(rest, delim); i >= 0 {
				p := prefix + rest[:i+len(delim)]
				if !slices.Contains(prefixes, p) {
					prefixes = append(prefixes, p)
				}
				continue
			}
		}
		items = append(items, map[string]any{
			"kind": "storage#object", "id": bucket + "/" + name + "/1", "name": name, "bucket": bucket,
			"generation": "1", "metageneration": "1", "size": "3", "contentType": "text/plain",
			"timeCreated": "2026-01-01T00:00:00.000Z", "updated": "2026-01-01T00:00:00.000Z",
			"md5Hash": "rL0Y20zC+Fzt72VPzMSk2A==", "crc32c": "z8SuHQ==", "etag": "CAE=",
		})
	}
	out := map[string]any{"kind": "storage#objects", "items": items}
	if len(prefixes) > 0 {
		out["prefixes"] = prefixes
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]any{"code": status, "message": msg, "errors": []map[string]any{{"message": msg, "reason": "notFound"}}},
	})
}
