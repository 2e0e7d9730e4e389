package fakegoogle

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// assertion is a parsed, not yet verified, compact RS256 JWS.
type assertion struct {
	kid          string
	claims       assertionClaims
	signingInput string
	signature    []byte
}

// parseAssertion splits and decodes a JWT-bearer assertion. It is checked
// by hand rather than with a JOSE library because Google accepts base64
// padding in the segments, and older google-auth releases (Debian's
// python3-google-auth) send it; the signature covers the segments exactly
// as sent, padding included.
func parseAssertion(compact string) (*assertion, error) {
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := decodeSegment(parts[0], &header); err != nil || header.Alg != "RS256" {
		return nil, errors.New("bad header")
	}
	a := &assertion{kid: header.Kid, signingInput: parts[0] + "." + parts[1]}
	if err := decodeSegment(parts[1], &a.claims); err != nil {
		return nil, errors.New("bad claims")
	}
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "="))
	if err != nil {
		return nil, errors.New("bad signature encoding")
	}
	a.signature = sig
	return a, nil
}

func decodeSegment(seg string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// verify checks the RS256 signature with pub.
func (a *assertion) verify(pub *rsa.PublicKey) bool {
	sum := sha256.Sum256([]byte(a.signingInput))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], a.signature) == nil
}
