package fakegoogle

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// debianPython is the interpreter that has Debian's python3-google-auth.
const debianPython = "/usr/bin/python3"

// googleAuthScript refreshes service-account credentials with
// google-auth, the way Python programs and gcloud use a key file.
const googleAuthScript = `
import sys, json
from google.oauth2 import service_account
import google.auth.transport.requests as transport
path, kind, arg = sys.argv[1:4]
if kind == "access":
    c = service_account.Credentials.from_service_account_file(path, scopes=arg.split(","))
else:
    c = service_account.IDTokenCredentials.from_service_account_file(path, target_audience=arg)
c.refresh(transport.Request())
print(json.dumps({"token": c.token}))
`

// TestPythonGoogleAuth checks that the fake accepts the assertions
// python3-google-auth makes, for access tokens and for ID tokens.
func TestPythonGoogleAuth(t *testing.T) {
	if _, err := os.Stat(debianPython); err != nil {
		t.Skipf("%s is missing", debianPython)
	}
	if out, err := exec.Command(debianPython, "-c", "import google.oauth2.service_account, google.auth.transport.requests").CombinedOutput(); err != nil {
		t.Skipf("python3-google-auth or python3-requests is not installed: %s", out)
	}
	s := New(t)
	keyPath := s.KeyFile(t, testEmail)
	script := filepath.Join(t.TempDir(), "refresh.py")
	if err := os.WriteFile(script, []byte(googleAuthScript), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kind, arg string
	}{
		{"access", "scope-a,scope-b"},
		{"id", "https://svc.example"},
	}
	for i, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			cmd := exec.Command(debianPython, script, keyPath, tt.kind, tt.arg)
			cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1")
			out, err := cmd.Output()
			if err != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("google-auth failed: %v\n%s", err, stderr)
			}
			var got struct{ Token string }
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("bad output %q: %v", out, err)
			}
			mints := s.Mints()
			if len(mints) != i+1 {
				t.Fatalf("%d mints, want %d", len(mints), i+1)
			}
			m := mints[i]
			if m.Token != got.Token {
				t.Error("google-auth got a token the fake did not record")
			}
			if tt.kind == "access" && strings.Join(m.Scopes, ",") != tt.arg {
				t.Errorf("scopes %v, want %s", m.Scopes, tt.arg)
			}
			if tt.kind == "id" {
				if m.Audience != tt.arg {
					t.Errorf("audience %q, want %q", m.Audience, tt.arg)
				}
				verifyIDToken(t, s, got.Token)
			}
		})
	}
}
