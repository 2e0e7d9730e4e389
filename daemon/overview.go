package daemon

import (
	"context"
	"time"

	"credbroker/authtoken"
)

// Overview is what the dashboard shows of a running daemon: the live
// sessions, the last hour of token requests, the recent audit entries and
// the token core's counters. Like Info and AuditEntry it holds no token
// or secret, so a page built from it cannot leak one.
type Overview struct {
	Now     time.Time `json:"now"`
	Started time.Time `json:"started"`
	// Sessions are those pending or issued, newest first.
	Sessions []LiveSession `json:"sessions"`
	// History has HistoryMinutes minutes, oldest first; the last is the
	// current minute, still counting.
	History []Minute `json:"history"`
	// Events are the last RecentEvents audit entries, newest first.
	Events    []AuditEntry             `json:"events"`
	Cache     CacheStats               `json:"cache"`
	Frontends map[string]FrontendStats `json:"frontends"`
}

// LiveSession is a session as the dashboard lists it: its description
// and its times relative to Overview.Now.
type LiveSession struct {
	Info
	Age time.Duration `json:"age"`
	// Left is the time to live that remains.
	Left time.Duration `json:"left"`
	// SinceUse is the time since the session last served a request (or
	// was created). Uses are recorded at most once per
	// authtoken.TouchInterval, so it is that coarse.
	SinceUse time.Duration `json:"since_use"`
}

// Overview describes the daemon for the dashboard.
func (d *Daemon) Overview(ctx context.Context) (Overview, error) {
	now := d.now()
	d.sampleCache(now)
	list, err := d.List(ctx, authtoken.ListOptions{Statuses: []authtoken.Status{authtoken.Pending, authtoken.Issued}, Limit: -1})
	if err != nil {
		return Overview{}, err
	}
	o := Overview{
		Now:       now.UTC(),
		Started:   d.started.UTC(),
		Sessions:  make([]LiveSession, 0, len(list)),
		History:   d.history.snapshot(now),
		Events:    d.audit.Recent(),
		Frontends: d.metrics.Frontends(),
	}
	// List is oldest first; the newest session is the one a person
	// looking at the page has most likely just started.
	for i := len(list) - 1; i >= 0; i-- {
		in := list[i]
		o.Sessions = append(o.Sessions, LiveSession{
			Info: in, Age: now.Sub(in.Created), Left: in.Expires.Sub(now), SinceUse: now.Sub(in.LastUsed),
		})
	}
	bs := d.Broker().Stats()
	o.Cache = CacheStats{Hits: bs.Hits + bs.StaleHits, Misses: bs.Misses, Mints: bs.Mints, MintErrors: bs.MintErrors, Entries: bs.Entries}
	return o, nil
}

// RevokeBy revokes a session, as Revoke does, for someone who is not a
// local peer (a person signed in to the dashboard) and writes who it was
// to the audit log.
func (d *Daemon) RevokeBy(ctx context.Context, id, who string) error {
	if err := d.Revoke(ctx, id); err != nil {
		return err
	}
	d.audit.Log(AuditEntry{Time: time.Now().UTC(), Event: "session.revoke", Session: id, Outcome: "ok", Detail: "by " + who})
	return nil
}
