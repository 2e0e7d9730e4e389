package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"credbroker/internal/fakegoogle"
	"credbroker/lucictx"
	"credbroker/sources/dev"
)

const testEmail = "robot@proj.iam.gserviceaccount.com"

// TestRunServiceAccountThroughLocalAuth is the foundation's promise: a
// LUCI-aware child gets, through LUCI_CONTEXT, tokens minted for the key's
// account with at least 3 minutes left.
func TestRunServiceAccountThroughLocalAuth(t *testing.T) {
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	tmp := t.TempDir()
	r := runBroker(t, tmp, nil,
		"run", "--service-account-json", key, "--", "env", roleVar+"=luci-client", os.Args[0])
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got struct {
		Token  string `json:"token"`
		Expiry int64  `json:"expiry"`
		Email  string `json:"email"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("child output %q: %v", r.stdout, err)
	}
	if got.Email != testEmail {
		t.Errorf("email = %q, want %q", got.Email, testEmail)
	}
	if left := time.Until(time.Unix(got.Expiry, 0)); left < 3*time.Minute {
		t.Errorf("token has %v left, want at least 3m", left)
	}
	var minted *fakegoogle.Mint
	for _, m := range fg.Mints() {
		if m.Token == got.Token {
			minted = &m
		}
	}
	if minted == nil {
		t.Fatalf("token %q was not minted by the fake Google endpoint", got.Token)
	}
	wantScopes := []string{"https://www.googleapis.com/auth/userinfo.email", "scope-b"}
	if minted.Email != testEmail || !slices.Equal(minted.Scopes, wantScopes) {
		t.Errorf("minted for %s with scopes %q, want %s %q", minted.Email, minted.Scopes, testEmail, wantScopes)
	}
	assertNoSessionFiles(t, tmp)
}

// TestRunNoTokenAfterSessionEnds holds a keep-alive connection to
// local_auth across the end of the session: the request before the end
// is served, the one after is not (the reference keeps serving it).
func TestRunNoTokenAfterSessionEnds(t *testing.T) {
	tmp, out := t.TempDir(), t.TempDir()
	script := `cp "$LUCI_CONTEXT" "$OUT/lc.tmp"; mv "$OUT/lc.tmp" "$OUT/lc"; while [ ! -f "$OUT/go" ]; do sleep 0.02; done`
	cmd := brokerCmd(t, tmp, []string{"OUT=" + out}, "run", "--dev", "--", "sh", "-c", script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })

	lc, _, err := lucictx.Parse(waitForFile(t, filepath.Join(out, "lc"), done))
	if err != nil {
		t.Fatal(err)
	}
	la, err := lc.LocalAuth()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", la.RPCPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body, _ := json.Marshal(map[string]any{"scopes": []string{"s"}, "secret": la.Secret, "account_id": la.DefaultAccountID})
	request := fmt.Sprintf("POST /rpc/LuciLocalAuthService.GetOAuthToken HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", la.RPCPort, len(body), body)
	br := bufio.NewReader(conn)
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("request during the session: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	os.WriteFile(filepath.Join(out, "go"), nil, 0o600)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("broker did not exit")
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, request)
	if resp, err := http.ReadResponse(br, nil); err == nil {
		t.Fatalf("request on a keep-alive connection after the session ended was answered: %s", resp.Status)
	}
}

func TestTokenCommand(t *testing.T) {
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)

	r := runBroker(t, t.TempDir(), nil, "token", "--dev")
	if r.code != 0 || !strings.HasPrefix(r.stdout, dev.TokenPrefix) || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("token --dev: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	r = runBroker(t, t.TempDir(), nil, "token", "--service-account-json", key, "--scopes", "cloud-platform", "--json")
	var luci struct {
		Token  string `json:"token"`
		Expiry int64  `json:"expiry"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &luci); err != nil || r.code != 0 {
		t.Fatalf("token --json: exit %d, %q, %v; stderr %s", r.code, r.stdout, err, r.stderr)
	}
	m := fg.Mints()
	if len(m) != 1 || m[0].Token != luci.Token || !slices.Equal(m[0].Scopes, []string{"https://www.googleapis.com/auth/cloud-platform"}) {
		t.Errorf("mints = %+v, printed %q", m, luci.Token)
	}

	r = runBroker(t, t.TempDir(), []string{"GOOGLE_APPLICATION_CREDENTIALS=" + key}, "token", "--audience", "https://aud.example", "--json", "--json-format", "bazel")
	var bazel struct {
		Headers map[string][]string `json:"headers"`
		Expires string              `json:"expires"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &bazel); err != nil || r.code != 0 {
		t.Fatalf("token --audience: exit %d, %q, %v; stderr %s", r.code, r.stdout, err, r.stderr)
	}
	m = fg.Mints()
	if len(m) != 2 || m[1].Audience != "https://aud.example" || bazel.Headers["Authorization"][0] != "Bearer "+m[1].Token {
		t.Errorf("ID token not minted for the audience through GOOGLE_APPLICATION_CREDENTIALS: %+v", m)
	}
}

func TestTokenCommandUpstreamRefusal(t *testing.T) {
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	fg.SetFault(fakegoogle.Fault{Status: 400, Error: "invalid_grant", Description: "Invalid JWT Signature."})
	r := runBroker(t, t.TempDir(), nil, "token", "--service-account-json", key)
	if r.code != exitError || !strings.Contains(r.stderr, "Invalid JWT Signature.") {
		t.Errorf("exit %d, stderr %q; want status 1 with Google's error text", r.code, r.stderr)
	}
	keyBytes, _ := os.ReadFile(key)
	var k struct {
		PrivateKey string `json:"private_key"`
	}
	json.Unmarshal(keyBytes, &k)
	if strings.Contains(r.stderr, "PRIVATE KEY") || strings.Contains(r.stderr, k.PrivateKey[40:80]) {
		t.Error("key material in the error output")
	}
}

func TestInfoCommand(t *testing.T) {
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	r := runBroker(t, t.TempDir(), []string{"GOOGLE_APPLICATION_CREDENTIALS=" + key}, "info", "--json", "--account", "task", "--account", "system")
	var info infoOutput
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || r.code != 0 {
		t.Fatalf("info: exit %d, %q, %v", r.code, r.stdout, err)
	}
	want := infoOutput{
		Source: "service-account", Detail: key, SelectedBy: "GOOGLE_APPLICATION_CREDENTIALS",
		Email: testEmail, ProjectID: info.ProjectID, Accounts: []string{"task", "system"}, DefaultAccount: "task",
		Scopes:     []string{"https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/userinfo.email"},
		Considered: []string{"LUCI_CONTEXT: LUCI_CONTEXT is not set"},
	}
	if fmt.Sprint(info) != fmt.Sprint(want) || info.ProjectID == "" {
		t.Errorf("info = %+v\nwant %+v", info, want)
	}
	if len(fg.Mints()) != 0 {
		t.Error("info minted a token")
	}

	r = runBroker(t, t.TempDir(), nil, "info", "--dev")
	for _, want := range []string{"source:", "dev", "selected by:", "--dev", "dev@credbroker.local", "cloud-platform userinfo.email"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info text lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestDemo(t *testing.T) {
	tmp := t.TempDir()
	r := runBroker(t, tmp, nil, "demo")
	if r.code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, fe := range []string{"local_auth", "gcemeta", "devshell", "gsutil"} {
		var row string
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(line, fe+" ") {
				row = line
			}
		}
		if !strings.Contains(row, "dev@credbroker.local") || !strings.Contains(row, dev.TokenPrefix) {
			t.Errorf("demo row for %s = %q\n%s", fe, row, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "not Google tokens") {
		t.Errorf("no dev warning on stderr: %q", r.stderr)
	}
	assertNoSessionFiles(t, tmp)
}

// TestHelpExplains keeps --help useful: every command is listed with its
// purpose.
func TestHelpExplains(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--help")
	cmd.Env = append(cleanTestEnv(), roleVar+"=broker")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatal(err, string(out))
	}
	for _, want := range []string{"run", "context", "token", "info", "demo"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
}

// run mints the default token while its front-ends start; a credential
// Google refuses ends the run with Google's reason before the command
// starts, and the session it had begun is removed.
func TestRunUpstreamRefusalStartsNoCommand(t *testing.T) {
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	fg.SetFault(fakegoogle.Fault{Status: 400, Error: "invalid_grant", Description: "Invalid JWT Signature."})
	tmp := t.TempDir()
	marker := filepath.Join(tmp, "child-ran")
	r := runBroker(t, tmp, nil, "run", "--service-account-json", key, "--", "sh", "-c", "touch "+marker)
	if r.code != exitError || !strings.Contains(r.stderr, "the credential does not work") || !strings.Contains(r.stderr, "Invalid JWT Signature.") {
		t.Errorf("exit %d, stderr %q; want status 1 with Google's error text", r.code, r.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran with a credential Google refused")
	}
	assertNoSessionFiles(t, tmp)
}
