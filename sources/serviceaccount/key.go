package serviceaccount

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
)

// DefaultTokenURI is used when a key has no token_uri.
const DefaultTokenURI = "https://oauth2.googleapis.com/token"

// maxKeyFileSize bounds what is read from a key file; real ones are ~2.3 KiB.
const maxKeyFileSize = 64 << 10

// ErrBadKey is wrapped by every error about the key itself.
var ErrBadKey = errors.New("bad service-account key")

// key is a parsed service-account key.
type key struct {
	email     string
	keyID     string
	projectID string
	tokenURI  string
	private   *rsa.PrivateKey
}

// keyFile is the part of the key file the Source uses.
type keyFile struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
}

// keyErrorf formats an error about the key named by where. The arguments
// must never include key material.
func keyErrorf(where, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", where, ErrBadKey, fmt.Sprintf(format, args...))
}

// readKeyFile reads a key file, refusing what cannot be one.
func readKeyFile(path string) ([]byte, error) {
	where := fmt.Sprintf("service-account key file %q", path)
	// Checked before opening too: opening a FIFO would block until a
	// writer comes.
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, keyErrorf(where, "not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, keyErrorf(where, "cannot open it: %v", unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, keyErrorf(where, "cannot read it: %v", unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, keyErrorf(where, "not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, keyErrorf(where, "cannot read it: %v", unwrapPath(err))
	}
	if len(data) > maxKeyFileSize {
		return nil, keyErrorf(where, "larger than %d bytes", maxKeyFileSize)
	}
	return data, nil
}

// unwrapPath drops the path an *os.PathError repeats.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseKey parses a key file's content. where names it in errors.
func parseKey(data []byte, where string) (*key, error) {
	var kf keyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		// The decoder's own messages quote the offending character, which
		// may be part of the key: report only where it went wrong.
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return nil, keyErrorf(where, "not valid JSON (syntax error at byte %d)", syn.Offset)
		case errors.As(err, &typ) && typ.Field != "":
			return nil, keyErrorf(where, "field %q must be a string", typ.Field)
		default:
			return nil, keyErrorf(where, "not a JSON object")
		}
	}
	switch kf.Type {
	case "service_account":
	case "":
		return nil, keyErrorf(where, `field "type" is missing (want "service_account")`)
	default:
		t := kf.Type
		if len(t) > 40 {
			t = t[:40] + "..."
		}
		return nil, keyErrorf(where, `field "type" is %q, not "service_account"`, t)
	}
	if kf.ClientEmail == "" {
		return nil, keyErrorf(where, `field "client_email" is missing`)
	}
	if kf.PrivateKey == "" {
		return nil, keyErrorf(where, `field "private_key" is missing`)
	}
	priv, err := parsePrivateKey(kf.PrivateKey)
	if err != nil {
		return nil, keyErrorf(where, `field "private_key": %v`, err)
	}
	if kf.TokenURI == "" {
		kf.TokenURI = DefaultTokenURI
	}
	if err := checkTokenURI(kf.TokenURI); err != nil {
		return nil, keyErrorf(where, `field "token_uri": %v`, err)
	}
	return &key{
		email:     kf.ClientEmail,
		keyID:     kf.PrivateKeyID,
		projectID: kf.ProjectID,
		tokenURI:  kf.TokenURI,
		private:   priv,
	}, nil
}

// parsePrivateKey reads an RSA key in PKCS#8 (what Google issues) or
// PKCS#1 PEM. Its errors never quote the input or the parser's detail.
func parsePrivateKey(s string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not a PEM block")
	}
	var (
		parsed any
		err    error
	)
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block of type %q, want PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, errors.New("the PEM block does not hold a valid private key")
	}
	priv, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	if priv.N.BitLen() < 2048 {
		return nil, fmt.Errorf("RSA key of %d bits, want at least 2048", priv.N.BitLen())
	}
	return priv, nil
}

// checkTokenURI refuses endpoints an assertion must not be sent to: the
// assertion is a bearer credential for an hour, so it goes over TLS, or
// in clear only to this machine (test endpoints).
func checkTokenURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return errors.New("not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || strings.EqualFold(host, "localhost") {
			return nil
		}
		return errors.New("plain http is allowed only to a loopback address")
	}
	return fmt.Errorf("scheme %q, want https", u.Scheme)
}
