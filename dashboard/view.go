package dashboard

import (
	"fmt"
	"net"
	"os/user"
	"strconv"
	"strings"
	"time"

	"credbroker/daemon"
)

// shownEvents bounds the audit entries on the page; the daemon keeps
// more, and the log file all of them.
const shownEvents = 50

// page is what page.html renders: everything already formatted, so the
// template only places text.
type page struct {
	Who      string
	CSRF     string
	SignOut  string
	Now      string
	Zone     string
	Uptime   string
	Sessions []sessionRow
	Issuance chart
	HitRatio chart
	Summary  summary
	Cache    daemon.CacheStats
	Events   []eventRow
	// EventsKept is how many entries the daemon holds, of which Events
	// shows the newest.
	EventsKept int
}

type summary struct {
	Issued, Errors uint64
	Peak           uint64
	HitRatio       string
}

type sessionRow struct {
	ID        string
	Owner     string
	Accounts  []accountCell
	Frontends []frontendCell
	Age       string
	Left      string
	// Ending is set when less than ten minutes remain.
	Ending  bool
	LastUse string
	Status  string
	Running bool
	Expires string
	Created string
}

type accountCell struct {
	Name    string
	Default bool
}

type frontendCell struct {
	Name string
	Port string
}

type eventRow struct {
	Time     string
	Event    string
	Session  string
	Frontend string
	Account  string
	What     string
	WhatFull string
	Outcome  string
	OK       bool
	Latency  string
	Detail   string
}

func newPage(o daemon.Overview, who, csrf, signOut string, loc *time.Location) page {
	p := page{
		Who:        who,
		CSRF:       csrf,
		SignOut:    signOut,
		Now:        o.Now.In(loc).Format("2006-01-02 15:04:05"),
		Zone:       o.Now.In(loc).Format("MST"),
		Uptime:     duration(o.Now.Sub(o.Started)),
		Cache:      o.Cache,
		EventsKept: len(o.Events),
	}
	for _, s := range o.Sessions {
		p.Sessions = append(p.Sessions, newSessionRow(s, loc))
	}
	p.Issuance, p.HitRatio, p.Summary = charts(o.History, loc)
	for i, e := range o.Events {
		if i == shownEvents {
			break
		}
		p.Events = append(p.Events, newEventRow(e, loc))
	}
	return p
}

func newSessionRow(s daemon.LiveSession, loc *time.Location) sessionRow {
	row := sessionRow{
		ID:      s.ID,
		Owner:   owner(s.OwnerUID),
		Age:     duration(s.Age),
		Left:    duration(s.Left),
		Ending:  s.Left < 10*time.Minute,
		LastUse: duration(s.SinceUse) + " ago",
		Status:  s.Status,
		Running: s.Running,
		Expires: s.Expires.In(loc).Format("2006-01-02 15:04"),
		Created: s.Created.In(loc).Format("2006-01-02 15:04:05"),
	}
	if s.Left <= 0 {
		row.Left = "expired"
	}
	for _, a := range s.Accounts {
		row.Accounts = append(row.Accounts, accountCell{a, a == s.DefaultAccount && len(s.Accounts) > 1})
	}
	for _, ep := range s.Endpoints {
		_, port, err := net.SplitHostPort(ep.Addr)
		if err != nil {
			port = ep.Addr
		}
		row.Frontends = append(row.Frontends, frontendCell{ep.Name, port})
	}
	return row
}

// owner names a uid with its user name where the system knows it.
func owner(uid int64) string {
	id := strconv.FormatInt(uid, 10)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return u.Username + " (" + id + ")"
	}
	return "uid " + id
}

const scopePrefix = "https://www.googleapis.com/auth/"

func newEventRow(e daemon.AuditEntry, loc *time.Location) eventRow {
	row := eventRow{
		Time:     e.Time.In(loc).Format("15:04:05"),
		Event:    e.Event,
		Session:  e.Session,
		Frontend: e.Frontend,
		Account:  e.Account,
		Outcome:  e.Outcome,
		OK:       e.Outcome == "ok",
		Detail:   e.Detail,
	}
	if e.Latency > 0 {
		prec := 1
		if e.Latency < 1 {
			prec = 2 // cache hits take tens of microseconds
		}
		row.Latency = strconv.FormatFloat(e.Latency, 'f', prec, 64) + " ms"
	}
	switch {
	case e.Audience != "":
		row.What, row.WhatFull = "ID token for "+e.Audience, "audience "+e.Audience
	case len(e.Scopes) > 0:
		short := make([]string, len(e.Scopes))
		for i, s := range e.Scopes {
			short[i] = strings.TrimPrefix(s, scopePrefix)
		}
		row.What, row.WhatFull = strings.Join(short, " "), strings.Join(e.Scopes, " ")
	}
	return row
}

// duration says how long, to the precision a person reads at a glance.
func duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd %dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}
