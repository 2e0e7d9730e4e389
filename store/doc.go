// Package store is the broker's database: the daemon's session records,
// so that a restarted daemon brings its sessions back, and the openid
// front-end's browser sessions, so that several brokers behind a load
// balancer serve the same signed-in browsers.
//
// Open takes one DSN. A postgres:// or postgresql:// URL is a PostgreSQL
// server (through github.com/jackc/pgx/v5), which several brokers share;
// anything else is the path of a SQLite file (pure Go, modernc.org/sqlite,
// in WAL mode), created 0600 in a 0700 directory, for one host. Both
// backends run the same queries, written once with ? placeholders, and
// pass the same conformance suites: storetest for session records,
// openidtest.RunStoreTests for browser sessions.
//
// A PostgreSQL password belongs in PGPASSWORD or a ~/.pgpass file, which
// pgx reads, rather than in the URL: the URL is given as a flag, and
// process arguments are visible to every user of the host.
//
// The returned *DB is a Store (daemon session records);
// DB.BrowserSessions is an openid.Store on the same database. They are
// two types because the two interfaces share method names with different
// meanings.
//
// # Schema
//
//   - auth_token: one row per daemon session, keyed by its public id. The
//     token is there only as a keyed hash (for lookup, unique) and an
//     AEAD ciphertext (so a restored session gets its secret back); making
//     and checking those is the authtoken package's job. Times are Unix
//     nanoseconds, zero for unset. Data is the daemon's JSON description
//     of the session, never secret.
//   - setting: small named values, such as the check that the daemon's key
//     is the one its records were sealed with.
//   - openid_sessions: one row per browser session or sign-in in
//     progress, keyed by a hash of the cookie's reference; the refresh
//     token is sealed by the server before it gets here. Times are Unix
//     microseconds.
//   - schema_migrations: the version of each migration applied, and when.
//
// Rows are removed by their owners: the daemon deletes a session's
// record when it is revoked or expires, and sweeps records of failed
// sessions after a retention period; the openid server removes expired
// browser sessions (BrowserSessions.DeleteExpired returns their IDs, so
// the server can forget their accounts).
//
// # Migrations
//
// Each dialect has one list of numbered SQL steps covering every table;
// version N is the same change in both lists. A step is never edited
// once released, only new ones appended, so that every database in the
// field, at whatever version, reaches the same schema. Open applies the
// missing steps in one transaction under a lock (a PostgreSQL advisory
// lock; for SQLite, the write lock taken at BEGIN IMMEDIATE), so brokers
// starting together migrate once, and a failed step leaves the schema as
// it was. A database at a version newer than the code knows is refused.
// Files made by earlier releases upgrade in place: version 1 is the
// first store's session schema, and step 2 creates openid_sessions only
// if the earlier browser-session store had not already made it.
package store
