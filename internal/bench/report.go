package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Targets the table marks each figure against (see docs/performance.md).
const (
	TargetRPSRatio   = 0.95
	TargetCPURatio   = 1.10
	TargetP99Ratio   = 1.10
	TargetConns      = 16
	TargetEntryBytes = 1024
	TargetRunWall    = 30 * time.Millisecond
	TargetRunRSSKiB  = 15 << 10
)

func mark(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
func us(d time.Duration) string { return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond)) }

// WriteTable prints the report for humans.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "credbroker bench: %s, %d CPUs, load average before: %s\n", r.GoVersion, r.CPUs, r.LoadAvg)
	if r.LoadAfter != "" {
		fmt.Fprintf(w, "load average after: %s\n", r.LoadAfter)
	}
	if r.Build != "" {
		fmt.Fprintf(w, "build: %s\n", r.Build)
	}
	if len(r.Throughput) > 0 {
		fmt.Fprintf(w, "\nCached token path, broker vs a bare server answering as many bytes (ratio = broker/baseline; targets at %d conns: req/s ≥ %.2f, CPU ≤ %.2f, p99 ≤ %.2f)\n",
			TargetConns, TargetRPSRatio, TargetCPURatio, TargetP99Ratio)
		if r.Rounds > 1 {
			fmt.Fprintf(w, "each row: %d alternating turns of the baseline and the broker, merged\n", r.Rounds)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "front-end\tconns\treq/s\tbase req/s\tratio\tp50\tp99\tp99.9\tmax\tbase p99\tp99 ratio\tCPU/req\tbase CPU/req\tCPU ratio\terrors\ttarget\t")
		for _, row := range r.Throughput {
			target := ""
			if row.Concurrency == TargetConns {
				target = mark(row.RPSRatio >= TargetRPSRatio && row.CPURatio <= TargetCPURatio && row.P99Ratio <= TargetP99Ratio)
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t%.2f\t%d\t%s\t\n",
				row.Frontend, row.Concurrency, row.Ours.RPS, row.Base.RPS, row.RPSRatio,
				ms(row.Ours.P50), ms(row.Ours.P99), ms(row.Ours.P999), ms(row.Ours.Max), ms(row.Base.P99), row.P99Ratio,
				us(row.OursCPU), us(row.BaseCPU), row.CPURatio, row.Ours.Errors+row.Base.Errors, target)
		}
		tw.Flush()
	}
	if len(r.ColdBurst) > 0 {
		fmt.Fprintln(w, "\nCold burst: concurrent requests for a scope set never asked for (target: exactly 1 upstream mint)")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "front-end\trequests\terrors\tupstream mints\twall\ttarget\t")
		for _, row := range r.ColdBurst {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t\n", row.Frontend, row.Requests, row.Errors, row.Mints, ms(row.Wall), mark(row.Mints == 1 && row.Errors == 0))
		}
		tw.Flush()
	}
	if len(r.Storm) > 0 {
		fmt.Fprintln(w, "\nExpiry storm: 4 connections while upstream tokens keep expiring (target: 0 requests over 50ms, a few mints)")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "front-end\trequests\treq/s\t>50ms\tp99\tmax\tupstream mints\terrors\ttarget\t")
		for _, row := range r.Storm {
			res := row.Result
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%s\t%s\t%d\t%d\t%s\t\n", row.Frontend, res.Requests, res.RPS, res.Over50ms,
				ms(res.P99), ms(res.Max), row.Mints, res.Errors, mark(res.Over50ms == 0 && res.Errors == 0 && row.Mints <= 5))
		}
		if f := r.StormFloor; f != nil {
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%s\t%s\t%s\t%d\t%s\t\n", "(bare server)", f.Requests, f.RPS, f.Over50ms,
				ms(f.P99), ms(f.Max), "-", f.Errors, "")
		}
		tw.Flush()
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, "\nMemory: %.0f bytes per cached entry over %d entries (%d-byte tokens; target ≤ %d): %s\n",
			m.BytesPerEntry, m.Entries, m.TokenBytes, TargetEntryBytes, mark(m.BytesPerEntry <= TargetEntryBytes))
	}
	for _, rt := range []*RunTrueResult{r.RunTrue, r.RunTrueSA} {
		if rt == nil {
			continue
		}
		fmt.Fprintf(w, "\n`credbroker run -- true` (%s source) × %d: wall median %s, max %s (target ≤ %s): %s; peak RSS %.1f MiB (target ≤ %d MiB): %s",
			rt.Source, rt.Runs, ms(rt.WallMedian), ms(rt.WallMax), ms(TargetRunWall), mark(rt.WallMedian <= TargetRunWall),
			float64(rt.PeakRSSKiB)/1024, TargetRunRSSKiB>>10, mark(rt.PeakRSSKiB <= TargetRunRSSKiB))
		if rt.StartMedian > 0 {
			fmt.Fprintf(w, "\n  of which the binary's own start (bench --start-only, same runs): median %s; the session adds %s",
				ms(rt.StartMedian), ms(rt.WallMedian-rt.StartMedian))
		}
	}
	fmt.Fprintln(w)
}
