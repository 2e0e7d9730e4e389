package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"credbroker/protocols/openid"
)

// BrowserSessions is the openid front-end's store of browser sessions
// and sign-ins in progress, in the openid_sessions table of a DB. Brokers
// that open the same PostgreSQL database serve the same signed-in
// browsers. Get it from DB.BrowserSessions; closing the DB closes it.
//
// It is a type of its own rather than more methods of DB because the
// two interfaces share method names (Get, Touch, Delete) with different
// meanings.
type BrowserSessions struct {
	db *DB
}

var _ openid.Store = (*BrowserSessions)(nil)

// Times are stored as Unix microseconds: exact, sortable, and the same
// in both databases.
func micros(t time.Time) int64 { return t.UnixMicro() }
func fromMicros(n int64) time.Time {
	return time.UnixMicro(n)
}

// Create adds r; openid.ErrExists if its ID is taken.
func (b *BrowserSessions) Create(ctx context.Context, r openid.Session) error {
	res, err := b.db.db.ExecContext(ctx, b.db.q(`INSERT INTO openid_sessions
		(id, login, subject, email, picture, refresh_token, created, expires, last_used)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
		r.ID, r.Login, r.Subject, r.Email, r.Picture, nonNil(r.RefreshToken),
		micros(r.Created), micros(r.Expires), micros(r.LastUsed))
	if err != nil {
		return fmt.Errorf("store: browser sessions: create: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: browser sessions: create: %w", err)
	} else if n == 0 {
		return openid.ErrExists
	}
	return nil
}

// nonNil keeps an empty refresh token (local mode) within NOT NULL.
func nonNil(p []byte) []byte {
	if p == nil {
		return []byte{}
	}
	return p
}

// Get returns the record with id unless it expired at or before now.
func (b *BrowserSessions) Get(ctx context.Context, id string, now time.Time) (openid.Session, error) {
	var r openid.Session
	var created, expires, lastUsed int64
	err := b.db.db.QueryRowContext(ctx, b.db.q(`SELECT id, login, subject, email, picture, refresh_token, created, expires, last_used
		FROM openid_sessions WHERE id = ? AND expires > ?`), id, micros(now)).
		Scan(&r.ID, &r.Login, &r.Subject, &r.Email, &r.Picture, &r.RefreshToken, &created, &expires, &lastUsed)
	if errors.Is(err, sql.ErrNoRows) {
		return openid.Session{}, openid.ErrNotFound
	}
	if err != nil {
		return openid.Session{}, fmt.Errorf("store: browser sessions: get: %w", err)
	}
	if len(r.RefreshToken) == 0 {
		r.RefreshToken = nil
	}
	r.Created, r.Expires, r.LastUsed = fromMicros(created), fromMicros(expires), fromMicros(lastUsed)
	return r, nil
}

// Update replaces the refresh token and last use of the record r.ID.
func (b *BrowserSessions) Update(ctx context.Context, r openid.Session) error {
	res, err := b.db.db.ExecContext(ctx, b.db.q(`UPDATE openid_sessions SET refresh_token = ?, last_used = ? WHERE id = ?`),
		nonNil(r.RefreshToken), micros(r.LastUsed), r.ID)
	if err != nil {
		return fmt.Errorf("store: browser sessions: update: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: browser sessions: update: %w", err)
	} else if n == 0 {
		return openid.ErrNotFound
	}
	return nil
}

// Touch sets the last use of the record with id, and nothing else.
func (b *BrowserSessions) Touch(ctx context.Context, id string, at time.Time) error {
	res, err := b.db.db.ExecContext(ctx, b.db.q(`UPDATE openid_sessions SET last_used = ? WHERE id = ?`), micros(at), id)
	if err != nil {
		return fmt.Errorf("store: browser sessions: touch: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: browser sessions: touch: %w", err)
	} else if n == 0 {
		return openid.ErrNotFound
	}
	return nil
}

// Delete removes the record with id and reports whether it was there.
func (b *BrowserSessions) Delete(ctx context.Context, id string) (bool, error) {
	res, err := b.db.db.ExecContext(ctx, b.db.q(`DELETE FROM openid_sessions WHERE id = ?`), id)
	if err != nil {
		return false, fmt.Errorf("store: browser sessions: delete: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: browser sessions: delete: %w", err)
	}
	return n == 1, nil
}

// DeleteExpired removes the records that expired at or before now and
// returns their IDs, so the server can forget their accounts.
func (b *BrowserSessions) DeleteExpired(ctx context.Context, now time.Time) ([]string, error) {
	// RETURNING (PostgreSQL, and SQLite since 3.35) names exactly the rows
	// this statement removed, even when several brokers clean up at once.
	rows, err := b.db.db.QueryContext(ctx, b.db.q(`DELETE FROM openid_sessions WHERE expires <= ? RETURNING id`), micros(now))
	if err != nil {
		return nil, fmt.Errorf("store: browser sessions: delete expired: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return ids, fmt.Errorf("store: browser sessions: delete expired: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return ids, fmt.Errorf("store: browser sessions: delete expired: %w", err)
	}
	return ids, nil
}
