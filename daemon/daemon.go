package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"credbroker/authtoken"
	"credbroker/broker"
	"credbroker/store"
)

// DefaultSweepInterval is how often expired, stale and abandoned sessions
// are looked for. A session's time to live is also enforced by a timer of
// its own, to the second.
const DefaultSweepInterval = 30 * time.Second

// Options configure a Daemon.
type Options struct {
	Paths Paths
	// Key seals session tokens at rest (authtoken.KeySize bytes).
	Key []byte
	// Broker is the token core; SetBroker replaces it (SIGHUP).
	Broker *broker.Broker
	// Store keeps the sessions; SQLite at Paths.Database() when nil.
	Store store.Store
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock of the token records (expiry, staleness, last
	// use); time.Now when nil. Each session's expiry timer runs on the
	// real clock, so a test that moves Now calls Sweep.
	Now           func() time.Time
	SweepInterval time.Duration
	// DefaultProject is reported by sessions that name no project.
	DefaultProject string
}

// Daemon hosts sessions and serves the admin API.
type Daemon struct {
	opts    Options
	paths   Paths
	log     *slog.Logger
	now     func() time.Time
	st      store.Store
	repo    *authtoken.Repository
	audit   *Audit
	metrics *Metrics
	history history
	broker  atomic.Pointer[broker.Broker]
	started time.Time

	mu       sync.Mutex
	sessions map[string]*running
	closing  bool

	srv      *http.Server
	ln       net.Listener
	stop     chan struct{}
	bg       sync.WaitGroup
	shutOnce sync.Once
}

// New opens the daemon's state (directories, store, key check, audit log)
// and brings back the sessions a previous run left issued. It does not
// listen yet; call Start.
func New(ctx context.Context, o Options) (_ *Daemon, err error) {
	if o.Broker == nil {
		return nil, errors.New("daemon: no broker")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	for _, dir := range []string{o.Paths.Runtime, o.Paths.SessionsDir(), o.Paths.State} {
		if err := privateDir(dir); err != nil {
			return nil, err
		}
	}
	keys, err := authtoken.NewKeys(o.Key)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d := &Daemon{
		opts:     o,
		paths:    o.Paths,
		log:      o.Logger,
		now:      o.Now,
		st:       o.Store,
		metrics:  newMetrics(),
		started:  time.Now(),
		sessions: map[string]*running{},
		stop:     make(chan struct{}),
	}
	d.broker.Store(o.Broker)
	if d.st == nil {
		if d.st, err = store.OpenSQLite(ctx, o.Paths.Database()); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			d.st.Close()
			d.audit.Close()
		}
	}()
	d.repo, err = authtoken.NewRepository(ctx, d.st, keys, authtoken.Options{Now: o.Now})
	if errors.Is(err, authtoken.ErrWrongKey) {
		return nil, fmt.Errorf("daemon: the key (%s or %s) is not the one this daemon's sessions were stored with; restore it, or move %s away to start afresh",
			KeyEnv, o.Paths.KeyFile(), o.Paths.Database())
	}
	if err != nil {
		return nil, err
	}
	if d.audit, err = OpenAudit(o.Paths.AuditLog()); err != nil {
		return nil, err
	}
	d.restore(ctx)
	return d, nil
}

// Broker returns the current token core.
func (d *Daemon) Broker() *broker.Broker { return d.broker.Load() }

// SetBroker makes b the token core of every session, new and running,
// and returns the previous one for the caller to close once requests in
// flight are done.
func (d *Daemon) SetBroker(b *broker.Broker) *broker.Broker {
	return d.broker.Swap(b)
}

// Start listens on the admin socket and starts the sweeper.
func (d *Daemon) Start() error {
	ln, err := listenUnix(d.paths.Socket())
	if err != nil {
		return err
	}
	d.ln = &peerListener{Listener: ln, uid: uint32(os.Getuid()), refuse: func(p Peer, err error) {
		d.log.Warn("admin connection refused", "peer_uid", p.UID, "peer_pid", p.PID, "err", err)
	}}
	d.srv = &http.Server{
		Handler:           d.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			p, err := peerCred(c)
			if err != nil {
				return ctx
			}
			return withPeer(ctx, p)
		},
	}
	d.bg.Add(3)
	go func() {
		defer d.bg.Done()
		d.historyLoop()
	}()
	go func() {
		defer d.bg.Done()
		if err := d.srv.Serve(d.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("admin API stopped", "err", err)
		}
	}()
	go func() {
		defer d.bg.Done()
		d.sweepLoop()
	}()
	d.log.Info("daemon listening", "socket", d.paths.Socket())
	return nil
}

// listenUnix opens the admin socket 0600. A socket file left by a daemon
// that was killed is replaced; one that answers belongs to a daemon still
// running, which is an error.
func listenUnix(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("daemon: another daemon is listening on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	// The directory is 0700 already; the socket's own mode is the second
	// fence.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("daemon: %w", err)
	}
	return ln, nil
}

// Shutdown stops the admin API and suspends every session: its front-ends
// close (open connections included) but its files and record stay, for
// the next start to bring it back. Safe to call more than once.
func (d *Daemon) Shutdown(ctx context.Context) error {
	var errs []error
	d.shutOnce.Do(func() {
		close(d.stop)
		if d.srv != nil {
			if err := d.srv.Shutdown(ctx); err != nil {
				d.srv.Close()
			}
		}
		d.bg.Wait()
		d.mu.Lock()
		d.closing = true
		sessions := d.sessions
		d.sessions = map[string]*running{}
		d.mu.Unlock()
		for _, r := range sessions {
			r.stopTimer()
			errs = append(errs, r.sess.Suspend())
		}
		errs = append(errs, d.st.Close(), d.audit.Close())
		if d.ln != nil {
			os.Remove(d.paths.Socket())
		}
	})
	return errors.Join(errs...)
}

func (d *Daemon) sweepLoop() {
	t := time.NewTicker(d.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.Sweep(context.Background())
		}
	}
}

// Sweep fails sessions stuck pending, ends expired or stale ones, and
// deletes the records of sessions that failed over EndedRetention ago. The
// sweeper calls it periodically; tests call it after moving their clock.
func (d *Daemon) Sweep(ctx context.Context) {
	if n, err := d.repo.CloseExpiredPending(ctx); err != nil {
		d.log.Warn("closing abandoned pending sessions", "err", err)
	} else if n > 0 {
		d.log.Info("closed abandoned pending sessions", "count", n)
	}
	ids, err := d.repo.DeleteExpired(ctx)
	if err != nil {
		d.log.Warn("deleting expired sessions", "err", err)
	}
	for _, id := range ids {
		d.end(id, "expired")
	}
	if n, err := d.dropEndedRecords(ctx); err != nil {
		d.log.Warn("deleting old records of failed sessions", "err", err)
	} else if n > 0 {
		d.log.Info("deleted old records of failed sessions", "count", n)
	}
}

func (d *Daemon) sessionDir(id string) string { return filepath.Join(d.paths.SessionsDir(), id) }
