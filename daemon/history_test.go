package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"credbroker/broker"
)

func TestHistory(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	at := func(min int, sec int) time.Time {
		return t0.Add(time.Duration(min)*time.Minute + time.Duration(sec)*time.Second)
	}
	b1, b2 := new(broker.Broker), new(broker.Broker)
	type step struct {
		t          time.Time
		err        error          // an issuance, when hits and misses are unset
		from       *broker.Broker // a cache sample, when set
		hits, miss uint64
	}
	fail := errors.New("mint failed")
	tests := []struct {
		name  string
		steps []step
		now   time.Time
		want  map[int]Minute // by minute offset from t0; the rest zero
	}{
		{
			name:  "issuances and errors per minute",
			steps: []step{{t: at(0, 1)}, {t: at(0, 59)}, {t: at(1, 0), err: fail}, {t: at(1, 30)}},
			now:   at(1, 40),
			want:  map[int]Minute{0: {Issued: 2}, 1: {Issued: 1, Errors: 1}},
		},
		{
			name: "cache samples are deltas charged to their minute",
			steps: []step{
				{t: at(0, 0), from: b1, hits: 10, miss: 2}, // counted since the broker started
				{t: at(0, 59), from: b1, hits: 15, miss: 2},
				{t: at(2, 59), from: b1, hits: 15, miss: 5},
				{t: at(3, 10), from: b1, hits: 40, miss: 5},
			},
			now:  at(3, 20),
			want: map[int]Minute{0: {Hits: 15, Misses: 2}, 2: {Misses: 3}, 3: {Hits: 25}},
		},
		{
			name: "a new broker counts from its own zero",
			steps: []step{
				{t: at(0, 0), from: b1, hits: 100, miss: 10},
				{t: at(1, 0), from: b2, hits: 3, miss: 1},
				{t: at(2, 0), from: b2, hits: 4, miss: 1},
			},
			now:  at(2, 0),
			want: map[int]Minute{0: {Hits: 100, Misses: 10}, 1: {Hits: 3, Misses: 1}, 2: {Hits: 1}},
		},
		{
			name:  "an hour later the ring has forgotten",
			steps: []step{{t: at(0, 0)}, {t: at(30, 0)}, {t: at(60, 0)}, {t: at(61, 0)}},
			now:   at(61, 0),
			want:  map[int]Minute{30: {Issued: 1}, 60: {Issued: 1}, 61: {Issued: 1}},
		},
		{
			name:  "a late request from beyond the ring is dropped",
			steps: []step{{t: at(60, 0)}, {t: at(0, 0)}},
			now:   at(60, 0),
			want:  map[int]Minute{60: {Issued: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h history
			for _, s := range tt.steps {
				if s.from != nil {
					h.sample(s.t, s.from, s.hits, s.miss)
				} else {
					h.observe(s.t, s.err)
				}
			}
			got := h.snapshot(tt.now)
			if len(got) != HistoryMinutes {
				t.Fatalf("%d minutes, want %d", len(got), HistoryMinutes)
			}
			first := tt.now.Truncate(time.Minute).Add(-(HistoryMinutes - 1) * time.Minute)
			for i, m := range got {
				start := first.Add(time.Duration(i) * time.Minute)
				want := tt.want[int(start.Sub(t0)/time.Minute)]
				want.Start = start
				if m != want {
					t.Errorf("minute %d: got %+v, want %+v", i, m, want)
				}
			}
		})
	}
}

func TestEventRing(t *testing.T) {
	tests := []struct {
		name string
		n    int
	}{{"empty", 0}, {"some", 3}, {"exactly full", RecentEvents}, {"wrapped", RecentEvents + 17}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r eventRing
			for i := range tt.n {
				r.add(AuditEntry{Event: "issue", Detail: fmt.Sprint(i)})
			}
			got := r.newestFirst()
			if want := min(tt.n, RecentEvents); len(got) != want {
				t.Fatalf("%d entries, want %d", len(got), want)
			}
			for i, e := range got {
				if want := fmt.Sprint(tt.n - 1 - i); e.Detail != want {
					t.Fatalf("entry %d is %s, want %s", i, e.Detail, want)
				}
			}
		})
	}
}

func TestEventRingCopies(t *testing.T) {
	var r eventRing
	scopes := []string{"a"}
	uid := int64(7)
	r.add(AuditEntry{Scopes: scopes, PeerUID: &uid})
	scopes[0], uid = "changed", 8
	e := r.newestFirst()[0]
	if e.Scopes[0] != "a" || *e.PeerUID != 7 {
		t.Errorf("the ring shares the caller's memory: %+v", e)
	}
}

func TestOverview(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	// The sessions' expiry timers run on the real clock, so the test's
	// clock starts near it, 30 seconds into a minute.
	start := time.Now().Truncate(time.Minute).Add(30 * time.Second)
	h.clock.Add(start.Sub(h.clock.Now()))
	older := h.create(t, CreateRequest{Frontends: Frontends{GCEMeta: true}})
	h.clock.Add(time.Minute)
	newer := h.create(t, CreateRequest{Accounts: []string{"other", "task"}, Frontends: Frontends{LocalAuth: true, GCEMeta: true}})
	meta := envOf(older, "GCE_METADATA_HOST")
	for range 3 {
		if code, err := metaToken(meta); err != nil || code != 200 {
			t.Fatalf("metadata token: %d, %v", code, err)
		}
	}
	h.clock.Add(10 * time.Second)

	o, err := h.d.Overview(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Sessions) != 2 || o.Sessions[0].ID != newer.ID || o.Sessions[1].ID != older.ID {
		t.Fatalf("sessions %+v, want the newer then the older", o.Sessions)
	}
	s := o.Sessions[1]
	if s.Age != 70*time.Second || s.Left != older.Expires.Sub(h.clock.Now()) || s.SinceUse != 10*time.Second {
		t.Errorf("age %v, left %v, since use %v", s.Age, s.Left, s.SinceUse)
	}
	if len(s.Endpoints) != 1 || s.Endpoints[0].Name != "gcemeta" || s.Endpoints[0].Addr != meta {
		t.Errorf("endpoints %+v", s.Endpoints)
	}
	cur := o.History[len(o.History)-1]
	if !cur.Start.Equal(start.Truncate(time.Minute).Add(time.Minute).UTC()) || cur.Issued != 3 || cur.Errors != 0 {
		t.Errorf("current minute %+v, want 3 issued", cur)
	}
	// Three requests for one token: the first waited for a mint.
	if cur.Hits+cur.Misses != 3 || cur.Misses != 1 {
		t.Errorf("current minute %+v, want 1 miss and 2 hits", cur)
	}
	if o.Cache.Mints != 1 {
		t.Errorf("cache %+v", o.Cache)
	}
	var events []string
	for _, e := range o.Events {
		events = append(events, e.Event+" "+e.Session)
	}
	want := []string{"issue " + older.ID, "issue " + older.ID, "issue " + older.ID, "session.create " + newer.ID, "session.create " + older.ID}
	if strings.Join(events, "\n") != strings.Join(want, "\n") {
		t.Errorf("events\n%s\nwant\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
	}

	if err := h.d.RevokeBy(ctx, older.ID, "owner@example.com"); err != nil {
		t.Fatal(err)
	}
	o, err = h.d.Overview(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Sessions) != 1 || o.Sessions[0].ID != newer.ID {
		t.Errorf("sessions after revoke: %+v", o.Sessions)
	}
	if e := o.Events[0]; e.Event != "session.revoke" || e.Session != older.ID || e.Detail != "by owner@example.com" {
		t.Errorf("last event %+v", e)
	}
	if e := o.Events[1]; e.Event != "session.end" || e.Detail != "revoked" {
		t.Errorf("event before it %+v", e)
	}
	if err := h.d.RevokeBy(ctx, older.ID, "owner@example.com"); err == nil {
		t.Error("revoking twice succeeded")
	}
}
