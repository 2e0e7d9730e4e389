package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"credbroker/internal/fakeoidc"
	"credbroker/protocols/openid"
	"credbroker/protocols/openid/openidtest"
	"credbroker/store"
	"credbroker/store/storetest"

	_ "modernc.org/sqlite"
)

// latestVersion is the schema version the code under test writes.
const latestVersion = 2

func openDB(t *testing.T, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func sqlitePath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "sub", "state.db")
}

// backends name a fresh, empty database of each kind.
var backends = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"sqlite", sqlitePath},
	{"postgres", postgresURL},
}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store { return openDB(t, b.dsn(t)) })
		})
	}
}

func TestBrowserSessions(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			openidtest.RunStoreTests(t, func(t *testing.T) openid.Store { return openDB(t, b.dsn(t)).BrowserSessions() })
		})
	}
}

func TestOpenPicksBackend(t *testing.T) {
	tests := []struct {
		dsn  func(t *testing.T) string
		want string
	}{
		{sqlitePath, "sqlite"},
		{postgresURL, "postgres"},
		{func(t *testing.T) string { return "postgresql" + postgresURL(t)[len("postgres"):] }, "postgres"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := openDB(t, tt.dsn(t)).Backend(); got != tt.want {
				t.Errorf("Backend() = %q, want %q", got, tt.want)
			}
		})
	}
	for _, dsn := range []string{"", ":memory:", "file:x.db"} {
		if db, err := store.Open(context.Background(), dsn); err == nil {
			db.Close()
			t.Errorf("Open(%q) accepted a DSN that is not a file path", dsn)
		}
	}
}

func TestSQLiteFileIsPrivate(t *testing.T) {
	path := sqlitePath(t)
	openDB(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %v, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(filepath.Dir(path))
	if di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", di.Mode().Perm())
	}
}

// TestMigrationsUnderLock opens one new database from several goroutines
// at once, as brokers starting together would: each must find the schema
// complete, migrated once.
func TestMigrationsUnderLock(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			var wg sync.WaitGroup
			dbs := make([]*store.DB, 4)
			errs := make([]error, len(dbs))
			for i := range dbs {
				wg.Go(func() { dbs[i], errs[i] = store.Open(context.Background(), dsn) })
			}
			wg.Wait()
			for i, db := range dbs {
				if errs[i] != nil {
					t.Fatalf("open %d: %v", i, errs[i])
				}
				t.Cleanup(func() { db.Close() })
				if v, err := db.SchemaVersion(context.Background()); err != nil || v != latestVersion {
					t.Errorf("open %d: schema version %d, %v; want %d", i, v, err, latestVersion)
				}
			}
			// Each step is recorded once.
			raw := rawDB(t, b.name, dsn)
			var n int
			if err := raw.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != latestVersion {
				t.Errorf("%d schema_migrations rows, %v; want %d", n, err, latestVersion)
			}
		})
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			openDB(t, dsn).Close()
			if _, err := rawDB(t, b.name, dsn).Exec(`INSERT INTO schema_migrations (version, applied) VALUES (99, 0)`); err != nil {
				t.Fatal(err)
			}
			if db, err := store.Open(context.Background(), dsn); err == nil {
				db.Close()
				t.Fatal("a database from a newer broker was accepted")
			}
		})
	}
}

// rawDB opens dsn with database/sql only, to write what an older broker
// would have or to look under the store.
func rawDB(t *testing.T, backend, dsn string) *sql.DB {
	t.Helper()
	driver := "pgx"
	if backend == "sqlite" {
		driver, dsn = "sqlite", "file:"+dsn+"?_pragma=busy_timeout(5000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// firstSQLiteSchema is, byte for byte, the schema the first release of
// the store wrote into state.db (version 1).
const firstSQLiteSchema = `CREATE TABLE auth_token (
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
	CREATE TABLE setting (name TEXT PRIMARY KEY, value BLOB NOT NULL);`

// TestUpgradeFirstSQLiteStore makes a state.db the way the first store
// did (its DSN, version table, migration and row encoding), then opens it
// with the current code: the records and settings are intact, and
// browser sessions work in the same file.
func TestUpgradeFirstSQLiteStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)")
	if err != nil {
		t.Fatal(err)
	}
	old.SetMaxOpenConns(1)
	created := time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.UTC)
	steps := []struct {
		query string
		args  []any
	}{
		{`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)`, nil},
		{firstSQLiteSchema, nil},
		{`INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`, []any{1, created.Unix()}},
		// Times in Unix nanoseconds, zero for unset; stale_after in nanoseconds.
		{`INSERT INTO auth_token (public_id, hash, ciphertext, owner_uid, status, reason, create_time, update_time, expiration_time, last_access_time, stale_after, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			[]any{"at_0ld0000001", "h-old", []byte{9, 8, 7}, int64(1000), "issued", "", created.UnixNano(), created.UnixNano(),
				created.Add(8 * time.Hour).UnixNano(), int64(0), int64(10 * time.Minute), []byte(`{"accounts":["task"]}`)}},
		{`INSERT INTO auth_token (public_id, hash, ciphertext, owner_uid, status, reason, create_time, update_time, expiration_time, last_access_time, stale_after, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			[]any{"at_0ld0000002", "h-failed", []byte{1}, int64(1001), "failed", "port taken", created.UnixNano(), created.Add(time.Second).UnixNano(),
				created.Add(time.Hour).UnixNano(), created.UnixNano(), int64(0), nil}},
		{`INSERT INTO setting (name, value) VALUES (?, ?)`, []any{"key_check", []byte("check-bytes")}},
	}
	for _, s := range steps {
		if _, err := old.ExecContext(ctx, s.query, s.args...); err != nil {
			t.Fatalf("%.40s: %v", s.query, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db := openDB(t, path)
	if v, err := db.SchemaVersion(ctx); err != nil || v != latestVersion {
		t.Fatalf("schema version %d, %v; want %d", v, err, latestVersion)
	}
	wants := []store.Record{
		{PublicID: "at_0ld0000001", Hash: "h-old", Ciphertext: []byte{9, 8, 7}, OwnerUID: 1000, Status: "issued",
			CreateTime: created, UpdateTime: created, ExpirationTime: created.Add(8 * time.Hour),
			StaleAfter: 10 * time.Minute, Data: []byte(`{"accounts":["task"]}`)},
		{PublicID: "at_0ld0000002", Hash: "h-failed", Ciphertext: []byte{1}, OwnerUID: 1001, Status: "failed", Reason: "port taken",
			CreateTime: created, UpdateTime: created.Add(time.Second), ExpirationTime: created.Add(time.Hour), LastAccessTime: created},
	}
	for _, want := range wants {
		got, err := db.GetByHash(ctx, want.Hash)
		if err != nil {
			t.Fatalf("%s after the upgrade: %v", want.PublicID, err)
		}
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Errorf("after the upgrade:\n got %+v\nwant %+v", got, want)
		}
	}
	if v, err := db.Setting(ctx, "key_check"); err != nil || string(v) != "check-bytes" {
		t.Errorf("setting after the upgrade: %q, %v", v, err)
	}
	bs := db.BrowserSessions()
	sess := openid.Session{ID: "b1", Email: "a@example.com", Created: created, Expires: created.Add(time.Hour), LastUsed: created}
	if err := bs.Create(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Get(ctx, "b1", created); err != nil {
		t.Errorf("browser session in the upgraded file: %v", err)
	}
}

// TestAdoptBrowserSessionFile opens a file made by the browser-session
// store that stood apart before it joined this package: its signed-in
// sessions stay signed in.
func TestAdoptBrowserSessionFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sessions.db")
	raw := rawDB(t, "sqlite", path)
	for _, q := range []string{
		`CREATE TABLE openid_schema (version INTEGER NOT NULL)`,
		`CREATE TABLE openid_sessions (id TEXT PRIMARY KEY, login BOOLEAN NOT NULL, subject TEXT NOT NULL, email TEXT NOT NULL,
			picture TEXT NOT NULL, refresh_token BLOB NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL, last_used INTEGER NOT NULL);
		CREATE INDEX openid_sessions_expires ON openid_sessions (expires);`,
		`INSERT INTO openid_schema (version) VALUES (1)`,
		`INSERT INTO openid_sessions VALUES ('sid', 0, 'sub', 'u@example.com', '', x'6b312e73', 1000000, 4000000000000000, 1000000)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	db := openDB(t, path)
	got, err := db.BrowserSessions().Get(ctx, "sid", time.UnixMicro(2000000))
	if err != nil || got.Email != "u@example.com" || string(got.RefreshToken) != "k1.s" {
		t.Errorf("adopted session: %+v, %v", got, err)
	}
	if _, err := db.Get(ctx, "at_x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("daemon records in the adopted file: %v", err)
	}
}

// TestBrokersShareBrowserSessions runs two production-mode servers, each
// with its own connection to one database, and checks a browser signed in
// through one is signed in on the other.
func TestBrokersShareBrowserSessions(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			p := fakeoidc.New(t)
			keys, err := openid.NewKeyring(openid.GenerateKey("k1"))
			if err != nil {
				t.Fatal(err)
			}
			x := startServer(t, p, openDB(t, dsn).BrowserSessions(), keys)
			y := startServer(t, p, openDB(t, dsn).BrowserSessions(), keys)
			openidtest.CheckSharedSessions(t, x, y)
		})
	}
}
