package daemon

import "slices"

// RecentEvents is how many audit entries the daemon keeps in memory for
// the dashboard; the log file keeps them all.
const RecentEvents = 200

// eventRing keeps the last RecentEvents audit entries. Entries hold no
// token or secret (see AuditEntry), so keeping them in memory adds
// nothing a reader of the log could not see.
type eventRing struct {
	buf  []AuditEntry
	next int
	full bool
}

func (r *eventRing) add(e AuditEntry) {
	if r.buf == nil {
		r.buf = make([]AuditEntry, RecentEvents)
	}
	// The entry's slices and pointers came from the caller; keep copies
	// so a later change there cannot reach the ring.
	e.Scopes = slices.Clone(e.Scopes)
	if e.PeerUID != nil {
		uid := *e.PeerUID
		e.PeerUID = &uid
	}
	r.buf[r.next] = e
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

// newestFirst copies the kept entries, newest first.
func (r *eventRing) newestFirst() []AuditEntry {
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]AuditEntry, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

// Recent returns the last RecentEvents entries logged, newest first.
func (a *Audit) Recent() []AuditEntry {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.recent.newestFirst()
}
