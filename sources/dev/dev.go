package dev

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"credbroker/broker"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The dev identity.
const (
	Email   = "dev@credbroker.local"
	Issuer  = "https://credbroker.local/dev"
	Subject = "credbroker-dev"
	// TokenPrefix starts every dev access token.
	TokenPrefix = "credbroker-dev."
	// Lifetime is how long tokens live unless a caller asks for more.
	Lifetime = time.Hour
	// maxLifetime caps what a caller's minimum lifetime can ask for.
	maxLifetime = 24 * time.Hour
)

// Options configure a Source. The zero value is usable.
type Options struct {
	// Now is the clock; tests inject one. Defaults to time.Now.
	Now func() time.Time
}

// Source is the dev identity. It is safe for concurrent use.
type Source struct {
	now func() time.Time
	// key is made on first use: an RSA key takes a good part of a second
	// to generate, and most runs never mint an ID token.
	key func() (*signingKey, error)
}

// signingKey is the per-process key of the Source's ID tokens.
type signingKey struct {
	kid    string
	signer jose.Signer
	jwks   []byte
}

var _ broker.Source = (*Source)(nil)

// New returns the dev identity. Its signing key is generated when it is
// first needed.
func New(opts Options) (*Source, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Source{now: opts.Now, key: sync.OnceValues(newSigningKey)}, nil
}

func newSigningKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("dev identity: generating the signing key: %w", err)
	}
	pub := jose.JSONWebKey{Key: &priv.PublicKey, Algorithm: string(jose.RS256), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("dev identity: %w", err)
	}
	// The RFC 7638 thumbprint names the key by its content, so a verifier
	// holding an old JWKS sees at once that the key changed.
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: priv, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("dev identity: %w", err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, fmt.Errorf("dev identity: %w", err)
	}
	return &signingKey{kid: pub.KeyID, signer: signer, jwks: jwks}, nil
}

// Email returns the dev account's email.
func (s *Source) Email() string { return Email }

// Warning is the notice to print when the dev identity is in use.
func (s *Source) Warning() string {
	return "credbroker is serving the offline dev identity " + Email + ": its tokens are not Google tokens " +
		"and no Google API accepts them; use a real credential to reach Google"
}

// Issuer returns the iss of the Source's ID tokens.
func (s *Source) Issuer() string { return Issuer }

// KeyID returns the kid of the Source's signing key ("" if it could not
// be made).
func (s *Source) KeyID() string {
	k, err := s.key()
	if err != nil {
		return ""
	}
	return k.kid
}

// JWKS returns the JSON Web Key Set (RFC 7517) that verifies the Source's
// ID tokens, for the broker to publish (nil if the key could not be made).
func (s *Source) JWKS() []byte {
	k, err := s.key()
	if err != nil {
		return nil
	}
	return slices.Clone(k.jwks)
}

func (s *Source) lifetime(minLifetime time.Duration) time.Duration {
	return min(max(Lifetime, minLifetime), maxLifetime).Truncate(time.Second)
}

// AccessToken returns a new opaque dev token; scopes are accepted as asked.
func (s *Source) AccessToken(ctx context.Context, scopes []string, minLifetime time.Duration) (broker.Token, error) {
	if len(scopes) == 0 {
		return broker.Token{}, broker.Fatalf("dev identity: no scopes requested")
	}
	b := make([]byte, 32)
	rand.Read(b)
	return broker.Token{
		Value:  TokenPrefix + base64.RawURLEncoding.EncodeToString(b),
		Expiry: s.now().Truncate(time.Second).Add(s.lifetime(minLifetime)),
	}, nil
}

// Claims are the claims of a dev ID token.
type Claims struct {
	Issuer        string `json:"iss"`
	Audience      string `json:"aud"`
	Subject       string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	IssuedAt      int64  `json:"iat"`
	Expiry        int64  `json:"exp"`
}

// IDToken returns a new dev ID token for audience.
func (s *Source) IDToken(ctx context.Context, audience string, minLifetime time.Duration) (broker.Token, error) {
	if audience == "" {
		return broker.Token{}, broker.Fatalf("dev identity: no audience requested")
	}
	key, err := s.key()
	if err != nil {
		return broker.Token{}, broker.NewFatal(err)
	}
	iat := s.now().Truncate(time.Second)
	exp := iat.Add(s.lifetime(minLifetime))
	tok, err := jwt.Signed(key.signer).Claims(Claims{
		Issuer:        Issuer,
		Audience:      audience,
		Subject:       Subject,
		Email:         Email,
		EmailVerified: true,
		IssuedAt:      iat.Unix(),
		Expiry:        exp.Unix(),
	}).Serialize()
	if err != nil {
		return broker.Token{}, broker.Fatalf("dev identity: signing an ID token: %w", err)
	}
	return broker.Token{Value: tok, Expiry: exp}, nil
}
