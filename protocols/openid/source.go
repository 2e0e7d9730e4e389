package openid

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"credbroker/broker"
)

// equalSecret compares two secrets in constant time.
func equalSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// userSource is the broker.Source of one browser session in production
// mode: it mints with the session's refresh token, read from the Store at
// each mint so that every server sharing the Store sees rotations and
// logouts at once.
type userSource struct {
	s     *Server
	id    string // Store ID of the session
	email string

	mu     sync.Mutex
	access broker.Token // from the last grant, served once if fresh enough
	idTok  broker.Token
}

func (u *userSource) Email() string { return u.email }

func (u *userSource) AccessToken(ctx context.Context, scopes []string, minLifetime time.Duration) (broker.Token, error) {
	for _, sc := range scopes {
		if !slices.Contains(u.s.scopes, sc) {
			return broker.Token{}, broker.NewFatal(fmt.Errorf("%w: scope %q was not granted at sign-in", broker.ErrNotSupported, sc))
		}
	}
	if t, ok := u.take(&u.access, minLifetime); ok {
		return t, nil
	}
	g, err := u.grant(ctx)
	if err != nil {
		return broker.Token{}, err
	}
	u.take(&u.access, 0) // being returned now; keep only the ID token
	return g.access, nil
}

func (u *userSource) IDToken(ctx context.Context, audience string, minLifetime time.Duration) (broker.Token, error) {
	if audience != u.s.OIDC.ClientID {
		return broker.Token{}, broker.NewFatal(fmt.Errorf("%w: ID tokens of a browser session are for the app's client id only", broker.ErrNotSupported))
	}
	if t, ok := u.take(&u.idTok, minLifetime); ok {
		return t, nil
	}
	g, err := u.grant(ctx)
	if err != nil {
		return broker.Token{}, err
	}
	u.take(&u.idTok, 0) // being returned now; keep only the access token
	return g.id, nil
}

// take returns and forgets a token left by the last grant when it is
// fresh enough, so one grant serves both an access and an ID token mint.
func (u *userSource) take(t *broker.Token, minLifetime time.Duration) (broker.Token, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	tok := *t
	*t = broker.Token{}
	return tok, tok.Value != "" && tok.Lifetime(u.s.now()) >= minLifetime
}

func (u *userSource) keep(g grant) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.access, u.idTok = g.access, g.id
}

// grant refreshes the session's tokens and stores a rotated refresh token.
func (u *userSource) grant(ctx context.Context) (grant, error) {
	s := u.s
	sess, err := s.Store.Get(ctx, u.id, s.now())
	if errors.Is(err, ErrNotFound) {
		return grant{}, broker.NewFatal(fmt.Errorf("%w (signed out)", errRevoked))
	}
	if err != nil {
		return grant{}, broker.Transientf("openid: session store: %v", err)
	}
	rt, err := s.keys.open(string(sess.RefreshToken), refreshAD(u.id))
	if err != nil {
		return grant{}, broker.Fatalf("openid: the session's refresh token does not open with the current keys")
	}
	g, err := s.provider.refresh(ctx, string(rt), sess.Subject)
	if err != nil {
		return grant{}, err
	}
	if g.refresh != "" {
		sess.RefreshToken = []byte(s.keys.seal([]byte(g.refresh), refreshAD(u.id)))
		sess.LastUsed = s.now()
		if err := s.Store.Update(ctx, sess); err != nil {
			return grant{}, broker.Transientf("openid: session store: %v", err)
		}
	}
	u.keep(g)
	return g, nil
}

// refreshAD binds a sealed refresh token to its session, so a row's token
// cannot be moved into another row.
func refreshAD(id string) []byte { return []byte("openid refresh token v1\x00" + id) }
