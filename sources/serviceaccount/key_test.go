package serviceaccount

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validKey is a key file's fields; tests change one at a time.
func validKey(t *testing.T) map[string]any {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"type":           "service_account",
		"project_id":     "proj-7",
		"private_key_id": "abc123",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   testEmail,
		"client_id":      "100000000000000000001",
		"token_uri":      "https://oauth2.googleapis.com/token",
	}
}

func pemOf(t *testing.T, typ string, der []byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestParseKey(t *testing.T) {
	base := validKey(t)
	secret := base["private_key"].(string)
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallDER, _ := x509.MarshalPKCS8PrivateKey(smallRSA)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	pkcs1 := func() string {
		block, _ := pem.Decode([]byte(secret))
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey)))
	}()
	// A PEM block whose body is not a key but has the shape of one.
	garbled := strings.Replace(secret, secret[40:60], strings.Repeat("A", 20), 1)

	with := func(field string, v any) []byte {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		if v == nil {
			delete(m, field)
		} else {
			m[field] = v
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	valid := with("type", "service_account")

	tests := []struct {
		name string
		data []byte
		want string // "" for success
	}{
		{"valid", valid, ""},
		{"PKCS#1 key", with("private_key", pkcs1), ""},
		{"no token_uri uses Google's", with("token_uri", nil), ""},
		{"loopback http token_uri", with("token_uri", "http://127.0.0.1:8080/token"), ""},
		{"empty", nil, "not valid JSON (syntax error at byte 0)"},
		{"truncated", valid[:len(valid)/2], "not valid JSON (syntax error at byte"},
		{"JSON array", []byte(`[1,2]`), "not a JSON object"},
		{"number field", with("private_key", 5), `field "private_key" must be a string`},
		{"no type", with("type", nil), `field "type" is missing (want "service_account")`},
		{"user credential", with("type", "authorized_user"), `field "type" is "authorized_user", not "service_account"`},
		{"no client_email", with("client_email", nil), `field "client_email" is missing`},
		{"no private_key", with("private_key", nil), `field "private_key" is missing`},
		{"private_key not PEM", with("private_key", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"), `field "private_key": not a PEM block`},
		{"private_key PEM of a certificate", with("private_key", pemOf(t, "CERTIFICATE", []byte{1, 2, 3})), `field "private_key": PEM block of type "CERTIFICATE", want PRIVATE KEY`},
		{"private_key garbled", with("private_key", garbled), `field "private_key": the PEM block does not hold a valid private key`},
		{"private_key EC", with("private_key", pemOf(t, "PRIVATE KEY", ecDER)), `field "private_key": not an RSA key`},
		{"private_key too small", with("private_key", pemOf(t, "PRIVATE KEY", smallDER)), `field "private_key": RSA key of 1024 bits, want at least 2048`},
		{"token_uri plain http", with("token_uri", "http://oauth2.example.com/token"), `field "token_uri": plain http is allowed only to a loopback address`},
		{"token_uri relative", with("token_uri", "/token"), `field "token_uri": not an absolute URL`},
		{"token_uri ftp", with("token_uri", "ftp://example.com/token"), `field "token_uri": scheme "ftp", want https`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "key.json")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := FromFile(path, Options{})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if s.Email() != testEmail {
					t.Errorf("email %q", s.Email())
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			wantPrefix := `service-account key file "` + path + `": bad service-account key: `
			if !strings.HasPrefix(err.Error(), wantPrefix) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q\nwant %q + ...%q", err, wantPrefix, tt.want)
			}
			if !errors.Is(err, ErrBadKey) {
				t.Error("error does not wrap ErrBadKey")
			}
			assertNoKeyMaterial(t, err, secret)

			// The same content given as bytes names no file.
			_, err = FromJSON(tt.data, Options{})
			if err == nil || !strings.HasPrefix(err.Error(), "service-account key: bad service-account key: ") {
				t.Errorf("FromJSON: err = %v", err)
			}
		})
	}
}

// assertNoKeyMaterial fails if err quotes any part of the PEM body.
func assertNoKeyMaterial(t *testing.T, err error, pemKey string) {
	t.Helper()
	for _, line := range strings.Split(pemKey, "\n") {
		if strings.Contains(line, "PRIVATE KEY") || len(line) < 8 {
			continue
		}
		for i := 0; i+8 <= len(line); i += 8 {
			if strings.Contains(err.Error(), line[i:i+8]) {
				t.Fatalf("error %q quotes the private key", err)
			}
		}
	}
}

func TestKeyFileProblems(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, make([]byte, maxKeyFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want string
	}{
		{"missing", filepath.Join(dir, "nope.json"), "cannot open it: no such file or directory"},
		{"directory", dir, "not a regular file"},
		{"too large", big, "larger than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromFile(tt.path, Options{})
			want := `service-account key file "` + tt.path + `": bad service-account key: ` + tt.want
			if err == nil || err.Error() != want {
				t.Errorf("err = %v\nwant %s", err, want)
			}
		})
	}
}

func TestKeyFileUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which reads files whatever their mode")
	}
	path := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(path, []byte("{}"), 0o000); err != nil {
		t.Fatal(err)
	}
	_, err := FromFile(path, Options{})
	want := `service-account key file "` + path + `": bad service-account key: cannot open it: permission denied`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}
