package daemon

import (
	"context"
	"credbroker/internal/otheruser"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	otheruser.MainIfClient()
	os.Exit(m.Run())
}

// TestOtherUIDRefused runs clients as root (the session owner) and as
// nobody against the admin socket and a session's metadata and devshell
// servers.
func TestOtherUIDRefused(t *testing.T) {
	otheruser.NeedRoot(t)
	h := newHarness(t)
	created := h.create(t, CreateRequest{Frontends: Frontends{GCEMeta: true, Devshell: true}})
	bin := otheruser.Binary(t)
	meta := envOf(created, "GCE_METADATA_HOST")
	metaReq := fmt.Sprintf(metaTokenRequest[:len(metaTokenRequest)-2]+"Connection: close\r\n\r\n", meta)
	devshell := "127.0.0.1:" + envOf(created, "DEVSHELL_CLIENT_PORT")
	const adminReq = "GET /v1/status HTTP/1.1\r\nHost: credbroker\r\nConnection: close\r\n\r\n"

	// The runtime directory keeps other users from the socket at all.
	if got := otheruser.Run(t, bin, otheruser.Nobody, "unix:"+h.paths.Socket(), adminReq); !strings.Contains(got, "permission denied") {
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
		{"admin as nobody", "unix:" + h.paths.Socket(), adminReq, otheruser.Nobody, "", "HTTP/1.1"},
		{"metadata as owner", "tcp:" + meta, metaReq, 0, "ya29.fake", ""},
		{"metadata as nobody", "tcp:" + meta, metaReq, otheruser.Nobody, "403", "ya29"},
		{"devshell as owner", "tcp:" + devshell, "2\n[]", 0, "ya29.fake", ""},
		{"devshell as nobody", "tcp:" + devshell, "2\n[]", otheruser.Nobody, "not allowed", "ya29"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := otheruser.Run(t, bin, tt.uid, tt.addr, tt.req)
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
