package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"credbroker/daemon"
	"credbroker/internal/fakeoidc"
	"credbroker/protocols/openid"
	"credbroker/protocols/openid/openidtest"

	"github.com/urfave/cli/v2"
)

var serveWebURL = regexp.MustCompile(`(?m)^credbroker web: (local|production) mode on (https?://127\.0\.0\.1:\d+)/$`)

// startServeWeb runs `credbroker serve --dev ARGS` like startDaemon and
// returns it with the web front-end's mode and base URL once both serve.
func startServeWeb(t *testing.T, args ...string) (d *testDaemon, mode, base string) {
	t.Helper()
	root, err := os.MkdirTemp("", "cbw-") // short: the socket path must fit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	run := filepath.Join(root, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	d = &testDaemon{tmp: root, env: []string{
		"XDG_RUNTIME_DIR=" + run,
		"XDG_STATE_HOME=" + filepath.Join(root, "state"),
		"XDG_CONFIG_HOME=" + filepath.Join(root, "config"),
	}}
	d.cmd = brokerCmd(t, d.tmp, d.env, append([]string{"serve", "--dev", "--log-level", "info"}, args...)...)
	logPath := filepath.Join(d.tmp, "serve.log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	d.done = make(chan struct{})
	cmd, done := d.cmd, d.done
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	// The front-end announces itself once the daemon serves.
	deadline := time.Now().Add(30 * time.Second)
	for {
		log, _ := os.ReadFile(logPath)
		if m := serveWebURL.FindSubmatch(log); m != nil {
			return d, string(m[1]), string(m[2])
		}
		select {
		case <-done:
			t.Fatalf("serve exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the web front-end did not come up: %s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sessionToken gets an access token through a daemon session, as a LUCI
// client does.
func sessionToken(t *testing.T, created daemon.Created) string {
	t.Helper()
	var lc []string
	for _, v := range created.Set {
		lc = append(lc, v.Name+"="+v.Value)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(cleanTestEnv(), lc...), roleVar+"=luci-client")
	out, err := cmd.Output()
	var got struct{ Token string }
	if err != nil || json.Unmarshal(out, &got) != nil || got.Token == "" {
		t.Fatalf("token through the session: %s, %v", out, err)
	}
	return got.Token
}

// cacheStats is the daemon's token-core cache counters, from `status`.
func cacheStats(t *testing.T, d *testDaemon) daemon.CacheStats {
	t.Helper()
	var st daemon.Status
	if err := json.Unmarshal([]byte(d.mustCLI(t, "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return st.Cache
}

// TestServeWebLocal: the loopback front-end in local mode serves the
// daemon's own token core (its mints show in the daemon's cache counters),
// sessions keep working beside it, SIGHUP's new token core reaches it, and
// it stops with the daemon.
func TestServeWebLocal(t *testing.T) {
	d, mode, base := startServeWeb(t, "--web", "127.0.0.1:0")
	if mode != "local" {
		t.Fatalf("mode %q", mode)
	}
	br := openidtest.NewBrowser(t)
	if s := br.State(base); s.Identity != openid.Anonymous {
		t.Fatalf("before sign-in: %+v", s)
	}
	before := cacheStats(t, d)
	s := br.SignIn(base)
	if s.Identity != "user:dev@credbroker.local" || s.AccessToken == "" || s.IDToken == "" {
		t.Fatalf("state %+v", s)
	}
	if got := cacheStats(t, d); got.Mints != before.Mints+2 || got.Entries != before.Entries+2 {
		t.Errorf("daemon cache %+v after /state, was %+v: want the access and ID token minted there", got, before)
	}
	if again := br.State(base); again.AccessToken != s.AccessToken || again.IDToken != s.IDToken {
		t.Error("a second /state minted new tokens instead of using the cache")
	}

	var created daemon.Created
	if err := json.Unmarshal([]byte(d.mustCLI(t, "session", "create", "--json", "--no-gsutil")), &created); err != nil {
		t.Fatal(err)
	}
	sessionToken(t, created)
	// The dashboard at / lists the session, never its token.
	if code, page := br.Get(base + "/"); code != 200 || !strings.Contains(page, created.ID) || strings.Contains(page, created.Token) {
		t.Errorf("dashboard: %d, want 200 naming %s and not its token\n%s", code, created.ID, page)
	}

	d.cmd.Process.Signal(syscall.SIGHUP)
	logPath := filepath.Join(d.tmp, "serve.log")
	deadline := time.Now().Add(30 * time.Second)
	for {
		log, _ := os.ReadFile(logPath)
		if strings.Contains(string(log), "credential reloaded") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged: %s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The new token core starts with an empty cache: /state mints there.
	reloaded := cacheStats(t, d)
	after := br.State(base)
	if after.Identity != s.Identity || after.AccessToken == s.AccessToken {
		t.Errorf("after SIGHUP the front-end still serves the old token core: %+v", after)
	}
	if got := cacheStats(t, d); got.Mints != reloaded.Mints+2 {
		t.Errorf("daemon cache %+v after /state, was %+v after SIGHUP", got, reloaded)
	}
	sessionToken(t, created)

	d.stop(t)
	if _, err := http.Get(base + openid.PathState); err == nil {
		t.Error("the web front-end still answers after the daemon stopped")
	}
}

// TestServeWebTLSProduction serves production mode over HTTPS on
// loopback against the fake provider: sign-in works and every cookie is
// Secure with the __Host- prefix.
func TestServeWebTLSProduction(t *testing.T) {
	p := fakeoidc.New(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys")
	if code := realMain([]string{"credbroker", "web", "--new-aead-key-file", keyFile}, &strings.Builder{}, &strings.Builder{}); code != 0 {
		t.Fatalf("--new-aead-key-file exited %d", code)
	}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(p.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cert := openidtest.NewCert(t)
	certFile, certKey := cert.WriteFiles(t, dir)
	port := freeLoopbackPort(t)
	redirect := fmt.Sprintf("https://127.0.0.1:%d%s", port, openid.PathCallback)
	p.AllowRedirect(redirect)

	d, mode, base := startServeWeb(t, "--web", fmt.Sprintf("127.0.0.1:%d", port),
		"--web-tls-cert", certFile, "--web-tls-key", certKey,
		"--issuer", p.URL, "--client-id", p.ClientID, "--client-secret-file", secretFile,
		"--redirect-url", redirect, "--aead-key-file", keyFile, "--web-allow", "User@Example.com")
	if mode != "production" || base != fmt.Sprintf("https://127.0.0.1:%d", port) {
		t.Fatalf("mode %q on %q", mode, base)
	}
	br := openidtest.NewBrowser(t)
	cert.Trust(br)
	var set []*http.Cookie
	br.Client.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		set = append(set, req.Response.Cookies()...)
		return nil
	}
	if s := br.SignIn(base); s.Identity != "user:user@example.com" || s.AccessToken == "" {
		t.Fatalf("state %+v", s)
	}
	var session bool
	for _, ck := range set {
		if !ck.Secure || !strings.HasPrefix(ck.Name, "__Host-") || !ck.HttpOnly {
			t.Errorf("cookie %s set without Secure, HttpOnly or the __Host- prefix", ck.Name)
		}
		session = session || (ck.Name == "__Host-credbroker_session" && ck.MaxAge > 0)
	}
	if !session {
		t.Errorf("no session cookie set among %v", set)
	}
	// The dashboard admits the --web-allow address once signed in, lists
	// the daemon's sessions and revokes one with its form's CSRF token;
	// a browser that has not signed in is refused.
	var created daemon.Created
	if err := json.Unmarshal([]byte(d.mustCLI(t, "session", "create", "--json", "--no-gsutil")), &created); err != nil {
		t.Fatal(err)
	}
	code, page := br.Get(base + "/")
	if code != 200 || !strings.Contains(page, created.ID) || !strings.Contains(page, "user@example.com") {
		t.Fatalf("dashboard for the allowed user: %d\n%s", code, page)
	}
	anon := openidtest.NewBrowser(t)
	cert.Trust(anon)
	if code, _ := anon.Get(base + "/"); code != http.StatusForbidden {
		t.Errorf("dashboard for a browser not signed in: %d, want 403", code)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		t.Fatalf("no CSRF field on the dashboard:\n%s", page)
	}
	revoke := base + "/sessions/" + created.ID + "/revoke"
	if resp, err := anon.Client.PostForm(revoke, url.Values{"csrf": {csrf[1]}}); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("revoke by a browser not signed in: %v, %v; want 403", resp, err)
	}
	if resp, err := br.Client.PostForm(revoke, url.Values{"csrf": {csrf[1]}}); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("revoke from the dashboard: %v, %v; want 303 back to a 200 page", resp, err)
	}
	if r := d.cli(t, "session", "show", created.ID); r.code == 0 {
		t.Errorf("session still shown after the dashboard revoked it:\n%s", r.stdout)
	}

	// The Host check holds over TLS too.
	req, _ := http.NewRequest(http.MethodGet, base+openid.PathState, nil)
	req.Host = fmt.Sprintf("evil.example:%d", port)
	if resp, err := br.Client.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a rebound Host: %v, %v; want 403", resp, err)
	} else {
		resp.Body.Close()
	}
	// Plain HTTP on the port gets nothing served.
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, openid.PathState)); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP served")
		}
	}
	d.stop(t)
}

func TestServeWebUsageErrors(t *testing.T) {
	dir := t.TempDir()
	cert := openidtest.NewCert(t)
	certFile, keyFile := cert.WriteFiles(t, dir)
	tlsFlags := []string{"--web-tls-cert", certFile, "--web-tls-key", keyFile}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"wildcard, nothing", []string{"--web", "0.0.0.0:8443"},
			"--web 0.0.0.0:8443 is not a loopback address: serving it needs --web-tls-cert, --web-tls-key and --client-id (production mode)"},
		{"all interfaces, TLS, local mode", append([]string{"--web", ":8443"}, tlsFlags...),
			"--web :8443 is not a loopback address: serving it needs --client-id (production mode)"},
		{"LAN address, production without TLS", []string{"--web", "192.168.1.10:8443", "--client-id", "c"},
			"--web 192.168.1.10:8443 is not a loopback address: serving it needs --web-tls-cert and --web-tls-key"},
		{"certificate without key", []string{"--web", "127.0.0.1:0", "--web-tls-cert", certFile},
			"needs both --web-tls-cert and --web-tls-key; --web-tls-key is missing"},
		{"TLS with an http redirect", append([]string{"--web", "127.0.0.1:0", "--client-id", "c", "--redirect-url", "http://127.0.0.1:1" + openid.PathCallback}, tlsFlags...),
			"--redirect-url must be https:// when --web serves TLS"},
		{"bad address", []string{"--web", "8443"}, `--web "8443": want HOST:PORT`},
		{"unreadable certificate", []string{"--web", "127.0.0.1:0", "--web-tls-cert", keyFile, "--web-tls-key", keyFile}, "--web-tls-cert, --web-tls-key:"},
		{"allow without web", []string{"--web-allow", "a@example.com"}, "--web-allow needs --web ADDR"},
		{"client id without web", []string{"--client-id", "c"}, "--client-id needs --web ADDR"},
		{"production flag in local mode", []string{"--web", "127.0.0.1:0", "--redirect-url", "http://x"}, "need --client-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			code := realMain(append([]string{"credbroker", "serve", "--dev"}, tt.args...), &strings.Builder{}, &stderr)
			if code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), exitUsage, tt.want)
			}
		})
	}
}

func TestDashboardAuthorizer(t *testing.T) {
	allowed := []string{"Owner@Example.com", " ops@example.com ", ""}
	signedInAs := func(email string, ok bool) func(*http.Request) (string, bool) {
		return func(*http.Request) (string, bool) { return email, ok }
	}
	tests := []struct {
		name      string
		signedIn  func(*http.Request) (string, bool)
		local     bool
		wantEmail string
		wantOK    bool
	}{
		{"local: the owner", signedInAs("dev@example.com", true), true, "dev@example.com", true},
		{"local: the owner marker", signedInAs(openid.LocalOwner, true), true, openid.LocalOwner, true},
		{"production: allowed", signedInAs("owner@example.com", true), false, "owner@example.com", true},
		{"production: allowed, other case", signedInAs("OWNER@EXAMPLE.COM", true), false, "OWNER@EXAMPLE.COM", true},
		{"production: allowed, listed with spaces", signedInAs("ops@example.com", true), false, "ops@example.com", true},
		{"production: signed in, not allowed", signedInAs("eve@example.com", true), false, "", false},
		{"production: not signed in", signedInAs("", false), false, "", false},
		{"production: not signed in, empty entry listed", signedInAs("", false), false, "", false},
		{"production: a suffix of an allowed email", signedInAs("er@example.com", true), false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			email, ok := authorizeBy(tt.signedIn, allowed, tt.local)(httptest.NewRequest(http.MethodGet, "/", nil))
			if email != tt.wantEmail || ok != tt.wantOK {
				t.Errorf("got %q, %v; want %q, %v", email, ok, tt.wantEmail, tt.wantOK)
			}
		})
	}
	t.Run("production: nobody allowed", func(t *testing.T) {
		if _, ok := authorizeBy(signedInAs("owner@example.com", true), nil, false)(httptest.NewRequest(http.MethodGet, "/", nil)); ok {
			t.Error("an empty allow list admitted someone")
		}
	})
}

// TestConfigureWebHosts: production mode accepts the Host of the redirect
// URL, the name browsers reach the server by, besides --host.
func TestConfigureWebHosts(t *testing.T) {
	dir := t.TempDir()
	secret, keys := filepath.Join(dir, "secret"), filepath.Join(dir, "keys")
	os.WriteFile(secret, []byte("s\n"), 0o600)
	if code := realMain([]string{"credbroker", "web", "--new-aead-key-file", keys}, &strings.Builder{}, &strings.Builder{}); code != 0 {
		t.Fatalf("--new-aead-key-file exited %d", code)
	}
	tests := []struct {
		redirect string
		want     []string
	}{
		{"https://broker.example.com:8443" + openid.PathCallback, []string{"proxy.example", "broker.example.com:8443"}},
		// No port: browsers send none for 443, and the name alone admits any.
		{"https://broker.example.com" + openid.PathCallback, []string{"proxy.example", "broker.example.com"}},
		{"http://127.0.0.1:8800" + openid.PathCallback, []string{"proxy.example", "127.0.0.1:8800"}},
	}
	for _, tt := range tests {
		t.Run(tt.redirect, func(t *testing.T) {
			var got []string
			app := &cli.App{
				Flags: webFlags("", ""),
				Action: func(c *cli.Context) error {
					srv := &openid.Server{}
					err := configureWeb(c, srv, slog.New(slog.DiscardHandler), nil)
					got = srv.Hosts
					return err
				},
			}
			err := app.Run([]string{"credbroker", "--host", "proxy.example", "--client-id", "c", "--client-secret-file", secret,
				"--redirect-url", tt.redirect, "--aead-key-file", keys})
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("Hosts = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
