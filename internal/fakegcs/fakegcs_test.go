package fakegcs

import (
	"io"
	"net/http"
	"testing"
)

func TestFake(t *testing.T) {
	for _, tls := range []bool{false, true} {
		s := New
		if tls {
			s = NewTLS
		}
		srv := s(map[string][]string{"bkt": {"a", "d/b"}})
		client := srv.Client()
		tests := []struct {
			path, token string
			status      int
			body        string
		}{
			{"/storage/v1/b/bkt/o?delimiter=/", "t1", 200, `{"items":[{"bucket":"bkt","contentType":"text/plain","crc32c":"z8SuHQ==","etag":"CAE=","generation":"1","id":"bkt/a/1","kind":"storage#object","md5Hash":"rL0Y20zC+Fzt72VPzMSk2A==","metageneration":"1","name":"a","size":"3","timeCreated":"2026-01-01T00:00:00.000Z","updated":"2026-01-01T00:00:00.000Z"}],"kind":"storage#objects","prefixes":["d/"]}` + "\n"},
			{"/storage/v1/b/bkt/o?prefix=x", "t2", 200, `{"items":[],"kind":"storage#objects"}` + "\n"},
			{"/storage/v1/b/bkt", "t1", 200, `{"id":"bkt","kind":"storage#bucket","location":"US","metageneration":"1","name":"bkt","storageClass":"STANDARD","timeCreated":"2026-01-01T00:00:00.000Z","updated":"2026-01-01T00:00:00.000Z"}` + "\n"},
			{"/storage/v1/b/nope/o", "t1", 404, ""},
			{"/storage/v1/b/bkt/o", "", 401, ""},
		}
		for _, tt := range tests {
			req, _ := http.NewRequest("GET", srv.URL+tt.path, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || (tt.body != "" && string(b) != tt.body) {
				t.Errorf("tls=%v %s: %d %s", tls, tt.path, resp.StatusCode, b)
			}
		}
		if got := srv.Tokens(); len(got) != 2 || got[0] != "t1" || got[1] != "t2" {
			t.Errorf("tokens %q", got)
		}
		if (srv.CertPEM() != nil) != tls {
			t.Errorf("CertPEM presence wrong for tls=%v", tls)
		}
		srv.Close()
	}
}
