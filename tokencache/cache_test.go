package tokencache

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer returns a logger writing into a buffer the test can read.
func logBuffer(t *testing.T) (*slog.Logger, *syncBuffer) {
	t.Helper()
	var b syncBuffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func open(t *testing.T, dir string) (*Cache, *syncBuffer) {
	t.Helper()
	log, buf := logBuffer(t)
	c, err := Open(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	return c, buf
}

func TestRoundTrip(t *testing.T) {
	for _, mem := range []bool{false, true} {
		t.Run(fmt.Sprintf("memory=%v", mem), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cb")
			var c *Cache
			if mem {
				c = Memory()
			} else {
				c, _ = open(t, dir)
			}
			want := Entry{RefreshToken: "rt-secret", AccessToken: "at", Expiry: time.Unix(1700000000, 0).UTC(),
				Scopes: []string{"a", "b"}, Email: "me@example.com", Meta: map[string]string{"client_id": "cid"}}
			if err := c.Put("user/cid", want); err != nil {
				t.Fatal(err)
			}
			// A second Cache on the same directory sees it: another process.
			other := c
			if !mem {
				other, _ = open(t, dir)
			}
			got, ok, err := other.Get("user/cid")
			if err != nil || !ok {
				t.Fatalf("Get = %v, %v", ok, err)
			}
			if got.RefreshToken != want.RefreshToken || !got.Expiry.Equal(want.Expiry) || got.Email != want.Email ||
				strings.Join(got.Scopes, " ") != "a b" || got.Meta["client_id"] != "cid" || got.Updated.IsZero() {
				t.Errorf("got %+v", got)
			}
			c.Put("other/x", Entry{Email: "x"})
			if keys, err := other.Keys("user/"); err != nil || len(keys) != 1 || keys[0] != "user/cid" {
				t.Errorf("Keys = %v, %v", keys, err)
			}
			c.Delete("other/x")
			if err := other.Delete("user/cid"); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := c.Get("user/cid"); ok {
				t.Error("entry still there after Delete")
			}
			if mem {
				if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 0 {
					t.Errorf("memory cache wrote files: %v", entries)
				}
				return
			}
			if _, err := os.Stat(filepath.Join(dir, DataFile)); !os.IsNotExist(err) {
				t.Errorf("an empty cache keeps its file: %v", err)
			}
		})
	}
}

func TestFilesArePrivateAndEncrypted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cb")
	c, _ := open(t, dir)
	if err := c.Put("k", Entry{RefreshToken: "very-secret-refresh-token"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{".": 0o700, KeyFile: 0o600, DataFile: 0o600, LockFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, DataFile))
	if bytes.Contains(data, []byte("very-secret")) || !bytes.HasPrefix(data, []byte(header)) {
		t.Errorf("data file is not sealed: %q", data)
	}
}

func TestDamagedFilesAreIgnored(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"wrong key", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, KeyFile))
			if err := os.WriteFile(filepath.Join(dir, KeyFile), bytes.Repeat([]byte{7}, keySize), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, dir string) {
			p := filepath.Join(dir, DataFile)
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)-5], 0o600)
		}},
		{"cut inside the header", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, DataFile), []byte(header[:5]), 0o600)
		}},
		{"foreign file", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, DataFile), []byte(`{"cache":[]}`), 0o600)
		}},
		{"flipped bit", func(t *testing.T, dir string) {
			p := filepath.Join(dir, DataFile)
			data, _ := os.ReadFile(p)
			data[len(data)-1] ^= 1
			os.WriteFile(p, data, 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cb")
			c, _ := open(t, dir)
			if err := c.Put("k", Entry{RefreshToken: "rt"}); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, dir)
			c2, logs := open(t, dir)
			_, ok, err := c2.Get("k")
			if err != nil || ok {
				t.Fatalf("Get after damage = %v, %v; want empty, no error", ok, err)
			}
			if !strings.Contains(logs.String(), "ignoring the token cache") || strings.Contains(logs.String(), "rt") && strings.Contains(logs.String(), "refresh") {
				t.Errorf("warning: %q", logs.String())
			}
			// The next write replaces the damaged file.
			if err := c2.Put("k2", Entry{Email: "x"}); err != nil {
				t.Fatal(err)
			}
			if e, ok, _ := c2.Get("k2"); !ok || e.Email != "x" {
				t.Errorf("after rewrite: %+v %v", e, ok)
			}
		})
	}
}

func TestKeyReadableByOthersRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cb")
	open(t, dir)
	os.Chmod(filepath.Join(dir, KeyFile), 0o644)
	if _, err := Open(dir, nil); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Errorf("Open with a 0644 key = %v", err)
	}
}

func TestUpdateErrorWritesNothing(t *testing.T) {
	c, _ := open(t, filepath.Join(t.TempDir(), "cb"))
	c.Put("k", Entry{Email: "old"})
	boom := fmt.Errorf("mint failed")
	err := c.Update(context.Background(), "k", func(Entry, bool) (Entry, Action, error) { return Entry{Email: "new"}, Write, boom })
	if err != boom {
		t.Fatalf("Update = %v", err)
	}
	if e, _, _ := c.Get("k"); e.Email != "old" {
		t.Errorf("entry changed to %+v", e)
	}
}

// Several goroutines and several processes all want a fresh token at
// once; exactly one of them mints, the others read its result.
const helperVar = "TOKENCACHE_TEST_HELPER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperVar); dir != "" {
		os.Exit(refreshOnce(dir))
	}
	os.Exit(m.Run())
}

// refreshOnce is one broker: under the lock, it mints (appends a line to
// mints.log) only when the cache has no token yet.
func refreshOnce(dir string) int {
	c, err := Open(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	err = c.Update(context.Background(), "user/x", func(old Entry, ok bool) (Entry, Action, error) {
		if ok && old.AccessToken != "" {
			return old, Keep, nil
		}
		f, err := os.OpenFile(filepath.Join(dir, "mints.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return old, Keep, err
		}
		fmt.Fprintf(f, "%d\n", os.Getpid())
		f.Close()
		old.AccessToken = fmt.Sprintf("at-%d", os.Getpid())
		return old, Write, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestConcurrentRefreshMintsOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cb")
	c, _ := open(t, dir)
	c.Put("user/x", Entry{RefreshToken: "rt"})

	const procs = 4
	var wg sync.WaitGroup
	errs := make(chan error, procs)
	for range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperVar+"="+dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("%v: %s", err, out)
			}
		}()
	}
	// And goroutines of this process, through the same Cache.
	for range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if refreshOnce(dir) != 0 {
				errs <- fmt.Errorf("in-process refresh failed")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mints, _ := os.ReadFile(filepath.Join(dir, "mints.log"))
	if n := strings.Count(string(mints), "\n"); n != 1 {
		t.Errorf("%d mints, want 1:\n%s", n, mints)
	}
	e, ok, err := c.Get("user/x")
	if err != nil || !ok || e.RefreshToken != "rt" || !strings.HasPrefix(e.AccessToken, "at-") {
		t.Errorf("final entry %+v, %v, %v", e, ok, err)
	}
}

func TestUpdateHonoursContext(t *testing.T) {
	c, _ := open(t, filepath.Join(t.TempDir(), "cb"))
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan struct{})
	release := make(chan struct{})
	go c.Update(context.Background(), "k", func(Entry, bool) (Entry, Action, error) {
		close(held)
		<-release
		return Entry{}, Keep, nil
	})
	<-held
	cancel()
	if err := c.Update(ctx, "k", func(Entry, bool) (Entry, Action, error) { return Entry{}, Keep, nil }); err != context.Canceled {
		t.Errorf("Update with a cancelled context while locked = %v", err)
	}
	close(release)
}
