package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"credbroker/authtoken"
)

// TestSweepDropsOldFailedRecords checks the retention of ended sessions:
// records of failed sessions stay EndedRetention for admins to read, then
// the sweep deletes them; live sessions are untouched.
func TestSweepDropsOldFailedRecords(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	fail := func(status authtoken.Status) string {
		t.Helper()
		tok, err := h.d.repo.Create(ctx, createOpts())
		if err != nil {
			t.Fatal(err)
		}
		if err := h.d.repo.Fail(ctx, tok.PublicID, status, "test"); err != nil {
			t.Fatal(err)
		}
		return tok.PublicID
	}
	old := []string{fail(authtoken.Failed), fail(authtoken.SystemError)}
	h.clock.Add(EndedRetention - time.Minute)
	recent := fail(authtoken.Failed)
	live := h.create(t, CreateRequest{TTL: "400h", Frontends: Frontends{GCEMeta: true}})

	h.d.Sweep(ctx)
	for _, id := range append(old, recent, live.ID) {
		if _, err := h.d.Lookup(ctx, id); err != nil {
			t.Errorf("%s went before its time: %v", id, err)
		}
	}

	h.clock.Add(2 * time.Minute)
	h.d.Sweep(ctx)
	tests := []struct {
		name string
		id   string
		kept bool
	}{
		{"failed over a week ago", old[0], false},
		{"system error over a week ago", old[1], false},
		{"failed under a week ago", recent, true},
		{"issued and live", live.ID, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := h.d.Lookup(ctx, tt.id)
			switch {
			case tt.kept && err != nil:
				t.Errorf("record deleted: %v", err)
			case !tt.kept && !errors.Is(err, authtoken.ErrNotFound):
				t.Errorf("record kept: %+v, %v", in, err)
			}
		})
	}
	if in, err := h.d.Lookup(ctx, live.ID); err != nil || !in.Running {
		t.Errorf("live session after the sweep: %+v, %v", in, err)
	}
}
