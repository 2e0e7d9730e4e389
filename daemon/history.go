package daemon

import (
	"sync"
	"time"

	"credbroker/broker"
)

// HistoryMinutes is how far back the issuance history goes: the
// dashboard charts the last hour, one point a minute.
const HistoryMinutes = 60

// Minute is one minute of the issuance history.
type Minute struct {
	// Start is the first instant of the minute, UTC.
	Start time.Time `json:"start"`
	// Issued and Errors count token requests through sessions that got a
	// token and that failed.
	Issued uint64 `json:"issued"`
	Errors uint64 `json:"errors"`
	// Hits and Misses are the token core's cache counters over the
	// minute, for every caller of the broker (not only sessions).
	Hits   uint64 `json:"cache_hits"`
	Misses uint64 `json:"cache_misses"`
}

// history counts token requests per minute over the last hour in a ring
// of HistoryMinutes buckets. Each bucket is stamped with its minute, so a
// bucket last written an hour or more ago reads as empty without a
// sweep.
//
// Issuances are counted as they happen (the session's wrapper of the
// token core sees each one). Cache hits and misses are counted inside the
// broker, for all its callers, so they are sampled instead: the delta of
// the broker's counters since the previous sample is added to the minute
// of the sample. The daemon samples at every minute boundary (for the
// minute that just ended) and whenever the history is read (for the
// current minute), so each minute gets its own hits up to the small delay
// of the timer.
type history struct {
	mu   sync.Mutex
	ring [HistoryMinutes]bucket
	// from is the broker the last sample read; after SetBroker the new
	// broker's counters start again from its own zero.
	from               *broker.Broker
	lastHits, lastMiss uint64
}

type bucket struct {
	minute int64 // minutes since the Unix epoch
	Minute
}

func minuteOf(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return (s - 59) / 60
	}
	return s / 60
}

// at returns the bucket for minute m, emptied if it held an older
// minute; nil when m is older than the minute the bucket holds (a late
// sample from beyond the ring).
func (h *history) at(m int64) *bucket {
	b := &h.ring[((m%HistoryMinutes)+HistoryMinutes)%HistoryMinutes]
	switch {
	case b.minute == m:
		return b
	case b.minute > m:
		return nil
	}
	*b = bucket{minute: m, Minute: Minute{Start: time.Unix(m*60, 0).UTC()}}
	return b
}

// observe counts one token request made at t.
func (h *history) observe(t time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.at(minuteOf(t))
	if b == nil {
		return
	}
	if err != nil {
		b.Errors++
	} else {
		b.Issued++
	}
}

// sample adds to the minute of t the cache hits and misses counted by
// from since the previous sample.
func (h *history) sample(t time.Time, from *broker.Broker, hits, misses uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if from != h.from {
		h.from, h.lastHits, h.lastMiss = from, 0, 0
	}
	dh, dm := hits-h.lastHits, misses-h.lastMiss
	if hits < h.lastHits || misses < h.lastMiss {
		// Counters only grow; a smaller value is a new counter.
		dh, dm = hits, misses
	}
	h.lastHits, h.lastMiss = hits, misses
	if b := h.at(minuteOf(t)); b != nil {
		b.Hits += dh
		b.Misses += dm
	}
}

// snapshot returns the HistoryMinutes minutes up to and including the
// one of now, oldest first; minutes without a request are zero.
func (h *history) snapshot(now time.Time) []Minute {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := minuteOf(now)
	out := make([]Minute, HistoryMinutes)
	for i := range out {
		m := cur - HistoryMinutes + 1 + int64(i)
		b := h.ring[((m%HistoryMinutes)+HistoryMinutes)%HistoryMinutes]
		if b.minute == m {
			out[i] = b.Minute
		} else {
			out[i] = Minute{Start: time.Unix(m*60, 0).UTC()}
		}
	}
	return out
}

// sampleCache reads the current broker's cache counters into the minute
// of t.
func (d *Daemon) sampleCache(t time.Time) {
	b := d.Broker()
	st := b.Stats()
	d.history.sample(t, b, st.Hits+st.StaleHits, st.Misses)
}

// historyLoop samples the cache counters at every minute boundary of the
// daemon's clock, charging them to the minute that just ended.
func (d *Daemon) historyLoop() {
	for {
		now := d.now()
		next := now.Truncate(time.Minute).Add(time.Minute)
		t := time.NewTimer(next.Sub(now))
		select {
		case <-d.stop:
			t.Stop()
			return
		case <-t.C:
		}
		d.sampleCache(next.Add(-time.Nanosecond))
	}
}
