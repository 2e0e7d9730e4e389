package store_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/broker/brokertest"
	"credbroker/daemon"
	"credbroker/store"
)

// TestDaemonRestartWithPostgres runs the daemon on a PostgreSQL store,
// stops it, and starts a new daemon on a new connection to the same
// database: the session comes back, serving on its port, and nothing
// was written to a SQLite file in the state directory.
func TestDaemonRestartWithPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := postgresURL(t)
	root, err := os.MkdirTemp("", "cbs-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	paths := daemon.Paths{Runtime: filepath.Join(root, "run"), State: filepath.Join(root, "state"), Config: filepath.Join(root, "config")}
	key := []byte("0123456789abcdef0123456789abcdef")
	b := broker.New(broker.Options{Logger: quiet()})
	t.Cleanup(b.Close)
	if err := b.AddAccount("task", &brokertest.Source{Prefix: "ya29.pg-", Mail: "task@example.com"}); err != nil {
		t.Fatal(err)
	}
	startDaemon := func() *daemon.Daemon {
		t.Helper()
		db, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		d, err := daemon.New(ctx, daemon.Options{Paths: paths, Key: key, Broker: b, Store: db, Logger: quiet(), SweepInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Shutdown(context.Background()) })
		return d
	}

	d := startDaemon()
	created, err := d.Create(ctx, daemon.Peer{UID: uint32(os.Getuid())}, daemon.CreateRequest{
		Scopes:    []string{"https://www.googleapis.com/auth/cloud-platform"},
		Frontends: daemon.Frontends{GCEMeta: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	var metaHost string
	for _, v := range created.Set {
		if v.Name == "GCE_METADATA_HOST" {
			metaHost = v.Value
		}
	}
	if code := metaToken(t, metaHost); code != http.StatusOK {
		t.Fatalf("metadata before the restart: %d", code)
	}
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	d = startDaemon()
	in, err := d.Lookup(ctx, created.ID)
	if err != nil || in.Status != "issued" || !in.Running {
		t.Fatalf("after the restart: %+v, %v", in, err)
	}
	if code := metaToken(t, metaHost); code != http.StatusOK {
		t.Errorf("metadata after the restart: %d", code)
	}
	if _, err := os.Stat(paths.Database()); err == nil {
		t.Errorf("a SQLite file was made at %s although the store is PostgreSQL", paths.Database())
	}
	if err := d.Revoke(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, dsn)
	if _, err := db.Get(ctx, created.ID); err != store.ErrNotFound {
		t.Errorf("record after revoke: %v", err)
	}
}

// metaToken asks a metadata server for a token and returns the status.
func metaToken(t *testing.T, host string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+host+"/computeMetadata/v1/instance/service-accounts/default/token", nil)
	req.Header.Set("Metadata-Flavor", "Google")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
