package session

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/shims/firebase"
)

type testSource struct{}

func (testSource) AccessToken(context.Context, []string, time.Duration) (broker.Token, error) {
	return broker.Token{Value: "tok", Expiry: time.Now().Add(time.Hour)}, nil
}
func (testSource) IDToken(context.Context, string, time.Duration) (broker.Token, error) {
	return broker.Token{}, broker.NewFatal(broker.ErrNotSupported)
}
func (testSource) Email() string { return "robot@example.com" }

func testBroker(t *testing.T) *broker.Broker {
	t.Helper()
	b := broker.New(broker.Options{})
	t.Cleanup(b.Close)
	if err := b.AddAccount("task", testSource{}); err != nil {
		t.Fatal(err)
	}
	return b
}

var quiet = slog.New(slog.DiscardHandler)

func TestToolsEnvAndFiles(t *testing.T) {
	home := t.TempDir()
	parent := []string{"HOME=" + home, "PATH=/usr/bin:/bin", "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=user.name", "GIT_CONFIG_VALUE_0=Outer"}
	s, err := Start(t.Context(), Config{
		Broker:    testBroker(t),
		Scopes:    []string{"https://www.googleapis.com/auth/cloud-platform"},
		Frontends: Frontends{LocalAuth: true, Git: true, Docker: true, Firebase: true},
		ParentEnv: parent,
		TempDir:   t.TempDir(),
		Logger:    quiet,
		Tools:     Tools{Executable: "/opt/credbroker", GitHosts: []string{"git.example"}, DockerRegistries: []string{"gcr.io"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	env := Env(s.Env)
	get := func(k string) string { v, _ := env.Get(k); return v }
	want := map[string]string{
		"GIT_CONFIG_COUNT":    "3",
		"GIT_CONFIG_VALUE_0":  "Outer",
		"GIT_CONFIG_KEY_1":    "credential.https://git.example.helper",
		"GIT_CONFIG_VALUE_1":  "",
		"GIT_CONFIG_VALUE_2":  "!'/opt/credbroker' git-credential --host 'git.example'",
		"GIT_TERMINAL_PROMPT": "0",
		"DOCKER_CONFIG":       filepath.Join(s.Dir, "docker"),
		"PATH":                filepath.Join(s.Dir, "bin") + ":/usr/bin:/bin",
	}
	for k, v := range want {
		if got := get(k); got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	if !strings.HasPrefix(get(firebase.EnvTokenURL), "http://127.0.0.1:") || len(get(firebase.EnvToken)) < 40 {
		t.Errorf("firebase variables: %q %q", get(firebase.EnvTokenURL), get(firebase.EnvToken))
	}
	var names []string
	for _, ep := range s.Endpoints {
		names = append(names, ep.Name)
	}
	if fmt.Sprint(names) != "[local_auth firebase]" || fmt.Sprint(s.Helpers) != "[git docker]" {
		t.Errorf("endpoints %v, helpers %v", names, s.Helpers)
	}
	data, err := os.ReadFile(filepath.Join(s.Dir, "docker", "config.json"))
	var cfg struct{ CredHelpers map[string]string }
	if err != nil || json.Unmarshal(data, &cfg) != nil || fmt.Sprint(cfg.CredHelpers) != "map[gcr.io:credbroker]" {
		t.Errorf("config.json %s %v", data, err)
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Errorf("files made in HOME: %v", entries)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("session directory left: %v", err)
	}
}

func TestToolsNeedLocalAuth(t *testing.T) {
	s, err := Start(t.Context(), Config{
		Broker:    testBroker(t),
		Frontends: Frontends{Git: true, Docker: true},
		ParentEnv: []string{"PATH=/bin"},
		TempDir:   t.TempDir(),
		Logger:    quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Endpoints) != 0 || len(s.Helpers) != 0 || fmt.Sprint(s.Env) != "[PATH=/bin]" {
		t.Errorf("without local_auth: endpoints %v, helpers %v, env %v", s.Endpoints, s.Helpers, s.Env)
	}
}

func TestAnonymousSession(t *testing.T) {
	tmp := t.TempDir()
	s, err := Start(t.Context(), Config{
		Anonymous: true,
		ParentEnv: []string{"PATH=/bin", "GOOGLE_APPLICATION_CREDENTIALS=/k.json", "DEVSHELL_CLIENT_PORT=1", "FIREBASE_TOKEN=x", "BOTO_PATH=/b"},
		TempDir:   tmp,
		Logger:    quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Anonymous || len(s.Endpoints) != 0 || s.LocalAuth != nil {
		t.Errorf("anonymous session %+v", s)
	}
	want := fmt.Sprint([]string{"PATH=/bin", "BOTO_CONFIG=", "CLOUDSDK_CONFIG=" + filepath.Join(s.Dir, "gcloud")})
	if fmt.Sprint(s.Env) != want {
		t.Errorf("env %v\nwant %v", s.Env, want)
	}
	s.Close()
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}
