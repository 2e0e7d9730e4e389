package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"credbroker/authtoken"
	"credbroker/broker"
	"credbroker/broker/brokertest"
	"credbroker/daemon"
	"credbroker/dashboard"
	"credbroker/internal/chromiumtest"
	"credbroker/lucictx"
	"credbroker/protocols/localauth"

	"github.com/chromedp/chromedp"
)

// newDaemon runs a real daemon on a real broker whose two accounts mint
// numbered tokens "ya29.dash-N".
func newDaemon(t *testing.T) *daemon.Daemon {
	t.Helper()
	b := broker.New(broker.Options{Logger: quietLogger()})
	t.Cleanup(b.Close)
	for _, id := range []string{"task", "other"} {
		if err := b.AddAccount(id, &brokertest.Source{Prefix: "ya29.dash-", Mail: id + "@example.iam.gserviceaccount.com"}); err != nil {
			t.Fatal(err)
		}
	}
	// A unix socket path must fit in 108 bytes; t.TempDir() names may not.
	root, err := os.MkdirTemp("", "cbdash-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	paths := daemon.Paths{Runtime: filepath.Join(root, "run"), State: filepath.Join(root, "state"), Config: filepath.Join(root, "config")}
	d, err := daemon.New(context.Background(), daemon.Options{Paths: paths, Key: []byte("0123456789abcdef0123456789abcdef"), Broker: b, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return d
}

func createSession(t *testing.T, d *daemon.Daemon, req daemon.CreateRequest) *daemon.Created {
	t.Helper()
	req.Scopes = []string{"https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/userinfo.email"}
	c, err := d.Create(context.Background(), daemon.Peer{UID: uint32(os.Getuid()), PID: int32(os.Getpid())}, req)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func envOf(c *daemon.Created, name string) string {
	for _, v := range c.Set {
		if v.Name == name {
			return v.Value
		}
	}
	return ""
}

// localAuthToken asks the session's local_auth server for a token, as a
// LUCI tool in the session would.
func localAuthToken(ctx context.Context, c *daemon.Created, scopes ...string) (broker.Token, error) {
	lc, _, err := lucictx.Load(envOf(c, "LUCI_CONTEXT"))
	if err != nil {
		return broker.Token{}, err
	}
	la, err := lc.LocalAuth()
	if err != nil {
		return broker.Token{}, err
	}
	cl, err := localauth.NewClient(la)
	if err != nil {
		return broker.Token{}, err
	}
	return cl.AccessToken(ctx, scopes, time.Minute)
}

func endpointOf(in daemon.Info, name string) string {
	for _, ep := range in.Endpoints {
		if ep.Name == name {
			return ep.Addr
		}
	}
	return ""
}

// TestChromiumRevoke shows a real daemon's two sessions in Chromium and
// revokes one with its button.
func TestChromiumRevoke(t *testing.T) {
	chromiumtest.Path(t)
	ctx := context.Background()
	d := newDaemon(t)
	a := createSession(t, d, daemon.CreateRequest{TTL: "8h", Frontends: daemon.Frontends{LocalAuth: true, GCEMeta: true}})
	b := createSession(t, d, daemon.CreateRequest{TTL: "30m", Accounts: []string{"other", "task"}, Frontends: daemon.Frontends{LocalAuth: true, Devshell: true, Gsutil: true}})

	// Some traffic for the chart and the events: hits, and a miss per
	// new scope set.
	var minted []string
	for i, s := range []*daemon.Created{a, b, a, a, b} {
		tok, err := localAuthToken(ctx, s, "https://www.googleapis.com/auth/cloud-platform", fmt.Sprintf("scope-%d", i%2))
		if err != nil {
			t.Fatalf("local_auth token: %v", err)
		}
		minted = append(minted, tok.Value)
	}
	if _, err := localAuthToken(ctx, a, "https://www.googleapis.com/auth/cloud-platform"); err != nil {
		t.Fatal(err)
	}

	h, err := dashboard.New(dashboard.Options{Daemon: d, Authorize: func(*http.Request) (string, bool) { return "owner (local mode)", true }, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	// Nothing secret on the page: not the session credentials, not the
	// value local_auth takes as its secret, not the tokens served.
	secrets := append([]string{a.Token, b.Token, envOf(a, daemon.EnvSessionToken), envOf(b, daemon.EnvSessionToken), "ya29.dash-"}, minted...)
	for _, c := range []*daemon.Created{a, b} {
		_, value, err := authtoken.ParseCredential(c.Token)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, value)
	}
	noSecrets := func(what, html string) {
		t.Helper()
		for _, s := range secrets {
			if s != "" && strings.Contains(html, s) {
				t.Errorf("%s shows a secret (%d characters)", what, len(s))
			}
		}
	}

	bctx := chromiumtest.New(t, 1280, 900)
	var pageHTML string
	var before, after []byte
	steps := []struct {
		name string
		run  func() error
	}{
		{"open the dashboard", func() error { return chromiumtest.Navigate(bctx, srv.URL+"/") }},
		{"two live sessions", func() error {
			return chromiumtest.WaitJS(bctx, `document.querySelector("#live-count").textContent === "2"`)
		}},
		{"both listed", func() error {
			return chromiumtest.WaitJS(bctx, fmt.Sprintf(`!!document.getElementById("session-%s") && !!document.getElementById("session-%s")`, a.ID, b.ID))
		}},
		{"the chart drew bars", func() error {
			return chromiumtest.WaitJS(bctx, `document.querySelectorAll("svg.chart rect.ok").length >= 1`)
		}},
		{"page source", func() (err error) {
			pageHTML, err = chromedp.Run(bctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
			return err
		}},
		{"screenshot", func() (err error) { before, err = chromiumtest.Screenshot(bctx); return err }},
		{"revoke the first", func() error { return chromiumtest.Click(bctx, "#revoke-"+a.ID) }},
		{"one live session", func() error {
			return chromiumtest.WaitJS(bctx, fmt.Sprintf(`document.querySelector("#live-count") && document.querySelector("#live-count").textContent === "1" && !document.getElementById("session-%s") && !!document.getElementById("session-%s")`, a.ID, b.ID))
		}},
		{"the revoke is an event", func() error {
			return chromiumtest.WaitJS(bctx, `[...document.querySelectorAll("table.events td")].some(td => td.textContent === "by owner (local mode)")`)
		}},
		{"screenshot after", func() (err error) { after, err = chromiumtest.Screenshot(bctx); return err }},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			t.Fatalf("%s: %v; page says %q", st.name, err, chromiumtest.PageText(bctx))
		}
	}
	noSecrets("the page in the browser", pageHTML)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	noSecrets("the page as served", string(raw))

	// A second revoke (a stale tab) finds the session gone.
	m := csrfField.FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatal("no CSRF token on the page")
	}
	resp, err = http.PostForm(srv.URL+"/sessions/"+a.ID+"/revoke", map[string][]string{"csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("second revoke: %d, want 404", resp.StatusCode)
	}

	// The session is gone: its record, and its local_auth port.
	if _, err := d.Lookup(ctx, a.ID); !errors.Is(err, authtoken.ErrNotFound) {
		t.Errorf("lookup after revoke: %v", err)
	}
	if c, err := net.DialTimeout("tcp", endpointOf(a.Info, "local_auth"), 5*time.Second); err == nil {
		c.Close()
		t.Error("the revoked session's local_auth port still accepts connections")
	}
	if _, err := localAuthToken(ctx, a, "s"); err == nil {
		t.Error("the revoked session still serves tokens")
	}
	if _, err := localAuthToken(ctx, b, "s"); err != nil {
		t.Errorf("the other session stopped serving: %v", err)
	}
	if in, err := d.Lookup(ctx, b.ID); err != nil || !in.Running {
		t.Errorf("the other session: %+v, %v", in, err)
	}

	chromiumtest.SaveArtifact(t, "dashboard.png", before)
	chromiumtest.SaveArtifact(t, "dashboard-after-revoke.png", after)
}

// TestChromiumFullHour renders an hour of made-up traffic (with failures
// and a quiet stretch) and a signed-in person, for a screenshot of the
// chart under load; the page must look right without any script.
func TestChromiumFullHour(t *testing.T) {
	chromiumtest.Path(t)
	o := overview()
	for i := range o.History {
		m := &o.History[i]
		if i >= 20 && i < 28 {
			*m = daemon.Minute{Start: m.Start} // quiet
			continue
		}
		m.Issued = uint64(20 + (i*37)%45)
		m.Errors = uint64(map[bool]int{true: 3 + i%4}[i%13 == 5])
		m.Misses = uint64(1 + (i*7)%5)
		m.Hits = m.Issued + m.Errors - min(m.Misses, m.Issued)
	}
	d := &fakeDaemon{o: o}
	h, err := dashboard.New(dashboard.Options{Daemon: d, Authorize: owner, SignOut: "/auth/openid/logout?r=/", Location: time.UTC, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	bctx := chromiumtest.New(t, 1280, 900)
	if err := chromiumtest.Navigate(bctx, srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	if err := chromiumtest.WaitJS(bctx, `document.querySelectorAll("svg.chart rect.ok").length === 52 && document.querySelectorAll("svg.chart polyline.line").length === 2`); err != nil {
		t.Fatalf("chart: %v", err)
	}
	png, err := chromiumtest.Screenshot(bctx)
	if err != nil {
		t.Fatal(err)
	}
	chromiumtest.SaveArtifact(t, "dashboard-full-hour.png", png)
}
