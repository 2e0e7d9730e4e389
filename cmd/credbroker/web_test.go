package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"credbroker/internal/fakeoidc"
	"credbroker/protocols/openid"
	"credbroker/protocols/openid/openidtest"
)

var webURL = regexp.MustCompile(`^credbroker web: (local|production) mode on (http://127\.0\.0\.1:\d+)/$`)

// startWeb runs `credbroker web ARGS` as a process and returns its base
// URL once it serves; the process is stopped with SIGTERM at cleanup and
// must exit 0.
func startWeb(t *testing.T, env []string, args ...string) (mode, base string) {
	t.Helper()
	cmd := brokerCmd(t, t.TempDir(), env, append([]string{"web"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("web exited with %v; stderr:\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("web did not stop on SIGTERM")
		}
	})
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		cmd.Process.Kill()
		t.Fatalf("web printed nothing; stderr:\n%s", stderr.String())
	}
	first := lines.Text()
	go func() {
		for lines.Scan() {
		}
		exited <- cmd.Wait()
	}()
	m := webURL.FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("unexpected first line %q", first)
	}
	return m[1], m[2]
}

func TestWebLocalMode(t *testing.T) {
	mode, base := startWeb(t, nil, "--dev", "--addr", "127.0.0.1:0")
	if mode != "local" {
		t.Errorf("mode %q", mode)
	}
	br := openidtest.NewBrowser(t)
	if s := br.State(base); s.Identity != openid.Anonymous {
		t.Fatalf("before sign-in: %+v", s)
	}
	s := br.SignIn(base)
	if !strings.HasPrefix(s.Identity, "user:") || s.AccessToken == "" || s.IDToken == "" {
		t.Errorf("state %+v", s)
	}
	code, page := br.Get(base + "/")
	if code != 200 || !strings.Contains(page, `data-mode="local"`) || !strings.Contains(page, "Sign-in is faked") {
		t.Errorf("status page: %d\n%s", code, page)
	}
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestWebProductionSharedStore runs two production-mode processes on one
// SQLite store and key file: a browser signed in through one is signed in
// on the other.
func TestWebProductionSharedStore(t *testing.T) {
	p := fakeoidc.New(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys")
	if code := realMain([]string{"credbroker", "web", "--new-aead-key-file", keyFile}, &strings.Builder{}, &strings.Builder{}); code != 0 {
		t.Fatalf("--new-aead-key-file exited %d", code)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(p.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "sessions.db")
	var bases []string
	for range 2 {
		port := freeLoopbackPort(t)
		mode, base := startWeb(t, nil,
			"--addr", fmt.Sprintf("127.0.0.1:%d", port),
			"--issuer", p.URL, "--client-id", p.ClientID, "--client-secret-file", secretFile,
			"--redirect-url", fmt.Sprintf("http://127.0.0.1:%d%s", port, openid.PathCallback),
			"--aead-key-file", keyFile, "--store", store)
		if mode != "production" {
			t.Fatalf("mode %q", mode)
		}
		bases = append(bases, base)
	}
	openidtest.CheckSharedSessions(t, bases[0], bases[1])
}

func TestWebUsageErrors(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "keys")
	os.WriteFile(existing, nil, 0o600)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"non-loopback addr", []string{"--dev", "--addr", "0.0.0.0:8800"}, "web serves 127.0.0.1 only"},
		{"bad addr", []string{"--dev", "--addr", "8800"}, "want HOST:PORT"},
		{"production flag without client id", []string{"--dev", "--addr", "127.0.0.1:0", "--redirect-url", "http://x"}, "need --client-id"},
		{"no secret", []string{"--addr", "127.0.0.1:0", "--client-id", "c"}, "needs --client-secret-file"},
		{"key file exists", []string{"--new-aead-key-file", existing}, "exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			code := realMain(append([]string{"credbroker", "web"}, tt.args...), &strings.Builder{}, &stderr)
			if code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), exitUsage, tt.want)
			}
		})
	}
}
