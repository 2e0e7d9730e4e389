package daemon

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"credbroker/broker"
)

// latencyBuckets are the upper bounds, in seconds, of the request latency
// histograms: cache hits take microseconds, mints up to seconds.
var latencyBuckets = []float64{0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30}

// Metrics counts token requests per front-end.
type Metrics struct {
	mu        sync.Mutex
	frontends map[string]*frontendStats
}

type frontendStats struct {
	Requests uint64
	Errors   uint64
	buckets  []uint64 // cumulative counts are made at render time
	sum      float64
}

// FrontendStats is a snapshot of one front-end's counters.
type FrontendStats struct {
	Requests uint64  `json:"requests"`
	Errors   uint64  `json:"errors"`
	MeanMS   float64 `json:"mean_latency_ms"`
}

func newMetrics() *Metrics { return &Metrics{frontends: map[string]*frontendStats{}} }

func (m *Metrics) observe(frontend string, d time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.frontends[frontend]
	if s == nil {
		s = &frontendStats{buckets: make([]uint64, len(latencyBuckets)+1)}
		m.frontends[frontend] = s
	}
	s.Requests++
	if err != nil {
		s.Errors++
	}
	sec := d.Seconds()
	s.sum += sec
	i, _ := slices.BinarySearch(latencyBuckets, sec)
	s.buckets[i]++
}

// Frontends returns a snapshot per front-end.
func (m *Metrics) Frontends() map[string]FrontendStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]FrontendStats{}
	for name, s := range m.frontends {
		fs := FrontendStats{Requests: s.Requests, Errors: s.Errors}
		if s.Requests > 0 {
			fs.MeanMS = s.sum * 1000 / float64(s.Requests)
		}
		out[name] = fs
	}
	return out
}

// writePrometheus renders the counters in Prometheus' text format.
func (m *Metrics) writePrometheus(w io.Writer, bs broker.Stats, sessions map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.frontends))
	for n := range m.frontends {
		names = append(names, n)
	}
	slices.Sort(names)

	fmt.Fprint(w, "# HELP credbroker_requests_total Token requests served by front-end.\n# TYPE credbroker_requests_total counter\n")
	for _, n := range names {
		fmt.Fprintf(w, "credbroker_requests_total{frontend=%q} %d\n", n, m.frontends[n].Requests)
	}
	fmt.Fprint(w, "# HELP credbroker_request_errors_total Token requests that failed, by front-end.\n# TYPE credbroker_request_errors_total counter\n")
	for _, n := range names {
		fmt.Fprintf(w, "credbroker_request_errors_total{frontend=%q} %d\n", n, m.frontends[n].Errors)
	}
	fmt.Fprint(w, "# HELP credbroker_request_duration_seconds Time to answer a token request, by front-end.\n# TYPE credbroker_request_duration_seconds histogram\n")
	for _, n := range names {
		s := m.frontends[n]
		var cum uint64
		for i, le := range latencyBuckets {
			cum += s.buckets[i]
			fmt.Fprintf(w, "credbroker_request_duration_seconds_bucket{frontend=%q,le=%q} %d\n", n, strconv.FormatFloat(le, 'g', -1, 64), cum)
		}
		cum += s.buckets[len(latencyBuckets)]
		fmt.Fprintf(w, "credbroker_request_duration_seconds_bucket{frontend=%q,le=\"+Inf\"} %d\n", n, cum)
		fmt.Fprintf(w, "credbroker_request_duration_seconds_sum{frontend=%q} %s\n", n, strconv.FormatFloat(s.sum, 'g', -1, 64))
		fmt.Fprintf(w, "credbroker_request_duration_seconds_count{frontend=%q} %d\n", n, s.Requests)
	}
	counter := func(name, help string, v uint64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	counter("credbroker_cache_hits_total", "Tokens served from the cache.", bs.Hits+bs.StaleHits)
	counter("credbroker_cache_misses_total", "Requests that waited for a mint.", bs.Misses)
	counter("credbroker_mints_total", "Tokens minted upstream.", bs.Mints)
	counter("credbroker_mint_errors_total", "Upstream mints that failed.", bs.MintErrors)
	fmt.Fprintf(w, "# HELP credbroker_cache_entries Tokens in the cache.\n# TYPE credbroker_cache_entries gauge\ncredbroker_cache_entries %d\n", bs.Entries)
	fmt.Fprint(w, "# HELP credbroker_sessions Sessions by status.\n# TYPE credbroker_sessions gauge\n")
	statuses := make([]string, 0, len(sessions))
	for s := range sessions {
		statuses = append(statuses, s)
	}
	slices.Sort(statuses)
	for _, s := range statuses {
		fmt.Fprintf(w, "credbroker_sessions{status=%q} %d\n", s, sessions[s])
	}
}
