package gsutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"credbroker/internal/fakegcs"
)

const gsutilBin = "/usr/bin/gsutil"

// runGsutil runs the installed gsutil (through gcloud's wrapper, as users
// do) with nothing but the session's environment: an empty HOME, a fresh
// CLOUDSDK_CONFIG and the variables Info asks for.
func runGsutil(t *testing.T, info Info, wrapperPasses bool, args ...string) (string, error) {
	t.Helper()
	home, cfg := t.TempDir(), t.TempDir()
	// gsutil binds Unix sockets under TMPDIR: keep the path short.
	tmp, err := os.MkdirTemp("", "gs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	env := []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + home,
		"CLOUDSDK_CONFIG=" + cfg,
		"TMPDIR=" + tmp,
		// Off GCE, gcloud's wrapper would probe for a metadata server.
		"CLOUDSDK_CORE_CHECK_GCE_METADATA=false",
		"NO_GCE_CHECK=True",
	}
	for k, v := range info.Env() {
		if k == EnvPassCredentials && wrapperPasses {
			continue
		}
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(gsutilBin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func requireGsutil(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(gsutilBin); err != nil {
		t.Skipf("gsutil (google-cloud-sdk) not installed: %v", err)
	}
	if testing.Short() {
		t.Skip("gsutil takes seconds to start; skipped in -short mode")
	}
}

// gcsEndpoint is the boto configuration that sends gsutil's JSON API to
// the fake: host and port, and the fake's certificate as trust root (the
// JSON API is always https).
func gcsEndpoint(t *testing.T, gcs *fakegcs.Server) string {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "fakegcs.pem")
	if err := os.WriteFile(ca, gcs.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	port := gcs.Listener.Addr().String()[strings.LastIndexByte(gcs.Listener.Addr().String(), ':')+1:]
	return fmt.Sprintf("[Credentials]\ngs_json_host = 127.0.0.1\ngs_json_port = %s\n\n[Boto]\nca_certificates_file = %s\n", port, ca)
}

func TestGsutilLs(t *testing.T) {
	requireGsutil(t)
	tests := []struct {
		name  string
		extra string // user configuration besides the endpoint
		// wrapperPasses leaves gcloud's wrapper in its default mode,
		// where it moves BOTO_CONFIG into BOTO_PATH and adds the gcloud
		// account's file (none here, as CLOUDSDK_CONFIG is fresh).
		wrapperPasses bool
	}{
		{"endpoint only", "", false},
		{"endpoint only, wrapper passing credentials", "", true},
		{"user config with other sections and credentials", `
# my own settings
[GSUtil]
parallel_thread_count = 2
state_dir = /nonexistent/should-not-be-used
software_update_check_period = 1

[Credentials]
gs_oauth2_refresh_token = users-own-refresh-token
gs_service_key_file = /nonexistent/key.json

[OAuth2]
provider_token_uri = https://oauth2.example.invalid/token
client_id = user-client
token_cache = in_memory

[GoogleCompute]
service_account = default

[s3]
use-sigv4 = True

[Boto]
num_retries = 2
`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gcs := fakegcs.NewTLS(map[string][]string{"bucket": {"a.txt", "dir/b.txt"}})
			defer gcs.Close()
			tokens := &fakeTokens{}
			userCfg := filepath.Join(t.TempDir(), "user.boto")
			if err := os.WriteFile(userCfg, []byte(gcsEndpoint(t, gcs)+tt.extra), 0o600); err != nil {
				t.Fatal(err)
			}
			// The user's file is found the way a session finds it: through
			// the parent's BOTO_CONFIG.
			t.Setenv("BOTO_CONFIG", userCfg)
			t.Setenv("BOTO_PATH", "")
			s := &Server{Tokens: tokens, Account: "acct", Dir: t.TempDir(), Logger: quietLogger}
			info, err := s.Start(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()

			out, err := runGsutil(t, info, tt.wrapperPasses, "ls", "gs://bucket")
			if err != nil {
				boto, _ := os.ReadFile(info.BotoPath)
				t.Fatalf("gsutil ls: %v\n%s\n.boto:\n%s", err, out, boto)
			}
			if want := "gs://bucket/a.txt\ngs://bucket/dir/\n"; out != want {
				t.Errorf("gsutil ls printed %q, want %q", out, want)
			}
			if got := gcs.Tokens(); !slices.Equal(got, []string{"tok1"}) {
				t.Errorf("fake GCS saw tokens %q, want the one the token endpoint issued", got)
			}
			if tokens.calls == 0 {
				t.Errorf("the token endpoint was never asked")
			}
		})
	}
}
