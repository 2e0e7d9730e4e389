package session

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"credbroker/broker"
)

type staticSource struct{}

func (staticSource) AccessToken(context.Context, []string, time.Duration) (broker.Token, error) {
	return broker.Token{Value: "tok", Expiry: time.Now().Add(time.Hour)}, nil
}

func (staticSource) IDToken(context.Context, string, time.Duration) (broker.Token, error) {
	return broker.Token{Value: "id", Expiry: time.Now().Add(time.Hour)}, nil
}

func (staticSource) Email() string { return "svc@example.com" }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startTestSession(t *testing.T, parent []string) *Session {
	t.Helper()
	b := broker.New(broker.Options{Logger: quietLogger()})
	t.Cleanup(b.Close)
	if err := b.AddAccount("task", staticSource{}); err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), Config{
		Broker:    b,
		Scopes:    []string{"scope"},
		Frontends: AllFrontends(),
		ParentEnv: parent,
		TempDir:   t.TempDir(),
		Logger:    quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCloseStopsEveryFrontendAndRemovesFiles(t *testing.T) {
	s := startTestSession(t, []string{"HOME=/nonexistent"})
	names := []string{}
	for _, ep := range s.Endpoints {
		names = append(names, ep.Name)
		c, err := net.Dial("tcp", ep.Addr)
		if err != nil {
			t.Fatalf("%s not listening: %v", ep.Name, err)
		}
		c.Close()
	}
	if want := []string{"local_auth", "gcemeta", "devshell", "gsutil"}; !slices.Equal(names, want) {
		t.Errorf("endpoints %v, want %v", names, want)
	}
	if st, err := os.Stat(s.Dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("session dir: %v %v", st, err)
	}
	if st, err := os.Stat(s.LUCIContext); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("LUCI_CONTEXT file: %v %v", st, err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, ep := range s.Endpoints {
		if c, err := net.DialTimeout("tcp", ep.Addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Close", ep.Name)
		}
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("session dir still there: %v", err)
	}
}

func TestChildEnvironment(t *testing.T) {
	parent := []string{
		"PATH=/bin", "GOOGLE_APPLICATION_CREDENTIALS=/k.json", "NO_GCE_CHECK=True",
		"CLOUDSDK_CORE_ACCOUNT=x", "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=/t", "BOTO_PATH=/b", "HOME=/nonexistent",
	}
	s := startTestSession(t, parent)
	env := Env(s.Env)
	for _, k := range []string{"GOOGLE_APPLICATION_CREDENTIALS", "NO_GCE_CHECK", "CLOUDSDK_CORE_ACCOUNT", "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", "BOTO_PATH"} {
		if v, ok := env.Get(k); ok {
			t.Errorf("%s=%s kept", k, v)
		}
	}
	want := map[string]string{
		"PATH":                      "/bin",
		"LUCI_CONTEXT":              s.LUCIContext,
		"METADATA_SERVER_DETECTION": "assume-present",
		"CLOUDSDK_CONFIG":           filepath.Join(s.Dir, "gcloud"),
	}
	for k, v := range want {
		if got, _ := env.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT", "DEVSHELL_CLIENT_PORT", "BOTO_CONFIG"} {
		if v, ok := env.Get(k); !ok || v == "" {
			t.Errorf("%s not set", k)
		}
	}
}

func TestDevshellOffRemovesInheritedPort(t *testing.T) {
	env := cleanEnv([]string{"DEVSHELL_CLIENT_PORT=1234", "A=b"}, Frontends{LocalAuth: true})
	if !slices.Equal(env, []string{"A=b"}) {
		t.Errorf("env = %q", env)
	}
}

func TestEnvEdits(t *testing.T) {
	e := Env{"A=1", "B=2", "A=3"}
	e.Set("A", "4")
	e.Unset("B")
	e.Set("C", "x=y")
	if !slices.Equal(e, Env{"A=4", "C=x=y"}) {
		t.Errorf("env = %q", e)
	}
	if v, ok := e.Get("C"); !ok || v != "x=y" {
		t.Errorf("Get(C) = %q %v", v, ok)
	}
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	dead := 4000000
	for processAlive(dead) {
		dead++
	}
	paths := map[string]bool{ // name -> should survive
		fmt.Sprintf("credbroker-%d-1", dead):        false,
		fmt.Sprintf("credbroker-%d-2", os.Getpid()): true, // alive: this process
		"credbroker-notapid-3":                      true,
		"other-dir":                                 true,
	}
	for name := range paths {
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if n := RemoveStale(dir, quietLogger()); n != 1 {
		t.Errorf("removed %d, want 1", n)
	}
	for name, survive := range paths {
		_, err := os.Stat(filepath.Join(dir, name))
		if (err == nil) != survive {
			t.Errorf("%s: exists=%v, want %v", name, err == nil, survive)
		}
	}
}
