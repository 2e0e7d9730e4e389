package loopback

import (
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// connTracker holds the connection cap shared by an HTTP server's
// listeners and the state of every connection counted against it, so
// that a newcomer at the cap can take the slot of a connection that is
// doing nothing. Without that, clients parking idle keep-alive
// connections (or connections that never send a byte) would lock every
// other client out until their timeouts ran out.
//
// Membership (a connection admitted or released) changes under mu, once
// per connection. The state a connection is in changes twice per
// request and is one atomic store on the connection itself (see
// limitConn.state): the token front-ends' hit path takes no lock here.
type connTracker struct {
	max int

	mu    sync.Mutex
	conns map[*limitConn]struct{}
	// changed is closed whenever a slot frees or a connection turns
	// idle: what a waiting newcomer needs to retry. It is made only when
	// a newcomer waits, so the common case (a request ending on a
	// keep-alive connection) allocates nothing.
	changed chan struct{}
	// waiting is set, under mu, before a newcomer looks for a victim and
	// cleared when changed is closed; a connection turning idle takes mu
	// only while it is set.
	waiting atomic.Bool

	// seq orders state changes: a connection's state carries the value
	// it had when the connection entered that state.
	seq atomic.Uint64
}

func newConnTracker(limit int) *connTracker {
	return &connTracker{max: limit, conns: make(map[*limitConn]struct{})}
}

// packState is what limitConn.state holds: the ConnState in the low
// byte, the change's sequence number above it.
func (t *connTracker) packState(st http.ConnState) uint64 {
	return t.seq.Add(1)<<8 | uint64(st)
}

func unpackState(v uint64) (st http.ConnState, seq uint64) {
	return http.ConnState(v & 0xff), v >> 8
}

// admit counts c against the cap. At the cap it closes the connection
// idle longest, or failing that the one that has sent nothing for
// longest, and gives c its slot. When every connection has a request in
// progress it returns false with a channel that is closed on the next
// change worth retrying for.
func (t *connTracker) admit(c *limitConn) (bool, <-chan struct{}) {
	c.accepted = time.Now()
	c.state.Store(t.packState(http.StateNew))
	t.mu.Lock()
	if len(t.conns) < t.max {
		t.conns[c] = struct{}{}
		t.mu.Unlock()
		return true, nil
	}
	// Announce the wait before looking: a connection turning idle after
	// the look below then sees the flag and wakes us (setState).
	t.waiting.Store(true)
	victim := t.victimLocked()
	if victim == nil {
		ch := t.changedLocked()
		t.mu.Unlock()
		return false, ch
	}
	// The slot passes to c before the victim is closed, so no other
	// newcomer can take it in between; the victim's own release later
	// finds itself gone and frees nothing.
	delete(t.conns, victim)
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	victim.Conn.Close()
	return true, nil
}

// victimLocked picks the connection to close for a newcomer: idle
// keep-alive connections first, longest idle first; then connections
// that have sent nothing for at least newGrace, oldest first, skipping
// any whose request is already waiting to be read. Connections with a
// request in progress, and hijacked ones, are never picked. The grace
// and the check for waiting input keep a burst of real clients, accepted
// faster than their requests can be read, from evicting each other.
func (t *connTracker) victimLocked() *limitConn {
	var best *limitConn
	var bestSeq uint64
	var silent []*limitConn
	now := time.Now()
	for c := range t.conns {
		st, seq := unpackState(c.state.Load())
		switch {
		case st == http.StateIdle:
			if best == nil || seq < bestSeq {
				best, bestSeq = c, seq
			}
		case st == http.StateNew && now.Sub(c.accepted) >= newGrace:
			silent = append(silent, c)
		}
	}
	if best != nil {
		return best
	}
	slices.SortFunc(silent, func(a, b *limitConn) int { return a.accepted.Compare(b.accepted) })
	for _, c := range silent {
		if !hasInput(c.Conn) {
			return c
		}
	}
	return nil
}

// newGrace is how long a new connection may stay silent before a
// newcomer at the cap may take its slot: far longer than any client
// takes to send its request, far shorter than ReadHeaderTimeout.
const newGrace = time.Second

// setState is the server's ConnState hook.
func (t *connTracker) setState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*limitConn)
	if !ok {
		return
	}
	switch st {
	case http.StateClosed:
		t.release(c)
		return
	case http.StateNew:
		return // admit recorded it, with the time of accept
	}
	c.state.Store(t.packState(st))
	if st == http.StateIdle && t.waiting.Load() {
		t.mu.Lock()
		t.notifyLocked()
		t.mu.Unlock()
	}
}

// release frees c's slot, if it still holds one.
func (t *connTracker) release(c *limitConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.conns[c]; ok {
		delete(t.conns, c)
		t.notifyLocked()
	}
}

// changedLocked returns the channel closed on the next change, making it
// for the first waiter.
func (t *connTracker) changedLocked() <-chan struct{} {
	if t.changed == nil {
		t.changed = make(chan struct{})
	}
	return t.changed
}

func (t *connTracker) notifyLocked() {
	if t.changed != nil {
		close(t.changed)
		t.changed = nil
	}
	t.waiting.Store(false)
}

// limitListener caps open connections across the listeners sharing tr.
// A connection over the cap is accepted and then either takes the slot of
// an idle or silent connection or, when all are busy, waits unserved until
// one frees. Taking the slot after Accept rather than before matters with
// two listeners: a slot taken first would sit with whichever listener
// grabbed it while the waiting connection is on the other.
type limitListener struct {
	net.Listener
	tr        *connTracker
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc := &limitConn{Conn: c, tr: l.tr}
	for {
		ok, changed := l.tr.admit(lc)
		if ok {
			return lc, nil
		}
		select {
		case <-changed:
		case <-l.closed:
			c.Close()
			return nil, net.ErrClosed
		}
	}
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	tr *connTracker
	// state is the connection's http.ConnState and the order in which
	// it entered it (connTracker.packState), read by victimLocked.
	state atomic.Uint64
	// accepted is when admit first saw the connection; written before
	// the connection is shared, then only read.
	accepted time.Time
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.tr.release(c)
	return err
}
