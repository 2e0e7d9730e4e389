package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"credbroker/authtoken"
)

// maxBody bounds an admin request body.
const maxBody = 1 << 20

// apiError is an admin API failure with its HTTP status.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func apiErrorf(status int, format string, args ...any) error {
	return &apiError{status, fmt.Sprintf(format, args...)}
}

// routes lists the admin API. Every client is the credbroker CLI (or a
// program speaking the same JSON).
func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	// session create; run --daemon
	mux.Handle("POST /v1/sessions", d.handle(d.createHandler))
	// session list
	mux.Handle("GET /v1/sessions", d.handle(d.listHandler))
	// session show
	mux.Handle("GET /v1/sessions/{id}", d.handle(d.showHandler))
	// session revoke; run --daemon when its command exits
	mux.Handle("DELETE /v1/sessions/{id}", d.handle(d.revokeHandler))
	// status
	mux.Handle("GET /v1/status", d.handle(d.statusHandler))
	// Prometheus scrapes (through a socket-aware exporter or curl --unix-socket)
	mux.Handle("GET /metrics", d.handle(d.metricsHandler))
	return mux
}

// caller is who sent an admin request: the peer, and the session its
// bearer credential names (empty for the daemon's own user without one).
type caller struct {
	peer    Peer
	session string
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, c caller) (any, error)

// handle authenticates a request, runs h and writes its answer or error
// as JSON. A bearer credential limits the request to its own session.
func (d *Daemon) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		c, err := d.authenticate(r)
		var out any
		if err == nil {
			out, err = h(w, r, c)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		if out == nil {
			return // h wrote the answer
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	})
}

func (d *Daemon) authenticate(r *http.Request) (caller, error) {
	p, err := peerFrom(r.Context())
	if err != nil {
		return caller{}, apiErrorf(http.StatusForbidden, "unknown peer")
	}
	c := caller{peer: p}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return c, nil
	}
	cred, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return c, apiErrorf(http.StatusUnauthorized, "the Authorization header must be \"Bearer <session token>\"")
	}
	tok, err := d.repo.Validate(r.Context(), cred)
	if errors.Is(err, authtoken.ErrInvalid) {
		return c, apiErrorf(http.StatusUnauthorized, "invalid, expired or revoked session token")
	}
	if err != nil {
		return c, err
	}
	c.session = tok.PublicID
	return c, nil
}

// writeError is the one place admin errors are written: JSON
// {"error": "..."} with a status for the kind of failure.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var ae *apiError
	var re *RequestError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		status = ae.status
	case errors.As(err, &re), errors.As(err, &mbe):
		status = http.StatusBadRequest
	case errors.Is(err, authtoken.ErrNotFound):
		status = http.StatusNotFound
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func (c caller) mayAdminister() error {
	if c.session != "" {
		return apiErrorf(http.StatusForbidden, "a session token may only show or revoke its own session")
	}
	return nil
}

func (c caller) mayTouch(id string) error {
	if c.session != "" && c.session != id {
		return apiErrorf(http.StatusForbidden, "a session token may only show or revoke its own session")
	}
	return nil
}

func (d *Daemon) createHandler(w http.ResponseWriter, r *http.Request, c caller) (any, error) {
	if err := c.mayAdminister(); err != nil {
		return nil, err
	}
	var req CreateRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, badRequest("request body: %v", err)
	}
	// The session outlives this request; its start is bounded on its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Minute)
	defer cancel()
	out, err := d.Create(ctx, c.peer, req)
	if err != nil {
		return nil, err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return nil, enc.Encode(out)
}

func (d *Daemon) listHandler(w http.ResponseWriter, r *http.Request, c caller) (any, error) {
	if err := c.mayAdminister(); err != nil {
		return nil, err
	}
	q := r.URL.Query()
	var o authtoken.ListOptions
	for _, s := range q["status"] {
		switch st := authtoken.Status(s); st {
		case authtoken.Pending, authtoken.Issued, authtoken.Failed, authtoken.SystemError:
			o.Statuses = append(o.Statuses, st)
		default:
			return nil, badRequest("status %q: want pending, issued, failed or system error", s)
		}
	}
	if s := q.Get("owner"); s != "" {
		uid, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, badRequest("owner %q: want a uid", s)
		}
		o.OwnerUID = &uid
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, badRequest("limit %q: want a number", s)
		}
		o.Limit = n
	}
	list, err := d.List(r.Context(), o)
	if list == nil {
		list = []Info{}
	}
	return list, err
}

func (d *Daemon) showHandler(w http.ResponseWriter, r *http.Request, c caller) (any, error) {
	id := r.PathValue("id")
	if err := c.mayTouch(id); err != nil {
		return nil, err
	}
	return d.Lookup(r.Context(), id)
}

func (d *Daemon) revokeHandler(w http.ResponseWriter, r *http.Request, c caller) (any, error) {
	id := r.PathValue("id")
	if err := c.mayTouch(id); err != nil {
		return nil, err
	}
	if err := d.Revoke(r.Context(), id); err != nil {
		return nil, err
	}
	d.auditEvent("session.revoke", id, c.peer, "ok", "")
	return map[string]string{"revoked": id}, nil
}

// Status is the answer of GET /v1/status.
type Status struct {
	PID       int                      `json:"pid"`
	Started   time.Time                `json:"started"`
	Socket    string                   `json:"socket"`
	Sessions  []Info                   `json:"sessions"`
	Frontends map[string]FrontendStats `json:"frontends"`
	Cache     CacheStats               `json:"cache"`
}

// CacheStats are the token core's counters.
type CacheStats struct {
	Hits       uint64 `json:"hits"`
	Misses     uint64 `json:"misses"`
	Mints      uint64 `json:"mints"`
	MintErrors uint64 `json:"mint_errors"`
	Entries    int    `json:"entries"`
}

func (d *Daemon) statusHandler(w http.ResponseWriter, r *http.Request, c caller) (any, error) {
	if err := c.mayAdminister(); err != nil {
		return nil, err
	}
	list, err := d.List(r.Context(), authtoken.ListOptions{Limit: -1})
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []Info{}
	}
	bs := d.Broker().Stats()
	return Status{
		PID:       os.Getpid(),
		Started:   d.started.UTC(),
		Socket:    d.paths.Socket(),
		Sessions:  list,
		Frontends: d.metrics.Frontends(),
		Cache:     CacheStats{Hits: bs.Hits + bs.StaleHits, Misses: bs.Misses, Mints: bs.Mints, MintErrors: bs.MintErrors, Entries: bs.Entries},
	}, nil
}

func (d *Daemon) metricsHandler(w http.ResponseWriter, r *http.Request, c caller) (any, error) {
	if err := c.mayAdminister(); err != nil {
		return nil, err
	}
	list, err := d.repo.List(r.Context(), authtoken.ListOptions{Limit: -1})
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, s := range []authtoken.Status{authtoken.Pending, authtoken.Issued, authtoken.Failed, authtoken.SystemError} {
		counts[string(s)] = 0
	}
	for _, t := range list {
		counts[string(t.Status)]++
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	d.metrics.writePrometheus(w, d.Broker().Stats(), counts)
	return nil, nil
}
