package main

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"credbroker/internal/fakegoogle"
	"credbroker/shims/firebase"
)

// toolEnv isolates git and docker from this machine's configuration: a
// fresh HOME and no system gitconfig (cleanTestEnv drops the machine's
// GIT_CONFIG_*, GIT_SSL_* and DOCKER_CONFIG), and no proxy for loopback.
func toolEnv(t *testing.T) []string {
	t.Helper()
	return append(clientEnv(t), "GIT_CONFIG_NOSYSTEM=1", "NO_PROXY=*", "no_proxy=*")
}

// minted returns the fake's record of tok, or false.
func minted(fg *fakegoogle.Server, tok string) (fakegoogle.Mint, bool) {
	for _, m := range fg.Mints() {
		if m.Token == tok {
			return m, true
		}
	}
	return fakegoogle.Mint{}, false
}

func TestGitCredentialFillUnderRun(t *testing.T) {
	needTool(t, "git")
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	script := `printf 'protocol=https\nhost=chromium.googlesource.com\n\n' | git credential fill; echo "rc=$?"; ` +
		`printf 'protocol=https\nhost=github.com\n\n' | git credential fill; echo "rc=$?"`
	tmp := t.TempDir()
	r := runBroker(t, tmp, toolEnv(t), "run", "--service-account-json", key, "--", "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 6 || lines[0] != "protocol=https" || lines[1] != "host=chromium.googlesource.com" ||
		lines[2] != "username="+testEmail || !strings.HasPrefix(lines[3], "password=") || lines[4] != "rc=0" || lines[5] != "rc=128" {
		t.Fatalf("git printed %q\nstderr: %s", lines, r.stderr)
	}
	m, ok := minted(fg, strings.TrimPrefix(lines[3], "password="))
	if !ok || m.Email != testEmail || !slices.Contains(m.Scopes, "https://www.googleapis.com/auth/gerritcodereview") {
		t.Errorf("password not minted for the key with the Gerrit scope: %+v %v", m, ok)
	}
	if !strings.Contains(r.stderr, "could not read Username for 'https://github.com'") {
		t.Errorf("github.com: git's stderr %q", r.stderr)
	}
	assertNoSessionFiles(t, tmp)
}

// gitServer is a loopback HTTPS git server (git http-backend behind
// net/http/cgi) that, like Gerrit, serves repositories only under /a/
// and only to a password the fake Google minted for the key.
type gitServer struct {
	*httptest.Server
	mu       sync.Mutex
	accepted []string
	refused  int
}

func newGitServer(t *testing.T, fg *fakegoogle.Server, root string) *gitServer {
	t.Helper()
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	backend := filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Skipf("git http-backend is not installed: %v", err)
	}
	gs := &gitServer{}
	cgiHandler := &cgi.Handler{Path: backend, Root: "/a", Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	gs.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/a/") {
			http.NotFound(w, r) // anonymous path: Gerrit hides private repositories
			return
		}
		_, pass, ok := r.BasicAuth()
		m, known := minted(fg, pass)
		if !ok || !known || m.Email != testEmail || subtle.ConstantTimeCompare([]byte(m.Token), []byte(pass)) != 1 {
			gs.mu.Lock()
			gs.refused++
			gs.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "auth required", http.StatusUnauthorized)
			return
		}
		gs.mu.Lock()
		gs.accepted = append(gs.accepted, pass)
		gs.mu.Unlock()
		cgiHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(gs.Close)
	return gs
}

// makeRepo makes root/repo.git with one commit on main and returns its id.
func makeRepo(t *testing.T, root string) string {
	t.Helper()
	work := t.TempDir()
	env := append(os.Environ(), "HOME="+work, "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com",
		"GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com", "GIT_CONFIG_COUNT=0")
	for _, args := range [][]string{
		{"init", "-q", "-b", "main", work},
		{"-C", work, "commit", "-q", "--allow-empty", "-m", "first"},
		{"clone", "-q", "--bare", work, filepath.Join(root, "repo.git")},
	} {
		cmd := exec.Command("git", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	cmd := exec.Command("git", "-C", work, "rev-parse", "HEAD")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestGitFetchUnderRun is the promise for git: under credbroker run, git
// fetches from a server that requires the key's token, with no wrapper,
// through the /a/ rewrite and the credential helper; the user's own git
// configuration is read but not changed.
func TestGitFetchUnderRun(t *testing.T) {
	needTool(t, "git")
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	root := t.TempDir()
	commit := makeRepo(t, root)
	gs := newGitServer(t, fg, root)
	host := strings.TrimPrefix(gs.URL, "https://")

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: gs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := toolEnv(t)
	home := strings.TrimPrefix(env[0], "HOME=")
	userGitconfig := "[user]\n\tname = Someone\n[credential]\n\thelper = store\n"
	gitconfig := filepath.Join(home, ".gitconfig")
	if err := os.WriteFile(gitconfig, []byte(userGitconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	env = append(env, "GIT_SSL_CAINFO="+ca)
	clone := filepath.Join(dir, "clone")
	script := fmt.Sprintf(`git ls-remote https://%[1]s/repo.git && git clone -q https://%[1]s/repo.git %[2]s && git -C %[2]s log --format=%%H -1 && git config user.name`, host, clone)
	tmp := t.TempDir()
	r := runBroker(t, tmp, env, "run", "--service-account-json", key, "--git-host", host, "--gerrit-host", host, "--", "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	want := commit + "\tHEAD\n" + commit + "\trefs/heads/main\n" + commit + "\nSomeone\n"
	if r.stdout != want {
		t.Errorf("git printed %q, want %q", r.stdout, want)
	}
	gs.mu.Lock()
	accepted := len(gs.accepted)
	gs.mu.Unlock()
	if accepted == 0 {
		t.Error("the server accepted no token")
	}
	// The user's helper is "store": it must not have been given the token.
	if data, err := os.ReadFile(gitconfig); err != nil || string(data) != userGitconfig {
		t.Errorf("the user's .gitconfig changed: %q %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(home, ".git-credentials")); !os.IsNotExist(err) {
		t.Errorf("the user's credential store got the token: %v", err)
	}
	assertNoSessionFiles(t, tmp)

	// --no-git: the same fetch gets no credentials.
	r = runBroker(t, t.TempDir(), env, "run", "--service-account-json", key, "--no-git", "--", "git", "ls-remote", "https://"+host+"/a/repo.git")
	if r.code == 0 || strings.Contains(r.stdout, commit) {
		t.Errorf("--no-git: exit %d, stdout %q", r.code, r.stdout)
	}
}

// TestDockerHelperUnderRun calls docker-credential-credbroker exactly as
// docker does, from the child's PATH, and checks the session's
// DOCKER_CONFIG against a user configuration it must keep and not change.
func TestDockerHelperUnderRun(t *testing.T) {
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	env := toolEnv(t)
	home := strings.TrimPrefix(env[0], "HOME=")
	userDir := filepath.Join(home, ".docker")
	if err := os.MkdirAll(filepath.Join(userDir, "cli-plugins"), 0o700); err != nil {
		t.Fatal(err)
	}
	userConfig := `{"auths":{"ghcr.io":{"auth":"dTpw"}},"credHelpers":{"123.dkr.ecr.us-east-1.amazonaws.com":"ecr-login"},"detachKeys":"ctrl-x"}`
	userConfigPath := filepath.Join(userDir, "config.json")
	if err := os.WriteFile(userConfigPath, []byte(userConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	script := `set -e
echo gcr.io | docker-credential-credbroker get > "$OUT/get"
printf 'https://europe-west4-docker.pkg.dev' | docker-credential-credbroker get > "$OUT/get-ar"
docker-credential-credbroker list > "$OUT/list"
echo docker.io | docker-credential-credbroker get > "$OUT/notfound" || echo "$?" >> "$OUT/notfound"
echo '{"ServerURL":"gcr.io","Username":"u","Secret":"s"}' | docker-credential-credbroker store > "$OUT/store" || echo "$?" >> "$OUT/store"
cp "$DOCKER_CONFIG/config.json" "$OUT/config.json"
stat -c %a "$DOCKER_CONFIG" "$DOCKER_CONFIG/config.json" "$(dirname "$(command -v docker-credential-credbroker)")" > "$OUT/modes"
echo "$DOCKER_CONFIG" > "$OUT/dir"
`
	tmp := t.TempDir()
	r := runBroker(t, tmp, append(env, "OUT="+out), "run", "--service-account-json", key, "--", "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	read := func(name string) string {
		data, _ := os.ReadFile(filepath.Join(out, name))
		return string(data)
	}
	for _, tt := range []struct{ file, server string }{{"get", "gcr.io"}, {"get-ar", "https://europe-west4-docker.pkg.dev"}} {
		var creds struct{ ServerURL, Username, Secret string }
		if err := json.Unmarshal([]byte(read(tt.file)), &creds); err != nil {
			t.Fatalf("%s: %q: %v", tt.file, read(tt.file), err)
		}
		if creds.ServerURL != tt.server || creds.Username != "oauth2accesstoken" {
			t.Errorf("%s: %+v", tt.file, creds)
		}
		if m, ok := minted(fg, creds.Secret); !ok || m.Email != testEmail || !slices.Contains(m.Scopes, "https://www.googleapis.com/auth/cloud-platform") {
			t.Errorf("%s: secret not minted for the key with cloud-platform: %+v", tt.file, m)
		}
	}
	var list map[string]string
	if err := json.Unmarshal([]byte(read("list")), &list); err != nil || list["https://gcr.io"] != "oauth2accesstoken" || list["https://ghcr.io"] != "" {
		t.Errorf("list: %q", read("list"))
	}
	if got := read("notfound"); got != "credentials not found in native keychain\n1\n" {
		t.Errorf("docker.io: %q", got)
	}
	if got := read("store"); !strings.HasPrefix(got, "credbroker: store is not supported") || !strings.HasSuffix(got, "\n1\n") {
		t.Errorf("store: %q", got)
	}
	if got := read("modes"); got != "700\n600\n700\n" {
		t.Errorf("modes of DOCKER_CONFIG, config.json, bin: %q", got)
	}
	var merged struct {
		Auths       map[string]any    `json:"auths"`
		CredHelpers map[string]string `json:"credHelpers"`
		DetachKeys  string            `json:"detachKeys"`
	}
	if err := json.Unmarshal([]byte(read("config.json")), &merged); err != nil || merged.Auths["ghcr.io"] == nil || merged.DetachKeys != "ctrl-x" ||
		merged.CredHelpers["123.dkr.ecr.us-east-1.amazonaws.com"] != "ecr-login" || merged.CredHelpers["gcr.io"] != "credbroker" ||
		merged.CredHelpers["us-central1-docker.pkg.dev"] != "credbroker" {
		t.Errorf("session config.json: %s", read("config.json"))
	}
	if data, _ := os.ReadFile(userConfigPath); string(data) != userConfig {
		t.Errorf("the user's config.json changed: %s", data)
	}
	if _, err := os.Stat(strings.TrimSpace(read("dir"))); !os.IsNotExist(err) {
		t.Errorf("DOCKER_CONFIG left after the session: %v", err)
	}
	assertNoSessionFiles(t, tmp)
}

// firebaseClientMain refreshes as firebase-tools does, first with
// FIREBASE_TOKEN and then with a wrong one, and prints each status and
// token.
func firebaseClientMain() int {
	for _, secret := range []string{os.Getenv(firebase.EnvToken), "ignored-non-empty-value"} {
		var body bytes.Buffer
		w := multipart.NewWriter(&body)
		for _, kv := range [][2]string{{"refresh_token", secret}, {"client_id", "cid"}, {"client_secret", "cs"},
			{"grant_type", "refresh_token"}, {"scope", "email openid https://www.googleapis.com/auth/cloud-platform"}} {
			w.WriteField(kv[0], kv[1])
		}
		w.Close()
		resp, err := http.Post(os.Getenv(firebase.EnvTokenURL)+"/oauth2/v3/token", w.FormDataContentType(), &body)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		json.Unmarshal(data, &tok)
		fmt.Println(resp.StatusCode, tok.AccessToken)
	}
	return 0
}

func TestFirebaseUnderRun(t *testing.T) {
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	tmp := t.TempDir()
	r := runBroker(t, tmp, nil, "run", "--service-account-json", key, "--", "env", roleVar+"=firebase-client", os.Args[0])
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "200 ") || lines[1] != "400" {
		t.Fatalf("client printed %q", lines)
	}
	m, ok := minted(fg, strings.TrimPrefix(lines[0], "200 "))
	if !ok || m.Email != testEmail || !slices.Contains(m.Scopes, firebase.Scope) {
		t.Errorf("token not minted for the key with the firebase scope: %+v", m)
	}

	r = runBroker(t, t.TempDir(), nil, "run", "--dev", "--no-firebase", "--", "sh", "-c", `echo "${FIREBASE_TOKEN-unset} ${FIREBASE_TOKEN_URL-unset}"`)
	if r.stdout != "unset unset\n" {
		t.Errorf("--no-firebase: %q", r.stdout)
	}
}

func TestExposeSystemAccount(t *testing.T) {
	r := runBroker(t, t.TempDir(), nil, "run", "--dev", "--expose-system-account", "--", "sh", "-c", `cat "$LUCI_CONTEXT"`)
	var lc struct {
		LocalAuth struct {
			Accounts []struct{ ID string } `json:"accounts"`
			Default  string                `json:"default_account_id"`
		} `json:"local_auth"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &lc); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %q: %v", r.code, r.stdout, err)
	}
	if fmt.Sprint(lc.LocalAuth.Accounts) != "[{system} {task}]" || lc.LocalAuth.Default != "task" {
		t.Errorf("local_auth %+v", lc.LocalAuth)
	}
}

func TestAnonymous(t *testing.T) {
	out := t.TempDir()
	parent := filepath.Join(out, "parent.json")
	os.WriteFile(parent, []byte(`{"realm":{"name":"p:r"},"local_auth":{"rpc_port":1,"secret":"Zm9v","accounts":[{"id":"a"}],"default_account_id":"a"}}`), 0o600)
	tmp := t.TempDir()
	env := append(toolEnv(t), "OUT="+out, "LUCI_CONTEXT="+parent, "GCE_METADATA_HOST=127.0.0.1:1", "GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=user.name", "GIT_CONFIG_VALUE_0=Outer", "BOTO_CONFIG=/home/someone/.boto")
	r := runBroker(t, tmp, env, "run", "--anonymous", "--", "sh", "-c", `env > "$OUT/env"; cat "$LUCI_CONTEXT" > "$OUT/lc"`)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "anonymously") {
		t.Errorf("stderr does not say it runs anonymously: %q", r.stderr)
	}
	childEnv := map[string]string{}
	data, _ := os.ReadFile(filepath.Join(out, "env"))
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			childEnv[k] = v
		}
	}
	if v, ok := childEnv["BOTO_CONFIG"]; !ok || v != "" {
		t.Errorf("BOTO_CONFIG=%q (set %v), want set and empty", v, ok)
	}
	for _, k := range []string{"GCE_METADATA_HOST", "DEVSHELL_CLIENT_PORT", "FIREBASE_TOKEN", "DOCKER_CONFIG"} {
		if v, ok := childEnv[k]; ok && v != "" {
			t.Errorf("%s=%q in the anonymous child", k, v)
		}
	}
	if childEnv["GIT_CONFIG_COUNT"] != "1" || childEnv["GIT_CONFIG_VALUE_0"] != "Outer" || childEnv["GIT_TERMINAL_PROMPT"] != "" {
		t.Errorf("git configuration touched: %v", childEnv)
	}
	if lc, _ := os.ReadFile(filepath.Join(out, "lc")); string(lc) != `{"realm":{"name":"p:r"}}`+"\n" {
		t.Errorf("LUCI_CONTEXT = %q, want the parent's without local_auth", lc)
	}
	assertNoSessionFiles(t, tmp)

	// With a credential, --anonymous changes nothing.
	r = runBroker(t, t.TempDir(), nil, "run", "--dev", "--anonymous", "--", "sh", "-c", `test -n "$GCE_METADATA_HOST"`)
	if r.code != 0 || strings.Contains(r.stderr, "anonymously") {
		t.Errorf("--dev --anonymous: exit %d, %q", r.code, r.stderr)
	}
	// Without --anonymous, no credential is still an error.
	if r := runBroker(t, t.TempDir(), nil, "run", "--", "true"); r.code != exitError {
		t.Errorf("no credential: exit %d", r.code)
	}
}
