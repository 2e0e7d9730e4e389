package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"credbroker/authtoken"
	"credbroker/daemon"
	"credbroker/dashboard"
	"credbroker/session"
)

// fakeDaemon answers Overview with a fixed value and records revokes.
type fakeDaemon struct {
	o daemon.Overview

	mu      sync.Mutex
	revoked []string
}

func (f *fakeDaemon) Overview(context.Context) (daemon.Overview, error) { return f.o, nil }

func (f *fakeDaemon) RevokeBy(_ context.Context, id, who string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.o.Sessions {
		if s.ID == id {
			f.revoked = append(f.revoked, id+" by "+who)
			return nil
		}
	}
	return fmt.Errorf("revoking: %w", authtoken.ErrNotFound)
}

func (f *fakeDaemon) revokes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.revoked)
}

const (
	idA = "at_12345abcDE"
	idB = "at_zyxwvUTSRq"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// overview is two sessions, a few minutes of history and some events.
func overview() daemon.Overview {
	now := time.Date(2026, 11, 23, 12, 30, 15, 0, time.UTC)
	o := daemon.Overview{Now: now, Started: now.Add(-3 * time.Hour), Cache: daemon.CacheStats{Hits: 40, Misses: 4, Entries: 3}}
	o.Sessions = []daemon.LiveSession{
		{Info: daemon.Info{ID: idA, Status: "issued", Running: true, OwnerUID: 4242, Accounts: []string{"task", "other"}, DefaultAccount: "task",
			Endpoints: []session.Endpoint{{Name: "local_auth", Addr: "127.0.0.1:41001"}, {Name: "gcemeta", Addr: "127.0.0.1:41002"}}},
			Age: 90 * time.Second, Left: 7*time.Hour + 58*time.Minute, SinceUse: 5 * time.Second},
		{Info: daemon.Info{ID: idB, Status: "issued", Running: true, OwnerUID: 4242, Accounts: []string{"task"}, DefaultAccount: "task",
			Endpoints: []session.Endpoint{{Name: "devshell", Addr: "127.0.0.1:41003"}}},
			Age: 2 * time.Hour, Left: 5 * time.Minute, SinceUse: time.Hour},
	}
	for i := range daemon.HistoryMinutes {
		m := daemon.Minute{Start: now.Truncate(time.Minute).Add(time.Duration(i-daemon.HistoryMinutes+1) * time.Minute)}
		if i >= 50 {
			m.Issued, m.Hits, m.Misses = uint64(i-48), uint64(i-49), 1
		}
		if i == 55 {
			m.Errors = 2
		}
		o.History = append(o.History, m)
	}
	uid := int64(4242)
	o.Events = []daemon.AuditEntry{
		{Time: now, Event: "issue", Session: idA, Frontend: "gcemeta", Account: "task", Kind: "access",
			Scopes: []string{"https://www.googleapis.com/auth/cloud-platform"}, PeerUID: &uid, Latency: 0.42, Outcome: "ok"},
		{Time: now.Add(-time.Minute), Event: "issue", Session: idA, Frontend: "local_auth", Account: "task", Kind: "id", Audience: "https://svc.example.com", Outcome: "transient"},
		{Time: now.Add(-2 * time.Minute), Event: "session.create", Session: idA, PeerUID: &uid, Outcome: "ok"},
	}
	return o
}

type server struct {
	*httptest.Server
	d *fakeDaemon
}

func newServer(t *testing.T, o daemon.Overview, authorize func(*http.Request) (string, bool)) *server {
	t.Helper()
	d := &fakeDaemon{o: o}
	h, err := dashboard.New(dashboard.Options{Daemon: d, Authorize: authorize, Location: time.UTC, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return &server{s, d}
}

func owner(*http.Request) (string, bool)  { return "owner@example.com", true }
func nobody(*http.Request) (string, bool) { return "", false }

// get fetches path and returns the status and body.
func get(t *testing.T, s *server, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf reads the form token from the page.
func csrfOf(t *testing.T, s *server) string {
	t.Helper()
	_, body := get(t, s, "/")
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", body)
	}
	return m[1]
}

func TestPage(t *testing.T) {
	s := newServer(t, overview(), owner)
	resp, body := get(t, s, "/")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d:\n%s", resp.StatusCode, body)
	}
	headers := map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-store",
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
	}
	for k, want := range headers {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	wants := []string{
		`<strong id="who">owner@example.com</strong>`,
		`<div class="num" id="live-count">2</div>`,
		`<tr id="session-` + idA + `">`,
		`<tr id="session-` + idB + `">`,
		`<form method="post" action="/sessions/` + idA + `/revoke">`,
		`id="revoke-` + idB + `"`,
		`<span class="chip default" title="default account">task</span><span class="chip">other</span>`,
		`<span class="chip fe">local_auth <b>:41001</b></span><span class="chip fe">gcemeta <b>:41002</b></span>`,
		`<span class="chip fe">devshell <b>:41003</b></span>`,
		`<td class="nowrap">1m 30s</td>`,
		`<td class="nowrap warn" title="expires`,
		`>5m 00s</td>`,
		`<td class="nowrap">1h 00m ago</td>`,
		`uid 4242`,
		`2026-11-23 12:30:15 UTC`,
		`daemon up 3h 00m`,
		`<div class="tile bad"><div class="num">2</div><div class="label">failed requests, last hour</div></div>`,
		// 2+3+...+11 issued over the last ten minutes.
		`<div class="num">65</div><div class="label">tokens issued, last hour</div>`,
		`peak 11`,
		`<title>12:26: 7 issued, 2 failed</title>`,
		`<title>12:30: 91% from the cache (10 of 11)</title>`,
		`<td class="what" title="https://www.googleapis.com/auth/cloud-platform">cloud-platform</td>`,
		`ID token for https://svc.example.com`,
		`<span class="outcome bad">transient</span>`,
		`0.42 ms`,
	}
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("the page lacks %s", w)
		}
	}
	if n := strings.Count(body, `<rect class="ok"`); n != 10 {
		t.Errorf("%d issuance bars, want 10", n)
	}
	if n := strings.Count(body, `<rect class="err"`); n != 1 {
		t.Errorf("%d error bars, want 1", n)
	}
	if n := strings.Count(body, `<circle class="dot"`); n != 10 {
		t.Errorf("%d hit-ratio points, want 10", n)
	}
	if n := strings.Count(body, `<polyline class="line"`); n != 1 {
		t.Errorf("%d hit-ratio lines, want 1", n)
	}
	if strings.Contains(body, "<script") {
		t.Error("the page has a script; it must work without one")
	}
}

func TestPageEmpty(t *testing.T) {
	o := daemon.Overview{Now: time.Now(), Started: time.Now()}
	s := newServer(t, o, owner)
	resp, body := get(t, s, "/")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, w := range []string{"No live sessions.", "no token requests in the last hour", "Nothing has happened since the daemon started.", `<div class="num">no requests</div>`} {
		if !strings.Contains(body, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
}

func TestStatic(t *testing.T) {
	s := newServer(t, overview(), nobody)
	resp, body := get(t, s, "/static/style.css")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, "svg.chart") {
		t.Errorf("style sheet: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := get(t, s, "/static/page.html"); resp.StatusCode != 200 {
		// The templates are served as they are, without data; nothing
		// in them is secret. Only note it if that ever changes.
		t.Logf("template: %d", resp.StatusCode)
	}
	if resp, _ := get(t, s, "/nope"); resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
}

func TestUnauthorized(t *testing.T) {
	s := newServer(t, overview(), nobody)
	resp, body := get(t, s, "/")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status %d, want 403", resp.StatusCode)
	}
	if !strings.Contains(body, `<a class="button" id="sign-in" href="/auth/openid/login?r=/">Sign in</a>`) {
		t.Errorf("no sign-in link:\n%s", body)
	}
	for _, leak := range []string{idA, "4242", "task"} {
		if strings.Contains(body, leak) {
			t.Errorf("the refusal shows %q", leak)
		}
	}
	// A token taken from an earlier page does not help.
	form := url.Values{"csrf": {"x"}}
	resp, err := http.PostForm(s.URL+"/sessions/"+idA+"/revoke", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(s.d.revokes()) != 0 {
		t.Errorf("revoke while unauthorized: %d, revoked %v", resp.StatusCode, s.d.revokes())
	}
}

func TestRevoke(t *testing.T) {
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name    string
		id      string
		csrf    func(good string) string
		headers map[string]string
		method  string
		want    int
		revoked bool
	}{
		{name: "from the page", id: idA, csrf: same, headers: browser(""), want: 303, revoked: true},
		{name: "without browser headers", id: idB, csrf: same, want: 303, revoked: true},
		{name: "no token", id: idA, csrf: none, headers: browser(""), want: 403},
		{name: "wrong token", id: idA, csrf: flipLast, headers: browser(""), want: 403},
		{name: "truncated token", id: idA, csrf: func(g string) string { return g[:len(g)-1] }, headers: browser(""), want: 403},
		{name: "cross-site", id: idA, csrf: same, headers: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, want: 403},
		{name: "same-site other origin", id: idA, csrf: same, headers: map[string]string{"Sec-Fetch-Site": "same-site"}, want: 403},
		{name: "foreign origin only", id: idA, csrf: same, headers: map[string]string{"Origin": "http://evil.example"}, want: 403},
		{name: "null origin", id: idA, csrf: same, headers: map[string]string{"Origin": "null"}, want: 403},
		{name: "ended session", id: "at_000000000A", csrf: same, headers: browser(""), want: 404},
		{name: "not a session id", id: "..%2f..%2fetc", csrf: same, headers: browser(""), want: 404},
		{name: "GET", id: idA, csrf: same, method: "GET", want: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, overview(), owner)
			good := csrfOf(t, s)
			body := url.Values{}
			if tok := tt.csrf(good); tok != "" {
				body.Set("csrf", tok)
			}
			method := tt.method
			if method == "" {
				method = "POST"
			}
			req, _ := http.NewRequest(method, s.URL+"/sessions/"+tt.id+"/revoke", strings.NewReader(body.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.headers {
				if v == "" {
					v = s.URL
				}
				req.Header.Set(k, v)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == 303 && resp.Header.Get("Location") != "/" {
				t.Errorf("Location %q, want /", resp.Header.Get("Location"))
			}
			got := s.d.revokes()
			if want := []string{tt.id + " by owner@example.com"}; tt.revoked != slices.Equal(got, want) || !tt.revoked && len(got) != 0 {
				t.Errorf("revoked %v", got)
			}
		})
	}
}

func same(g string) string { return g }
func none(string) string   { return "" }

// flipLast changes the last character for certain.
func flipLast(g string) string {
	last := "A"
	if strings.HasSuffix(g, "A") {
		last = "B"
	}
	return g[:len(g)-1] + last
}

// browser is what a browser sends with a form POST from the page; an
// empty Origin is filled with the server's own.
func browser(origin string) map[string]string {
	return map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": origin}
}

func TestCSRFTokenIsPerIdentity(t *testing.T) {
	var who = "owner@example.com"
	var mu sync.Mutex
	s := newServer(t, overview(), func(*http.Request) (string, bool) { mu.Lock(); defer mu.Unlock(); return who, true })
	first := csrfOf(t, s)
	if again := csrfOf(t, s); again != first {
		t.Error("the token changed between two page loads")
	}
	mu.Lock()
	who = "someone-else@example.com"
	mu.Unlock()
	if other := csrfOf(t, s); other == first {
		t.Error("two people have the same token")
	}
	resp, err := http.PostForm(s.URL+"/sessions/"+idA+"/revoke", url.Values{"csrf": {first}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(s.d.revokes()) != 0 {
		t.Errorf("another person's token: %d, revoked %v", resp.StatusCode, s.d.revokes())
	}
}

func TestHostileNamesAreEscaped(t *testing.T) {
	o := overview()
	hostile := []string{
		`<script>alert(1)</script>`,
		`"><img src=x onerror=alert(2)>`,
		`'onmouseover='alert(3)`,
		`</table><h1>owned</h1>`,
	}
	o.Sessions[0].Accounts = []string{hostile[0], hostile[1]}
	o.Sessions[0].DefaultAccount = hostile[1]
	o.Sessions[0].Endpoints = []session.Endpoint{{Name: hostile[3], Addr: hostile[2]}}
	o.Events[0].Account = hostile[0]
	o.Events[0].Scopes = []string{hostile[1], hostile[2]}
	o.Events[0].Detail = hostile[3]
	o.Events[1].Audience = hostile[2]
	s := newServer(t, o, func(*http.Request) (string, bool) { return hostile[1], true })
	resp, body := get(t, s, "/")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, h := range hostile {
		if strings.Contains(body, h) {
			t.Errorf("the page holds %s unescaped", h)
		}
	}
	for _, w := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;", "&lt;/table&gt;&lt;h1&gt;owned&lt;/h1&gt;"} {
		if !strings.Contains(body, w) {
			t.Errorf("the page lacks the escaped %s", w)
		}
	}
}

func TestNew(t *testing.T) {
	if _, err := dashboard.New(dashboard.Options{Authorize: owner}); err == nil {
		t.Error("no daemon accepted")
	}
	if _, err := dashboard.New(dashboard.Options{Daemon: &fakeDaemon{}}); err == nil {
		t.Error("no Authorize accepted")
	}
}

var _ = errors.New
