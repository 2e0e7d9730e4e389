package openid_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/internal/fakeoidc"
	"credbroker/protocols/openid"

	"github.com/chromedp/chromedp"
)

// appPage is the test app: a page on the server's origin that does what
// a single-page app does with the endpoints.
const appPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>test app</title></head><body>
<h1>test app</h1>
<pre id="state">loading</pre>
<pre id="backend"></pre>
<a id="login" href="/auth/openid/login?r=/app">sign in</a>
<a id="logout" href="/auth/openid/logout?r=/app">sign out</a>
<script>
fetch("/auth/openid/state", {credentials: "same-origin"})
  .then(r => r.json())
  .then(s => {
    document.getElementById("state").textContent = s.identity;
    if (!s.accessToken) { document.getElementById("backend").textContent = "no token"; return; }
    return fetch("/api/whoami", {headers: {Authorization: "Bearer " + s.accessToken}})
      .then(r => r.text())
      .then(t => { document.getElementById("backend").textContent = t; });
  })
  .catch(e => { document.getElementById("state").textContent = "error: " + e; });
</script>
</body></html>`

// testApp serves the app page and a backend that checks the bearer token
// with check, which returns the email the token belongs to.
func testApp(s *openid.Server, check func(token string) (string, bool)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", s.StatusPage())
	mux.HandleFunc("GET /app", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, appPage)
	})
	mux.HandleFunc("GET /api/whoami", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		email, ok := check(tok)
		if !ok {
			http.Error(w, "backend: bad token", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "backend: hello %s", email)
	})
	return mux
}

// chromiumPath finds Debian's chromium, or skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("a Chromium run takes seconds; skipped with -short")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH (Debian package chromium)")
	return ""
}

// newChromium starts a headless Chromium with a fresh profile and returns
// a browser context for it.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 700),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// artifactDir is where screenshots go: testdata/artifacts (git-ignored),
// or $CREDBROKER_TEST_ARTIFACTS when set.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CREDBROKER_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitText waits until the element sel has exactly the text want. A poll
// does not survive a navigation (a click on a link, a redirect), so one
// cut short that way starts again on the new page.
func waitText(ctx context.Context, sel, want string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](
			fmt.Sprintf(`(document.querySelector(%q) || {}).textContent === %q`, sel, want),
			chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		// Give the new page a moment rather than spin on a dead one.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func navigate(ctx context.Context, url string) error {
	return chromedp.Do(ctx, chromedp.Navigate(url))
}

func click(ctx context.Context, sel string) error {
	return chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel)))
}

// runAppFlow drives the app in Chromium: anonymous, sign in, identity and
// a backend call with the token, the status page, sign out.
func runAppFlow(t *testing.T, base, identity, email, shot string) {
	t.Helper()
	ctx := newChromium(t)
	var png []byte
	steps := []struct {
		name string
		run  func() error
	}{
		{"open the app", func() error { return navigate(ctx, base+"/app") }},
		{"anonymous", func() error { return waitText(ctx, "#state", openid.Anonymous) }},
		{"no token", func() error { return waitText(ctx, "#backend", "no token") }},
		{"sign in", func() error { return click(ctx, "#login") }},
		{"signed in", func() error { return waitText(ctx, "#state", identity) }},
		{"backend call with the token", func() error { return waitText(ctx, "#backend", "backend: hello "+email) }},
		{"status page", func() error { return navigate(ctx, base+"/") }},
		{"status page identity", func() error { return waitText(ctx, "#identity", identity) }},
		{"screenshot", func() (err error) { png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); return err }},
		{"back to the app", func() error { return navigate(ctx, base+"/app") }},
		{"still signed in", func() error { return waitText(ctx, "#state", identity) }},
		{"sign out", func() error { return click(ctx, "#logout") }},
		{"anonymous again", func() error { return waitText(ctx, "#state", openid.Anonymous) }},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			t.Fatalf("%s: %v; page says %q", st.name, err, text)
		}
	}
	path := filepath.Join(artifactDir(t), shot)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the status page: %s", path)
}

func TestChromiumLocalMode(t *testing.T) {
	chromiumPath(t)
	b := broker.New(broker.Options{Logger: quietLogger()})
	t.Cleanup(b.Close)
	if err := b.AddAccount("default", &devSource{now: time.Now, email: "dev@example.com"}); err != nil {
		t.Fatal(err)
	}
	s := &openid.Server{Tokens: b, Logger: quietLogger()}
	s.Home = testApp(s, func(tok string) (string, bool) {
		want, err := b.AccessToken(context.Background(), b.Default(), openid.DefaultLocalScopes, 0)
		return "dev@example.com", err == nil && tok == want.Value
	})
	_, info := start(t, s)
	runAppFlow(t, info.URL, "user:dev@example.com", "dev@example.com", "status-local.png")
}

func TestChromiumProductionMode(t *testing.T) {
	chromiumPath(t)
	p := fakeoidc.New(t)
	port := freePort(t)
	s := &openid.Server{
		OIDC: &openid.OIDC{
			Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
			RedirectURL: fmt.Sprintf("http://127.0.0.1:%d%s", port, openid.PathCallback),
			HTTPClient:  p.Client(),
		},
		Keys:   mustKeys(t, openid.GenerateKey("k1")),
		Port:   port,
		Logger: quietLogger(),
	}
	s.Home = testApp(s, func(tok string) (string, bool) {
		u, ok := p.AccessTokenUser(tok)
		return u.Email, ok
	})
	_, info := start(t, s)
	runAppFlow(t, info.URL, "user:user@example.com", "user@example.com", "status-production.png")
	if n := p.LiveRefreshTokens(); n != 0 {
		t.Errorf("%d refresh tokens live at the provider after signing out", n)
	}
}
