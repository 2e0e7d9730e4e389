package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func openTest(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestMigrationsAndReopen(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != len(migrations)-1 {
		t.Fatalf("schema version %d, %v; want %d", v, err, len(migrations)-1)
	}
	var mode string
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v; want wal", mode, err)
	}
	rec := Record{PublicID: "at_1", Hash: "h1", Ciphertext: []byte{1}, Status: "issued",
		CreateTime: time.Unix(100, 5).UTC(), ExpirationTime: time.Unix(200, 0).UTC(), StaleAfter: time.Minute, Data: []byte("{}")}
	if err := s.Insert(ctx, rec); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Reopening applies nothing twice and keeps the rows.
	s2, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.Get(ctx, "at_1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreateTime.Equal(rec.CreateTime) || got.StaleAfter != time.Minute || string(got.Data) != "{}" || !got.LastAccessTime.IsZero() {
		t.Errorf("reloaded %+v", got)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (99, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := OpenSQLite(ctx, path); err == nil {
		t.Fatal("a database from a newer broker was accepted")
	}
}
