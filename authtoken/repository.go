package authtoken

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"sync"
	"time"

	"credbroker/store"
)

// Defaults for Options fields left zero.
const (
	DefaultTTL = 8 * time.Hour
	// DefaultPendingTimeout is how long a token may stay pending before
	// CloseExpiredPending fails it: front-ends start in well under that.
	DefaultPendingTimeout = 2 * time.Minute
	// TouchInterval is how often at most a token's last use is written.
	TouchInterval = time.Minute
	// DefaultLimit bounds List when no limit is given.
	DefaultLimit = 1000
)

// keyCheckSetting names the stored MAC that tells whether the key given
// now is the one the tokens were sealed with.
const keyCheckSetting = "authtoken.key_check"

// ErrNotFound means there is no token with the public id given.
var ErrNotFound = errors.New("authtoken: no such session")

// ErrInvalid means a presented credential is unknown, expired, stale or
// not issued. It deliberately does not say which.
var ErrInvalid = errors.New("authtoken: invalid session token")

// ErrTransition means a status change is not allowed from the token's
// current status.
var ErrTransition = errors.New("authtoken: status change not allowed")

// Options configure a Repository.
type Options struct {
	// Now is the clock; tests inject one. Defaults to time.Now.
	Now func() time.Time
	// PendingTimeout: see DefaultPendingTimeout.
	PendingTimeout time.Duration
}

// Repository manages tokens in a store. It is safe for concurrent use.
type Repository struct {
	st   store.Store
	keys *Keys
	now  func() time.Time
	opts Options

	mu      sync.Mutex
	touched map[string]time.Time // last access time written, per public id
}

// NewRepository checks that keys match the store's tokens (recording
// them on first use) and returns a Repository. A mismatch is ErrWrongKey.
func NewRepository(ctx context.Context, st store.Store, keys *Keys, opts Options) (*Repository, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PendingTimeout <= 0 {
		opts.PendingTimeout = DefaultPendingTimeout
	}
	stored, err := st.Setting(ctx, keyCheckSetting)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if err := st.PutSetting(ctx, keyCheckSetting, keys.check); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case !hmac.Equal(stored, keys.check):
		return nil, ErrWrongKey
	}
	return &Repository{st: st, keys: keys, now: opts.Now, opts: opts, touched: map[string]time.Time{}}, nil
}

// CreateOptions describe a new token.
type CreateOptions struct {
	OwnerUID int64
	// TTL is the time to live; DefaultTTL when zero.
	TTL time.Duration
	// StaleAfter is how long the token may go unused; zero means no limit.
	StaleAfter time.Duration
	Data       []byte
}

// Create stores a new pending token and returns it with its Value, the
// only time the value leaves the repository.
func (r *Repository) Create(ctx context.Context, o CreateOptions) (*Token, error) {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.StaleAfter < 0 {
		return nil, errors.New("authtoken: negative staleness")
	}
	id, err := NewPublicID()
	if err != nil {
		return nil, err
	}
	value, err := NewValue()
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	rec := store.Record{
		PublicID:       id,
		Hash:           r.keys.Hash(value),
		Ciphertext:     r.keys.Seal(id, value),
		OwnerUID:       o.OwnerUID,
		Status:         string(Pending),
		CreateTime:     now,
		UpdateTime:     now,
		ExpirationTime: now.Add(o.TTL),
		LastAccessTime: now,
		StaleAfter:     o.StaleAfter,
		Data:           o.Data,
	}
	if err := r.st.Insert(ctx, rec); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.touched[id] = now
	r.mu.Unlock()
	t := fromRecord(rec)
	t.Value = value
	return t, nil
}

// Issue moves a pending token to issued, replacing its Data when data is
// not nil.
func (r *Repository) Issue(ctx context.Context, publicID string, data []byte) error {
	return r.transition(ctx, publicID, store.Transition{From: []string{string(Pending)}, To: string(Issued), Data: data})
}

// Fail moves a pending token to failed, or to system error, with the
// reason.
func (r *Repository) Fail(ctx context.Context, publicID string, status Status, reason string) error {
	if status != Failed && status != SystemError {
		return fmt.Errorf("authtoken: %q is not a failure status", status)
	}
	return r.transition(ctx, publicID, store.Transition{From: []string{string(Pending)}, To: string(status), Reason: reason})
}

// MarkFailed fails an issued token that can no longer be served (its
// servers could not be brought back after a restart).
func (r *Repository) MarkFailed(ctx context.Context, publicID, reason string) error {
	return r.transition(ctx, publicID, store.Transition{From: []string{string(Pending), string(Issued)}, To: string(Failed), Reason: reason})
}

func (r *Repository) transition(ctx context.Context, publicID string, t store.Transition) error {
	t.Now = r.now().UTC()
	ok, err := r.st.SetStatus(ctx, publicID, t)
	if err != nil {
		return err
	}
	if !ok {
		if _, err := r.st.Get(ctx, publicID); errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		return fmt.Errorf("%w: %s to %s", ErrTransition, publicID, t.To)
	}
	return nil
}

// Lookup returns the token with publicID, without its value.
func (r *Repository) Lookup(ctx context.Context, publicID string) (*Token, error) {
	rec, err := r.st.Get(ctx, publicID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return fromRecord(rec), nil
}

// Value decrypts the secret of the token with publicID, for the daemon to
// give a restored session its secret back. It is never shown to anyone.
func (r *Repository) Value(ctx context.Context, publicID string) (string, error) {
	rec, err := r.st.Get(ctx, publicID)
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", err
	}
	v, err := r.keys.Open(rec.PublicID, rec.Ciphertext)
	if err != nil {
		return "", err
	}
	if !hmac.Equal([]byte(r.keys.Hash(v)), []byte(rec.Hash)) {
		return "", ErrWrongKey
	}
	return v, nil
}

// Validate checks a presented credential and returns its token (without
// the value). An expired or stale token is deleted and ErrInvalid
// returned; so is a token that is not issued. A valid token's last use is
// written when the last write is older than TouchInterval.
func (r *Repository) Validate(ctx context.Context, credential string) (*Token, error) {
	id, value, err := ParseCredential(credential)
	if err != nil {
		return nil, ErrInvalid
	}
	rec, err := r.st.GetByHash(ctx, r.keys.Hash(value))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, err
	}
	// The hash matched, so the value is right; the id must match too (a
	// constant-time compare is not needed: ids are public).
	if rec.PublicID != id || rec.Status != string(Issued) {
		return nil, ErrInvalid
	}
	now := r.now()
	if r.expired(rec, now) {
		if _, err := r.Delete(ctx, rec.PublicID); err != nil {
			return nil, err
		}
		return nil, ErrInvalid
	}
	if err := r.touch(ctx, rec.PublicID, rec.LastAccessTime, now); err != nil {
		return nil, err
	}
	return fromRecord(rec), nil
}

// Touch records a use of an issued token (a request to one of its
// servers); it writes at most once per TouchInterval.
func (r *Repository) Touch(ctx context.Context, publicID string) error {
	return r.touch(ctx, publicID, time.Time{}, r.now())
}

func (r *Repository) touch(ctx context.Context, publicID string, stored, now time.Time) error {
	r.mu.Lock()
	last, ok := r.touched[publicID]
	if !ok || stored.After(last) {
		last = stored
	}
	if !last.IsZero() && now.Sub(last) < TouchInterval {
		r.mu.Unlock()
		return nil
	}
	r.touched[publicID] = now
	r.mu.Unlock()
	return r.st.Touch(ctx, publicID, now.UTC())
}

func (r *Repository) expired(rec store.Record, now time.Time) bool {
	if !now.Before(rec.ExpirationTime) {
		return true
	}
	if rec.StaleAfter > 0 {
		last := rec.LastAccessTime
		r.mu.Lock()
		if t, ok := r.touched[rec.PublicID]; ok && t.After(last) {
			last = t
		}
		r.mu.Unlock()
		return !now.Before(last.Add(rec.StaleAfter))
	}
	return false
}

// Expired reports whether t has passed its time to live or staleness
// limit at the repository's current time.
func (r *Repository) Expired(t *Token) bool {
	return r.expired(store.Record{PublicID: t.PublicID, ExpirationTime: t.ExpirationTime, LastAccessTime: t.LastAccessTime, StaleAfter: t.StaleAfter}, r.now())
}

// Delete removes the token with publicID and returns how many were
// removed.
func (r *Repository) Delete(ctx context.Context, publicID string) (int, error) {
	r.mu.Lock()
	delete(r.touched, publicID)
	r.mu.Unlock()
	return r.st.Delete(ctx, publicID)
}

// ListOptions filter List.
type ListOptions struct {
	Statuses []Status
	OwnerUID *int64
	// Limit bounds the result: zero means DefaultLimit, negative no limit.
	Limit int
}

// List returns tokens, oldest first, without their values.
func (r *Repository) List(ctx context.Context, o ListOptions) ([]*Token, error) {
	f := store.Filter{OwnerUID: o.OwnerUID, Limit: o.Limit}
	if f.Limit == 0 {
		f.Limit = DefaultLimit
	}
	for _, s := range o.Statuses {
		f.Statuses = append(f.Statuses, string(s))
	}
	recs, err := r.st.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]*Token, len(recs))
	for i, rec := range recs {
		out[i] = fromRecord(rec)
	}
	return out, nil
}

// CloseExpiredPending fails the pending tokens older than the pending
// timeout or past their expiry, and returns how many it closed. Call it
// from a ticker.
func (r *Repository) CloseExpiredPending(ctx context.Context) (int, error) {
	pending, err := r.List(ctx, ListOptions{Statuses: []Status{Pending}, Limit: -1})
	if err != nil {
		return 0, err
	}
	now := r.now()
	n := 0
	for _, t := range pending {
		if now.Sub(t.CreateTime) < r.opts.PendingTimeout && now.Before(t.ExpirationTime) {
			continue
		}
		err := r.Fail(ctx, t.PublicID, Failed, "pending for too long")
		if errors.Is(err, ErrTransition) || errors.Is(err, ErrNotFound) {
			continue // issued or removed meanwhile
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// DeleteExpired deletes issued tokens past their time to live or
// staleness limit and returns their public ids, so the caller can close
// their sessions.
func (r *Repository) DeleteExpired(ctx context.Context) ([]string, error) {
	issued, err := r.List(ctx, ListOptions{Statuses: []Status{Issued}, Limit: -1})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, t := range issued {
		if !r.Expired(t) {
			continue
		}
		if _, err := r.Delete(ctx, t.PublicID); err != nil {
			return ids, err
		}
		ids = append(ids, t.PublicID)
	}
	return ids, nil
}

func fromRecord(rec store.Record) *Token {
	return &Token{
		PublicID:       rec.PublicID,
		OwnerUID:       rec.OwnerUID,
		Status:         Status(rec.Status),
		Reason:         rec.Reason,
		CreateTime:     rec.CreateTime,
		UpdateTime:     rec.UpdateTime,
		ExpirationTime: rec.ExpirationTime,
		LastAccessTime: rec.LastAccessTime,
		StaleAfter:     rec.StaleAfter,
		Data:           rec.Data,
	}
}
