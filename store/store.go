package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when no record has the id or hash asked for.
var ErrNotFound = errors.New("store: not found")

// Record is one session token as stored.
type Record struct {
	PublicID string
	// Hash is the keyed hash of the token value, for lookup.
	Hash string
	// Ciphertext is the token value sealed with the daemon's key.
	Ciphertext []byte
	// OwnerUID is the uid of the user the session belongs to.
	OwnerUID int64
	Status   string
	// Reason says why a session failed; empty otherwise.
	Reason string

	CreateTime     time.Time
	UpdateTime     time.Time
	ExpirationTime time.Time
	// LastAccessTime is approximate: it is written at most once a minute.
	LastAccessTime time.Time
	// StaleAfter is how long the session may go unused; zero means forever.
	StaleAfter time.Duration

	// Data is the owner's description of the session (accounts,
	// front-ends, ports, environment), opaque to the store. Never secret.
	Data []byte
}

// Filter selects records for List. Zero fields select everything.
type Filter struct {
	Statuses []string
	OwnerUID *int64
	// Limit bounds the result; zero or less means no limit.
	Limit int
}

// Transition is a conditional status change: it applies only while the
// record's status is one of From.
type Transition struct {
	From   []string
	To     string
	Reason string
	// Data, when not nil, replaces the record's Data.
	Data []byte
	Now  time.Time
}

// Store keeps session records. Implementations are safe for concurrent use.
type Store interface {
	Insert(ctx context.Context, r Record) error
	Get(ctx context.Context, publicID string) (Record, error)
	GetByHash(ctx context.Context, hash string) (Record, error)
	// List returns matching records, oldest first.
	List(ctx context.Context, f Filter) ([]Record, error)
	// SetStatus applies t and reports whether the record was in one of
	// t.From (false, nil when it was not, or does not exist).
	SetStatus(ctx context.Context, publicID string, t Transition) (bool, error)
	// Touch sets the last access time.
	Touch(ctx context.Context, publicID string, at time.Time) error
	// Delete removes a record and returns how many were removed (0 or 1).
	Delete(ctx context.Context, publicID string) (int, error)
	// Setting and PutSetting keep small named values, such as the check
	// that the daemon's key is the one the records were sealed with.
	Setting(ctx context.Context, name string) ([]byte, error)
	PutSetting(ctx context.Context, name string, value []byte) error
	Close() error
}
