package bench

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what one load run measured.
type Result struct {
	Requests int           `json:"requests"`
	Errors   int           `json:"errors"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	RPS      float64       `json:"rps"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	P999     time.Duration `json:"p999_ns"`
	Max      time.Duration `json:"max_ns"`
	// Over50ms counts requests that took longer than 50 ms: in the
	// expiry storm, requests that waited on a mint.
	Over50ms int `json:"over_50ms"`
	// FirstError describes the first failure, if any.
	FirstError string `json:"first_error,omitempty"`
}

// NewClient returns a keep-alive HTTP client able to hold conns
// connections to one host, with no proxy and no compression.
func NewClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}}
}

// Load sends target's request from conns workers, each on its own
// keep-alive connection (devshell: a new connection per request, as its
// protocol has it), for d. progress, when set, is called about once a
// second with the requests done so far.
func Load(ctx context.Context, target Target, conns int, d time.Duration, progress func(done int)) Result {
	return loadRaw(ctx, target, conns, d, progress).summarize()
}

// rawResult is one load run before its latencies are summarized, so that
// several runs can be merged into one Result.
type rawResult struct {
	lat      []time.Duration
	elapsed  time.Duration
	errs     int
	firstErr string
}

// merge adds o's requests, time and errors to r.
func (r *rawResult) merge(o rawResult) {
	r.lat = append(r.lat, o.lat...)
	r.elapsed += o.elapsed
	r.errs += o.errs
	if r.firstErr == "" {
		r.firstErr = o.firstErr
	}
}

func (r rawResult) summarize() Result {
	res := summarize(r.lat, r.elapsed)
	res.Errors, res.FirstError = r.errs, r.firstErr
	return res
}

func loadRaw(ctx context.Context, target Target, conns int, d time.Duration, progress func(done int)) rawResult {
	hc := NewClient(conns)
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	var (
		done     atomic.Int64
		mu       sync.Mutex
		all      []time.Duration
		errs     int
		firstErr string
	)
	stopProgress := make(chan struct{})
	if progress != nil {
		go func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					progress(int(done.Load()))
				case <-stopProgress:
					return
				}
			}
		}()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			var nerr int
			var first string
			for ctx.Err() == nil {
				t0 := time.Now()
				// Each request has its own deadline so that the end of
				// the run does not count as a failure of the ones in
				// flight.
				rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := target.hit(rctx, hc)
				rcancel()
				took := time.Since(t0)
				if err != nil {
					nerr++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				lat = append(lat, took)
				done.Add(1)
			}
			mu.Lock()
			all = append(all, lat...)
			errs += nerr
			if firstErr == "" {
				firstErr = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	return rawResult{lat: all, elapsed: elapsed, errs: errs, firstErr: firstErr}
}

// summarize computes the rate and the latency quantiles.
func summarize(lat []time.Duration, elapsed time.Duration) Result {
	slices.Sort(lat)
	r := Result{Requests: len(lat), Elapsed: elapsed}
	if elapsed > 0 {
		r.RPS = float64(len(lat)) / elapsed.Seconds()
	}
	if len(lat) == 0 {
		return r
	}
	q := func(p float64) time.Duration {
		i := int(p * float64(len(lat)))
		return lat[min(i, len(lat)-1)]
	}
	r.P50, r.P99, r.P999, r.Max = q(0.50), q(0.99), q(0.999), lat[len(lat)-1]
	i, _ := slices.BinarySearch(lat, 50*time.Millisecond+1)
	r.Over50ms = len(lat) - i
	return r
}

// WithAddr returns the target sent to another server (a baseline) on
// addr, with the same request bytes.
func (t Target) WithAddr(addr string) Target {
	if !t.IsHTTP() {
		t.addr = addr
		return t
	}
	u := t.NewRequest(context.Background()).URL
	u.Host = addr
	t.url = u.String()
	return t
}

// Sample sends the request once and returns the raw answer body (the
// devshell frame), to size a baseline's answer, and the answer's headers
// but for the ones net/http writes itself (Date, Content-Length), so the
// baseline can send as many.
func (t Target) Sample(ctx context.Context) ([]byte, http.Header, error) {
	if !t.IsHTTP() {
		b, err := t.Exchange(ctx, t.request)
		return b, nil, err
	}
	resp, err := NewClient(1).Do(t.NewRequest(ctx))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var buf []byte
	buf, err = readAllLimited(resp)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = &statusError{resp.StatusCode}
	}
	h := resp.Header.Clone()
	h.Del("Date")
	h.Del("Content-Length")
	return buf, h, err
}
