package tokencache

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// File names inside a cache directory.
const (
	KeyFile   = "cache.key"
	DataFile  = "tokens.enc"
	LockFile  = "tokens.lock"
	header    = "credbroker-tokencache-v1\n"
	keySize   = 32
	nonceSize = 12
	// maxFile bounds what is read, so a huge foreign file cannot exhaust
	// memory.
	maxFile = 16 << 20
)

// Entry is what the cache keeps under one key. Every field is optional.
type Entry struct {
	// RefreshToken is a long-lived credential. Secret.
	RefreshToken string `json:"refresh_token,omitempty"`
	// AccessToken and Expiry are the last access token minted. Secret.
	AccessToken string    `json:"access_token,omitempty"`
	Expiry      time.Time `json:"expiry,omitzero"`
	// IDToken is the last ID token minted with the access token. Secret.
	IDToken string `json:"id_token,omitempty"`
	// Scopes are the scopes the credential was granted.
	Scopes []string `json:"scopes,omitempty"`
	// Email is the identity's email, "" when unknown.
	Email string `json:"email,omitempty"`
	// Meta holds source-specific, non-secret details (client id, endpoints).
	Meta map[string]string `json:"meta,omitempty"`
	// Updated is when the entry was last written.
	Updated time.Time `json:"updated,omitzero"`
}

// Clone returns a deep copy of e.
func (e Entry) Clone() Entry {
	e.Scopes = slices.Clone(e.Scopes)
	e.Meta = maps.Clone(e.Meta)
	return e
}

// Cache is an encrypted token store. It is safe for concurrent use by
// goroutines and, on platforms with flock, by processes.
type Cache struct {
	dir string // "" for a memory cache
	log *slog.Logger

	mu  sync.Mutex       // serializes this process's users; the file lock serializes processes
	mem map[string]Entry // the memory cache's content
}

// DefaultDir is credbroker's cache directory under the user's config
// directory ($XDG_CONFIG_HOME, else ~/.config on Linux).
func DefaultDir() (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("token cache: %w", err)
	}
	return filepath.Join(base, "credbroker"), nil
}

// Open returns the cache kept in dir, creating dir (0700) and its key
// (0600) when they do not exist. log gets the warnings about unreadable
// files; slog.Default() when nil.
func Open(dir string, log *slog.Logger) (*Cache, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("token cache: %w", err)
	}
	c := &Cache{dir: dir, log: log}
	if _, err := c.key(); err != nil {
		return nil, err
	}
	return c, nil
}

// Memory returns a cache that keeps everything in this process only.
func Memory() *Cache { return &Cache{mem: map[string]Entry{}, log: slog.Default()} }

// Dir is the cache's directory, "" for a memory cache.
func (c *Cache) Dir() string { return c.dir }

// Get returns the entry under key.
func (c *Cache) Get(key string) (Entry, bool, error) {
	var out Entry
	var found bool
	err := c.Update(context.Background(), key, func(old Entry, ok bool) (Entry, Action, error) {
		out, found = old, ok
		return Entry{}, Keep, nil
	})
	return out, found, err
}

// Put stores e under key.
func (c *Cache) Put(key string, e Entry) error {
	return c.Update(context.Background(), key, func(Entry, bool) (Entry, Action, error) { return e, Write, nil })
}

// Delete removes key; deleting a missing key is not an error.
func (c *Cache) Delete(key string) error {
	return c.Update(context.Background(), key, func(Entry, bool) (Entry, Action, error) { return Entry{}, Remove, nil })
}

// Keys lists the keys that start with prefix, sorted.
func (c *Cache) Keys(prefix string) ([]string, error) {
	var keys []string
	err := c.Update(context.Background(), "", func(Entry, bool) (Entry, Action, error) {
		for k := range c.all() {
			if strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
		return Entry{}, Keep, nil
	})
	slices.Sort(keys)
	return keys, err
}

// all returns the current entries; only called under the locks.
func (c *Cache) all() map[string]Entry {
	if c.dir == "" {
		return c.mem
	}
	aead, err := c.aead()
	if err != nil {
		return nil
	}
	return c.read(aead)
}

// Action says what Update does with fn's result.
type Action int

const (
	Keep   Action = iota // leave the entry as it was
	Write                // store the returned entry
	Remove               // delete the entry
)

// Update runs fn with the current entry under key while holding the
// cache's lock (in this process and, on disk, across processes), then
// applies fn's Action. fn may take its time (a network refresh): other
// updaters wait, which is the point. fn's error is returned as it is and
// nothing is written.
func (c *Cache) Update(ctx context.Context, key string, fn func(old Entry, ok bool) (Entry, Action, error)) error {
	if err := c.lockProcess(ctx); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if c.dir == "" {
		old, ok := c.mem[key]
		e, act, err := fn(old.Clone(), ok)
		if err != nil {
			return err
		}
		switch act {
		case Write:
			e.Updated = time.Now().UTC()
			c.mem[key] = e.Clone()
		case Remove:
			delete(c.mem, key)
		}
		return nil
	}

	unlock, err := lockFile(ctx, filepath.Join(c.dir, LockFile))
	if err != nil {
		return fmt.Errorf("token cache: locking: %w", err)
	}
	defer unlock()
	aead, err := c.aead()
	if err != nil {
		return err
	}
	entries := c.read(aead)
	old, ok := entries[key]
	e, act, err := fn(old.Clone(), ok)
	if err != nil {
		return err
	}
	switch act {
	case Keep:
		return nil
	case Write:
		e.Updated = time.Now().UTC()
		entries[key] = e.Clone()
	case Remove:
		if !ok {
			return nil
		}
		delete(entries, key)
	}
	return c.write(aead, entries)
}

// lockProcess takes c.mu, giving up when ctx ends.
func (c *Cache) lockProcess(ctx context.Context) error {
	for !c.mu.TryLock() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// key reads the cache key, making it on first use. O_EXCL makes two
// brokers racing to create it agree on the one that won.
func (c *Cache) key() ([]byte, error) {
	path := filepath.Join(c.dir, KeyFile)
	for range 3 {
		k, err := readKey(path)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		k = make([]byte, keySize)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("token cache: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue // another broker made it first; read theirs
		}
		if err != nil {
			return nil, fmt.Errorf("token cache: creating the key: %w", err)
		}
		_, werr := f.Write(k)
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("token cache: writing the key: %w", err)
		}
		return k, nil
	}
	return nil, errors.New("token cache: the key file keeps appearing and vanishing")
}

func readKey(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("token cache: %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("token cache: %s is readable by others (mode %v); make it 0600", path, fi.Mode().Perm())
	}
	k, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(k) != keySize {
		// A file being written by a racing broker is empty for a moment;
		// anything else is damage the user must look at.
		if len(k) == 0 {
			time.Sleep(10 * time.Millisecond)
			if k, err = os.ReadFile(path); err == nil && len(k) == keySize {
				return k, nil
			}
		}
		return nil, fmt.Errorf("token cache: %s is not a %d-byte key; remove it to start a new cache", path, keySize)
	}
	return k, nil
}

func (c *Cache) aead() (cipher.AEAD, error) {
	k, err := c.key()
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("token cache: %w", err)
	}
	return cipher.NewGCM(block)
}

type fileContent struct {
	Entries map[string]Entry `json:"entries"`
}

// read returns the entries on disk; a missing file is empty, an
// unreadable one is empty with a warning.
func (c *Cache) read(aead cipher.AEAD) map[string]Entry {
	path := filepath.Join(c.dir, DataFile)
	entries, err := decode(aead, path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("ignoring the token cache; it will be rewritten", slog.String("file", path), slog.String("reason", err.Error()))
		}
		return map[string]Entry{}
	}
	return entries
}

func decode(aead cipher.AEAD, path string) (map[string]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, err
	}
	return Decrypt(aead, data)
}

// Decrypt opens a cache file's content with aead. It is exported for the
// fuzz target and for tools that inspect a cache.
func Decrypt(aead cipher.AEAD, data []byte) (map[string]Entry, error) {
	if len(data) > maxFile {
		return nil, errors.New("the file is too large")
	}
	if len(data) < len(header)+nonceSize || string(data[:len(header)]) != header {
		return nil, errors.New("not a credbroker token cache (or a truncated one)")
	}
	nonce := data[len(header) : len(header)+nonceSize]
	plain, err := aead.Open(nil, nonce, data[len(header)+nonceSize:], []byte(header))
	if err != nil {
		return nil, errors.New("it does not decrypt with this cache's key (another key, or damaged)")
	}
	var fc fileContent
	if err := json.Unmarshal(plain, &fc); err != nil {
		return nil, errors.New("its content is not the expected JSON")
	}
	if fc.Entries == nil {
		fc.Entries = map[string]Entry{}
	}
	return fc.Entries, nil
}

// Encrypt seals entries in the file format.
func Encrypt(aead cipher.AEAD, entries map[string]Entry) ([]byte, error) {
	plain, err := json.Marshal(fileContent{Entries: entries})
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte(header), nonce...)
	return aead.Seal(out, nonce, plain, []byte(header)), nil
}

// write replaces the data file atomically; no entries removes it.
func (c *Cache) write(aead cipher.AEAD, entries map[string]Entry) error {
	path := filepath.Join(c.dir, DataFile)
	if len(entries) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("token cache: %w", err)
		}
		return nil
	}
	data, err := Encrypt(aead, entries)
	if err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	tmp, err := os.CreateTemp(c.dir, DataFile+".*") // mode 0600, O_EXCL
	if err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	_, werr := tmp.Write(data)
	if err := errors.Join(werr, tmp.Sync(), tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("token cache: writing: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("token cache: %w", err)
	}
	return nil
}
