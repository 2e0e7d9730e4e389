package broker

import (
	"context"
	"time"
)

// Token is a bearer token and the moment it stops being valid. It carries
// either an OAuth access token or an OpenID Connect ID token (a JWT); which
// one depends on the call that produced it.
type Token struct {
	// Value is the token itself. It is a secret: never log it.
	Value string
	// Expiry is when the token stops being accepted. The zero value means
	// the source did not say; the broker then treats it as one hour.
	Expiry time.Time
}

// Lifetime reports how long the token has left at now.
func (t Token) Lifetime(now time.Time) time.Duration {
	return t.Expiry.Sub(now)
}

// Source mints tokens for one identity. It is the only thing a credential
// backend implements; caching, single flight and lifetime rules are the
// broker's job, so a Source may mint on every call.
//
// minLifetime is a hint: a source that can choose a token's lifetime
// should make it at least that long. Sources that cannot (most) ignore it.
//
// A Source that cannot mint what is asked (ID tokens, or scopes beyond what
// its credential allows) returns a Fatal error saying so; it never returns a
// token for other scopes or another audience silently.
type Source interface {
	// AccessToken mints an OAuth 2.0 access token for the given scopes,
	// which the broker passes sorted and de-duplicated.
	AccessToken(ctx context.Context, scopes []string, minLifetime time.Duration) (Token, error)
	// IDToken mints an OpenID Connect ID token for the given audience.
	IDToken(ctx context.Context, audience string, minLifetime time.Duration) (Token, error)
	// Email is the identity's email address, or "" if it has none.
	Email() string
}
