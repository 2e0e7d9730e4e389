package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"credbroker/daemon"
	"credbroker/store"
)

// TestServeStoreFlag runs `serve --store PATH`: the session record goes
// to that database, and no state.db appears in the state directory.
func TestServeStoreFlag(t *testing.T) {
	root, err := os.MkdirTemp("", "cbs-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	run := filepath.Join(root, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(root, "state")
	env := []string{"XDG_RUNTIME_DIR=" + run, "XDG_STATE_HOME=" + state, "XDG_CONFIG_HOME=" + filepath.Join(root, "config")}
	dbPath := filepath.Join(root, "elsewhere", "sessions.db")

	cmd := brokerCmd(t, root, env, "serve", "--dev", "--store", dbPath)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	deadline := time.Now().Add(30 * time.Second)
	for runBroker(t, root, env, "status", "--json").code != 0 {
		select {
		case <-done:
			t.Fatal("serve --store exited")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve --store did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}

	r := runBroker(t, root, env, "session", "create", "--json", "--ttl", "1h", "--no-gsutil")
	var created daemon.Created
	if err := json.Unmarshal([]byte(r.stdout), &created); r.code != 0 || err != nil {
		t.Fatalf("session create: exit %d, %v: %s", r.code, err, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(state, "credbroker", "state.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state.db made despite --store: %v", err)
	}
	db, err := store.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if rec, err := db.Get(context.Background(), created.ID); err != nil || rec.Status != "issued" {
		t.Errorf("record in the --store database: %+v, %v", rec.Status, err)
	}
}
