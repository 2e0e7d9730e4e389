package main

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"credbroker/internal/fakegoogle"
)

// fakeDockerd answers the docker CLI on a Unix socket just enough for
// "docker pull": the version ping and the image-create call, whose
// X-Registry-Auth header carries what the credential helper gave the CLI.
type fakeDockerd struct {
	mu    sync.Mutex
	auths []string
}

func (d *fakeDockerd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.45")
	switch {
	case strings.HasSuffix(r.URL.Path, "/_ping"):
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("OK"))
	case strings.HasSuffix(r.URL.Path, "/images/create"):
		d.mu.Lock()
		d.auths = append(d.auths, r.Header.Get("X-Registry-Auth"))
		d.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"Pulled"}` + "\n"))
	default:
		http.NotFound(w, r)
	}
}

// TestDockerCLIUnderRun runs the real docker CLI against a fake engine:
// the CLI itself reads the session's DOCKER_CONFIG, runs the helper for
// gcr.io and sends the key's token to the engine; for another registry
// it sends the user's own stored credentials.
func TestDockerCLIUnderRun(t *testing.T) {
	t.Parallel() // its own broker process, fake Google and directories
	needTool(t, "docker")
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	sockDir, err := os.MkdirTemp("", "cbd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDockerd{}
	srv := &http.Server{Handler: d}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	env := toolEnv(t)
	home := strings.TrimPrefix(env[0], "HOME=")
	userDir := filepath.Join(home, ".docker")
	os.MkdirAll(userDir, 0o700)
	userAuth := base64.StdEncoding.EncodeToString([]byte("me:users-own"))
	os.WriteFile(filepath.Join(userDir, "config.json"), []byte(`{"auths":{"ghcr.io":{"auth":"`+userAuth+`"}}}`), 0o600)
	env = append(env, "DOCKER_HOST=unix://"+sock, "DOCKER_CONTEXT=", "DOCKER_CLI_HINTS=false")

	tmp := t.TempDir()
	r := runBroker(t, tmp, env, "run", "--service-account-json", key, "--", "sh", "-c",
		"docker pull -q gcr.io/proj/img:v1 && docker pull -q ghcr.io/me/img:v1")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	d.mu.Lock()
	auths := d.auths
	d.mu.Unlock()
	if len(auths) != 2 {
		t.Fatalf("engine saw %d pulls", len(auths))
	}
	decode := func(h string) map[string]string {
		data, err := base64.URLEncoding.DecodeString(h)
		if err != nil {
			data, _ = base64.StdEncoding.DecodeString(h)
		}
		var m map[string]string
		json.Unmarshal(data, &m)
		return m
	}
	gcr := decode(auths[0])
	if m, ok := minted(fg, gcr["password"]); !ok || m.Email != testEmail || gcr["username"] != "oauth2accesstoken" {
		t.Errorf("gcr.io pull authenticated as %q with a token not minted for the key", gcr["username"])
	}
	if gh := decode(auths[1]); gh["username"] != "me" || gh["password"] != "users-own" {
		t.Errorf("ghcr.io pull lost the user's own credentials: %v", gh)
	}
	assertNoSessionFiles(t, tmp)
}
