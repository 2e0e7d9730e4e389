package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"credbroker/lucictx"
	"credbroker/protocols/localauth"
	"credbroker/shims/docker"
)

// The test binary doubles as the credbroker binary and as a LUCI client
// child, chosen by CREDBROKER_TEST_ROLE, so the tests run real processes
// with real signals without building anything.
const roleVar = "CREDBROKER_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleVar) {
	case "broker":
		name := "credbroker"
		if filepath.Base(os.Args[0]) == docker.BinaryName { // run by docker through its link
			name = os.Args[0]
		}
		os.Exit(realMain(append([]string{name}, os.Args[1:]...), os.Stdout, os.Stderr))
	case "luci-client":
		os.Exit(luciClientMain())
	case "firebase-client":
		os.Exit(firebaseClientMain())
	case "go-client":
		os.Exit(goClientMain())
	}
	os.Exit(m.Run())
}

// luciClientMain is a LUCI-aware child: it finds local_auth through the
// LUCI_CONTEXT file, asks for a token and prints it as JSON.
func luciClientMain() int {
	lc, _, err := lucictx.Load(os.Getenv("LUCI_CONTEXT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 10
	}
	la, err := lc.LocalAuth()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 11
	}
	cl, err := localauth.NewClient(la)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 12
	}
	tok, err := cl.AccessToken(context.Background(), []string{"https://www.googleapis.com/auth/userinfo.email", "scope-b"}, 3*time.Minute)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 13
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{"token": tok.Value, "expiry": tok.Expiry.Unix(), "email": cl.Email()})
	return 0
}

// brokerCmd prepares the broker as a subprocess with its own TMPDIR.
func brokerCmd(t *testing.T, tmp string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(cleanTestEnv(), roleVar+"=broker", "TMPDIR="+tmp), env...)
	return cmd
}

// cleanTestEnv is the test's environment without variables that would
// change the broker's choice of credential.
func cleanTestEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOOGLE_APPLICATION_CREDENTIALS", "CREDBROKER_SERVICE_ACCOUNT_JSON", "LUCI_CONTEXT", roleVar, "TMPDIR",
			"DOCKER_CONFIG", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_COUNT", "GIT_CONFIG_PARAMETERS", "GIT_SSL_CAINFO", "GIT_SSL_NO_VERIFY":
			continue
		}
		out = append(out, kv)
	}
	return out
}

type result struct {
	code           int
	stdout, stderr string
}

func runBroker(t *testing.T, tmp string, env []string, args ...string) result {
	t.Helper()
	cmd := brokerCmd(t, tmp, env, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running the broker: %v", err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// assertNoSessionFiles fails if a session directory is left in tmp.
func assertNoSessionFiles(t *testing.T, tmp string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(tmp, "credbroker-*"))
	if len(left) > 0 {
		t.Errorf("session files left behind: %v", left)
	}
}

// waitForFile waits until path exists, or the process ends, or 20 s pass.
func waitForFile(t *testing.T, path string, done <-chan struct{}) []byte {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
			return data
		}
		select {
		case <-done:
			t.Fatalf("process ended before writing %s", filepath.Base(path))
		case <-deadline:
			t.Fatalf("timed out waiting for %s", filepath.Base(path))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestRunExitStatus(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want int
	}{
		{"success", []string{"sh", "-c", "exit 0"}, 0},
		{"child status", []string{"sh", "-c", "exit 7"}, 7},
		{"killed by SIGKILL", []string{"sh", "-c", "kill -KILL $$"}, 128 + 9},
		{"killed by SIGTERM", []string{"sh", "-c", "kill -TERM $$"}, 128 + 15},
		{"command not found", []string{"no-such-command-credbroker-test"}, 127},
		{"no command", nil, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			args := append([]string{"run", "--dev", "--"}, tt.argv...)
			r := runBroker(t, tmp, nil, args...)
			if r.code != tt.want {
				t.Errorf("exit status %d, want %d; stderr:\n%s", r.code, tt.want, r.stderr)
			}
			assertNoSessionFiles(t, tmp)
		})
	}
}

func TestRunChildEnvironmentAndFiles(t *testing.T) {
	tmp, out := t.TempDir(), t.TempDir()
	parent := filepath.Join(out, "parent_context.json")
	parentJSON := `{"realm":{"name":"proj:realm"},"custom":{"b":1,"a":[true]},"local_auth":{"rpc_port":1,"secret":"Zm9v","accounts":[{"id":"old"}],"default_account_id":"old"}}`
	if err := os.WriteFile(parent, []byte(parentJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	script := `env > "$OUT/env"; cat "$LUCI_CONTEXT" > "$OUT/lc"; ` +
		`stat -c %a "$LUCI_CONTEXT" > "$OUT/mode"; stat -c %a "$(dirname "$LUCI_CONTEXT")" > "$OUT/dirmode"`
	r := runBroker(t, tmp, []string{
		"OUT=" + out, "LUCI_CONTEXT=" + parent,
		"GOOGLE_APPLICATION_CREDENTIALS=/nonexistent/key.json", "NO_GCE_CHECK=True",
		"CLOUDSDK_CORE_ACCOUNT=someone@example.com", "BOTO_PATH=/x/.boto",
	}, "run", "--dev", "--", "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}

	env := map[string]string{}
	data, _ := os.ReadFile(filepath.Join(out, "env"))
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	for _, k := range []string{"GOOGLE_APPLICATION_CREDENTIALS", "NO_GCE_CHECK", "CLOUDSDK_CORE_ACCOUNT", "BOTO_PATH", "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"} {
		if v, ok := env[k]; ok {
			t.Errorf("child env still has %s=%s", k, v)
		}
	}
	if !strings.HasPrefix(env["LUCI_CONTEXT"], filepath.Join(tmp, "credbroker-")) {
		t.Errorf("LUCI_CONTEXT=%q, want a file in the session directory under TMPDIR", env["LUCI_CONTEXT"])
	}
	meta := env["GCE_METADATA_HOST"]
	if !strings.HasPrefix(meta, "127.0.0.1:") || env["GCE_METADATA_IP"] != meta || env["GCE_METADATA_ROOT"] != meta {
		t.Errorf("metadata variables: HOST=%q IP=%q ROOT=%q", meta, env["GCE_METADATA_IP"], env["GCE_METADATA_ROOT"])
	}
	if env["METADATA_SERVER_DETECTION"] != "assume-present" || env["DEVSHELL_CLIENT_PORT"] == "" || env["CLOUDSDK_CONFIG"] == "" || !strings.HasSuffix(env["BOTO_CONFIG"], "/.boto") {
		t.Errorf("missing variables in child env: %v", env)
	}
	for file, want := range map[string]string{"mode": "600\n", "dirmode": "700\n"} {
		if got, _ := os.ReadFile(filepath.Join(out, file)); string(got) != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}

	lc, _ := os.ReadFile(filepath.Join(out, "lc"))
	var sections map[string]json.RawMessage
	if err := json.Unmarshal(lc, &sections); err != nil {
		t.Fatalf("LUCI_CONTEXT %q: %v", lc, err)
	}
	if string(sections["realm"]) != `{"name":"proj:realm"}` || string(sections["custom"]) != `{"b":1,"a":[true]}` {
		t.Errorf("parent sections not kept as they were: %s", lc)
	}
	var la struct {
		RPCPort  int    `json:"rpc_port"`
		Secret   string `json:"secret"`
		Accounts []struct {
			ID, Email string
		} `json:"accounts"`
		Default string `json:"default_account_id"`
	}
	if err := json.Unmarshal(sections["local_auth"], &la); err != nil {
		t.Fatal(err)
	}
	if la.RPCPort <= 1 || len(la.Secret) != 64 || la.Default != "task" ||
		len(la.Accounts) != 1 || la.Accounts[0].ID != "task" || la.Accounts[0].Email != "dev@credbroker.local" {
		t.Errorf("local_auth section = %s", sections["local_auth"])
	}
	if !bytes.HasSuffix(lc, []byte("}\n")) {
		t.Errorf("LUCI_CONTEXT does not end in one newline: %q", lc)
	}
	assertNoSessionFiles(t, tmp)
}

func TestRunSIGTERMToBroker(t *testing.T) {
	tmp, out := t.TempDir(), t.TempDir()
	script := `trap 'echo term > "$OUT/sig"; exit 3' TERM; echo "$LUCI_CONTEXT" > "$OUT/ready"; while :; do sleep 0.05; done`
	cmd := brokerCmd(t, tmp, []string{"OUT=" + out}, "run", "--dev", "--", "sh", "-c", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	waitForFile(t, filepath.Join(out, "ready"), done)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("broker did not exit after SIGTERM")
	}
	var ee *exec.ExitError
	if !errors.As(waitErr, &ee) || ee.ExitCode() != 3 {
		t.Errorf("broker exit = %v, want the child's status 3; stderr: %s", waitErr, stderr.String())
	}
	if got, _ := os.ReadFile(filepath.Join(out, "sig")); string(got) != "term\n" {
		t.Errorf("child did not get SIGTERM (sig file %q)", got)
	}
	assertNoSessionFiles(t, tmp)
}

func TestStaleSessionDirectoryRemoved(t *testing.T) {
	tmp := t.TempDir()
	// A pid that is not running: a broker that was SIGKILLed.
	pid := 4000000
	for syscall.Kill(pid, 0) == nil {
		pid++
	}
	stale := filepath.Join(tmp, fmt.Sprintf("credbroker-%d-123", pid))
	if err := os.MkdirAll(filepath.Join(stale, "gcloud"), 0o700); err != nil {
		t.Fatal(err)
	}
	if r := runBroker(t, tmp, nil, "run", "--dev", "--", "true"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale session directory still there: %v", err)
	}
}

func TestNoCredential(t *testing.T) {
	r := runBroker(t, t.TempDir(), nil, "run", "--", "true")
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
	for _, want := range []string{"no credential", "--service-account-json", "GOOGLE_APPLICATION_CREDENTIALS", "--dev"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "goroutine") {
		t.Errorf("stack trace printed:\n%s", r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"two scope flags", []string{"token", "--dev", "--scopes-cloud", "--scopes-gerrit"}},
		{"lifetime too long", []string{"token", "--dev", "--lifetime", "31m"}},
		{"unknown flag", []string{"run", "--no-such-flag", "--", "true"}},
		{"bad log level", []string{"token", "--dev", "--log-level", "loud"}},
		{"default account not served", []string{"run", "--dev", "--account", "a", "--default-account", "b", "--", "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runBroker(t, t.TempDir(), nil, tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, exitUsage, r.stderr)
			}
		})
	}
}
