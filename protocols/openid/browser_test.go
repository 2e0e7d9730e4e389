package openid_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/internal/chromiumtest"
	"credbroker/internal/fakeoidc"
	"credbroker/protocols/openid"
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

// runAppFlow drives the app in Chromium: anonymous, sign in, identity and
// a backend call with the token, the status page, sign out.
func runAppFlow(t *testing.T, base, identity, email, shot string) {
	t.Helper()
	ctx := chromiumtest.New(t, 1000, 700)
	var png []byte
	steps := []struct {
		name string
		run  func() error
	}{
		{"open the app", func() error { return chromiumtest.Navigate(ctx, base+"/app") }},
		{"anonymous", func() error { return chromiumtest.WaitText(ctx, "#state", openid.Anonymous) }},
		{"no token", func() error { return chromiumtest.WaitText(ctx, "#backend", "no token") }},
		{"sign in", func() error { return chromiumtest.Click(ctx, "#login") }},
		{"signed in", func() error { return chromiumtest.WaitText(ctx, "#state", identity) }},
		{"backend call with the token", func() error { return chromiumtest.WaitText(ctx, "#backend", "backend: hello "+email) }},
		{"status page", func() error { return chromiumtest.Navigate(ctx, base+"/") }},
		{"status page identity", func() error { return chromiumtest.WaitText(ctx, "#identity", identity) }},
		{"screenshot", func() (err error) { png, err = chromiumtest.Screenshot(ctx); return err }},
		{"back to the app", func() error { return chromiumtest.Navigate(ctx, base+"/app") }},
		{"still signed in", func() error { return chromiumtest.WaitText(ctx, "#state", identity) }},
		{"sign out", func() error { return chromiumtest.Click(ctx, "#logout") }},
		{"anonymous again", func() error { return chromiumtest.WaitText(ctx, "#state", openid.Anonymous) }},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			t.Fatalf("%s: %v; page says %q", st.name, err, chromiumtest.PageText(ctx))
		}
	}
	chromiumtest.SaveArtifact(t, shot, png)
}

func TestChromiumLocalMode(t *testing.T) {
	chromiumtest.Path(t)
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
	chromiumtest.Path(t)
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
