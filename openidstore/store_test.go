package openidstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"credbroker/internal/fakeoidc"
	"credbroker/openidstore"
	"credbroker/protocols/openid"
	"credbroker/protocols/openid/openidtest"
)

func openStore(t *testing.T, dsn string) *openidstore.Store {
	t.Helper()
	st, err := openidstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func sqlitePath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "sub", "sessions.db")
}

func TestSQLite(t *testing.T) {
	openidtest.RunStoreTests(t, func(t *testing.T) openid.Store { return openStore(t, sqlitePath(t)) })
}

func TestPostgres(t *testing.T) {
	openidtest.RunStoreTests(t, func(t *testing.T) openid.Store { return openStore(t, postgresURL(t)) })
}

func TestSQLiteFileIsPrivate(t *testing.T) {
	path := sqlitePath(t)
	openStore(t, path)
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

func TestMigrationsIdempotent(t *testing.T) {
	for _, tt := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", sqlitePath},
		{"postgres", postgresURL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dsn := tt.dsn(t)
			a := openStore(t, dsn)
			b := openStore(t, dsn) // a second broker on the same database
			for _, st := range []*openidstore.Store{a, b} {
				v, err := st.SchemaVersion(context.Background())
				if err != nil || v != 1 {
					t.Errorf("schema version %d, %v; want 1", v, err)
				}
			}
		})
	}
}

// TestBrokersShareBrowserSessions runs two production-mode servers, each
// with its own connection to one database, and checks a browser signed in
// through one is signed in on the other.
func TestBrokersShareBrowserSessions(t *testing.T) {
	for _, tt := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", sqlitePath},
		{"postgres", postgresURL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dsn := tt.dsn(t)
			p := fakeoidc.New(t)
			keys, err := openid.NewKeyring(openid.GenerateKey("k1"))
			if err != nil {
				t.Fatal(err)
			}
			a := startServer(t, p, openStore(t, dsn), keys)
			b := startServer(t, p, openStore(t, dsn), keys)
			openidtest.CheckSharedSessions(t, a, b)
		})
	}
}
