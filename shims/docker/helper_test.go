package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"credbroker/broker"
)

type fakeTokens struct {
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
	return broker.Token{Value: "ya29.tok", Expiry: time.Now().Add(time.Hour)}, nil
}

func TestServe(t *testing.T) {
	regs := []string{"gcr.io", "us-docker.pkg.dev", "localhost:5000"}
	tests := []struct {
		name, op, in string
		tokErr       error
		want         string
		code, mints  int
	}{
		{"get bare host", "get", "gcr.io\n", nil, `{"ServerURL":"gcr.io","Username":"oauth2accesstoken","Secret":"ya29.tok"}` + "\n", 0, 1},
		{"get with scheme", "get", "https://gcr.io", nil, `{"ServerURL":"https://gcr.io","Username":"oauth2accesstoken","Secret":"ya29.tok"}` + "\n", 0, 1},
		{"get with path", "get", "https://US-DOCKER.pkg.dev/v2/", nil, `{"ServerURL":"https://US-DOCKER.pkg.dev/v2/","Username":"oauth2accesstoken","Secret":"ya29.tok"}` + "\n", 0, 1},
		{"get with port", "get", "localhost:5000", nil, `{"ServerURL":"localhost:5000","Username":"oauth2accesstoken","Secret":"ya29.tok"}` + "\n", 0, 1},
		{"not served", "get", "docker.io", nil, "credentials not found in native keychain\n", 1, 0},
		{"sub-host not served", "get", "evil.gcr.io.example.com", nil, "credentials not found in native keychain\n", 1, 0},
		{"userinfo", "get", "https://x@gcr.io", nil, "credentials not found in native keychain\n", 1, 0},
		{"empty", "get", "", nil, "credentials not found in native keychain\n", 1, 0},
		{"token failure", "get", "gcr.io", broker.Fatalf("the key was refused"), "credbroker: cannot get a token for gcr.io: the key was refused\n", 1, 1},
		{"list", "list", "", nil, `{"https://gcr.io":"oauth2accesstoken","https://localhost:5000":"oauth2accesstoken","https://us-docker.pkg.dev":"oauth2accesstoken"}` + "\n", 0, 0},
		{"store", "store", `{"ServerURL":"gcr.io","Username":"u","Secret":"s"}`, nil,
			"credbroker: store is not supported: this helper serves the session's own credential and keeps nothing\n", 1, 0},
		{"erase", "erase", "gcr.io", nil, "credbroker: erase is not supported: this helper serves the session's own credential and keeps nothing\n", 1, 0},
		{"version", "version", "", nil, "docker-credential-credbroker v1\n", 0, 0},
		{"unknown", "frob", "", nil, "usage: docker-credential-credbroker get|list|store|erase|version\n", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTokens{err: tt.tokErr}
			h := &Helper{Tokens: f, Registries: regs, Version: "v1"}
			var out bytes.Buffer
			code := h.Serve(t.Context(), tt.op, strings.NewReader(tt.in), &out)
			if code != tt.code || out.String() != tt.want {
				t.Errorf("exit %d, output %q; want %d, %q", code, out.String(), tt.code, tt.want)
			}
			if f.calls != tt.mints {
				t.Errorf("%d token requests, want %d", f.calls, tt.mints)
			}
		})
	}
}

func FuzzServeGet(f *testing.F) {
	for _, s := range []string{"gcr.io", "https://gcr.io/v2/", "%zz://", "a b", "http://[::1]:5000", "gcr.io\n\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h := &Helper{Tokens: &fakeTokens{}, Registries: []string{"gcr.io"}}
		var out bytes.Buffer
		code := h.Serve(context.Background(), "get", strings.NewReader(in), &out)
		if code == 0 {
			var got struct{ ServerURL, Username, Secret string }
			if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Secret != "ya29.tok" || RegistryHost(in) != "gcr.io" {
				t.Fatalf("answered %q for %q", out.String(), in)
			}
		} else if strings.Count(out.String(), "\n") != 1 {
			t.Fatalf("error output %q is not one line", out.String())
		}
	})
}

// The test binary acts as docker-credential-credbroker when run by that
// name, as docker runs it: through PATH, the operation as its argument.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == BinaryName {
		data, _ := os.ReadFile(filepath.Join(os.Getenv(EnvConfig), "config.json"))
		h := &Helper{Tokens: &fakeTokens{}, Registries: ServedRegistries(data), Version: "test"}
		op := ""
		if len(os.Args) > 1 {
			op = os.Args[1]
		}
		os.Exit(h.Serve(context.Background(), op, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// TestHelperBinary runs the helper as docker does, found on PATH in the
// bin directory Prepare makes, reading the registries from DOCKER_CONFIG.
func TestHelperBinary(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	info, err := Setup{Dir: t.TempDir(), Executable: exe}.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{EnvConfig + "=" + info.ConfigDir, "PATH=" + PrependPath(info.BinDir, os.Getenv("PATH"))}
	run := func(op, in string) (int, string) {
		t.Helper()
		path, err := exec.LookPath(BinaryName) // as docker: by name, on the child's PATH
		if err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("the helper is on the test's own PATH: %v", path)
		}
		cmd := exec.Command(filepath.Join(info.BinDir, BinaryName), op)
		cmd.Args[0] = BinaryName
		cmd.Env = env
		cmd.Stdin = strings.NewReader(in)
		out, err := cmd.Output()
		if err != nil && cmd.ProcessState == nil {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	for _, tt := range []struct {
		op, in string
		code   int
		want   string
	}{
		{"get", "gcr.io", 0, `{"ServerURL":"gcr.io","Username":"oauth2accesstoken","Secret":"ya29.tok"}` + "\n"},
		{"get", "https://europe-west1-docker.pkg.dev", 0, `{"ServerURL":"https://europe-west1-docker.pkg.dev","Username":"oauth2accesstoken","Secret":"ya29.tok"}` + "\n"},
		{"get", "index.docker.io", 1, "credentials not found in native keychain\n"},
		{"store", `{"ServerURL":"gcr.io","Username":"a","Secret":"b"}`, 1, "credbroker: store is not supported: this helper serves the session's own credential and keeps nothing\n"},
	} {
		if code, out := run(tt.op, tt.in); code != tt.code || out != tt.want {
			t.Errorf("%s %q: exit %d %q; want %d %q", tt.op, tt.in, code, out, tt.code, tt.want)
		}
	}
	code, out := run("list", "")
	var list map[string]string
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 || len(list) != len(DefaultRegistries) || list["https://gcr.io"] != Username {
		t.Errorf("list: exit %d, %q", code, out)
	}
}
