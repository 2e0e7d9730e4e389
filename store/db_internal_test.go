package store

import (
	"context"
	"path/filepath"
	"testing"
)

func TestPlaceholders(t *testing.T) {
	tests := []struct {
		dialect *dialect
		in      string
		want    string
	}{
		{&sqliteDialect, `a = ? AND b IN (?, ?)`, `a = ? AND b IN (?, ?)`},
		{&postgresDialect, `a = ? AND b IN (?, ?)`, `a = $1 AND b IN ($2, $3)`},
		{&postgresDialect, `no placeholders`, `no placeholders`},
	}
	for _, tt := range tests {
		db := &DB{dialect: tt.dialect}
		if got := db.q(tt.in); got != tt.want {
			t.Errorf("%s: q(%q) = %q, want %q", tt.dialect.name, tt.in, got, tt.want)
		}
	}
}

// TestMigrationListsAgree keeps the two dialects' lists in step: the
// same version is the same change in both.
func TestMigrationListsAgree(t *testing.T) {
	if sqliteDialect.latest() != postgresDialect.latest() {
		t.Errorf("sqlite has %d migrations, postgres %d", sqliteDialect.latest(), postgresDialect.latest())
	}
	for _, d := range []*dialect{&sqliteDialect, &postgresDialect} {
		if d.migrations[0] != "" {
			t.Errorf("%s: migration 0 is not empty; versions start at 1", d.name)
		}
	}
}

func TestSQLiteWAL(t *testing.T) {
	db, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v; want wal", mode, err)
	}
}
