package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"credbroker/broker"
)

type fakeTokens struct {
	email  string
	err    error
	calls  int
	scopes []string
}

func (f *fakeTokens) AccessToken(_ context.Context, scopes []string, _ time.Duration) (broker.Token, error) {
	f.calls++
	f.scopes = scopes
	if f.err != nil {
		return broker.Token{}, f.err
	}
	return broker.Token{Value: "tok1", Expiry: time.Unix(1900000000, 0)}, nil
}

func (f *fakeTokens) Email() string { return f.email }

func TestServe(t *testing.T) {
	tests := []struct {
		name  string
		op    string
		hosts []string
		email string
		in    string
		want  string
		mints int
	}{
		{"googlesource", "get", nil, "robot@p.iam.gserviceaccount.com",
			"protocol=https\nhost=chromium.googlesource.com\npath=src.git\n\n",
			"username=robot@p.iam.gserviceaccount.com\npassword=tok1\npassword_expiry_utc=1900000000\n", 1},
		{"no email", "get", nil, "", "protocol=https\nhost=source.developers.google.com\n",
			"username=credbroker\npassword=tok1\npassword_expiry_utc=1900000000\n", 1},
		{"username kept", "get", nil, "e@x", "protocol=https\nhost=a.googlesource.com\nusername=me\n\n",
			"username=me\npassword=tok1\npassword_expiry_utc=1900000000\n", 1},
		{"url form", "get", nil, "e@x", "url=https://a.googlesource.com/x/y\n\n",
			"username=e@x\npassword=tok1\npassword_expiry_utc=1900000000\n", 1},
		{"case-insensitive host", "get", nil, "e@x", "protocol=https\nhost=A.GoogleSource.COM\n\n",
			"username=e@x\npassword=tok1\npassword_expiry_utc=1900000000\n", 1},
		{"github", "get", nil, "e@x", "protocol=https\nhost=github.com\n\n", "", 0},
		{"plain http", "get", nil, "e@x", "protocol=http\nhost=a.googlesource.com\n\n", "", 0},
		{"port not in pattern", "get", nil, "e@x", "protocol=https\nhost=a.googlesource.com:8443\n\n", "", 0},
		{"bare domain", "get", nil, "e@x", "protocol=https\nhost=googlesource.com\n\n", "", 0},
		{"configured host with port", "get", []string{"127.0.0.1:8443"}, "e@x", "protocol=https\nhost=127.0.0.1:8443\n\n",
			"username=e@x\npassword=tok1\npassword_expiry_utc=1900000000\n", 1},
		{"configured list replaces default", "get", []string{"127.0.0.1:8443"}, "e@x", "protocol=https\nhost=a.googlesource.com\n\n", "", 0},
		{"store", "store", nil, "e@x", "protocol=https\nhost=a.googlesource.com\nusername=x\npassword=tok1\n\n", "", 0},
		{"erase", "erase", nil, "e@x", "protocol=https\nhost=a.googlesource.com\n\n", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTokens{email: tt.email}
			h := &Helper{Tokens: f, Hosts: tt.hosts}
			var out bytes.Buffer
			if err := h.Serve(t.Context(), tt.op, strings.NewReader(tt.in), &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("output %q, want %q", out.String(), tt.want)
			}
			if f.calls != tt.mints {
				t.Errorf("%d token requests, want %d", f.calls, tt.mints)
			}
			if f.calls > 0 && fmt.Sprint(f.scopes) != fmt.Sprint(Scopes) {
				t.Errorf("scopes %q", f.scopes)
			}
		})
	}
}

func TestServeErrors(t *testing.T) {
	tests := []struct {
		name, op, in string
		tokErr       error
	}{
		{"unknown op", "list", "protocol=https\nhost=a.googlesource.com\n", nil},
		{"malformed line", "get", "protocol https\n", nil},
		{"empty key", "get", "=x\n", nil},
		{"token failure", "get", "protocol=https\nhost=a.googlesource.com\n", broker.Fatalf("refused")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Helper{Tokens: &fakeTokens{err: tt.tokErr}}
			var out bytes.Buffer
			if err := h.Serve(t.Context(), tt.op, strings.NewReader(tt.in), &out); err == nil {
				t.Error("no error")
			}
			if out.Len() != 0 {
				t.Errorf("wrote %q on failure", out.String())
			}
		})
	}
}

func TestReadRequestLimits(t *testing.T) {
	long := "host=" + strings.Repeat("a", maxRequest) + "\n"
	if _, err := ReadRequest(strings.NewReader(long)); err == nil {
		t.Error("over-long line accepted")
	}
	req, err := ReadRequest(strings.NewReader("protocol=https\r\nhost=h\n\nhost=ignored\n"))
	if err != nil || req.Get("host") != "h" || req.Get("protocol") != "https" {
		t.Errorf("req %q, err %v", req, err)
	}
}

func FuzzReadRequest(f *testing.F) {
	f.Add("protocol=https\nhost=chromium.googlesource.com\npath=a\n\n")
	f.Add("url=https://user@h:1/p\n")
	f.Add("url=%zz\n")
	f.Add("=\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		req, err := ReadRequest(strings.NewReader(in))
		if err != nil {
			return
		}
		h := &Helper{Tokens: &fakeTokens{}}
		var out bytes.Buffer
		if err := h.Serve(context.Background(), "get", strings.NewReader(in), &out); err != nil {
			t.Fatal(err)
		}
		if h.Serves(req) != (out.Len() > 0) {
			t.Fatalf("Serves=%v but output %q", h.Serves(req), out.String())
		}
		if out.Len() > 0 && !MatchHost(DefaultHosts, req.Get("host")) {
			t.Fatalf("answered for host %q", req.Get("host"))
		}
	})
}

// helperRole makes the test binary act as the credential helper git runs.
const helperRole = "CREDBROKER_GIT_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperRole) != "" {
		os.Exit(helperMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// helperMain is "<exe> git-credential --host H get", as git runs it.
func helperMain(args []string) int {
	var hosts []string
	for len(args) > 2 && args[0] != "git-credential" {
		args = args[1:]
	}
	args = args[1:]
	for len(args) > 1 && args[0] == "--host" {
		hosts, args = append(hosts, args[1]), args[2:]
	}
	h := &Helper{Tokens: &fakeTokens{email: "robot@example.com"}, Hosts: hosts}
	if err := h.Serve(context.Background(), args[0], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// gitEnv is an environment where git reads no configuration of this
// machine, plus the session's entries.
func gitEnv(t *testing.T, cfg Config, userConfig string) []string {
	t.Helper()
	home := t.TempDir()
	if userConfig != "" {
		if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(userConfig), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := envMap{"HOME": home, "GIT_CONFIG_NOSYSTEM": "1", "PATH": os.Getenv("PATH"), helperRole: "1",
		// An entry the caller already had must survive.
		EnvConfigCount: "1", "GIT_CONFIG_KEY_0": "user.name", "GIT_CONFIG_VALUE_0": "Outer"}
	if err := AppendEnv(env, cfg.Entries()); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

type envMap map[string]string

func (e envMap) Get(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e envMap) Set(k, v string)             { e[k] = v }

// TestRealGitCredentialFill runs Debian's git: the helper answers for a
// Google source host, stays silent for github.com, and the user's own
// helper still runs for other hosts but never for the Google ones.
func TestRealGitCredentialFill(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed (CI installs it)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	user := "[credential]\n\thelper = \"!f() { cat >/dev/null; echo username=u; echo password=users-own; }; f\"\n"
	env := gitEnv(t, Config{Executable: exe}, user)
	tests := []struct {
		name, in, want string
		fails          bool
	}{
		{"googlesource", "protocol=https\nhost=chromium.googlesource.com\npath=a/b\n\n",
			"protocol=https\nhost=chromium.googlesource.com\nusername=robot@example.com\npassword=tok1\n", false},
		{"cloud source repositories", "url=https://source.developers.google.com/p/x\n\n",
			"protocol=https\nhost=source.developers.google.com\nusername=robot@example.com\npassword=tok1\n", false},
		{"github goes to the user's helper", "protocol=https\nhost=github.com\n\n",
			"protocol=https\nhost=github.com\nusername=u\npassword=users-own\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("git", "credential", "fill")
			cmd.Env = env
			cmd.Stdin = strings.NewReader(tt.in)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("git credential fill: %v\n%s", err, stderr.String())
			}
			// git 2.41+ passes password_expiry_utc through; older ones drop it.
			got := strings.ReplaceAll(string(out), "password_expiry_utc=1900000000\n", "")
			if got != tt.want {
				t.Errorf("git printed %q, want %q", got, tt.want)
			}
		})
	}

	// Without the user's helper, github.com gets nothing and git, told
	// not to prompt, fails.
	env = gitEnv(t, Config{Executable: exe}, "")
	cmd := exec.Command("git", "credential", "fill")
	cmd.Env = env
	cmd.Stdin = strings.NewReader("protocol=https\nhost=github.com\n\n")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || strings.Contains(string(out), "password=") {
		t.Errorf("github.com: %q, %v; want a failure without a password", out, err)
	}
}

// TestRealGitKeepsOuterEntries checks that git still sees the caller's
// own GIT_CONFIG_<n> entry and the /a/ rewrite.
func TestRealGitKeepsOuterEntries(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed (CI installs it)")
	}
	env := gitEnv(t, Config{Executable: "/bin/false", GerritHosts: []string{"chromium.googlesource.com"}}, "")
	for _, tt := range []struct{ args, want string }{
		{"config user.name", "Outer\n"},
		{"ls-remote --get-url https://chromium.googlesource.com/src", "https://chromium.googlesource.com/a/src\n"},
		{"ls-remote --get-url https://chromium.googlesource.com/a/src", "https://chromium.googlesource.com/a/src\n"},
		{"ls-remote --get-url https://other.googlesource.com/src", "https://other.googlesource.com/src\n"},
	} {
		cmd := exec.Command("git", strings.Fields(tt.args)...)
		cmd.Env = env
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != tt.want {
			t.Errorf("git %s = %q, %v; want %q", tt.args, out, err, tt.want)
		}
	}
}
