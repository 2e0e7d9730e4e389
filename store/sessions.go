package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The daemon's session records, in the auth_token table, and its small
// named values, in the setting table. Queries are written once with ?
// placeholders; q adapts them to PostgreSQL.

const columns = `public_id, hash, ciphertext, owner_uid, status, reason, create_time, update_time, expiration_time, last_access_time, stale_after, data`

// Insert adds a record; its public id and hash must be new.
func (db *DB) Insert(ctx context.Context, r Record) error {
	_, err := db.db.ExecContext(ctx, db.q(`INSERT INTO auth_token (`+columns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.PublicID, r.Hash, r.Ciphertext, r.OwnerUID, r.Status, r.Reason,
		nanos(r.CreateTime), nanos(r.UpdateTime), nanos(r.ExpirationTime), nanos(r.LastAccessTime),
		int64(r.StaleAfter), r.Data)
	if err != nil {
		return fmt.Errorf("store: insert %s: %w", r.PublicID, err)
	}
	return nil
}

// Get returns the record with publicID.
func (db *DB) Get(ctx context.Context, publicID string) (Record, error) {
	return db.one(ctx, `SELECT `+columns+` FROM auth_token WHERE public_id = ?`, publicID)
}

// GetByHash returns the record whose token hashes to hash.
func (db *DB) GetByHash(ctx context.Context, hash string) (Record, error) {
	return db.one(ctx, `SELECT `+columns+` FROM auth_token WHERE hash = ?`, hash)
}

func (db *DB) one(ctx context.Context, query string, arg any) (Record, error) {
	r, err := scan(db.db.QueryRowContext(ctx, db.q(query), arg))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("store: %w", err)
	}
	return r, nil
}

// List returns the records f selects, oldest first.
func (db *DB) List(ctx context.Context, f Filter) ([]Record, error) {
	var where []string
	var args []any
	if len(f.Statuses) > 0 {
		where = append(where, `status IN (?`+strings.Repeat(`, ?`, len(f.Statuses)-1)+`)`)
		for _, st := range f.Statuses {
			args = append(args, st)
		}
	}
	if f.OwnerUID != nil {
		where = append(where, `owner_uid = ?`)
		args = append(args, *f.OwnerUID)
	}
	q := `SELECT ` + columns + ` FROM auth_token`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY create_time, public_id`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := db.db.QueryContext(ctx, db.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SetStatus applies t if the record's status is one of t.From.
func (db *DB) SetStatus(ctx context.Context, publicID string, t Transition) (bool, error) {
	if len(t.From) == 0 {
		return false, errors.New("store: a transition needs at least one From status")
	}
	q := `UPDATE auth_token SET status = ?, reason = ?, update_time = ?, data = COALESCE(?, data) WHERE public_id = ? AND status IN (?` + strings.Repeat(`, ?`, len(t.From)-1) + `)`
	args := []any{t.To, t.Reason, nanos(t.Now), t.Data, publicID}
	for _, f := range t.From {
		args = append(args, f)
	}
	res, err := db.db.ExecContext(ctx, db.q(q), args...)
	if err != nil {
		return false, fmt.Errorf("store: set status of %s: %w", publicID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Touch records a use of the session.
func (db *DB) Touch(ctx context.Context, publicID string, at time.Time) error {
	_, err := db.db.ExecContext(ctx, db.q(`UPDATE auth_token SET last_access_time = ? WHERE public_id = ?`), nanos(at), publicID)
	if err != nil {
		return fmt.Errorf("store: touch %s: %w", publicID, err)
	}
	return nil
}

// Delete removes the record with publicID.
func (db *DB) Delete(ctx context.Context, publicID string) (int, error) {
	res, err := db.db.ExecContext(ctx, db.q(`DELETE FROM auth_token WHERE public_id = ?`), publicID)
	if err != nil {
		return 0, fmt.Errorf("store: delete %s: %w", publicID, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// Setting returns a named value, or ErrNotFound.
func (db *DB) Setting(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := db.db.QueryRowContext(ctx, db.q(`SELECT value FROM setting WHERE name = ?`), name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: setting %s: %w", name, err)
	}
	return v, nil
}

// PutSetting sets a named value.
func (db *DB) PutSetting(ctx context.Context, name string, value []byte) error {
	_, err := db.db.ExecContext(ctx, db.q(`INSERT INTO setting (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`), name, value)
	if err != nil {
		return fmt.Errorf("store: put setting %s: %w", name, err)
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

func scan(row scanner) (Record, error) {
	var r Record
	var created, updated, expires, accessed, stale int64
	err := row.Scan(&r.PublicID, &r.Hash, &r.Ciphertext, &r.OwnerUID, &r.Status, &r.Reason,
		&created, &updated, &expires, &accessed, &stale, &r.Data)
	r.CreateTime, r.UpdateTime = fromNanos(created), fromNanos(updated)
	r.ExpirationTime, r.LastAccessTime = fromNanos(expires), fromNanos(accessed)
	r.StaleAfter = time.Duration(stale)
	return r, err
}

// Times are stored as Unix nanoseconds in UTC; zero means unset.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
