package dashboard

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"credbroker/authtoken"
	"credbroker/daemon"
)

// countingDaemon knows one session and counts revokes of it.
type countingDaemon struct{ revokes int }

func (c *countingDaemon) Overview(context.Context) (daemon.Overview, error) {
	return daemon.Overview{Now: time.Unix(0, 0)}, nil
}

func (c *countingDaemon) RevokeBy(_ context.Context, id, _ string) error {
	if id != "at_0123456789" {
		return authtoken.ErrNotFound
	}
	c.revokes++
	return nil
}

// FuzzRevoke sends arbitrary revoke requests (id, form body, browser
// headers, with or without the right token) and checks that no request
// fails inside the handler and that a session is revoked only by a
// request that carried the right token and was not marked cross-site.
func FuzzRevoke(f *testing.F) {
	f.Add("at_0123456789", "", "same-origin", "http://dash.test", true)
	f.Add("at_0123456789", "csrf=x", "", "", false)
	f.Add("at_0123456789", "", "cross-site", "http://evil.test", true)
	f.Add("at_0123456789", "", "", "null", true)
	f.Add("at_0123456789", "%zz", "none", "", true)
	f.Add("../static/style.css", "csrf=", "same-origin", "http://dash.test:80", true)
	f.Add("at_0123456789", strings.Repeat("a=b&", 2000), "", "", true)
	f.Fuzz(func(t *testing.T, id, body, fetchSite, origin string, withToken bool) {
		d := &countingDaemon{}
		h, err := New(Options{Daemon: d, Authorize: func(*http.Request) (string, bool) { return "owner", true }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if withToken {
			body = "csrf=" + url.QueryEscape(h.csrf("owner")) + "&" + body
		}
		r := httptest.NewRequest("POST", "http://dash.test/", strings.NewReader(body))
		r.URL.Path = "/sessions/" + id + "/revoke"
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if fetchSite != "" {
			r.Header.Set("Sec-Fetch-Site", fetchSite)
		}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if d.revokes == 0 {
			return
		}
		if w.Code != http.StatusSeeOther || !withToken || (fetchSite != "" && fetchSite != "same-origin") {
			t.Fatalf("revoked with status %d, token %v, Sec-Fetch-Site %q", w.Code, withToken, fetchSite)
		}
		if u, err := url.Parse(origin); origin != "" && (err != nil || u.Host != "dash.test") {
			t.Fatalf("revoked for Origin %q", origin)
		}
	})
}
