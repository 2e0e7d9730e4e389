package authtoken

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"credbroker/store"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	repo  *Repository
	st    *store.DB
	clock *clock
	path  string
	key   []byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := store.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := NewKey()
	keys, err := NewKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	repo, err := NewRepository(context.Background(), st, keys, Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{repo: repo, st: st, clock: c, path: path, key: key}
}

func (f *fixture) create(t *testing.T, o CreateOptions) *Token {
	t.Helper()
	tok, err := f.repo.Create(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) issued(t *testing.T, o CreateOptions) *Token {
	t.Helper()
	tok := f.create(t, o)
	if err := f.repo.Issue(context.Background(), tok.PublicID, nil); err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestStatusTransitions(t *testing.T) {
	ctx := context.Background()
	type step struct {
		do      func(r *Repository, id string) error
		wantErr error
		want    Status
	}
	issue := func(r *Repository, id string) error { return r.Issue(ctx, id, nil) }
	fail := func(s Status) func(r *Repository, id string) error {
		return func(r *Repository, id string) error { return r.Fail(ctx, id, s, "port in use") }
	}
	markFailed := func(r *Repository, id string) error { return r.MarkFailed(ctx, id, "cannot restore") }
	tests := []struct {
		name  string
		steps []step
	}{
		{"pending to issued", []step{{issue, nil, Issued}}},
		{"pending to failed", []step{{fail(Failed), nil, Failed}}},
		{"pending to system error", []step{{fail(SystemError), nil, SystemError}}},
		{"issued twice", []step{{issue, nil, Issued}, {issue, ErrTransition, Issued}}},
		{"issued cannot fail as pending", []step{{issue, nil, Issued}, {fail(Failed), ErrTransition, Issued}}},
		{"issued marked failed", []step{{issue, nil, Issued}, {markFailed, nil, Failed}}},
		{"failed is final", []step{{fail(Failed), nil, Failed}, {issue, ErrTransition, Failed}, {markFailed, ErrTransition, Failed}}},
		{"system error is final", []step{{fail(SystemError), nil, SystemError}, {issue, ErrTransition, SystemError}}},
		{"issued is not a failure", []step{{fail(Issued), errAny, Pending}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tok := f.create(t, CreateOptions{OwnerUID: 7})
			if tok.Status != Pending {
				t.Fatalf("new token status %q, want pending", tok.Status)
			}
			for i, s := range tt.steps {
				err := s.do(f.repo, tok.PublicID)
				switch {
				case s.wantErr == errAny && err == nil, s.wantErr != errAny && !errors.Is(err, s.wantErr):
					t.Fatalf("step %d: err = %v, want %v", i, err, s.wantErr)
				}
				got, err := f.repo.Lookup(ctx, tok.PublicID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != s.want {
					t.Fatalf("step %d: status %q, want %q", i, got.Status, s.want)
				}
			}
		})
	}
	t.Run("unknown id", func(t *testing.T) {
		f := newFixture(t)
		if err := f.repo.Issue(ctx, "at_0000000000", nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("Issue of an unknown id: %v, want ErrNotFound", err)
		}
	})
	t.Run("failure reason kept", func(t *testing.T) {
		f := newFixture(t)
		tok := f.create(t, CreateOptions{})
		f.repo.Fail(ctx, tok.PublicID, Failed, "port in use")
		got, _ := f.repo.Lookup(ctx, tok.PublicID)
		if got.Reason != "port in use" {
			t.Errorf("reason %q", got.Reason)
		}
	})
}

var errAny = errors.New("any error")

func TestCloseExpiredPending(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	old := f.create(t, CreateOptions{})
	f.clock.Add(DefaultPendingTimeout)
	young := f.create(t, CreateOptions{})
	done := f.issued(t, CreateOptions{})
	n, err := f.repo.CloseExpiredPending(ctx)
	if err != nil || n != 1 {
		t.Fatalf("CloseExpiredPending = %d, %v; want 1", n, err)
	}
	for _, c := range []struct {
		id   string
		want Status
	}{{old.PublicID, Failed}, {young.PublicID, Pending}, {done.PublicID, Issued}} {
		got, _ := f.repo.Lookup(ctx, c.id)
		if got.Status != c.want {
			t.Errorf("%s: %q, want %q", c.id, got.Status, c.want)
		}
	}
}

func TestValidateLifetime(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		ttl     time.Duration
		stale   time.Duration
		uses    []time.Duration // clock advances, validating after each
		wantOK  []bool
		deleted bool
	}{
		{"fresh", time.Hour, 0, []time.Duration{0}, []bool{true}, false},
		{"just before expiry", time.Hour, 0, []time.Duration{time.Hour - time.Second}, []bool{true}, false},
		{"at expiry", time.Hour, 0, []time.Duration{time.Hour}, []bool{false}, true},
		{"stale without use", 8 * time.Hour, 10 * time.Minute, []time.Duration{10 * time.Minute}, []bool{false}, true},
		{"use keeps fresh", 8 * time.Hour, 10 * time.Minute, []time.Duration{9 * time.Minute, 9 * time.Minute, 9 * time.Minute}, []bool{true, true, true}, false},
		{"stale after last use", 8 * time.Hour, 10 * time.Minute, []time.Duration{9 * time.Minute, 10 * time.Minute}, []bool{true, false}, true},
		{"expiry wins over use", time.Hour, 30 * time.Minute, []time.Duration{25 * time.Minute, 25 * time.Minute, 25 * time.Minute}, []bool{true, true, false}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tok := f.issued(t, CreateOptions{TTL: tt.ttl, StaleAfter: tt.stale})
			for i, d := range tt.uses {
				f.clock.Add(d)
				got, err := f.repo.Validate(ctx, tok.Credential())
				if ok := err == nil; ok != tt.wantOK[i] {
					t.Fatalf("use %d: err = %v, want ok=%v", i, err, tt.wantOK[i])
				}
				if err == nil && (got.PublicID != tok.PublicID || got.Value != "") {
					t.Fatalf("use %d: got %+v", i, got)
				}
				if err != nil && !errors.Is(err, ErrInvalid) {
					t.Fatalf("use %d: err = %v, want ErrInvalid", i, err)
				}
			}
			_, err := f.repo.Lookup(ctx, tok.PublicID)
			if gone := errors.Is(err, ErrNotFound); gone != tt.deleted {
				t.Errorf("deleted = %v, want %v", gone, tt.deleted)
			}
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok := f.issued(t, CreateOptions{})
	pending := f.create(t, CreateOptions{})
	other := f.issued(t, CreateOptions{})
	tests := []struct{ name, cred string }{
		{"pending", pending.Credential()},
		{"id of another", Credential(other.PublicID, tok.Value)},
		{"changed value", Credential(tok.PublicID, tok.Value[:len(tok.Value)-1]+flip(tok.Value[len(tok.Value)-1]))},
		{"malformed", "at_x"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.repo.Validate(ctx, tt.cred); !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

// TestTouchWritesAtMostOncePerInterval reads the stored last access time
// back: uses within a minute of the last write do not move it.
func TestTouchWritesAtMostOncePerInterval(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok := f.issued(t, CreateOptions{})
	start := f.clock.Now()
	stored := func() time.Time {
		t.Helper()
		rec, err := f.st.Get(ctx, tok.PublicID)
		if err != nil {
			t.Fatal(err)
		}
		return rec.LastAccessTime
	}
	steps := []struct {
		advance time.Duration
		want    time.Duration // stored last access, relative to start
	}{
		{30 * time.Second, 0},
		{29 * time.Second, 0},
		{1 * time.Second, 60 * time.Second},
		{59 * time.Second, 60 * time.Second},
		{61 * time.Second, 180 * time.Second},
	}
	for i, s := range steps {
		f.clock.Add(s.advance)
		if err := f.repo.Touch(ctx, tok.PublicID); err != nil {
			t.Fatal(err)
		}
		if got := stored().Sub(start); got != s.want {
			t.Errorf("step %d: stored last access at +%v, want +%v", i, got, s.want)
		}
	}
}

func TestDeleteExpired(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	short := f.issued(t, CreateOptions{TTL: time.Minute})
	stale := f.issued(t, CreateOptions{TTL: time.Hour, StaleAfter: time.Minute})
	long := f.issued(t, CreateOptions{TTL: time.Hour})
	f.clock.Add(time.Minute)
	ids, err := f.repo.DeleteExpired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	want := []string{short.PublicID, stale.PublicID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("deleted %v, want %v", ids, want)
	}
	if _, err := f.repo.Lookup(ctx, long.PublicID); err != nil {
		t.Errorf("long-lived token: %v", err)
	}
}

func TestListFiltersAndLimit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var ids []string
	mk := func(uid int64, st Status) {
		tok := f.create(t, CreateOptions{OwnerUID: uid})
		switch st {
		case Issued:
			f.repo.Issue(ctx, tok.PublicID, nil)
		case Failed:
			f.repo.Fail(ctx, tok.PublicID, Failed, "x")
		}
		ids = append(ids, tok.PublicID)
		f.clock.Add(time.Second) // creation order is list order
	}
	mk(1, Issued)  // 0
	mk(2, Issued)  // 1
	mk(1, Pending) // 2
	mk(1, Failed)  // 3
	mk(2, Failed)  // 4
	uid1 := int64(1)
	tests := []struct {
		name string
		opts ListOptions
		want []int
	}{
		{"all", ListOptions{}, []int{0, 1, 2, 3, 4}},
		{"issued", ListOptions{Statuses: []Status{Issued}}, []int{0, 1}},
		{"issued or pending", ListOptions{Statuses: []Status{Issued, Pending}}, []int{0, 1, 2}},
		{"owner", ListOptions{OwnerUID: &uid1}, []int{0, 2, 3}},
		{"owner and status", ListOptions{OwnerUID: &uid1, Statuses: []Status{Failed}}, []int{3}},
		{"limit", ListOptions{Limit: 2}, []int{0, 1}},
		{"no limit", ListOptions{Limit: -1}, []int{0, 1, 2, 3, 4}},
		{"limit with filter", ListOptions{Statuses: []Status{Failed, Pending}, Limit: 1}, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.repo.List(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs, want []string
			for _, tok := range got {
				if tok.Value != "" {
					t.Errorf("List returned the value of %s", tok.PublicID)
				}
				gotIDs = append(gotIDs, tok.PublicID)
			}
			for _, i := range tt.want {
				want = append(want, ids[i])
			}
			if !slices.Equal(gotIDs, want) {
				t.Errorf("got %v, want %v", gotIDs, want)
			}
		})
	}
}

// TestNoSecretAtRest scans every byte of the database files for the token
// values in any form a careless implementation would write them.
func TestNoSecretAtRest(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var values []string
	for range 5 {
		tok := f.issued(t, CreateOptions{Data: []byte(`{"accounts":["task"]}`)})
		values = append(values, tok.Value, tok.Value[1:])
		if _, err := f.repo.Validate(ctx, tok.Credential()); err != nil {
			t.Fatal(err)
		}
	}
	f.st.Close()
	files, _ := filepath.Glob(f.path + "*")
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if bytes.Contains(data, []byte(v)) {
				t.Errorf("%s contains a token value in clear", filepath.Base(p))
			}
		}
		if bytes.Contains(data, f.key) {
			t.Errorf("%s contains the key", filepath.Base(p))
		}
		if info, _ := os.Stat(p); info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), info.Mode().Perm())
		}
	}
}

func TestWrongKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok := f.issued(t, CreateOptions{})
	other, _ := NewKeys(NewKey())
	if _, err := NewRepository(ctx, f.st, other, Options{}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("NewRepository with another key: %v, want ErrWrongKey", err)
	}
	// Even past the key check, a ciphertext does not open with another
	// key, nor under another public id.
	rec, _ := f.st.Get(ctx, tok.PublicID)
	if _, err := other.Open(tok.PublicID, rec.Ciphertext); !errors.Is(err, ErrWrongKey) {
		t.Errorf("Open with another key: %v", err)
	}
	keys, _ := NewKeys(f.key)
	if _, err := keys.Open("at_AAAAAAAAAA", rec.Ciphertext); !errors.Is(err, ErrWrongKey) {
		t.Errorf("Open under another id: %v", err)
	}
	if v, err := f.repo.Value(ctx, tok.PublicID); err != nil || v != tok.Value {
		t.Errorf("Value with the right key: err %v, match %v", err, v == tok.Value)
	}
}

func TestKeyParsing(t *testing.T) {
	k := NewKey()
	got, err := ParseKey(FormatKey(k))
	if err != nil || !bytes.Equal(got, k) {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range []string{"", "AAAA", FormatKey(k[:31]), FormatKey(k) + "x"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}
