package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable clock shared by a test's broker and source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeSource mints numbered tokens that live `life` on the test clock.
// gate, when set, blocks every mint until it is closed.
type fakeSource struct {
	clock *clock
	life  time.Duration
	gate  chan struct{}
	err   error

	mints  atomic.Int64
	mu     sync.Mutex
	scopes [][]string
}

func (s *fakeSource) AccessToken(ctx context.Context, scopes []string, _ time.Duration) (Token, error) {
	s.mu.Lock()
	s.scopes = append(s.scopes, scopes)
	s.mu.Unlock()
	return s.mint(ctx, "at")
}

func (s *fakeSource) IDToken(ctx context.Context, aud string, _ time.Duration) (Token, error) {
	return s.mint(ctx, "id-"+aud)
}

func (s *fakeSource) Email() string { return "fake@example.com" }

func (s *fakeSource) mint(ctx context.Context, kind string) (Token, error) {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return Token{}, NewTransient(ctx.Err())
		}
	}
	n := s.mints.Add(1)
	if s.err != nil {
		return Token{}, s.err
	}
	return Token{Value: fmt.Sprintf("%s-%d", kind, n), Expiry: s.clock.Now().Add(s.life)}, nil
}

func newTestBroker(t *testing.T, src Source, c *clock, size int) *Broker {
	t.Helper()
	b := New(Options{CacheSize: size, Now: c.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := b.AddAccount("task", src); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// waitRefreshes waits for background refreshes to finish.
func waitRefreshes(t *testing.T, b *Broker) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		busy := false
		b.refreshing.Range(func(any, any) bool { busy = true; return false })
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("background refresh did not finish")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestColdBurstMintsOnce(t *testing.T) {
	c := newClock()
	src := &fakeSource{clock: c, life: time.Hour, gate: make(chan struct{})}
	b := newTestBroker(t, src, c, 16)

	const n = 1000
	var started, done sync.WaitGroup
	errs := make(chan error, n)
	toks := make(chan string, n)
	for range n {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			tok, err := b.AccessToken(context.Background(), "task", []string{"b", "a", "b"}, 3*time.Minute)
			errs <- err
			toks <- tok.Value
		}()
	}
	started.Wait()
	close(src.gate)
	done.Wait()
	close(errs)
	close(toks)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for tok := range toks {
		if tok != "at-1" {
			t.Fatalf("got token %q, want at-1", tok)
		}
	}
	if got := src.mints.Load(); got != 1 {
		t.Errorf("upstream mints = %d, want 1", got)
	}
	if got := src.scopes[0]; !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("source got scopes %q, want sorted and de-duplicated", got)
	}
}

func TestSlowMintDoesNotBlockOtherKeys(t *testing.T) {
	c := newClock()
	fast := &fakeSource{clock: c, life: time.Hour}
	slow := &fakeSource{clock: c, life: time.Hour, gate: make(chan struct{})}
	b := newTestBroker(t, fast, c, 16)
	if err := b.AddAccount("slow", slow); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AccessToken(context.Background(), "task", []string{"s"}, time.Minute); err != nil {
		t.Fatal(err)
	}

	slowDone := make(chan error, 1)
	go func() {
		_, err := b.AccessToken(context.Background(), "slow", []string{"s"}, time.Minute)
		slowDone <- err
	}()
	// While "slow" is stuck minting: a hit on "task" and a new key on it
	// both complete.
	for _, scope := range []string{"s", "other"} {
		if _, err := b.AccessToken(context.Background(), "task", []string{scope}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-slowDone:
		t.Fatal("slow mint finished before its gate opened")
	default:
	}
	close(slow.gate)
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
}

func TestCallerCancelDoesNotFailOthers(t *testing.T) {
	c := newClock()
	src := &fakeSource{clock: c, life: time.Hour, gate: make(chan struct{})}
	b := newTestBroker(t, src, c, 16)

	ctx, cancel := context.WithCancel(context.Background())
	impatient := make(chan error, 1)
	go func() {
		_, err := b.AccessToken(ctx, "task", []string{"s"}, time.Minute)
		impatient <- err
	}()
	patient := make(chan error, 1)
	go func() {
		_, err := b.AccessToken(context.Background(), "task", []string{"s"}, time.Minute)
		patient <- err
	}()
	cancel()
	if err := <-impatient; !IsTransient(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want transient context.Canceled", err)
	}
	close(src.gate)
	if err := <-patient; err != nil {
		t.Fatalf("patient caller got %v", err)
	}
	if got := src.mints.Load(); got != 1 {
		t.Errorf("mints = %d, want 1", got)
	}
}

func TestLRUBound(t *testing.T) {
	c := newClock()
	src := &fakeSource{clock: c, life: time.Hour}
	b := newTestBroker(t, src, c, 8)
	for i := range 100 {
		if _, err := b.AccessToken(context.Background(), "task", []string{fmt.Sprint(i)}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.Stats().Entries; got != 8 {
		t.Errorf("cache entries = %d, want 8", got)
	}
	// The oldest key was evicted: asking again mints.
	before := src.mints.Load()
	if _, err := b.AccessToken(context.Background(), "task", []string{"0"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if src.mints.Load() != before+1 {
		t.Error("evicted key was served without a mint")
	}
}

func TestNeverBelowMinimumLifetime(t *testing.T) {
	c := newClock()
	src := &fakeSource{clock: c, life: time.Hour}
	b := newTestBroker(t, src, c, 16)
	ctx := context.Background()

	first, err := b.AccessToken(ctx, "task", []string{"s"}, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// 58 minutes later the token has 2 minutes left: a caller needing 3
	// must get a new one, and must wait for it rather than be served the
	// old one.
	c.Advance(58 * time.Minute)
	second, err := b.AccessToken(ctx, "task", []string{"s"}, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if second.Value == first.Value {
		t.Fatal("served a token with less than the minimum lifetime")
	}
	if left := second.Lifetime(c.Now()); left < 3*time.Minute {
		t.Fatalf("served token with %v left", left)
	}
}

func TestRefreshAheadReplacesHotToken(t *testing.T) {
	c := newClock()
	src := &fakeSource{clock: c, life: time.Hour}
	b := newTestBroker(t, src, c, 16)
	ctx := context.Background()

	first, _ := b.AccessToken(ctx, "task", []string{"s"}, 5*time.Minute)
	// With 14 minutes left (below a quarter of the hour) a hit is still
	// served at once, and starts a background refresh.
	c.Advance(46 * time.Minute)
	hit, err := b.AccessToken(ctx, "task", []string{"s"}, 5*time.Minute)
	if err != nil || hit.Value != first.Value {
		t.Fatalf("hit = %q, %v; want the cached token", hit.Value, err)
	}
	waitRefreshes(t, b)
	next, _ := b.AccessToken(ctx, "task", []string{"s"}, 5*time.Minute)
	if next.Value == first.Value {
		t.Fatal("hot token was not refreshed ahead of expiry")
	}
	if st := b.Stats(); st.Misses != 1 || st.Refreshes != 1 {
		t.Errorf("stats = %+v, want 1 miss and 1 refresh", st)
	}
}

func TestShortLivedUpstreamServesFreshest(t *testing.T) {
	c := newClock()
	src := &fakeSource{clock: c, life: 30 * time.Second}
	b := newTestBroker(t, src, c, 16)
	ctx := context.Background()

	// local_auth wants 3 minutes; the upstream only ever gives 30 seconds.
	// Simulate 40 seconds of requests, one every 100 ms.
	for range 400 {
		tok, err := b.AccessToken(ctx, "task", []string{"s"}, 3*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Lifetime(c.Now()) <= 0 {
			t.Fatal("served an expired token")
		}
		waitRefreshes(t, b)
		c.Advance(100 * time.Millisecond)
	}
	if got := src.mints.Load(); got > 4 {
		t.Errorf("mints in 40s of 30s tokens = %d, want a few (refresh ahead, not per request)", got)
	}
	if st := b.Stats(); st.Misses != 1 {
		t.Errorf("misses = %d, want only the cold one", st.Misses)
	}
}

func TestExpiredTokenNeverServed(t *testing.T) {
	c := newClock()
	src := &fakeSource{clock: c, life: -time.Second}
	b := newTestBroker(t, src, c, 16)
	_, err := b.AccessToken(context.Background(), "task", []string{"s"}, time.Minute)
	if !IsTransient(err) {
		t.Fatalf("err = %v, want a transient error for an expired upstream token", err)
	}
}

func TestErrorsKeepClassAndCode(t *testing.T) {
	c := newClock()
	tests := []struct {
		name      string
		err       error
		transient bool
		code      int
	}{
		{"transient", NewTransient(errors.New("boom")), true, -1},
		{"fatal", NewFatal(errors.New("boom")), false, -1},
		{"coded", NewFatalCode(42, errors.New("boom")), false, 42},
		{"wrapped coded", fmt.Errorf("wrap: %w", NewFatalCode(42, errors.New("boom"))), false, 42},
		{"plain error is fatal", errors.New("boom"), false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBroker(t, &fakeSource{clock: c, life: time.Hour, err: tt.err}, c, 16)
			_, err := b.AccessToken(context.Background(), "task", []string{"s"}, time.Minute)
			if IsTransient(err) != tt.transient || CodeOf(err) != tt.code {
				t.Errorf("err %v: transient=%v code=%d, want %v %d", err, IsTransient(err), CodeOf(err), tt.transient, tt.code)
			}
		})
	}
}

func TestAccountsAndRequests(t *testing.T) {
	c := newClock()
	b := newTestBroker(t, &fakeSource{clock: c, life: time.Hour}, c, 16)
	if err := b.AddAccount("task", &fakeSource{}); err == nil {
		t.Error("adding an account twice succeeded")
	}
	if err := b.AddAccount("a-system", &fakeSource{clock: c, life: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got := b.Default(); got != "task" {
		t.Errorf("default = %q, want the first account added", got)
	}
	if got := b.Accounts(); len(got) != 2 || got[0].ID != "a-system" || got[1].Email != "fake@example.com" {
		t.Errorf("accounts = %+v, want sorted by id with emails", got)
	}
	ctx := context.Background()
	if _, err := b.AccessToken(ctx, "nobody", []string{"s"}, time.Minute); !errors.Is(err, ErrUnknownAccount) || IsTransient(err) {
		t.Errorf("unknown account: %v", err)
	}
	if _, err := b.AccessToken(ctx, "task", nil, time.Minute); err == nil {
		t.Error("no scopes accepted")
	}
	if _, err := b.IDToken(ctx, "task", "", time.Minute); err == nil {
		t.Error("empty audience accepted")
	}
	a, _ := b.IDToken(ctx, "task", "aud-a", time.Minute)
	bb, _ := b.IDToken(ctx, "task", "aud-b", time.Minute)
	a2, _ := b.IDToken(ctx, "task", "aud-a", time.Minute)
	if a.Value == bb.Value || a.Value != a2.Value {
		t.Errorf("ID tokens not cached per audience: %q %q %q", a.Value, bb.Value, a2.Value)
	}
}

func TestNormalizeScopes(t *testing.T) {
	in := []string{"b", "a", "b", ""}
	got := NormalizeScopes(in)
	if !slices.Equal(got, []string{"", "a", "b"}) {
		t.Errorf("NormalizeScopes = %q", got)
	}
	if !slices.Equal(in, []string{"b", "a", "b", ""}) {
		t.Error("input modified")
	}
}

// BenchmarkCachedHit measures a cache hit against reading a plain map
// under a mutex, the least a cache could cost.
func BenchmarkCachedHit(b *testing.B) {
	c := newClock()
	br := New(Options{Now: c.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer br.Close()
	_ = br.AddAccount("task", &fakeSource{clock: c, life: time.Hour})
	ctx := context.Background()
	scopes := []string{"https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/userinfo.email"}
	if _, err := br.AccessToken(ctx, "task", scopes, time.Minute); err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	bare := map[string]Token{"k": {Value: "x"}}
	start := time.Now()
	for range b.N {
		mu.Lock()
		_ = bare["k"]
		mu.Unlock()
	}
	baseline := time.Since(start)
	b.ResetTimer()
	for range b.N {
		if _, err := br.AccessToken(ctx, "task", scopes, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if baseline > 0 {
		b.ReportMetric(float64(b.Elapsed())/float64(baseline), "x-bare-map")
	}
}

func TestRemoveAccount(t *testing.T) {
	c := newClock()
	b := newTestBroker(t, &fakeSource{clock: c, life: time.Hour}, c, 16)
	other := &fakeSource{clock: c, life: time.Hour}
	if err := b.AddAccount("task-2", other); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b.AccessToken(ctx, "task", []string{"s"}, time.Minute)
	b.IDToken(ctx, "task", "aud", time.Minute)
	b.AccessToken(ctx, "task-2", []string{"s"}, time.Minute)
	b.RemoveAccount("task")
	if _, err := b.AccessToken(ctx, "task", []string{"s"}, time.Minute); !errors.Is(err, ErrUnknownAccount) {
		t.Errorf("removed account still served: %v", err)
	}
	if got := b.Stats().Entries; got != 1 {
		t.Errorf("cache entries = %d, want only task-2's", got)
	}
	if b.Default() != "" {
		t.Errorf("default = %q after removing it", b.Default())
	}
}

func TestPublicReasonNeverQuotesTheError(t *testing.T) {
	secret := "ya29.secret-token"
	tests := []struct {
		err  error
		want string
	}{
		{NewTransient(errors.New(secret)), "temporary failure, try again"},
		{NewFatal(fmt.Errorf("%w %q: %s", ErrUnknownAccount, "x", secret)), "the account is not served"},
		{NewFatal(fmt.Errorf("%w: %s", ErrNotSupported, secret)), "not supported by this credential"},
		{fmt.Errorf("%w %s", context.DeadlineExceeded, secret), "timed out, try again"},
		{NewFatal(errors.New(secret)), "the credential was refused, see the broker's log"},
	}
	for _, tt := range tests {
		if got := PublicReason(tt.err); got != tt.want {
			t.Errorf("PublicReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
