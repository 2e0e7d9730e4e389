package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"credbroker/internal/fakegcs"
	"credbroker/internal/fakegoogle"
)

// These tests run real client tools under `credbroker run` with a
// service-account key whose token endpoint is the in-test fake Google, and
// check that every token the tools print was minted there for the key.

// needTool skips the test when a client tool is not installed.
func needTool(t *testing.T, path string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s takes seconds per run; skipped with -short", path)
	}
	if _, err := exec.LookPath(path); err != nil {
		t.Skipf("%s is not installed (CI installs it): %v", path, err)
	}
}

// needPython skips unless Debian's python3 has every module named.
func needPython(t *testing.T, modules ...string) {
	t.Helper()
	needTool(t, "/usr/bin/python3")
	for _, m := range modules {
		if err := exec.Command("/usr/bin/python3", "-c", "import "+m).Run(); err != nil {
			t.Skipf("Debian python3 lacks %s (CI installs python3-google-auth, python3-oauth2client, python3-requests)", m)
		}
	}
}

// clientEnv isolates client tools from the machine's own configuration.
func clientEnv(t *testing.T) []string {
	t.Helper()
	home := t.TempDir()
	return []string{"HOME=" + home, "CLOUDSDK_CONFIG=" + filepath.Join(home, "gcloud-outer")}
}

// mintedFor returns the fake's record of tok, failing if it has none.
func mintedFor(t *testing.T, fg *fakegoogle.Server, tok string) fakegoogle.Mint {
	t.Helper()
	for _, m := range fg.Mints() {
		if m.Token == tok {
			return m
		}
	}
	t.Fatalf("token %.24q… was not minted by the fake Google endpoint", tok)
	return fakegoogle.Mint{}
}

func runClients(t *testing.T, fg *fakegoogle.Server, key string, argv ...string) []string {
	t.Helper()
	tmp := t.TempDir()
	args := append([]string{"run", "--service-account-json", key, "--"}, argv...)
	r := runBroker(t, tmp, clientEnv(t), args...)
	if r.code != 0 {
		t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", argv, r.code, r.stdout, r.stderr)
	}
	assertNoSessionFiles(t, tmp)
	return strings.Split(strings.TrimSpace(r.stdout), "\n")
}

func TestGcloudUnderRun(t *testing.T) {
	t.Parallel() // its own broker process, fake Google and directories
	needTool(t, "gcloud")
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	script := `gcloud auth print-access-token && gcloud config get-value account 2>/dev/null && ` +
		`gcloud config get-value project 2>/dev/null && gcloud auth print-identity-token --audiences=https://aud.example`
	lines := runClients(t, fg, key, "sh", "-c", script)
	if len(lines) != 4 {
		t.Fatalf("gcloud printed %d lines, want 4: %q", len(lines), lines)
	}
	if m := mintedFor(t, fg, lines[0]); m.Email != testEmail || len(m.Scopes) == 0 {
		t.Errorf("access token minted as %+v", m)
	}
	if lines[1] != testEmail {
		t.Errorf("gcloud account = %q, want %q", lines[1], testEmail)
	}
	if lines[2] != "proj" {
		t.Errorf("gcloud project = %q, want the key's project_id", lines[2])
	}
	// gcloud 528 asks a metadata server for an ID token with its own
	// OAuth client id as audience whatever --audiences says; what matters
	// is that it is a JWT minted for the key and relayed unchanged.
	m := mintedFor(t, fg, lines[3])
	if m.Email != testEmail || m.Audience == "" {
		t.Errorf("ID token minted as %+v", m)
	}
	if claims := jwtClaims(t, lines[3]); claims["email"] != testEmail || claims["aud"] != m.Audience {
		t.Errorf("ID token claims %v", claims)
	}
}

func TestPythonGoogleAuthUnderRun(t *testing.T) {
	t.Parallel() // its own broker process, fake Google and directories
	needPython(t, "google.auth", "requests")
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	script := `
import google.auth, google.auth.transport.requests as tr
creds, project = google.auth.default()
creds.refresh(tr.Request())
print(creds.token)
print(project)
print(creds.service_account_email)
`
	lines := runClients(t, fg, key, "/usr/bin/python3", "-c", script)
	if len(lines) != 3 {
		t.Fatalf("python printed %q", lines)
	}
	mintedFor(t, fg, lines[0])
	if lines[1] != "proj" || lines[2] != testEmail {
		t.Errorf("project %q, email %q", lines[1], lines[2])
	}
}

func TestPythonOAuth2ClientUnderRun(t *testing.T) {
	t.Parallel() // its own broker process, fake Google and directories
	needPython(t, "oauth2client")
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	script := `
from oauth2client.client import GoogleCredentials
creds = GoogleCredentials.get_application_default()
print(type(creds).__name__)
print(creds.get_access_token().access_token)
print(creds.service_account_email)
`
	lines := runClients(t, fg, key, "/usr/bin/python3", "-c", script)
	if len(lines) != 3 {
		t.Fatalf("python printed %q", lines)
	}
	if lines[0] != "AppAssertionCredentials" {
		t.Errorf("oauth2client chose %s, want the GCE credentials", lines[0])
	}
	mintedFor(t, fg, lines[1])
	if lines[2] != testEmail {
		t.Errorf("email %q", lines[2])
	}
}

// jwtClaims decodes a JWT's payload without verifying it (the fake's
// record already proves where the token came from).
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.20q", jwt)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestPythonDevshellUnderRun(t *testing.T) {
	t.Parallel() // its own broker process, fake Google and directories
	needPython(t, "oauth2client.contrib.devshell")
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	script := `
from oauth2client.contrib import devshell
creds = devshell.DevshellCredentials()
print(creds.user_email)
print(creds.get_access_token().access_token)
`
	lines := runClients(t, fg, key, "/usr/bin/python3", "-c", script)
	if len(lines) != 2 || lines[0] != testEmail {
		t.Fatalf("python printed %q", lines)
	}
	mintedFor(t, fg, lines[1])
}

// TestGsutilUnderRun runs the standalone gsutil with a user .boto that
// points its JSON API at a fake Cloud Storage and carries settings of its
// own; the session's .boto keeps them and adds the broker's credentials.
func TestGsutilUnderRun(t *testing.T) {
	t.Parallel() // its own broker process, fake Google and directories
	needTool(t, "gsutil")
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	gcs := fakegcs.NewTLS(map[string][]string{"bucket": {"a.txt", "dir/b.txt"}})
	t.Cleanup(gcs.Close)

	dir := t.TempDir()
	ca := filepath.Join(dir, "fakegcs.pem")
	if err := os.WriteFile(ca, gcs.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(gcs.Listener.Addr().String())
	userBoto := filepath.Join(dir, "user.boto")
	boto := fmt.Sprintf("# the user's own settings\n[Credentials]\ngs_json_host = 127.0.0.1\ngs_json_port = %s\n"+
		"gs_oauth2_refresh_token = users-own-token\n\n[Boto]\nca_certificates_file = %s\nnum_retries = 1\n\n[s3]\ncalling_format = x\n", port, ca)
	if err := os.WriteFile(userBoto, []byte(boto), 0o600); err != nil {
		t.Fatal(err)
	}
	// gsutil makes Unix sockets under TMPDIR: keep the path short.
	tmp, err := os.MkdirTemp("", "cb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	// gcloud's gsutil wrapper hands gsutil the CA file of gcloud's own
	// configuration, overriding the .boto's: point both at the fake's.
	env := append(clientEnv(t), "BOTO_CONFIG="+userBoto, "CLOUDSDK_CORE_CHECK_GCE_METADATA=false",
		"CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE="+ca)
	r := runBroker(t, tmp, env, "run", "--service-account-json", key, "--", "gsutil", "ls", "gs://bucket")
	if r.code != 0 {
		t.Fatalf("gsutil: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if want := "gs://bucket/a.txt\ngs://bucket/dir/\n"; r.stdout != want {
		t.Errorf("gsutil ls printed %q, want %q", r.stdout, want)
	}
	toks := gcs.Tokens()
	if len(toks) == 0 {
		t.Fatal("fake Cloud Storage saw no request")
	}
	for _, tok := range toks {
		if m := mintedFor(t, fg, tok); m.Email != testEmail {
			t.Errorf("storage request with a token of %s", m.Email)
		}
	}
	assertNoSessionFiles(t, tmp)
}
