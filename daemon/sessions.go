package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"credbroker/authtoken"
	"credbroker/broker"
	"credbroker/internal/loopback"
	"credbroker/session"
)

// CreateRequest asks for a new session.
type CreateRequest struct {
	// TTL and Stale are Go durations ("8h", "90m"); Stale "" or "0" means
	// no staleness limit.
	TTL   string `json:"ttl,omitempty"`
	Stale string `json:"stale,omitempty"`
	// Accounts are broker account ids; the daemon's default when empty.
	Accounts       []string  `json:"accounts,omitempty"`
	DefaultAccount string    `json:"default_account,omitempty"`
	Scopes         []string  `json:"scopes,omitempty"`
	Project        string    `json:"project,omitempty"`
	Frontends      Frontends `json:"frontends"`
	// Env is the part of the caller's environment the session derives its
	// own from (see ParentEnvKeys).
	Env []string `json:"env,omitempty"`
}

// Frontends says which front-ends a session runs.
type Frontends struct {
	LocalAuth bool `json:"local_auth"`
	GCEMeta   bool `json:"gcemeta"`
	Devshell  bool `json:"devshell"`
	Gsutil    bool `json:"gsutil"`
	BotoGCE   bool `json:"boto_gce,omitempty"`
}

// ParentEnvKeys are the variables a client sends with CreateRequest: the
// ones the session reads (parent LUCI_CONTEXT, boto configuration) and the
// ones it removes, so the answer can say to unset them. Nothing else of
// the caller's environment reaches the daemon or its database.
var ParentEnvKeys = []string{
	"HOME", "LUCI_CONTEXT", "BOTO_CONFIG", "BOTO_PATH", "DEVSHELL_CLIENT_PORT",
	"GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", "CLOUDSDK_CORE_ACCOUNT", "NO_GCE_CHECK",
}

// Variables the daemon adds to every session's environment.
const (
	EnvSession      = "CREDBROKER_SESSION"       // the public id
	EnvSessionToken = "CREDBROKER_SESSION_TOKEN" // the credential, shown once
)

// EnvVar is one variable to set.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Info describes a session; it never holds the token.
type Info struct {
	ID             string             `json:"id"`
	Status         string             `json:"status"`
	Reason         string             `json:"reason,omitempty"`
	OwnerUID       int64              `json:"owner_uid"`
	Created        time.Time          `json:"created"`
	Expires        time.Time          `json:"expires"`
	LastUsed       time.Time          `json:"last_used"`
	Stale          string             `json:"stale,omitempty"`
	Accounts       []string           `json:"accounts,omitempty"`
	DefaultAccount string             `json:"default_account,omitempty"`
	Scopes         []string           `json:"scopes,omitempty"`
	Project        string             `json:"project,omitempty"`
	Endpoints      []session.Endpoint `json:"endpoints,omitempty"`
	Dir            string             `json:"dir,omitempty"`
	Running        bool               `json:"running"`
}

// Created is the answer to CreateRequest: the session, the variables to
// set and unset, and its token, which is never shown again.
type Created struct {
	Info
	Token string   `json:"token"`
	Set   []EnvVar `json:"set"`
	Unset []string `json:"unset"`
}

// sessionData is what the store keeps about a session besides the token
// record; it is what a restarted daemon needs to bring the session back.
// It holds paths and ports, never a secret.
type sessionData struct {
	Accounts       []string           `json:"accounts"`
	DefaultAccount string             `json:"default_account"`
	Scopes         []string           `json:"scopes"`
	Project        string             `json:"project,omitempty"`
	Frontends      Frontends          `json:"frontends"`
	ParentEnv      []string           `json:"parent_env,omitempty"`
	Ports          session.Ports      `json:"ports"`
	Endpoints      []session.Endpoint `json:"endpoints,omitempty"`
	Set            []EnvVar           `json:"set,omitempty"`
	Unset          []string           `json:"unset,omitempty"`
}

type running struct {
	sess  *session.Session
	timer *time.Timer
}

func (r *running) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
	}
}

// RequestError is a refusal caused by the request itself (an unknown
// account, a bad duration); the admin API answers it with 400.
type RequestError struct{ msg string }

func (e *RequestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &RequestError{fmt.Sprintf(format, args...)}
}

// Create makes a session for owner: a pending record, then its
// front-ends, then issued (or failed with the reason).
func (d *Daemon) Create(ctx context.Context, owner Peer, req CreateRequest) (*Created, error) {
	ttl, err := parseDuration("ttl", req.TTL, authtoken.DefaultTTL)
	if err != nil {
		return nil, err
	}
	stale, err := parseDuration("stale", req.Stale, 0)
	if err != nil {
		return nil, err
	}
	b := d.Broker()
	data := sessionData{
		Accounts:       req.Accounts,
		DefaultAccount: req.DefaultAccount,
		Scopes:         req.Scopes,
		Project:        req.Project,
		Frontends:      req.Frontends,
		ParentEnv:      filterEnv(req.Env),
	}
	if data.Project == "" {
		data.Project = d.opts.DefaultProject
	}
	if len(data.Accounts) == 0 {
		data.Accounts = []string{b.Default()}
	}
	if data.DefaultAccount == "" {
		data.DefaultAccount = data.Accounts[0]
	}
	for _, a := range data.Accounts {
		if _, err := b.Email(a); err != nil {
			return nil, badRequest("account %q is not served by this daemon", a)
		}
	}
	if !slices.Contains(data.Accounts, data.DefaultAccount) {
		return nil, badRequest("default account %q is not one of the session's accounts", data.DefaultAccount)
	}
	if len(data.Scopes) == 0 {
		return nil, badRequest("no scopes")
	}
	raw, _ := json.Marshal(data)
	tok, err := d.repo.Create(ctx, authtoken.CreateOptions{OwnerUID: int64(owner.UID), TTL: ttl, StaleAfter: stale, Data: raw})
	if err != nil {
		return nil, err
	}
	sess, err := d.startSession(ctx, tok.PublicID, tok.Value, int64(owner.UID), &data)
	if err != nil {
		reason := err.Error()
		if ferr := d.repo.Fail(ctx, tok.PublicID, authtoken.Failed, reason); ferr != nil {
			d.log.Error("recording a failed session", "session", tok.PublicID, "err", ferr)
		}
		d.auditEvent("session.create", tok.PublicID, owner, "failed", reason)
		return nil, fmt.Errorf("session %s failed: %w", tok.PublicID, err)
	}
	data.Ports = session.PortsOf(sess.Endpoints)
	data.Endpoints = sess.Endpoints
	data.Set, data.Unset = envDiff(data.ParentEnv, sess.Env)
	data.Set = append(data.Set, EnvVar{EnvSession, tok.PublicID})
	raw, _ = json.Marshal(data)
	if err := d.repo.Issue(ctx, tok.PublicID, raw); err != nil {
		sess.Close()
		d.repo.Fail(context.WithoutCancel(ctx), tok.PublicID, authtoken.SystemError, "could not record the session as issued")
		return nil, fmt.Errorf("session %s: %w", tok.PublicID, err)
	}
	if !d.track(tok.PublicID, sess, tok.ExpirationTime) {
		sess.Close()
		d.repo.Delete(context.WithoutCancel(ctx), tok.PublicID)
		return nil, errors.New("the daemon is shutting down")
	}
	d.auditEvent("session.create", tok.PublicID, owner, "ok", "")
	d.log.Info("session created", "session", tok.PublicID, "owner_uid", owner.UID, "expires", tok.ExpirationTime)

	tok.Status = authtoken.Issued
	tok.Data = raw
	out := &Created{Info: d.info(tok), Token: tok.Credential(), Unset: data.Unset}
	out.Set = append(slices.Clone(data.Set), EnvVar{EnvSessionToken, tok.Credential()})
	return out, nil
}

// startSession starts a session's front-ends in its directory; on a
// restore, data.Ports brings them back where they were.
func (d *Daemon) startSession(ctx context.Context, id, value string, owner int64, data *sessionData) (*session.Session, error) {
	fe := data.Frontends
	return session.Start(context.WithoutCancel(ctx), session.Config{
		Broker:         d.Broker(),
		Accounts:       data.Accounts,
		DefaultAccount: data.DefaultAccount,
		Scopes:         data.Scopes,
		ProjectID:      data.Project,
		Frontends:      session.Frontends{LocalAuth: fe.LocalAuth, GCEMeta: fe.GCEMeta, Devshell: fe.Devshell, Gsutil: fe.Gsutil, BotoGCE: fe.BotoGCE},
		ParentEnv:      data.ParentEnv,
		Logger:         d.log.With("session", id),
		Dir:            d.sessionDir(id),
		Ports:          data.Ports,
		// local_auth's secret is the session token itself: the one
		// secret the session has, kept sealed at rest.
		LocalAuthSecret: []byte(value),
		AllowPeer:       ownerPeer(owner),
		WrapTokens: func(frontend string, _ session.Tokens) session.Tokens {
			return &tracked{d: d, session: id, frontend: frontend}
		},
	})
}

// ownerPeer serves the front-ends without a secret to the session
// owner's processes only.
func ownerPeer(uid int64) func(net.Conn) bool {
	if !loopback.PeerUIDSupported {
		return nil
	}
	return func(c net.Conn) bool {
		got, err := loopback.PeerUID(c)
		return err == nil && int64(got) == uid
	}
}

// track registers a running session and arms its expiry timer.
func (d *Daemon) track(id string, sess *session.Session, expires time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return false
	}
	r := &running{sess: sess}
	r.timer = time.AfterFunc(time.Until(expires), func() {
		if _, err := d.repo.Lookup(context.Background(), id); err == nil {
			d.repo.Delete(context.Background(), id)
		}
		d.end(id, "expired")
	})
	d.sessions[id] = r
	return true
}

// end closes a session's front-ends (open connections included) and
// removes its files. The record is the caller's business.
func (d *Daemon) end(id, why string) bool {
	d.mu.Lock()
	r, ok := d.sessions[id]
	delete(d.sessions, id)
	closing := d.closing
	d.mu.Unlock()
	switch {
	case ok:
		r.stopTimer()
		if err := r.sess.Close(); err != nil {
			d.log.Warn("closing a session", "session", id, "err", err)
		}
	case closing:
		// Shutdown suspended it: its files wait for the next start,
		// which ends it properly if it has expired by then.
		return false
	default:
		os.RemoveAll(d.sessionDir(id))
	}
	d.audit.Log(AuditEntry{Time: time.Now().UTC(), Event: "session.end", Session: id, Outcome: "ok", Detail: why})
	d.log.Info("session ended", "session", id, "why", why)
	return ok
}

// Revoke ends a session at once and deletes its record.
func (d *Daemon) Revoke(ctx context.Context, id string) error {
	if _, err := d.repo.Lookup(ctx, id); err != nil {
		return err
	}
	// Close first: once Revoke returns, no token flows on any connection.
	d.end(id, "revoked")
	_, err := d.repo.Delete(ctx, id)
	return err
}

// Lookup describes one session.
func (d *Daemon) Lookup(ctx context.Context, id string) (Info, error) {
	tok, err := d.repo.Lookup(ctx, id)
	if err != nil {
		return Info{}, err
	}
	return d.info(tok), nil
}

// List describes the sessions o selects.
func (d *Daemon) List(ctx context.Context, o authtoken.ListOptions) ([]Info, error) {
	toks, err := d.repo.List(ctx, o)
	if err != nil {
		return nil, err
	}
	out := make([]Info, len(toks))
	for i, t := range toks {
		out[i] = d.info(t)
	}
	return out, nil
}

func (d *Daemon) info(t *authtoken.Token) Info {
	var data sessionData
	json.Unmarshal(t.Data, &data)
	in := Info{
		ID: t.PublicID, Status: string(t.Status), Reason: t.Reason, OwnerUID: t.OwnerUID,
		Created: t.CreateTime, Expires: t.ExpirationTime, LastUsed: t.LastAccessTime,
		Accounts: data.Accounts, DefaultAccount: data.DefaultAccount, Scopes: data.Scopes,
		Project: data.Project, Endpoints: data.Endpoints,
	}
	if t.StaleAfter > 0 {
		in.Stale = t.StaleAfter.String()
	}
	d.mu.Lock()
	if r, ok := d.sessions[t.PublicID]; ok {
		in.Running, in.Dir = true, r.sess.Dir
	}
	d.mu.Unlock()
	return in
}

// restore brings back the sessions a previous run left issued, on their
// old ports with their old secret; those that cannot come back are
// marked failed with the reason. Sessions left pending were cut off
// mid-start and become system errors.
func (d *Daemon) restore(ctx context.Context) {
	pending, err := d.repo.List(ctx, authtoken.ListOptions{Statuses: []authtoken.Status{authtoken.Pending}, Limit: -1})
	if err != nil {
		d.log.Error("listing pending sessions", "err", err)
	}
	for _, t := range pending {
		d.repo.Fail(ctx, t.PublicID, authtoken.SystemError, "the daemon stopped while the session was starting")
		os.RemoveAll(d.sessionDir(t.PublicID))
	}
	issued, err := d.repo.List(ctx, authtoken.ListOptions{Statuses: []authtoken.Status{authtoken.Issued}, Limit: -1})
	if err != nil {
		d.log.Error("listing sessions to restore", "err", err)
		return
	}
	for _, t := range issued {
		if d.repo.Expired(t) {
			d.repo.Delete(ctx, t.PublicID)
			os.RemoveAll(d.sessionDir(t.PublicID))
			continue
		}
		if err := d.restoreOne(ctx, t); err != nil {
			d.log.Warn("a session could not be restored", "session", t.PublicID, "err", err)
			d.repo.MarkFailed(ctx, t.PublicID, "not restored after a restart: "+err.Error())
			os.RemoveAll(d.sessionDir(t.PublicID))
			continue
		}
		d.log.Info("session restored", "session", t.PublicID)
	}
	d.removeOrphanDirs()
}

// removeOrphanDirs deletes session directories that no running session
// owns: left by a daemon killed while revoking, or by a record deleted
// from the store by hand.
func (d *Daemon) removeOrphanDirs() {
	entries, err := os.ReadDir(d.paths.SessionsDir())
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range entries {
		if _, ok := d.sessions[e.Name()]; ok {
			continue
		}
		if err := os.RemoveAll(d.sessionDir(e.Name())); err != nil {
			d.log.Warn("could not remove an orphaned session directory", "dir", e.Name(), "err", err)
		}
	}
}

func (d *Daemon) restoreOne(ctx context.Context, t *authtoken.Token) error {
	var data sessionData
	if err := json.Unmarshal(t.Data, &data); err != nil {
		return fmt.Errorf("its record is unreadable: %w", err)
	}
	value, err := d.repo.Value(ctx, t.PublicID)
	if err != nil {
		return err
	}
	sess, err := d.startSession(ctx, t.PublicID, value, t.OwnerUID, &data)
	if err != nil {
		return err
	}
	if err := relinkBoto(sess, data.Set); err != nil {
		sess.Close()
		return err
	}
	if !d.track(t.PublicID, sess, t.ExpirationTime) {
		sess.Close()
		return errors.New("the daemon is shutting down")
	}
	return nil
}

// relinkBoto points the .boto path the session's children were given at
// the one its restored gsutil shim wrote. The shim makes a new state
// directory and refresh token at every start and removes the old ones
// when it stops, so without this a child started before the restart
// would find no .boto. (A shim that could reuse its state directory and
// secret would make this unnecessary.)
func relinkBoto(sess *session.Session, given []EnvVar) error {
	var old string
	for _, v := range given {
		if v.Name == "BOTO_CONFIG" {
			old = v.Value
		}
	}
	cur, _ := session.Env(sess.Env).Get("BOTO_CONFIG")
	if old == "" || cur == "" || old == cur {
		return nil
	}
	// Only ever write inside the session's own directory.
	if rel, err := filepath.Rel(sess.Dir, old); err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("the session's .boto path %s is outside its directory", old)
	}
	if err := os.MkdirAll(filepath.Dir(old), 0o700); err != nil {
		return fmt.Errorf("restoring the .boto path: %w", err)
	}
	os.Remove(old)
	if err := os.Symlink(cur, old); err != nil {
		return fmt.Errorf("restoring the .boto path: %w", err)
	}
	return nil
}

func (d *Daemon) auditEvent(event, id string, p Peer, outcome, detail string) {
	uid := int64(p.UID)
	d.audit.Log(AuditEntry{Time: time.Now().UTC(), Event: event, Session: id, PeerPID: p.PID, PeerUID: &uid, Outcome: outcome, Detail: detail})
}

func parseDuration(name, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, badRequest("%s %q: want a duration such as 8h or 90m", name, s)
	}
	if v == 0 {
		return def, nil
	}
	return v, nil
}

// filterEnv keeps only ParentEnvKeys.
func filterEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); ok && slices.Contains(ParentEnvKeys, k) {
			out = append(out, kv)
		}
	}
	return out
}

// envDiff says how to turn the caller's environment into the session's:
// variables to set (sorted) and to unset. The variables a session always
// removes are unset even when the caller did not send them.
func envDiff(parent, child []string) (set []EnvVar, unset []string) {
	p, c := session.Env(parent), session.Env(child)
	for _, kv := range child {
		k, v, _ := strings.Cut(kv, "=")
		if pv, ok := p.Get(k); !ok || pv != v {
			set = append(set, EnvVar{k, v})
		}
	}
	for _, k := range ParentEnvKeys {
		if _, ok := c.Get(k); !ok {
			unset = append(unset, k)
		}
	}
	sort.Slice(set, func(i, j int) bool { return set[i].Name < set[j].Name })
	return set, unset
}

// tracked is the token core as one front-end of one session sees it: it
// forwards to the daemon's current broker, and counts, audits and marks
// the session used on every request.
type tracked struct {
	d        *Daemon
	session  string
	frontend string
}

func (t *tracked) AccessToken(ctx context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error) {
	start := time.Now()
	tok, err := t.d.Broker().AccessToken(ctx, account, scopes, minLifetime)
	t.done(ctx, AuditEntry{Kind: "access", Account: account, Scopes: scopes}, start, tok, err)
	return tok, err
}

func (t *tracked) IDToken(ctx context.Context, account, audience string, minLifetime time.Duration) (broker.Token, error) {
	start := time.Now()
	tok, err := t.d.Broker().IDToken(ctx, account, audience, minLifetime)
	t.done(ctx, AuditEntry{Kind: "id", Account: account, Audience: audience}, start, tok, err)
	return tok, err
}

// Email lets local_auth name the accounts in LUCI_CONTEXT.
func (t *tracked) Email(account string) (string, error) { return t.d.Broker().Email(account) }

func (t *tracked) done(ctx context.Context, e AuditEntry, start time.Time, tok broker.Token, err error) {
	lat := time.Since(start)
	e.PeerUID = peerUID(ctx)
	t.d.metrics.observe(t.frontend, lat, err)
	t.d.history.observe(t.d.now(), err)
	e.Time, e.Event, e.Session, e.Frontend = start.UTC(), "issue", t.session, t.frontend
	e.Latency = float64(lat.Microseconds()) / 1000
	e.Outcome = "ok"
	if err != nil {
		e.Outcome = broker.ClassOf(err).String()
	} else {
		e.Expires = tok.Expiry.UTC()
	}
	if werr := t.d.audit.Log(e); werr != nil {
		t.d.log.Warn("audit log write failed", "err", werr)
	}
	if terr := t.d.repo.Touch(context.Background(), t.session); terr != nil {
		t.d.log.Warn("recording a session's use", "session", t.session, "err", terr)
	}
	t.d.log.Debug("token issued", "session", t.session, "frontend", t.frontend, "account", e.Account, "outcome", e.Outcome, "latency", lat)
}

// peerUID names the local user behind the connection a token request came
// on, for the audit log; nil when it cannot be found. The kernel keeps no
// pid for a TCP socket, so issuance lines carry the uid only.
func peerUID(ctx context.Context) *int64 {
	c := loopback.ConnFromContext(ctx)
	if c == nil || !loopback.PeerUIDSupported {
		return nil
	}
	uid, err := loopback.PeerUID(c)
	if err != nil {
		return nil
	}
	v := int64(uid)
	return &v
}
