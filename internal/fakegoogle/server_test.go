package fakegoogle

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/idtoken"
)

const testEmail = "robot@proj-1.iam.gserviceaccount.com"

// clientCtx makes x/oauth2 use the fake's client, with a deadline.
func clientCtx(t *testing.T, s *Server) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return context.WithValue(ctx, oauth2.HTTPClient, s.Client())
}

func TestKeyFile(t *testing.T) {
	s := New(t)
	path := s.KeyFile(t, testEmail)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kf map[string]string
	if err := json.Unmarshal(data, &kf); err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]string{
		"type":         "service_account",
		"project_id":   "proj-1",
		"client_email": testEmail,
		"token_uri":    s.TokenURL(),
	} {
		if kf[field] != want {
			t.Errorf("%s = %q, want %q", field, kf[field], want)
		}
	}
	for _, field := range []string{"private_key_id", "private_key", "client_id", "auth_uri"} {
		if kf[field] == "" {
			t.Errorf("%s is empty", field)
		}
	}
	if !strings.HasPrefix(kf["private_key"], "-----BEGIN PRIVATE KEY-----\n") {
		t.Errorf("private_key is not PKCS#8 PEM")
	}
}

// TestAccessTokenWithOAuth2 drives the endpoint with x/oauth2's own
// service-account flow, the way Go programs use a key file.
func TestAccessTokenWithOAuth2(t *testing.T) {
	s := New(t)
	k, err := s.NewKey(testEmail)
	if err != nil {
		t.Fatal(err)
	}
	s.SetTokenLifetime(10 * time.Minute)
	cfg, err := google.JWTConfigFromJSON(k.JSON, "scope-b", "scope-a")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cfg.TokenSource(clientCtx(t, s)).Token()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "fake-at-1-") {
		t.Errorf("access token %q lacks the fake-at-1- prefix", tok.AccessToken)
	}
	if left := time.Until(tok.Expiry); left <= 9*time.Minute || left > 10*time.Minute {
		t.Errorf("token lives %v, want about 10m", left)
	}
	mints := s.Mints()
	if len(mints) != 1 {
		t.Fatalf("%d mints, want 1", len(mints))
	}
	m := mints[0]
	if m.Email != testEmail || m.KeyID != k.KeyID || !slices.Equal(m.Scopes, []string{"scope-b", "scope-a"}) || m.Token != tok.AccessToken {
		t.Errorf("mint recorded as %+v", m)
	}
}

// TestIDTokenWithIDTokenPackage drives the target_audience grant with
// google.golang.org/api/idtoken and verifies the result against JWKS.
func TestIDTokenWithIDTokenPackage(t *testing.T) {
	s := New(t)
	k, err := s.NewKey(testEmail)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := idtoken.NewTokenSource(clientCtx(t, s), "https://svc.example",
		idtoken.WithAuthCredentialsJSON(idtoken.ServiceAccount, k.JSON), idtoken.WithHTTPClient(s.Client()))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	claims := verifyIDToken(t, s, tok.AccessToken)
	if claims.Issuer != Issuer || claims.Audience != "https://svc.example" || claims.Email != testEmail ||
		!claims.EmailVerified || claims.Subject != k.ClientID || claims.Expiry-claims.IssuedAt != 3600 {
		t.Errorf("ID token claims = %+v", claims)
	}
	mints := s.Mints()
	if len(mints) != 1 || mints[0].Audience != "https://svc.example" || mints[0].Token != tok.AccessToken || mints[0].Scopes != nil {
		t.Errorf("mints = %+v", mints)
	}
}

// verifyIDToken checks tok against the JWKS the Server publishes over
// HTTP and returns its claims.
func verifyIDToken(t *testing.T, s *Server, tok string) idClaims {
	t.Helper()
	resp, err := s.Client().Get(s.CertsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", parsed.Headers[0].KeyID)
	}
	var c idClaims
	if err := parsed.Claims(keys[0].Key, &c); err != nil {
		t.Fatalf("ID token does not verify: %v", err)
	}
	return c
}

// signAssertion signs claims as key k would (kid set unless noKid).
func signAssertion(t *testing.T, priv *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: priv, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// post sends a token request and returns the status and body.
func post(t *testing.T, s *Server, form url.Values) (int, string) {
	t.Helper()
	resp, err := s.Client().PostForm(s.TokenURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestRefusals(t *testing.T) {
	s := New(t)
	k, err := s.NewKey(testEmail)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.NewKey("other@proj-1.iam.gserviceaccount.com")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	good := func() map[string]any {
		return map[string]any{"iss": testEmail, "aud": s.TokenURL(), "iat": now, "exp": now + 3600, "scope": "s"}
	}
	with := func(key string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, key)
		} else {
			c[key] = v
		}
		return c
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		body   string
	}{
		{"wrong grant", url.Values{"grant_type": {"password"}},
			400, `{"error":"unsupported_grant_type","error_description":"Invalid grant_type: password"}`},
		{"user grant from an unknown client", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}},
			401, `{"error":"invalid_client","error_description":"Unauthorized"}`},
		{"garbage assertion", url.Values{"grant_type": {JWTBearerGrant}, "assertion": {"not.a.jwt"}},
			400, `{"error":"invalid_grant","error_description":"Invalid JWT."}`},
		{"unknown kid", url.Values{"grant_type": {JWTBearerGrant}, "assertion": {signAssertion(t, k.Private, "nope", good())}},
			400, `{"error":"invalid_grant","error_description":"Invalid grant: account not found"}`},
		{"signed by another key", url.Values{"grant_type": {JWTBearerGrant}, "assertion": {signAssertion(t, other.Private, k.KeyID, good())}},
			400, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`},
		{"iss of another account", url.Values{"grant_type": {JWTBearerGrant}, "assertion": {signAssertion(t, k.Private, k.KeyID, with("iss", other.Email))}},
			400, `{"error":"invalid_grant","error_description":"Invalid JWT: iss does not match the key's client_email."}`},
		{"wrong aud", url.Values{"grant_type": {JWTBearerGrant}, "assertion": {signAssertion(t, k.Private, k.KeyID, with("aud", "https://oauth2.googleapis.com/token"))}},
			400, `{"error":"invalid_grant","error_description":"Invalid JWT: aud must be the token endpoint."}`},
		{"expired", url.Values{"grant_type": {JWTBearerGrant}, "assertion": {signAssertion(t, k.Private, k.KeyID, with("exp", now-10))}},
			400, `{"error":"invalid_grant","error_description":"Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."}`},
		{"too long", url.Values{"grant_type": {JWTBearerGrant}, "assertion": {signAssertion(t, k.Private, k.KeyID, with("exp", now+7200))}},
			400, `{"error":"invalid_grant","error_description":"Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."}`},
		{"no iat", url.Values{"grant_type": {JWTBearerGrant}, "assertion": {signAssertion(t, k.Private, k.KeyID, with("iat", nil))}},
			400, `{"error":"invalid_grant","error_description":"Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."}`},
		{"no scope", url.Values{"grant_type": {JWTBearerGrant}, "assertion": {signAssertion(t, k.Private, k.KeyID, with("scope", nil))}},
			400, `{"error":"invalid_scope","error_description":"Empty or missing scope not allowed."}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, s, tt.form)
			if status != tt.status || body != tt.body {
				t.Errorf("got %d %s\nwant %d %s", status, body, tt.status, tt.body)
			}
		})
	}
	if n := len(s.Mints()); n != 0 {
		t.Errorf("%d mints after refusals only", n)
	}
	if n := s.Requests(); n != len(tests) {
		t.Errorf("Requests() = %d, want %d", n, len(tests))
	}
}

// TestNoKidFallsBackToEmail covers clients that leave kid out.
func TestNoKidFallsBackToEmail(t *testing.T) {
	s := New(t)
	k, err := s.NewKey(testEmail)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	a := signAssertion(t, k.Private, "", map[string]any{"iss": testEmail, "aud": s.TokenURL(), "iat": now, "exp": now + 60, "target_audience": "aud-1"})
	status, body := post(t, s, url.Values{"grant_type": {JWTBearerGrant}, "assertion": {a}})
	if status != 200 || !strings.HasPrefix(body, `{"id_token":"`) {
		t.Fatalf("got %d %s", status, body)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name       string
		fault      Fault
		status     int
		body       string
		retryAfter string
	}{
		{"400 default", Fault{Status: 400},
			400, `{"error":"invalid_grant","error_description":"Bad Request"}`, ""},
		{"400 custom", Fault{Status: 400, Description: "Account disabled."},
			400, `{"error":"invalid_grant","error_description":"Account disabled."}`, ""},
		{"403 custom code", Fault{Status: 403, Error: "access_denied", Description: "Nope."},
			403, `{"error":"access_denied","error_description":"Nope."}`, ""},
		{"500", Fault{Status: 500},
			500, `{"error":"internal_failure","error_description":"Internal Server Error"}`, ""},
		{"429 with Retry-After", Fault{Status: 429, RetryAfter: 1500 * time.Millisecond},
			429, `{"error":"rate_limit_exceeded","error_description":"Too Many Requests"}`, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			s.SetFault(tt.fault)
			resp, err := s.Client().PostForm(s.TokenURL(), url.Values{"grant_type": {JWTBearerGrant}})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || string(body) != tt.body || resp.Header.Get("Retry-After") != tt.retryAfter {
				t.Errorf("got %d %s (Retry-After %q)\nwant %d %s (Retry-After %q)",
					resp.StatusCode, body, resp.Header.Get("Retry-After"), tt.status, tt.body, tt.retryAfter)
			}
		})
	}
}

// TestFaultTimes checks that a counted fault ends by itself.
func TestFaultTimes(t *testing.T) {
	s := New(t)
	k, err := s.NewKey(testEmail)
	if err != nil {
		t.Fatal(err)
	}
	s.SetFault(Fault{Status: 503, Times: 2})
	cfg, err := google.JWTConfigFromJSON(k.JSON, "s")
	if err != nil {
		t.Fatal(err)
	}
	for i, wantOK := range []bool{false, false, true} {
		_, err := cfg.TokenSource(clientCtx(t, s)).Token()
		if (err == nil) != wantOK {
			t.Errorf("request %d: err = %v, want success %v", i, err, wantOK)
		}
	}
}

// TestHang checks that a hung request ends with the client's deadline and
// that Close does not wait for hung requests.
func TestHang(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	s.SetFault(Fault{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.TokenURL(), strings.NewReader("grant_type=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := s.Client().Do(req); err == nil {
		t.Fatal("hung request returned")
	}

	// A second hung request, still open when the Server closes.
	started := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("POST", s.TokenURL(), strings.NewReader("grant_type=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		close(started)
		_, err := s.Client().Do(req)
		errc <- err
	}()
	<-started
	for s.Requests() < 2 {
		time.Sleep(time.Millisecond) // waiting for the request to arrive; there is no event to wait on
	}
	s.Close()
	s.Close()
	if err := <-errc; err == nil {
		t.Error("request hung across Close got an answer")
	}
}

func TestJWKS(t *testing.T) {
	s := New(t)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].Algorithm != "RS256" || set.Keys[0].KeyID == "" || !set.Keys[0].IsPublic() {
		t.Errorf("JWKS = %s", s.JWKS())
	}
}

// TestPaddedAssertion checks that base64 padding in every segment is
// accepted, with the signature over the segments as sent, as Google does
// for older google-auth releases.
func TestPaddedAssertion(t *testing.T) {
	s := New(t)
	k, err := s.NewKey(testEmail)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	header := `{"alg":"RS256","typ":"JWT","kid":"` + k.KeyID + `"}`
	payload := `{"iss":"` + testEmail + `","aud":"` + s.TokenURL() + `","iat":` + strconv.FormatInt(now, 10) + `,"exp":` + strconv.FormatInt(now+60, 10) + `,"scope":"s"}`
	for len(payload)%3 == 0 {
		payload += " " // make sure the payload segment needs padding
	}
	input := base64.URLEncoding.EncodeToString([]byte(header)) + "." + base64.URLEncoding.EncodeToString([]byte(payload))
	if !strings.Contains(input, "=") {
		t.Fatal("test assertion has no padding")
	}
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.Private, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	a := input + "." + base64.URLEncoding.EncodeToString(sig)
	status, body := post(t, s, url.Values{"grant_type": {JWTBearerGrant}, "assertion": {a}})
	if status != 200 || !strings.HasPrefix(body, `{"access_token":"fake-at-1-`) {
		t.Fatalf("got %d %s", status, body)
	}
}
