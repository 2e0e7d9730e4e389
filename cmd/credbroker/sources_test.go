package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/internal/fakegoogle"
	"credbroker/protocols/gcemeta"
	"credbroker/sources/metadata"
	"credbroker/tokencache"
)

const (
	testClientID     = "credbroker-test.apps.example"
	testClientSecret = "test-secret"
	testUser         = "alice@example.com"
)

// oauthEnv points the broker's login at the fake Google.
func oauthEnv(fg *fakegoogle.Server) []string {
	return []string{
		"CREDBROKER_OAUTH_CLIENT_ID=" + testClientID, "CREDBROKER_OAUTH_CLIENT_SECRET=" + testClientSecret,
		"CREDBROKER_OAUTH_AUTH_URL=" + fg.AuthURL(), "CREDBROKER_OAUTH_TOKEN_URL=" + fg.TokenURL(),
		"CREDBROKER_OAUTH_REVOKE_URL=" + fg.RevokeURL(),
	}
}

var authURLPattern = regexp.MustCompile(`http://127\.0\.0\.1:\d+/o/oauth2/v2/auth\?\S+`)

// login runs `credbroker login --no-browser` and approves with an HTTP
// client that follows the redirect to the broker's loopback port, as a
// browser on the same machine would.
func login(t *testing.T, tmp string, fg *fakegoogle.Server, extra ...string) {
	t.Helper()
	cmd := brokerCmd(t, tmp, oauthEnv(fg), append([]string{"login", "--no-browser"}, extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	stdin, _ := cmd.StdinPipe() // left open: the redirect, not a paste, completes the login
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var u string
	for sc.Scan() {
		if u = authURLPattern.FindString(sc.Text()); u != "" {
			break
		}
	}
	go io.Copy(io.Discard, stderr)
	if u == "" {
		cmd.Wait()
		t.Fatal("login printed no authorization URL")
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the loopback redirect answered %s", resp.Status)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	if !strings.Contains(stdout.String(), "Logged in as "+testUser) {
		t.Errorf("login said %q", stdout.String())
	}
}

func userFake(t *testing.T) *fakegoogle.Server {
	t.Helper()
	fg := fakegoogle.New(t)
	fg.AddClient(testClientID, testClientSecret)
	fg.SetUser(testUser, false)
	return fg
}

// TestLoginThenGcloud is the user-login promise: `credbroker login`, then
// gcloud under `credbroker run` prints a token of the user's login.
func TestLoginThenGcloud(t *testing.T) {
	needTool(t, "gcloud")
	fg := userFake(t)
	tmp := t.TempDir()
	login(t, tmp, fg)

	// A later run needs no OAuth flags: the login remembers its client.
	r := runBroker(t, tmp, clientEnv(t), "run", "--", "gcloud", "auth", "print-access-token")
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	tok := strings.TrimSpace(r.stdout)
	if m := mintedFor(t, fg, tok); m.Email != testUser || m.ClientID != testClientID {
		t.Errorf("gcloud's token was minted as %+v", m)
	}
	assertNoSessionFiles(t, tmp)
}

func TestLoginInfoTokenLogout(t *testing.T) {
	fg := userFake(t)
	tmp := t.TempDir()
	login(t, tmp, fg)

	r := runBroker(t, tmp, nil, "info", "--json")
	var info infoOutput
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("info: %v\n%s", err, r.stderr)
	}
	if info.Source != "user-login" || info.SelectedBy != "stored login" || info.Email != testUser {
		t.Errorf("info %+v", info)
	}

	r = runBroker(t, tmp, nil, "token")
	if r.code != 0 {
		t.Fatalf("token: %s", r.stderr)
	}
	if m := mintedFor(t, fg, strings.TrimSpace(r.stdout)); m.Email != testUser {
		t.Errorf("minted %+v", m)
	}
	// Scopes beyond the login: a clear fatal error.
	r = runBroker(t, tmp, nil, "token", "--scopes", "gerritcodereview")
	if r.code != exitError || !strings.Contains(r.stderr, "does not cover gerritcodereview") {
		t.Errorf("token for other scopes: exit %d: %s", r.code, r.stderr)
	}
	// ... unless allowed.
	if r := runBroker(t, tmp, nil, "token", "--scopes", "gerritcodereview", "--user-allow-any-scope"); r.code != 0 {
		t.Errorf("allowed other scopes: %s", r.stderr)
	}
	// An ID token has the OAuth client as audience.
	r = runBroker(t, tmp, nil, "token", "--audience", testClientID)
	if r.code != 0 || jwtClaims(t, strings.TrimSpace(r.stdout))["email"] != testUser {
		t.Errorf("ID token: %s", r.stderr)
	}

	r = runBroker(t, tmp, oauthEnv(fg), "logout")
	if r.code != 0 || !strings.Contains(r.stdout, "revoked") {
		t.Fatalf("logout: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = runBroker(t, tmp, nil, "token")
	if r.code != exitError || !strings.Contains(r.stderr, "credbroker login") {
		t.Errorf("token after logout: exit %d: %s", r.code, r.stderr)
	}
}

// TestRunUnderRun chains credbroker under credbroker: the inner one finds
// the outer's LUCI_CONTEXT and serves its child tokens minted for the
// outer's key.
func TestRunUnderRun(t *testing.T) {
	t.Parallel() // its own broker process, fake Google and directories
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	tmp := t.TempDir()
	// The outer broker's children inherit the test role, so os.Args[0]
	// is credbroker again inside.
	r := runBroker(t, tmp, nil, "run", "--service-account-json", key, "--",
		os.Args[0], "run", "--", "env", roleVar+"=luci-client", os.Args[0])
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got struct{ Token, Email string }
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%q: %v", r.stdout, err)
	}
	if m := mintedFor(t, fg, got.Token); m.Email != testEmail || m.Grant != "jwt-bearer" {
		t.Errorf("minted %+v", m)
	}
	if got.Email != testEmail {
		t.Errorf("inner local_auth email %q", got.Email)
	}

	// And info inside explains the choice.
	r = runBroker(t, tmp, nil, "run", "--service-account-json", key, "--", os.Args[0], "info")
	for _, want := range []string{"luci-context", "selected by:  LUCI_CONTEXT", testEmail} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inner info lacks %q:\n%s", want, r.stdout)
		}
	}
	assertNoSessionFiles(t, tmp)
}

// TestRunUnderMetadataUpstream uses another broker's metadata server as
// the upstream, explicitly and through --gce-allow-as-default.
func TestRunUnderMetadataUpstream(t *testing.T) {
	t.Parallel() // its own broker process, fake Google and directories
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	for _, inner := range [][]string{{"--source", "gce"}, {"--gce-allow-as-default"}} {
		t.Run(inner[0], func(t *testing.T) {
			tmp := t.TempDir()
			args := append([]string{"run", "--service-account-json", key, "--no-local-auth", "--", os.Args[0], "run"}, inner...)
			args = append(args, "--", "env", roleVar+"=luci-client", os.Args[0])
			r := runBroker(t, tmp, nil, args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			var got struct{ Token, Email string }
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("%q: %v", r.stdout, err)
			}
			if m := mintedFor(t, fg, got.Token); m.Email != testEmail {
				t.Errorf("minted %+v", m)
			}
		})
	}
}

func TestImpersonationToken(t *testing.T) {
	t.Parallel() // its own broker process, fake Google and directories
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	const target = "target@proj.iam.gserviceaccount.com"
	fg.AllowImpersonation(testEmail, target)
	env := []string{"CREDBROKER_IAM_ENDPOINT=" + fg.IAMURL()}
	r := runBroker(t, t.TempDir(), env, "token", "--service-account-json", key, "--act-as-service-account", target)
	if r.code != 0 {
		t.Fatalf("token: %s", r.stderr)
	}
	if m := mintedFor(t, fg, strings.TrimSpace(r.stdout)); m.Email != target || m.Actor != testEmail {
		t.Errorf("minted %+v", m)
	}
	r = runBroker(t, t.TempDir(), env, "token", "--service-account-json", key, "--act-as-service-account", target, "--audience", "https://aud")
	if r.code != 0 || jwtClaims(t, strings.TrimSpace(r.stdout))["email"] != target {
		t.Errorf("ID token: %s", r.stderr)
	}
	r = runBroker(t, t.TempDir(), env, "token", "--service-account-json", key, "--act-as-service-account", "nobody@proj.iam.gserviceaccount.com")
	if r.code != exitError || !strings.Contains(r.stderr, "PERMISSION_DENIED") {
		t.Errorf("not allowed: exit %d %s", r.code, r.stderr)
	}
	r = runBroker(t, t.TempDir(), env, "info", "--service-account-json", key, "--act-as-service-account", target)
	if !strings.Contains(r.stdout, "impersonation") || !strings.Contains(r.stdout, target) {
		t.Errorf("info: %s", r.stdout)
	}
}

// TestSeveralAccounts serves two keys under two local_auth ids.
func TestSeveralAccounts(t *testing.T) {
	fg := fakegoogle.New(t)
	const other = "system@proj.iam.gserviceaccount.com"
	k1, k2 := fg.KeyFile(t, testEmail), fg.KeyFile(t, other)
	tmp := t.TempDir()
	for _, tt := range []struct{ account, email string }{{"", testEmail}, {"system", other}} {
		r := runBroker(t, tmp, []string{"CREDBROKER_TEST_ACCOUNT=" + tt.account},
			"run", "--account", "task=key:"+k1, "--account", "system=key:"+k2, "--",
			"env", roleVar+"=luci-client", os.Args[0])
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var got struct{ Token, Email string }
		json.Unmarshal([]byte(r.stdout), &got)
		if m := mintedFor(t, fg, got.Token); m.Email != tt.email || got.Email != tt.email {
			t.Errorf("account %q: minted %+v, email %q", tt.account, m, got.Email)
		}
	}
	// The metadata server serves the default account, and the other by
	// its email.
	for _, tt := range []struct{ account, email string }{{"default", testEmail}, {other, other}} {
		r := runBroker(t, tmp, []string{"CREDBROKER_TEST_ACCOUNT=" + tt.account},
			"run", "--account", "task=key:"+k1, "--account", "system=key:"+k2, "--",
			"env", roleVar+"=meta-client", os.Args[0])
		var got struct{ Token, Email string }
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
			t.Fatalf("metadata client: exit %d %q %s", r.code, r.stdout, r.stderr)
		}
		if m := mintedFor(t, fg, got.Token); m.Email != tt.email || got.Email != tt.email {
			t.Errorf("metadata account %q: minted %+v, email %q", tt.account, m, got.Email)
		}
	}
	r := runBroker(t, tmp, nil, "info", "--json", "--account", "task=key:"+k1, "--account", "system=key:"+k2)
	var info infoOutput
	json.Unmarshal([]byte(r.stdout), &info)
	if len(info.AccountSources) != 2 || !strings.Contains(info.AccountSources["system"], k2) || info.Email != testEmail {
		t.Errorf("info %+v", info)
	}
}

// mapFlags is a flagReader for the selection table.
type mapFlags map[string]string

func (m mapFlags) Bool(n string) bool     { return m[n] == "true" }
func (m mapFlags) String(n string) string { return m[n] }
func (m mapFlags) IsSet(n string) bool    { _, ok := m[n]; return ok }

// metaSource backs the metadata emulator of the selection table.
type metaSource struct{}

func (metaSource) AccessToken(context.Context, []string, time.Duration) (broker.Token, error) {
	return broker.Token{Value: "t", Expiry: time.Now().Add(time.Hour)}, nil
}
func (metaSource) IDToken(context.Context, string, time.Duration) (broker.Token, error) {
	return broker.Token{}, broker.Fatalf("no")
}
func (metaSource) Email() string { return "vm@proj.iam.gserviceaccount.com" }

func TestAutoSelection(t *testing.T) {
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	authorizedUser := write("au.json", `{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}`)
	external := write("ext.json", `{"type":"external_account"}`)
	luci := write("luci.json", `{"local_auth":{"rpc_port":1234,"secret":"Zm9v","accounts":[{"id":"task","email":"task@x"}],"default_account_id":"task"}}`)
	luciNoDefault := write("luci2.json", `{"local_auth":{"rpc_port":1234,"secret":"Zm9v","accounts":[{"id":"task"}]}}`)
	gcloudADC := filepath.Join(dir, "gcloud")
	os.MkdirAll(gcloudADC, 0o700)
	os.WriteFile(filepath.Join(gcloudADC, "application_default_credentials.json"), []byte(`{"type":"authorized_user","client_id":"c","refresh_token":"r"}`), 0o600)
	loginHome := filepath.Join(dir, "xdg")
	cache, err := tokencache.Open(filepath.Join(loginHome, "credbroker"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cache.Put("user/c", tokencache.Entry{RefreshToken: "r", Email: testUser, Meta: map[string]string{"client_id": "c"}})

	// A metadata emulator for the GCE cases.
	b := broker.New(broker.Options{})
	defer b.Close()
	b.AddAccount("vm", metaSource{})
	meta := &gcemeta.Server{Tokens: b, Accounts: []gcemeta.Account{{ID: "vm", Email: metaSource{}.Email()}}, DefaultAccount: "vm"}
	info, err := meta.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()

	empty := filepath.Join(dir, "empty")
	tests := []struct {
		name      string
		flags     mapFlags
		env       map[string]string
		onGCE     bool
		wantKind  string
		wantBy    string
		wantErr   []string
		wantUsage bool
	}{
		{name: "nothing", env: map[string]string{},
			wantErr: []string{"no credential to serve", "LUCI_CONTEXT: LUCI_CONTEXT is not set", "application default credentials: GOOGLE_APPLICATION_CREDENTIALS unset",
				"stored login: login required: none in", "metadata server: only with --gce-allow-as-default", "credbroker login", "--service-account-json"}},
		{name: "explicit flag wins over everything", flags: mapFlags{"dev": "true"},
			env: map[string]string{"LUCI_CONTEXT": luci, "GOOGLE_APPLICATION_CREDENTIALS": key}, wantKind: "dev", wantBy: "--dev"},
		{name: "--source key", flags: mapFlags{"source": "key:" + key}, env: map[string]string{"LUCI_CONTEXT": luci}, wantKind: "service-account", wantBy: "--source key:" + key},
		{name: "LUCI_CONTEXT before ADC", env: map[string]string{"LUCI_CONTEXT": luci, "GOOGLE_APPLICATION_CREDENTIALS": key}, wantKind: "luci-context", wantBy: "LUCI_CONTEXT"},
		{name: "LUCI_CONTEXT without default account is passed over", env: map[string]string{"LUCI_CONTEXT": luciNoDefault, "GOOGLE_APPLICATION_CREDENTIALS": key},
			wantKind: "service-account", wantBy: "GOOGLE_APPLICATION_CREDENTIALS"},
		{name: "unknown upstream account", flags: mapFlags{"upstream-account": "nope"}, env: map[string]string{"LUCI_CONTEXT": luci},
			wantErr: []string{"not usable", "nope"}},
		{name: "ADC key", env: map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": key}, wantKind: "service-account", wantBy: "GOOGLE_APPLICATION_CREDENTIALS"},
		{name: "ADC authorized user", env: map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": authorizedUser}, wantKind: "authorized-user"},
		{name: "ADC of another type", env: map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": external}, wantErr: []string{"is not usable", "external_account"}},
		{name: "gcloud's well-known ADC file", env: map[string]string{"CLOUDSDK_CONFIG": gcloudADC, "XDG_CONFIG_HOME": loginHome},
			wantKind: "authorized-user", wantBy: "gcloud's application default credentials"},
		{name: "stored login", env: map[string]string{"XDG_CONFIG_HOME": loginHome}, wantKind: "user-login", wantBy: "stored login"},
		{name: "stored login before metadata", flags: mapFlags{"gce-allow-as-default": "true"}, onGCE: true,
			env: map[string]string{"XDG_CONFIG_HOME": loginHome, "GCE_METADATA_HOST": info.Addr}, wantKind: "user-login"},
		{name: "metadata when allowed", flags: mapFlags{"gce-allow-as-default": "true"}, onGCE: true,
			env: map[string]string{"GCE_METADATA_HOST": info.Addr}, wantKind: "gce-metadata", wantBy: "--gce-allow-as-default"},
		{name: "luci-auth's :gce", flags: mapFlags{"service-account-json": ":gce"},
			env: map[string]string{"GCE_METADATA_HOST": info.Addr}, wantKind: "gce-metadata", wantBy: "--service-account-json :gce"},
		{name: "metadata not without the flag", onGCE: true, env: map[string]string{"GCE_METADATA_HOST": info.Addr},
			wantErr: []string{"metadata server: only with --gce-allow-as-default"}},
		{name: "metadata allowed but not on GCE", flags: mapFlags{"gce-allow-as-default": "true"}, env: map[string]string{},
			wantErr: []string{"metadata server: not on GCE"}},
		{name: "optional login mode", flags: mapFlags{"login-mode": "optional"}, env: map[string]string{}, wantKind: "none"},
		{name: "interactive without a terminal", flags: mapFlags{"login-mode": "interactive"}, env: map[string]string{},
			wantErr: []string{"interactive login: stdin or stderr is not a terminal"}},
		{name: "two explicit flags", flags: mapFlags{"dev": "true", "source": "login"}, env: map[string]string{}, wantUsage: true},
		{name: "bad spec", flags: mapFlags{"source": "bogus"}, env: map[string]string{}, wantUsage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.flags == nil {
				tt.flags = mapFlags{}
			}
			if _, ok := tt.env["HOME"]; !ok {
				tt.env["HOME"] = empty
			}
			if _, ok := tt.env["XDG_CONFIG_HOME"]; !ok {
				tt.env["XDG_CONFIG_HOME"] = filepath.Join(empty, "config")
			}
			var environ []string
			for k, v := range tt.env {
				environ = append(environ, k+"="+v)
			}
			s := &selector{flags: tt.flags, getenv: func(k string) string { return tt.env[k] }, environ: environ,
				log: slog.New(slog.NewTextHandler(io.Discard, nil)), onGCE: func() bool { return tt.onGCE }, isTTY: func() bool { return false }}
			cred, err := s.choose()
			if tt.wantUsage {
				var ec interface{ ExitCode() int }
				if err == nil || !asExit(err, &ec) || ec.ExitCode() != exitUsage {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			}
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("chose %+v, want an error", cred)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cred.kind != tt.wantKind || tt.wantBy != "" && cred.selection != tt.wantBy {
				t.Errorf("chose %s by %q, want %s by %q", cred.kind, cred.selection, tt.wantKind, tt.wantBy)
			}
		})
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("selection created files: %v", entries)
	}
}

func asExit(err error, target *interface{ ExitCode() int }) bool {
	ec, ok := err.(interface{ ExitCode() int })
	if ok {
		*target = ec
	}
	return ok
}

// metaClientMain is a metadata-server child: it asks the session's
// metadata server for a token of CREDBROKER_TEST_ACCOUNT and prints it.
func metaClientMain() int {
	ctx := context.Background()
	src, err := metadata.New(ctx, metadata.Options{Account: os.Getenv("CREDBROKER_TEST_ACCOUNT")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 10
	}
	tok, err := src.AccessToken(ctx, nil, time.Minute)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 11
	}
	json.NewEncoder(os.Stdout).Encode(map[string]string{"token": tok.Value, "email": src.Email()})
	return 0
}

// TestOptionalLoginMode runs the command without a credential when
// nothing is found, and says so.
func TestOptionalLoginMode(t *testing.T) {
	r := runBroker(t, t.TempDir(), nil, "run", "--login-mode", "optional", "--", "sh", "-c", `echo "ctx=$LUCI_CONTEXT"; exit 3`)
	if r.code != 3 || strings.TrimSpace(r.stdout) != "ctx=" || !strings.Contains(r.stderr, "running without one") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// browserMain stands in for a desktop browser: it follows the URL it is
// given, redirects included, and reports failure through its status.
func browserMain() int {
	resp, err := http.Get(os.Args[len(os.Args)-1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}

// TestLoginOpensBrowser logs in through $BROWSER, the path a desktop
// user takes.
func TestLoginOpensBrowser(t *testing.T) {
	fg := userFake(t)
	tmp := t.TempDir()
	script := filepath.Join(t.TempDir(), "browser.sh")
	body := fmt.Sprintf("#!/bin/sh\nexec env %s=browser %q \"$1\"\n", roleVar, os.Args[0])
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	r := runBroker(t, tmp, append(oauthEnv(fg), "BROWSER="+script), "login")
	if r.code != 0 || !strings.Contains(r.stdout, "Logged in as "+testUser) || !strings.Contains(r.stderr, "browser has been opened") {
		t.Fatalf("login: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runBroker(t, tmp, nil, "token"); r.code != 0 || mintedFor(t, fg, strings.TrimSpace(r.stdout)).Email != testUser {
		t.Errorf("token after login: %s", r.stderr)
	}
}
