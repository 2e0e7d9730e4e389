package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// dialect is what differs between the two databases: placeholders, the
// column types of the schema, and how migrations are serialized.
type dialect struct {
	name   string
	dollar bool // $1 placeholders instead of ?
	// lock, the first statement of the migration transaction, keeps two
	// brokers starting at once from migrating together. SQLite needs none:
	// its migration transaction begins IMMEDIATE, holding the write lock.
	lock string
	// migrations[v] brings the schema from version v-1 to v; index 0 is
	// unused. Append only: a released migration never changes, and both
	// dialects keep the same numbers for the same step.
	migrations []string
}

var sqliteDialect = dialect{
	name: "sqlite",
	migrations: []string{
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
		// IF NOT EXISTS: a database the browser-session store made before
		// it joined this package has the table already, with these columns.
		2: `CREATE TABLE IF NOT EXISTS openid_sessions (
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
		CREATE INDEX IF NOT EXISTS openid_sessions_expires ON openid_sessions (expires);`,
	},
}

var postgresDialect = dialect{
	name:   "postgres",
	dollar: true,
	// Transaction-scoped, so it is released by the commit or rollback
	// even when a migration fails. The key is an arbitrary constant of
	// this package.
	lock: `SELECT pg_advisory_xact_lock(7270616269)`,
	migrations: []string{
		1: `CREATE TABLE auth_token (
		public_id        TEXT PRIMARY KEY,
		hash             TEXT NOT NULL UNIQUE,
		ciphertext       BYTEA NOT NULL,
		owner_uid        BIGINT NOT NULL,
		status           TEXT NOT NULL,
		reason           TEXT NOT NULL DEFAULT '',
		create_time      BIGINT NOT NULL,
		update_time      BIGINT NOT NULL,
		expiration_time  BIGINT NOT NULL,
		last_access_time BIGINT NOT NULL,
		stale_after      BIGINT NOT NULL,
		data             BYTEA
	);
	CREATE INDEX auth_token_status ON auth_token (status);
	CREATE TABLE setting (name TEXT PRIMARY KEY, value BYTEA NOT NULL);`,
		2: `CREATE TABLE IF NOT EXISTS openid_sessions (
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
		CREATE INDEX IF NOT EXISTS openid_sessions_expires ON openid_sessions (expires);`,
	},
}

// latest is the schema version this code writes.
func (d *dialect) latest() int { return len(d.migrations) - 1 }

// migrate applies the migrations the database has not had, all in one
// transaction under the dialect's lock: a failed step leaves the schema
// as it was, and a broker starting beside another waits for it and then
// finds nothing left to do.
func (db *DB) migrate(ctx context.Context) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer tx.Rollback()
	if db.dialect.lock != "" {
		if _, err := tx.ExecContext(ctx, db.dialect.lock); err != nil {
			return fmt.Errorf("store: migrate: lock: %w", err)
		}
	}
	// The version table's layout is the one the first SQLite store wrote;
	// it must not change, or old files would not open.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("store: schema version: %w", err)
	}
	if have > db.dialect.latest() {
		return fmt.Errorf("store: the database has schema version %d, newer than this broker knows (%d)", have, db.dialect.latest())
	}
	if have == db.dialect.latest() {
		return nil
	}
	for v := have + 1; v <= db.dialect.latest(); v++ {
		if _, err := tx.ExecContext(ctx, db.dialect.migrations[v]); err != nil {
			return fmt.Errorf("store: migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`), v, time.Now().Unix()); err != nil {
			return fmt.Errorf("store: migration %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// SchemaVersion returns the last migration applied.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return v, err
}
