package robustness

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"credbroker/internal/bench"
	"credbroker/internal/fakegoogle"
)

// Every front-end reports an upstream failure in its protocol's terms:
// transient ones (5xx, 429, resets, hangs past the mint deadline) as
// "retry", fatal ones (4xx) as "give up", and never hands out a token.
func TestUpstreamFaultsAreClassified(t *testing.T) {
	tests := []struct {
		name        string
		fault       fakegoogle.Fault
		reset       bool
		mintTimeout time.Duration
		want        bench.Outcome
	}{
		{name: "500", fault: fakegoogle.Fault{Status: http.StatusInternalServerError}, want: bench.Transient},
		{name: "503", fault: fakegoogle.Fault{Status: http.StatusServiceUnavailable}, want: bench.Transient},
		{name: "429 with a long Retry-After", fault: fakegoogle.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Minute}, want: bench.Transient},
		{name: "connection reset", reset: true, want: bench.Transient},
		{name: "hang", fault: fakegoogle.Fault{Hang: true}, mintTimeout: time.Second, want: bench.Transient},
		{name: "400 invalid_grant", fault: fakegoogle.Fault{Status: http.StatusBadRequest}, want: bench.Fatal},
		{name: "401", fault: fakegoogle.Fault{Status: http.StatusUnauthorized}, want: bench.Fatal},
		{name: "403", fault: fakegoogle.Fault{Status: http.StatusForbidden, Error: "access_denied"}, want: bench.Fatal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, rigOptions{mintTimeout: tt.mintTimeout})
			r.fg.SetFault(tt.fault)
			r.resets.on.Store(tt.reset)
			// The bound every answer must meet: the mint deadline plus
			// the source's one backoff, with room for a loaded machine.
			bound := 10 * time.Second
			if tt.mintTimeout > 0 {
				bound = tt.mintTimeout + 4*time.Second
			}
			for _, target := range r.targets {
				start := time.Now()
				a := r.fetch(t, target)
				took := time.Since(start)
				if a.Outcome != tt.want || a.Token != "" {
					t.Errorf("%s: got %v (status %d, %q), want %v and no token", target.Name, a.Outcome, a.Status, a.Message, tt.want)
				}
				if took > bound {
					t.Errorf("%s: answered after %v, past the bound of %v", target.Name, took, bound)
				}
			}
			if n := len(r.fg.Mints()); n != 0 {
				t.Errorf("%d tokens minted under the fault", n)
			}
		})
	}
}

// As soon as the upstream works again, the next request on every
// front-end gets a token: failures are not cached and no backoff outlives
// the request that hit it.
func TestRecoveryIsImmediate(t *testing.T) {
	faults := []struct {
		name  string
		fault fakegoogle.Fault
		reset bool
	}{
		{name: "500", fault: fakegoogle.Fault{Status: http.StatusInternalServerError}},
		{name: "400", fault: fakegoogle.Fault{Status: http.StatusBadRequest}},
		{name: "reset", reset: true},
	}
	for _, f := range faults {
		for _, name := range bench.Frontends {
			t.Run(f.name+"/"+name, func(t *testing.T) {
				r := newRig(t, rigOptions{})
				target, _ := bench.ByName(r.targets, name)
				r.fg.SetFault(f.fault)
				r.resets.on.Store(f.reset)
				if a := r.fetch(t, target); a.Outcome == bench.OK {
					t.Fatalf("served a token while the upstream failed")
				}
				r.fg.SetFault(fakegoogle.Fault{})
				r.resets.on.Store(false)
				if a := r.fetch(t, target); a.Outcome != bench.OK {
					t.Errorf("after recovery: %v (status %d, %q), want a token", a.Outcome, a.Status, a.Message)
				}
			})
		}
	}
}

// A 429 with a short Retry-After is waited out and the request still gets
// its token.
func TestRetryAfterIsHonoured(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.fg.SetFault(fakegoogle.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second, Times: 1})
	target, _ := bench.ByName(r.targets, bench.Metadata)
	start := time.Now()
	a := r.fetch(t, target)
	if a.Outcome != bench.OK {
		t.Fatalf("got %v (%q), want a token after the retry", a.Outcome, a.Message)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("token after %v: the Retry-After of 1s was not waited for", took)
	}
	if n := r.fg.Requests(); n != 2 {
		t.Errorf("%d upstream requests, want 2 (the 429 and the retry)", n)
	}
}

// Many clients of every front-end asking at once for one key cause one
// upstream call at a time: one in total when it succeeds, and never two
// overlapping when it fails and is retried.
func TestOneUpstreamCallPerKey(t *testing.T) {
	tests := []struct {
		name         string
		fault        fakegoogle.Fault
		want         bench.Outcome
		maxUpstreams int
	}{
		{name: "slow answers", fault: fakegoogle.Fault{Latency: 300 * time.Millisecond}, want: bench.OK, maxUpstreams: 1},
		{name: "slow 500s", fault: fakegoogle.Fault{Status: 500, Latency: 300 * time.Millisecond}, want: bench.Transient, maxUpstreams: 2 * 2},
	}
	const perFrontend = 25
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, rigOptions{})
			r.fg.SetFault(tt.fault)
			var mu sync.Mutex
			got := map[string]int{}
			var wg sync.WaitGroup
			for _, target := range r.targets {
				for range perFrontend {
					wg.Go(func() {
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						defer cancel()
						a, err := target.Fetch(ctx, r.client)
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							got[target.Name+": "+err.Error()]++
							return
						}
						got[fmt.Sprintf("%s: %v", target.Name, a.Outcome)]++
					})
				}
			}
			wg.Wait()
			for _, target := range r.targets {
				key := fmt.Sprintf("%s: %v", target.Name, tt.want)
				if got[key] != perFrontend {
					t.Errorf("answers %v, want %d × %q", got, perFrontend, key)
					break
				}
			}
			if n := r.fg.Requests(); n > tt.maxUpstreams {
				t.Errorf("%d upstream requests for one key, want at most %d", n, tt.maxUpstreams)
			}
			if n := r.resets.maxOpen.Load(); n != 1 {
				t.Errorf("%d upstream calls overlapped, want 1 at a time", n)
			}
		})
	}
}

// With tokens that live a few seconds, every front-end keeps serving
// without waiting on mints, a handful of refreshes keep up, and no client
// is ever handed a token that has expired or that it would think lives
// longer than it does.
func TestShortLivedTokensNeverExpired(t *testing.T) {
	// A stale token is served until a quarter of its life is left and the
	// refresh starts at half, so each refresh has life/4 to land before a
	// request would wait: 2 s, ample even on a loaded machine (1 s was not).
	const (
		life     = 8 * time.Second
		duration = 10 * time.Second
	)
	r := newRig(t, rigOptions{})
	r.fg.SetTokenLifetime(life)
	for _, target := range r.targets { // the first request is the one miss
		if a := r.fetch(t, target); a.Outcome != bench.OK {
			t.Fatalf("%s: %v %q", target.Name, a.Outcome, a.Message)
		}
	}
	type served struct {
		frontend string
		token    string
		claimed  time.Time
		at       time.Time
	}
	var (
		mu   sync.Mutex
		seen []served
		errs atomic.Int64
	)
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for _, target := range r.targets {
		for range 2 {
			wg.Go(func() {
				// Paced, so that the load spans the whole duration (and
				// with it the refreshes) however fast the machine is.
				tick := time.NewTicker(2 * time.Millisecond)
				defer tick.Stop()
				for n := 0; n < 5000 && time.Now().Before(deadline); n++ {
					<-tick.C
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					a, err := target.Fetch(ctx, r.client)
					cancel()
					if err != nil || a.Outcome != bench.OK {
						errs.Add(1)
						continue
					}
					mu.Lock()
					seen = append(seen, served{target.Name, a.Token, a.Expiry, time.Now()})
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if n := errs.Load(); n != 0 {
		t.Errorf("%d requests failed", n)
	}
	expiry := map[string]time.Time{}
	for _, m := range r.fg.Mints() {
		expiry[m.Token] = m.Expiry
	}
	for _, s := range seen {
		real, ok := expiry[s.token]
		switch {
		case !ok:
			t.Fatalf("%s served a token the upstream never minted", s.frontend)
		case !real.After(s.at):
			t.Fatalf("%s served a token that had expired %v before", s.frontend, s.at.Sub(real))
		case s.claimed.After(real.Add(time.Second)):
			t.Fatalf("%s told its client the token lives %v longer than it does", s.frontend, s.claimed.Sub(real))
		}
	}
	st := r.broker.Stats()
	// The first request was the only one that waited for a mint.
	if st.Misses != 1 {
		t.Errorf("%d requests waited for a mint, want 1 (the first)", st.Misses)
	}
	// Refreshing at half of the life: about one mint per life/2; and at
	// least one refresh, or the test did not reach what it is about.
	if st.Refreshes == 0 || len(expiry) < 2 {
		t.Errorf("no refresh in %v of %v tokens (%d mints): the load did not last", duration, life, len(expiry))
	}
	if limit := int(duration/(life/2)) + 3; len(expiry) > limit {
		t.Errorf("%d mints in %v of %v tokens, want at most %d", len(expiry), duration, life, limit)
	}
	t.Logf("%d tokens served, %d mints, stats %+v", len(seen), len(expiry), st)
}

// A local clock that is off by five minutes either way never makes a
// front-end serve an expired token: five minutes slow, Google's answers
// are taken at face value from the moment of the call; five minutes fast,
// the assertion looks issued in the future and Google refuses it, which
// every front-end reports as fatal, as the operator has to fix the clock.
func TestClockSkew(t *testing.T) {
	tests := []struct {
		skew time.Duration
		want bench.Outcome
	}{
		{skew: -5 * time.Minute, want: bench.OK},
		{skew: 5 * time.Minute, want: bench.Fatal},
	}
	for _, tt := range tests {
		t.Run(tt.skew.String(), func(t *testing.T) {
			r := newRig(t, rigOptions{skew: tt.skew})
			for _, target := range r.targets {
				a := r.fetch(t, target)
				if a.Outcome != tt.want {
					t.Errorf("%s: %v (%q), want %v", target.Name, a.Outcome, a.Message, tt.want)
				}
				if a.Outcome != bench.OK {
					continue
				}
				for _, m := range r.fg.Mints() {
					if m.Token == a.Token && a.Expiry.After(m.Expiry.Add(time.Second)) {
						t.Errorf("%s: client told the token expires %v later than it does", target.Name, a.Expiry.Sub(m.Expiry))
					}
				}
			}
		})
	}
}
