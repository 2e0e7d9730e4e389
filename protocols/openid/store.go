package openid

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// ErrNotFound is returned by a Store for a record that does not exist or
// has expired.
var ErrNotFound = errors.New("openid: no such browser session")

// ErrExists is returned by Store.Create for an ID already in use.
var ErrExists = errors.New("openid: browser session id already in use")

// Session is one browser session, or one sign-in in progress (Login).
// Records hold no secret in the clear: the ID is a hash of the reference
// the cookie carries, and the refresh token is sealed.
type Session struct {
	// ID is the key: base64url SHA-256 of the cookie's random reference,
	// or of the state for a sign-in in progress.
	ID string
	// Login marks a sign-in in progress, consumed once by the callback.
	Login bool
	// Subject, Email and Picture come from the verified ID token.
	Subject string
	Email   string
	Picture string
	// RefreshToken is the provider's refresh token sealed with the
	// server's keys (empty in local mode).
	RefreshToken []byte
	Created      time.Time
	Expires      time.Time
	LastUsed     time.Time
}

// Store keeps browser sessions. Several servers sharing one Store (a
// PostgreSQL database) serve the same signed-in browsers. Implementations
// are safe for concurrent use.
type Store interface {
	// Create adds s; ErrExists if its ID is taken.
	Create(ctx context.Context, s Session) error
	// Get returns the record with id, or ErrNotFound if there is none or
	// it expired before now.
	Get(ctx context.Context, id string, now time.Time) (Session, error)
	// Update replaces the refresh token and last-use time of the record
	// with s.ID (after the provider rotated the token); ErrNotFound if it
	// is gone.
	Update(ctx context.Context, s Session) error
	// Touch records a use of the record with id at the given time and
	// nothing else, so it never undoes a concurrent token rotation;
	// ErrNotFound if it is gone.
	Touch(ctx context.Context, id string, at time.Time) error
	// Delete removes the record with id and reports whether it was there
	// (expired or not). The report makes a sign-in usable once even when
	// two servers race on it.
	Delete(ctx context.Context, id string) (bool, error)
	// DeleteExpired removes the records that expired at or before now
	// and returns their IDs, so the server can forget the accounts of
	// the browser sessions that ended. With several servers on one
	// Store, each removed ID is returned to one of them only.
	DeleteExpired(ctx context.Context, now time.Time) ([]string, error)
}

// MemStore is a Store in memory, for local mode and tests.
type MemStore struct {
	mu   sync.Mutex
	rows map[string]Session
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{rows: map[string]Session{}} }

func (m *MemStore) Create(_ context.Context, s Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rows[s.ID]; ok {
		return ErrExists
	}
	s.RefreshToken = slices.Clone(s.RefreshToken)
	m.rows[s.ID] = s
	return nil
}

func (m *MemStore) Get(_ context.Context, id string, now time.Time) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.rows[id]
	if !ok || !now.Before(s.Expires) {
		return Session{}, ErrNotFound
	}
	s.RefreshToken = slices.Clone(s.RefreshToken)
	return s, nil
}

func (m *MemStore) Update(_ context.Context, s Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.rows[s.ID]
	if !ok {
		return ErrNotFound
	}
	old.RefreshToken = slices.Clone(s.RefreshToken)
	old.LastUsed = s.LastUsed
	m.rows[s.ID] = old
	return nil
}

func (m *MemStore) Touch(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.rows[id]
	if !ok {
		return ErrNotFound
	}
	old.LastUsed = at
	m.rows[id] = old
	return nil
}

func (m *MemStore) Delete(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.rows[id]
	delete(m.rows, id)
	return ok, nil
}

func (m *MemStore) DeleteExpired(_ context.Context, now time.Time) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id, s := range m.rows {
		if !now.Before(s.Expires) {
			ids = append(ids, id)
			delete(m.rows, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// All returns every record, for tests and the status page.
func (m *MemStore) All() []Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Session, 0, len(m.rows))
	for _, s := range m.rows {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Session) int { return a.Created.Compare(b.Created) })
	return out
}
