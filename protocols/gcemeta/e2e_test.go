package gcemeta

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/compute/metadata"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/idtoken"

	"credbroker/broker"
)

// e2eProject is the project every end-to-end test serves: the Go
// metadata library caches the project id per process.
const (
	e2eProject        = "credbroker-e2e"
	e2eNumericProject = "4242"
	e2eEmail          = "ci@credbroker-e2e.iam.gserviceaccount.com"
	cloudPlatform     = "https://www.googleapis.com/auth/cloud-platform"
)

// testSource is an in-test credential: opaque access tokens, and ID tokens
// that are real RS256 JWTs signed with a key made for the test.
type testSource struct {
	email string
	key   *rsa.PrivateKey

	mu     sync.Mutex
	scopes [][]string
	auds   []string
}

func newTestSource(t testing.TB) *testSource {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &testSource{email: e2eEmail, key: key}
}

func (s *testSource) AccessToken(_ context.Context, scopes []string, _ time.Duration) (broker.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = append(s.scopes, slices.Clone(scopes))
	return broker.Token{
		Value:  fmt.Sprintf("ya29.test-%d", len(s.scopes)),
		Expiry: time.Now().Add(time.Hour),
	}, nil
}

func (s *testSource) IDToken(_ context.Context, audience string, _ time.Duration) (broker.Token, error) {
	s.mu.Lock()
	s.auds = append(s.auds, audience)
	s.mu.Unlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: s.key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return broker.Token{}, broker.NewFatal(err)
	}
	now := time.Now()
	exp := now.Add(time.Hour)
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer:   "https://accounts.google.com",
		Subject:  "112233445566778899",
		Audience: jwt.Audience{audience},
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(exp),
	}).Claims(map[string]any{"email": s.email, "email_verified": true}).Serialize()
	if err != nil {
		return broker.Token{}, broker.NewFatal(err)
	}
	return broker.Token{Value: raw, Expiry: exp}, nil
}

func (s *testSource) Email() string { return s.email }

func (s *testSource) seenScopes() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.scopes)
}

// idClaims checks a JWT's signature with the source's key and returns its
// claims.
func (s *testSource) idClaims(t *testing.T, raw string) (jwt.Claims, string) {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("ID token does not parse: %v", err)
	}
	var c jwt.Claims
	var extra struct {
		Email string `json:"email"`
	}
	if err := tok.Claims(&s.key.PublicKey, &c, &extra); err != nil {
		t.Fatalf("ID token signature: %v", err)
	}
	return c, extra.Email
}

// startE2E runs the server on a real broker backed by a testSource and
// points this process's Google libraries at it, with no other
// credentials to find.
func startE2E(t *testing.T, cfg ...func(*Server)) (*Server, Info, *testSource) {
	t.Helper()
	src := newTestSource(t)
	b := broker.New(broker.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(b.Close)
	if err := b.AddAccount("ci", src); err != nil {
		t.Fatal(err)
	}
	s := &Server{
		Tokens:           b,
		ProjectID:        e2eProject,
		NumericProjectID: e2eNumericProject,
		InstanceName:     "ci-vm",
		Accounts:         []Account{{ID: "ci", Email: e2eEmail, Scopes: []string{cloudPlatform}}},
		Logger:           slog.New(slog.DiscardHandler),
	}
	for _, f := range cfg {
		f(s)
	}
	info, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, kv := range info.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("CLOUDSDK_CONFIG", home)
	for _, k := range []string{"GOOGLE_APPLICATION_CREDENTIALS", "NO_GCE_CHECK"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	return s, info, src
}

func TestGoMetadataClient(t *testing.T) {
	w := &waits{fire: true}
	_, _, _ = startE2E(t, func(s *Server) { s.after = w.after })
	ctx := context.Background()
	if !metadata.OnGCE() {
		t.Fatal("OnGCE() = false")
	}
	c := metadata.NewClient(&http.Client{})
	tests := []struct {
		name string
		get  func() (any, error)
		want any
	}{
		{"ProjectID", func() (any, error) { return c.ProjectIDWithContext(ctx) }, e2eProject},
		{"NumericProjectID", func() (any, error) { return c.NumericProjectIDWithContext(ctx) }, e2eNumericProject},
		{"InstanceName", func() (any, error) { return c.InstanceNameWithContext(ctx) }, "ci-vm"},
		{"Email default", func() (any, error) { return c.EmailWithContext(ctx, "") }, e2eEmail},
		{"Email by email", func() (any, error) { return c.EmailWithContext(ctx, e2eEmail) }, e2eEmail},
		{"Scopes default", func() (any, error) { return c.ScopesWithContext(ctx, "") }, []string{cloudPlatform}},
		{"Scopes by email", func() (any, error) { return c.ScopesWithContext(ctx, e2eEmail) }, []string{cloudPlatform}},
		{"ProjectAttributes", func() (any, error) { return c.ProjectAttributesWithContext(ctx) }, []string(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.get()
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("Zone not defined", func(t *testing.T) {
		_, err := c.ZoneWithContext(ctx)
		var nd metadata.NotDefinedError
		if !errors.As(err, &nd) {
			t.Errorf("Zone: err = %v, want NotDefinedError", err)
		}
	})

	t.Run("Subscribe waits instead of spinning", func(t *testing.T) {
		errStop := errors.New("stop")
		var seen []string
		err := c.SubscribeWithContext(ctx, "instance/name", func(_ context.Context, v string, ok bool) error {
			seen = append(seen, fmt.Sprintf("%s %v", v, ok))
			if len(seen) == 2 {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("Subscribe: %v", err)
		}
		if !slices.Equal(seen, []string{"ci-vm true", "ci-vm true"}) {
			t.Errorf("values = %q", seen)
		}
		if d := w.durations(); !slices.Equal(d, []time.Duration{DefaultMaxWait}) {
			t.Errorf("waits = %v, want one of %v", d, DefaultMaxWait)
		}
	})
}

func TestOAuth2ComputeTokenSource(t *testing.T) {
	_, _, src := startE2E(t)
	tok, err := google.ComputeTokenSource("", "b", "a", "b").Token()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "ya29.test-") || tok.TokenType != "Bearer" {
		t.Errorf("token = %q type %q", tok.AccessToken, tok.TokenType)
	}
	if left := time.Until(tok.Expiry); left < 55*time.Minute {
		t.Errorf("expiry in %v, want about an hour", left)
	}
	if got := src.seenScopes(); len(got) != 1 || !slices.Equal(got[0], []string{"a", "b"}) {
		t.Errorf("source saw scopes %q, want [[a b]]", got)
	}
}

func TestOAuth2FindDefaultCredentials(t *testing.T) {
	_, _, src := startE2E(t)
	creds, err := google.FindDefaultCredentials(context.Background(), cloudPlatform)
	if err != nil {
		t.Fatal(err)
	}
	if creds.ProjectID != e2eProject {
		t.Errorf("ProjectID = %q, want %q", creds.ProjectID, e2eProject)
	}
	tok, err := creds.TokenSource.Token()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "ya29.test-") {
		t.Errorf("token = %q", tok.AccessToken)
	}
	if got := src.seenScopes(); len(got) != 1 || !slices.Equal(got[0], []string{cloudPlatform}) {
		t.Errorf("source saw scopes %q", got)
	}
	if ud, err := creds.GetUniverseDomain(); err != nil || ud != "googleapis.com" {
		t.Errorf("universe domain = %q, %v", ud, err)
	}
}

func TestIDTokenSource(t *testing.T) {
	_, _, src := startE2E(t)
	const aud = "https://svc.example/api"
	ts, err := idtoken.NewTokenSource(context.Background(), aud)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	claims, email := src.idClaims(t, tok.AccessToken)
	if !slices.Equal([]string(claims.Audience), []string{aud}) || email != e2eEmail {
		t.Errorf("aud %q email %q, want %q %q", claims.Audience, email, aud, e2eEmail)
	}
}

// pythonScript uses Debian's google-auth and oauth2client the way tools
// do: ADC discovery (ping, project), a refresh, and oauth2client's GCE
// credentials. It prints what it got as JSON.
const pythonScript = `
import json
out = {}
import google.auth
from google.auth.transport import _http_client
req = _http_client.Request()
creds, project = google.auth.default(request=req)
creds.refresh(req)
out["ga_project"] = project
out["ga_token"] = creds.token
out["ga_email"] = creds.service_account_email
out["ga_valid"] = creds.valid
try:
    import oauth2client
except ImportError:
    out["o2c"] = "missing"
else:
    import httplib2
    from oauth2client.contrib.gce import AppAssertionCredentials
    from oauth2client.client import GoogleCredentials
    c = AppAssertionCredentials()
    c.refresh(httplib2.Http())
    out["o2c_token"] = c.access_token
    out["o2c_email"] = c.service_account_email
    g = GoogleCredentials.get_application_default()
    out["o2c_adc"] = type(g).__name__
print(json.dumps(out))
`

func TestPythonClients(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skipf("Debian python missing (%v): install python3-google-auth python3-oauth2client", err)
	}
	if err := exec.Command(python, "-c", "import google.auth.compute_engine").Run(); err != nil {
		t.Skipf("%s lacks google.auth (%v): apt-get install -y python3-google-auth python3-oauth2client", python, err)
	}
	_, info, src := startE2E(t)
	cmd := exec.Command(python, "-c", pythonScript)
	cmd.Env = append(os.Environ(), info.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}
	if got["ga_project"] != e2eProject || got["ga_email"] != e2eEmail || got["ga_valid"] != true ||
		!strings.HasPrefix(fmt.Sprint(got["ga_token"]), "ya29.test-") {
		t.Errorf("google-auth got %v", got)
	}
	if got["o2c"] == "missing" {
		t.Log("oauth2client not installed: its part is skipped")
	} else if got["o2c_email"] != e2eEmail || got["o2c_adc"] != "AppAssertionCredentials" ||
		!strings.HasPrefix(fmt.Sprint(got["o2c_token"]), "ya29.test-") {
		t.Errorf("oauth2client got %v", got)
	}
	for _, s := range src.seenScopes() {
		if !slices.Equal(s, []string{cloudPlatform}) {
			t.Errorf("source saw scopes %q, want the default ones", s)
		}
	}
}
