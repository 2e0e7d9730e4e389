package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clientEnv switches the test binary into a tiny client that connects to
// the address in the variable ("unix:PATH" or "tcp:HOST:PORT"), sends the
// request in clientEnv_REQUEST and prints the answer. The other-user
// tests run it under another uid.
const clientEnv = "DAEMON_TEST_CLIENT"

func TestMain(m *testing.M) {
	if addr := os.Getenv(clientEnv); addr != "" {
		os.Exit(rawClient(addr, os.Getenv(clientEnv+"_REQUEST")))
	}
	os.Exit(m.Run())
}

func rawClient(addr, req string) int {
	network, address, _ := strings.Cut(addr, ":")
	c, err := net.DialTimeout(network, address, 10*time.Second)
	if err != nil {
		fmt.Printf("dial error: %v", err)
		return 0
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, req)
	// A refused connection may end in a reset rather than an orderly
	// close; either way the answer is what arrived before it.
	if _, err := io.Copy(os.Stdout, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

const nobody = 65534

// clientBinary copies the test binary where any uid can run it.
func clientBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "daemon-peer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "client")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func runAs(t *testing.T, bin string, uid uint32, addr, req string) string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = []string{clientEnv + "=" + addr, clientEnv + "_REQUEST=" + req}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client as uid %d: %v: %s", uid, err, stderr.String())
	}
	return string(out)
}

// TestOtherUIDRefused runs clients as root (the session owner) and as
// nobody against the admin socket and a session's metadata and devshell
// servers.
func TestOtherUIDRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to start a client as another uid")
	}
	h := newHarness(t)
	created := h.create(t, CreateRequest{Frontends: Frontends{GCEMeta: true, Devshell: true}})
	bin := clientBinary(t)
	meta := envOf(created, "GCE_METADATA_HOST")
	metaReq := fmt.Sprintf(metaTokenRequest[:len(metaTokenRequest)-2]+"Connection: close\r\n\r\n", meta)
	devshell := "127.0.0.1:" + envOf(created, "DEVSHELL_CLIENT_PORT")
	const adminReq = "GET /v1/status HTTP/1.1\r\nHost: credbroker\r\nConnection: close\r\n\r\n"

	// The runtime directory keeps other users from the socket at all.
	if got := runAs(t, bin, nobody, "unix:"+h.paths.Socket(), adminReq); !strings.Contains(got, "permission denied") {
		t.Errorf("admin socket in its 0700 directory, as nobody: %q", got)
	}
	// Open the directory and socket to show the peer check holds alone.
	os.Chmod(filepath.Dir(h.paths.Runtime), 0o755)
	os.Chmod(h.paths.Runtime, 0o755)
	os.Chmod(h.paths.Socket(), 0o666)

	tests := []struct {
		name, addr, req string
		uid             uint32
		want, wantNot   string
	}{
		{"admin as owner", "unix:" + h.paths.Socket(), adminReq, 0, "HTTP/1.1 200 OK", ""},
		{"admin as nobody", "unix:" + h.paths.Socket(), adminReq, nobody, "", "HTTP/1.1"},
		{"metadata as owner", "tcp:" + meta, metaReq, 0, "ya29.fake", ""},
		{"metadata as nobody", "tcp:" + meta, metaReq, nobody, "403", "ya29"},
		{"devshell as owner", "tcp:" + devshell, "2\n[]", 0, "ya29.fake", ""},
		{"devshell as nobody", "tcp:" + devshell, "2\n[]", nobody, "not allowed", "ya29"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runAs(t, bin, tt.uid, tt.addr, tt.req)
			if tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("answer %q lacks %q", got, tt.want)
			}
			if tt.want == "" && got != "" {
				t.Errorf("answer %q, want the connection closed unanswered", got)
			}
			if tt.wantNot != "" && strings.Contains(got, tt.wantNot) {
				t.Errorf("answer %q contains %q", got, tt.wantNot)
			}
		})
	}
	if _, err := h.c.Status(context.Background()); err != nil {
		t.Errorf("the owner after the refusals: %v", err)
	}
}
