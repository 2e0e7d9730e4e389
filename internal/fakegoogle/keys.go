package fakegoogle

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Key is a service-account key registered with a Server.
type Key struct {
	Email     string
	KeyID     string // private_key_id, the kid of its assertions
	ClientID  string // the account's numeric id, the sub of its ID tokens
	ProjectID string
	Private   *rsa.PrivateKey
	// JSON is the key file's content, in the layout Google uses.
	JSON []byte
}

// keyFile is a service-account key file; the field order is Google's.
type keyFile struct {
	Type                    string `json:"type"`
	ProjectID               string `json:"project_id"`
	PrivateKeyID            string `json:"private_key_id"`
	PrivateKey              string `json:"private_key"`
	ClientEmail             string `json:"client_email"`
	ClientID                string `json:"client_id"`
	AuthURI                 string `json:"auth_uri"`
	TokenURI                string `json:"token_uri"`
	AuthProviderX509CertURL string `json:"auth_provider_x509_cert_url"`
	ClientX509CertURL       string `json:"client_x509_cert_url"`
	UniverseDomain          string `json:"universe_domain"`
}

// NewKey generates a fresh 2048-bit RSA key for email, registers it with
// the Server and returns it. The project id is taken from an
// *.iam.gserviceaccount.com email, "fake-project" otherwise.
func (s *Server) NewKey(email string) (*Key, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("fakegoogle: generating a key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("fakegoogle: %w", err)
	}
	project := "fake-project"
	if _, domain, ok := strings.Cut(email, "@"); ok {
		if p, ok := strings.CutSuffix(domain, ".iam.gserviceaccount.com"); ok && p != "" {
			project = p
		}
	}
	clientID, err := rand.Int(rand.Reader, new(big.Int).Exp(big.NewInt(10), big.NewInt(20), nil))
	if err != nil {
		return nil, fmt.Errorf("fakegoogle: %w", err)
	}
	k := &Key{
		Email:     email,
		KeyID:     randomHex(20),
		ClientID:  "1" + fmt.Sprintf("%020d", clientID),
		ProjectID: project,
		Private:   priv,
	}
	k.JSON, err = json.MarshalIndent(keyFile{
		Type:                    "service_account",
		ProjectID:               k.ProjectID,
		PrivateKeyID:            k.KeyID,
		PrivateKey:              string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		ClientEmail:             email,
		ClientID:                k.ClientID,
		AuthURI:                 s.URL + "/o/oauth2/auth",
		TokenURI:                s.TokenURL(),
		AuthProviderX509CertURL: s.URL + "/oauth2/v1/certs",
		ClientX509CertURL:       s.URL + "/robot/v1/metadata/x509/" + url.PathEscape(email),
		UniverseDomain:          "googleapis.com",
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("fakegoogle: %w", err)
	}
	k.JSON = append(k.JSON, '\n')
	s.mu.Lock()
	s.keys[k.KeyID] = k
	s.mu.Unlock()
	return k, nil
}

// WriteFile writes the key file into dir as <key id>.json, mode 0600,
// failing if the file exists, and returns its path.
func (k *Key) WriteFile(dir string) (string, error) {
	path := filepath.Join(dir, k.KeyID+".json")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("fakegoogle: %w", err)
	}
	if _, err := f.Write(k.JSON); err != nil {
		f.Close()
		return "", fmt.Errorf("fakegoogle: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("fakegoogle: writing %s: %w", path, err)
	}
	return path, nil
}

// KeyFile makes a new key for email and writes it into a temporary
// directory of the test, returning the file's path.
func (s *Server) KeyFile(t testing.TB, email string) string {
	t.Helper()
	k, err := s.NewKey(email)
	if err != nil {
		t.Fatal(err)
	}
	path, err := k.WriteFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path
}
