package openidstore

import (
	"context"
	"database/sql"
	"fmt"
)

// dialect is what differs between the databases.
type dialect struct {
	name   string
	dollar bool // $1 placeholders instead of ?
	// lock, run inside the migration transaction, keeps two brokers
	// starting at once from migrating together.
	lock string
	// migrations[i] brings the schema from version i to i+1. Append
	// only: a released migration never changes.
	migrations []string
}

var sqlite = dialect{
	name: "sqlite",
	// SQLite takes the database's write lock at the first write; make
	// that the version table's creation below, which comes first.
	migrations: []string{
		`CREATE TABLE openid_sessions (
			id            TEXT PRIMARY KEY,
			login         BOOLEAN NOT NULL,
			subject       TEXT NOT NULL,
			email         TEXT NOT NULL,
			picture       TEXT NOT NULL,
			refresh_token BLOB NOT NULL,
			created       INTEGER NOT NULL,
			expires       INTEGER NOT NULL,
			last_used     INTEGER NOT NULL
		);
		CREATE INDEX openid_sessions_expires ON openid_sessions (expires);`,
	},
}

var postgres = dialect{
	name:   "postgres",
	dollar: true,
	lock:   `SELECT pg_advisory_xact_lock(7270616269)`, // an arbitrary constant of this package
	migrations: []string{
		`CREATE TABLE openid_sessions (
			id            TEXT PRIMARY KEY,
			login         BOOLEAN NOT NULL,
			subject       TEXT NOT NULL,
			email         TEXT NOT NULL,
			picture       TEXT NOT NULL,
			refresh_token BYTEA NOT NULL,
			created       BIGINT NOT NULL,
			expires       BIGINT NOT NULL,
			last_used     BIGINT NOT NULL
		);
		CREATE INDEX openid_sessions_expires ON openid_sessions (expires);`,
	},
}

// migrate applies the migrations the database has not had yet, in one
// transaction.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("openidstore: migrate: %w", err)
	}
	defer tx.Rollback()
	if s.dialect.lock != "" {
		if _, err := tx.ExecContext(ctx, s.dialect.lock); err != nil {
			return fmt.Errorf("openidstore: migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS openid_schema (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("openidstore: migrate: %w", err)
	}
	var version int
	err = tx.QueryRowContext(ctx, `SELECT version FROM openid_schema`).Scan(&version)
	switch {
	case err == sql.ErrNoRows:
		if _, err := tx.ExecContext(ctx, `INSERT INTO openid_schema (version) VALUES (0)`); err != nil {
			return fmt.Errorf("openidstore: migrate: %w", err)
		}
	case err != nil:
		return fmt.Errorf("openidstore: migrate: %w", err)
	}
	if version > len(s.dialect.migrations) {
		return fmt.Errorf("openidstore: the database has schema version %d, newer than this broker knows (%d)", version, len(s.dialect.migrations))
	}
	for i := version; i < len(s.dialect.migrations); i++ {
		if _, err := tx.ExecContext(ctx, s.dialect.migrations[i]); err != nil {
			return fmt.Errorf("openidstore: migration %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE openid_schema SET version = ?`), len(s.dialect.migrations)); err != nil {
		return fmt.Errorf("openidstore: migrate: %w", err)
	}
	return tx.Commit()
}

// SchemaVersion reports the schema version of the open database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT version FROM openid_schema`).Scan(&v)
	return v, err
}
