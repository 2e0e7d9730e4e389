package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// migrations are applied in order; an entry is never edited once
// released, only new ones appended.
var migrations = []string{
	1: `CREATE TABLE auth_token (
		public_id        TEXT PRIMARY KEY,
		hash             TEXT NOT NULL UNIQUE,
		ciphertext       BLOB NOT NULL,
		owner_uid        INTEGER NOT NULL,
		status           TEXT NOT NULL,
		reason           TEXT NOT NULL DEFAULT '',
		create_time      INTEGER NOT NULL,
		update_time      INTEGER NOT NULL,
		expiration_time  INTEGER NOT NULL,
		last_access_time INTEGER NOT NULL,
		stale_after      INTEGER NOT NULL,
		data             BLOB
	);
	CREATE INDEX auth_token_status ON auth_token (status);
	CREATE TABLE setting (name TEXT PRIMARY KEY, value BLOB NOT NULL);`,
}

// SQLite is a Store in one SQLite database file.
type SQLite struct {
	db *sql.DB
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating it 0600 if needed) the database at path and
// brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	// Create the file ourselves so it is 0600 from the start; SQLite
	// would use the umask. The -wal and -shm files SQLite makes copy the
	// main file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	f.Close()
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// One writer at a time is what SQLite does anyway; one connection
	// also keeps the pragmas uniform.
	db.SetMaxOpenConns(1)
	s := &SQLite{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// SchemaVersion returns the last migration applied.
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

func (s *SQLite) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	have, err := s.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("store: schema version: %w", err)
	}
	if have > len(migrations)-1 {
		return fmt.Errorf("store: the database has schema version %d, newer than this broker knows (%d)", have, len(migrations)-1)
	}
	for v := have + 1; v < len(migrations); v++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store: migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`, v, time.Now().Unix()); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migration %d: %w", v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: migration %d: %w", v, err)
		}
	}
	return nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

const columns = `public_id, hash, ciphertext, owner_uid, status, reason, create_time, update_time, expiration_time, last_access_time, stale_after, data`

// Insert adds a record; its public id and hash must be new.
func (s *SQLite) Insert(ctx context.Context, r Record) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO auth_token (`+columns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.PublicID, r.Hash, r.Ciphertext, r.OwnerUID, r.Status, r.Reason,
		nanos(r.CreateTime), nanos(r.UpdateTime), nanos(r.ExpirationTime), nanos(r.LastAccessTime),
		int64(r.StaleAfter), r.Data)
	if err != nil {
		return fmt.Errorf("store: insert %s: %w", r.PublicID, err)
	}
	return nil
}

// Get returns the record with publicID.
func (s *SQLite) Get(ctx context.Context, publicID string) (Record, error) {
	return s.one(ctx, `SELECT `+columns+` FROM auth_token WHERE public_id = ?`, publicID)
}

// GetByHash returns the record whose token hashes to hash.
func (s *SQLite) GetByHash(ctx context.Context, hash string) (Record, error) {
	return s.one(ctx, `SELECT `+columns+` FROM auth_token WHERE hash = ?`, hash)
}

func (s *SQLite) one(ctx context.Context, query string, arg any) (Record, error) {
	r, err := scan(s.db.QueryRowContext(ctx, query, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("store: %w", err)
	}
	return r, nil
}

// List returns the records f selects, oldest first.
func (s *SQLite) List(ctx context.Context, f Filter) ([]Record, error) {
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
	rows, err := s.db.QueryContext(ctx, q, args...)
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
func (s *SQLite) SetStatus(ctx context.Context, publicID string, t Transition) (bool, error) {
	if len(t.From) == 0 {
		return false, errors.New("store: a transition needs at least one From status")
	}
	q := `UPDATE auth_token SET status = ?, reason = ?, update_time = ?, data = COALESCE(?, data) WHERE public_id = ? AND status IN (?` + strings.Repeat(`, ?`, len(t.From)-1) + `)`
	args := []any{t.To, t.Reason, nanos(t.Now), t.Data, publicID}
	for _, f := range t.From {
		args = append(args, f)
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("store: set status of %s: %w", publicID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Touch records a use of the session.
func (s *SQLite) Touch(ctx context.Context, publicID string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE auth_token SET last_access_time = ? WHERE public_id = ?`, nanos(at), publicID)
	if err != nil {
		return fmt.Errorf("store: touch %s: %w", publicID, err)
	}
	return nil
}

// Delete removes the record with publicID.
func (s *SQLite) Delete(ctx context.Context, publicID string) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM auth_token WHERE public_id = ?`, publicID)
	if err != nil {
		return 0, fmt.Errorf("store: delete %s: %w", publicID, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// Setting returns a named value, or ErrNotFound.
func (s *SQLite) Setting(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.db.QueryRowContext(ctx, `SELECT value FROM setting WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: setting %s: %w", name, err)
	}
	return v, nil
}

// PutSetting sets a named value.
func (s *SQLite) PutSetting(ctx context.Context, name string, value []byte) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO setting (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
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
