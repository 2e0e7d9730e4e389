package main

import (
	"encoding/json"
	"testing"

	"credbroker/internal/bench"
)

// The bench command runs end to end at a tiny size and reports every
// section; the numbers themselves are not judged here.
func TestBenchCommandSmoke(t *testing.T) {
	t.Parallel() // its own broker process, fake Google and directories
	if testing.Short() {
		t.Skip("starts several sessions and baselines")
	}
	tmp := t.TempDir()
	res := runBroker(t, tmp, nil, "bench", "--json", "--duration", "300ms", "--concurrency", "2",
		"--frontends", "local_auth,metadata,devshell,gsutil",
		"--storm-duration", "1s", "--burst", "20", "--entries", "2000", "--run-true", "1")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("%v in %q", err, res.stdout)
	}
	if len(rep.Throughput) != len(bench.Frontends) {
		t.Errorf("%d throughput rows, want %d", len(rep.Throughput), len(bench.Frontends))
	}
	for _, row := range rep.Throughput {
		if row.Ours.Requests == 0 || row.Base.Requests == 0 || row.Ours.Errors+row.Base.Errors != 0 {
			t.Errorf("%s: %d/%d requests, %d/%d errors (%s %s)", row.Frontend, row.Ours.Requests, row.Base.Requests,
				row.Ours.Errors, row.Base.Errors, row.Ours.FirstError, row.Base.FirstError)
		}
	}
	for _, row := range rep.ColdBurst {
		if row.Mints != 1 || row.Errors != 0 {
			t.Errorf("cold burst %s: %d mints, %d errors; want 1 and 0", row.Frontend, row.Mints, row.Errors)
		}
	}
	if len(rep.ColdBurst) != 2 || len(rep.Storm) != len(bench.Frontends) || rep.Memory == nil || rep.RunTrue == nil || rep.RunTrueSA == nil {
		t.Errorf("missing sections: %+v", rep)
	}
	for _, rt := range []*bench.RunTrueResult{rep.RunTrue, rep.RunTrueSA} {
		if rt != nil && (rt.StartMedian <= 0 || rt.WallMedian <= 0) {
			t.Errorf("run -- true (%s): wall %v, binary start %v; want both measured", rt.Source, rt.WallMedian, rt.StartMedian)
		}
	}
}
