package openidstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"credbroker/protocols/openid"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// Store is an openid.Store in a SQL database.
type Store struct {
	db      *sql.DB
	dialect *dialect
}

var _ openid.Store = (*Store)(nil)

// Open opens the store named by dsn, creating or upgrading its schema: a
// postgres:// or postgresql:// URL for PostgreSQL, anything else is the
// path of a SQLite file (created 0600 if missing).
func Open(ctx context.Context, dsn string) (*Store, error) {
	if IsPostgres(dsn) {
		return open(ctx, &postgres, "pgx", dsn)
	}
	if err := createPrivate(dsn); err != nil {
		return nil, err
	}
	// One connection: SQLite serializes writers anyway, and this keeps the
	// busy-timeout dance out of the queries.
	return open(ctx, &sqlite, "sqlite", "file:"+dsn+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
}

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// createPrivate makes the SQLite file 0600 in a 0700 directory before the
// driver creates it with the umask's mode.
func createPrivate(path string) error {
	if path == "" || path == ":memory:" {
		return errors.New("openidstore: give a file path for SQLite")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("openidstore: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("openidstore: %w", err)
	}
	return f.Close()
}

func open(ctx context.Context, d *dialect, driver, dsn string) (*Store, error) {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("openidstore: %w", err)
	}
	if d == &sqlite {
		db.SetMaxOpenConns(1)
	}
	s := &Store{db: db, dialect: d}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// q rewrites a query written with ? placeholders for the dialect.
func (s *Store) q(query string) string {
	if !s.dialect.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Times are stored as Unix microseconds: exact, sortable, and the same
// in both databases.
func micros(t time.Time) int64 { return t.UnixMicro() }
func fromMicros(n int64) time.Time {
	return time.UnixMicro(n)
}

func (s *Store) Create(ctx context.Context, r openid.Session) error {
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO openid_sessions
		(id, login, subject, email, picture, refresh_token, created, expires, last_used)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
		r.ID, r.Login, r.Subject, r.Email, r.Picture, nonNil(r.RefreshToken),
		micros(r.Created), micros(r.Expires), micros(r.LastUsed))
	if err != nil {
		return fmt.Errorf("openidstore: create: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("openidstore: create: %w", err)
	} else if n == 0 {
		return openid.ErrExists
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (s *Store) Get(ctx context.Context, id string, now time.Time) (openid.Session, error) {
	var r openid.Session
	var created, expires, lastUsed int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id, login, subject, email, picture, refresh_token, created, expires, last_used
		FROM openid_sessions WHERE id = ? AND expires > ?`), id, micros(now)).
		Scan(&r.ID, &r.Login, &r.Subject, &r.Email, &r.Picture, &r.RefreshToken, &created, &expires, &lastUsed)
	if errors.Is(err, sql.ErrNoRows) {
		return openid.Session{}, openid.ErrNotFound
	}
	if err != nil {
		return openid.Session{}, fmt.Errorf("openidstore: get: %w", err)
	}
	if len(r.RefreshToken) == 0 {
		r.RefreshToken = nil
	}
	r.Created, r.Expires, r.LastUsed = fromMicros(created), fromMicros(expires), fromMicros(lastUsed)
	return r, nil
}

func (s *Store) Update(ctx context.Context, r openid.Session) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE openid_sessions SET refresh_token = ?, last_used = ? WHERE id = ?`),
		nonNil(r.RefreshToken), micros(r.LastUsed), r.ID)
	if err != nil {
		return fmt.Errorf("openidstore: update: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("openidstore: update: %w", err)
	} else if n == 0 {
		return openid.ErrNotFound
	}
	return nil
}

func (s *Store) Touch(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE openid_sessions SET last_used = ? WHERE id = ?`), micros(at), id)
	if err != nil {
		return fmt.Errorf("openidstore: touch: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("openidstore: touch: %w", err)
	} else if n == 0 {
		return openid.ErrNotFound
	}
	return nil
}

func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM openid_sessions WHERE id = ?`), id)
	if err != nil {
		return false, fmt.Errorf("openidstore: delete: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("openidstore: delete: %w", err)
	}
	return n == 1, nil
}

func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM openid_sessions WHERE expires <= ?`), micros(now))
	if err != nil {
		return 0, fmt.Errorf("openidstore: delete expired: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("openidstore: delete expired: %w", err)
	}
	return int(n), nil
}
