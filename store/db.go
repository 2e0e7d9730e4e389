package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// DB is the broker's database. It is the daemon's Store of session
// records, and BrowserSessions gives the openid front-end's store of
// browser sessions in the same database. Safe for concurrent use.
type DB struct {
	db      *sql.DB
	dialect *dialect
	browser *BrowserSessions
}

var _ Store = (*DB)(nil)

// Open opens the database dsn names and brings its schema up to date: a
// postgres:// or postgresql:// URL is a PostgreSQL database (shared by
// every broker given the same URL); anything else is the path of a
// SQLite file, created 0600 (and its directory 0700) when missing.
func Open(ctx context.Context, dsn string) (*DB, error) {
	if IsPostgres(dsn) {
		return open(ctx, &postgresDialect, "pgx", dsn)
	}
	return OpenSQLite(ctx, dsn)
}

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// OpenSQLite opens (creating it if needed) the SQLite database at path
// and brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	if err := createPrivate(path); err != nil {
		return nil, err
	}
	// busy_timeout comes first so that even the switch to WAL waits for
	// a lock another process holds. WAL lets readers run beside the
	// writer; _txlock=immediate makes a transaction take the write lock
	// at BEGIN, so two processes migrating one file serialize instead of
	// failing on the upgrade from a read lock.
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	return open(ctx, &sqliteDialect, "sqlite", dsn)
}

// createPrivate makes the SQLite file 0600 in a 0700 directory before
// the driver would create it with the umask's mode. The -wal and -shm
// files SQLite adds copy the main file's mode.
func createPrivate(path string) error {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return errors.New("store: give a file path for SQLite, or a postgres:// URL")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return f.Close()
}

func open(ctx context.Context, d *dialect, driver, dsn string) (*DB, error) {
	sdb, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if d == &sqliteDialect {
		// One writer at a time is what SQLite does anyway; one connection
		// also keeps the pragmas uniform.
		sdb.SetMaxOpenConns(1)
	}
	db := &DB{db: sdb, dialect: d}
	db.browser = &BrowserSessions{db: db}
	if err := db.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

// Backend names the database: "sqlite" or "postgres".
func (db *DB) Backend() string { return db.dialect.name }

// BrowserSessions returns the store of the openid front-end's browser
// sessions, in this database.
func (db *DB) BrowserSessions() *BrowserSessions { return db.browser }

// Close closes the database. Safe to call more than once.
func (db *DB) Close() error { return db.db.Close() }

// q rewrites a query written with ? placeholders for the dialect.
func (db *DB) q(query string) string {
	if !db.dialect.dollar {
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
