package openid

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
)

// Defaults for Server fields left zero.
const (
	// MinTokenLifetime is what every token /state serves has left at
	// least, so a page caching them by ExpiresIn has a margin for slow
	// requests and clock skew.
	MinTokenLifetime = 5 * time.Minute
	// DefaultSessionTTL is how long a sign-in lasts without signing in
	// again.
	DefaultSessionTTL = 7 * 24 * time.Hour
	// DefaultLocalAudience is the audience of ID tokens in local mode.
	DefaultLocalAudience = "credbroker-openid-local"
	// loginTTL bounds the time from /login to /callback.
	loginTTL = 10 * time.Minute
	// cleanupEvery is how often expired Store records are removed.
	cleanupEvery = 10 * time.Minute
	// touchEvery limits writes of a session's last use to one per period.
	touchEvery = time.Minute
)

// DefaultLocalScopes are the access-token scopes served in local mode.
var DefaultLocalScopes = []string{"https://www.googleapis.com/auth/userinfo.email"}

// loginScopes are always asked at sign-in in production mode.
var loginScopes = []string{"openid", "email", "profile"}

// Tokens is the part of the token core the server uses in local mode to
// serve the broker's own default account; *broker.Broker implements it.
type Tokens interface {
	AccessToken(ctx context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error)
	IDToken(ctx context.Context, account, audience string, minLifetime time.Duration) (broker.Token, error)
	Default() string
	Email(account string) (string, error)
}

// UserTokens is a token core that can take on one account per browser
// session (production mode); *broker.Broker implements it.
type UserTokens interface {
	AccessToken(ctx context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error)
	IDToken(ctx context.Context, account, audience string, minLifetime time.Duration) (broker.Token, error)
	AddAccount(id string, src broker.Source) error
}

// Mode says whether the server signs users in or fakes it.
type Mode string

const (
	Local      Mode = "local"
	Production Mode = "production"
)

// Server serves /auth/openid/*. Set the exported fields, then call Start;
// the fields must not change afterwards.
type Server struct {
	// OIDC, when set, selects production mode. Nil is local mode.
	OIDC *OIDC
	// Tokens serves the default account in local mode. Required there;
	// unused in production mode.
	Tokens Tokens
	// UserTokens caches the browser sessions' tokens in production mode.
	// Defaults to a broker of the server's own: the process broker must
	// not get them, or other front-ends would list browser users among
	// their accounts.
	UserTokens UserTokens
	// Store keeps browser sessions. Defaults to a MemStore, which is
	// right for local mode; servers that share browser sessions share a
	// Store.
	Store Store
	// Keys seal cookies and refresh tokens. Required in production mode,
	// and the same on every server sharing a Store; local mode makes a
	// key at Start.
	Keys *Keyring
	// Scopes of the access tokens served. Local mode defaults to
	// DefaultLocalScopes; production mode serves "openid email profile"
	// plus OIDC.Scopes and ignores this.
	Scopes []string
	// Audience of the ID tokens served in local mode; defaults to
	// DefaultLocalAudience. Production ID tokens are for OIDC.ClientID.
	Audience string
	// SessionTTL is how long a sign-in lasts. Defaults to
	// DefaultSessionTTL.
	SessionTTL time.Duration
	// Port is the TCP port on loopback; 0 picks a free one.
	Port int
	// Addr, when set, is the "HOST:PORT" to listen on instead of
	// loopback's Port, e.g. "0.0.0.0:8443" or a LAN address ("" host and
	// port 0 work as for net.Listen). An address that is not loopback
	// needs TLSConfig and production mode: local mode would hand the
	// broker's own tokens to anyone on the network.
	Addr string
	// TLSConfig, when set, makes the server speak HTTPS only (with a
	// certificate in it), on loopback or Addr; the cookies then get
	// Secure and the __Host- prefix.
	TLSConfig *tls.Config
	// AllowPeer, when set, is asked once per connection whether the
	// process at the other end may be served; loopback.SameUser is the
	// usual choice in local mode, where /state hands out the broker's own
	// tokens. A refused connection gets 403 with
	// loopback.PeerRefusedMessage on loopback's server, and is closed at
	// once on Addr or with TLS. It asks the kernel about loopback peers
	// only: leave it nil on an Addr other machines reach.
	AllowPeer func(net.Conn) bool
	// Hosts are extra Host header values accepted ("name" or
	// "name:port"), e.g. the name a reverse proxy forwards, or the name
	// the server is reached by on Addr.
	Hosts []string
	// Home serves every path outside /auth/openid/: the app's pages, a
	// dashboard. Defaults to a status page at "/" saying which mode runs.
	Home http.Handler
	// Now is the clock; tests inject one. Defaults to time.Now.
	Now func() time.Time
	// Logger gets a line per sign-in, sign-out and failure; never a
	// token, a cookie or a key. Defaults to slog.Default().
	Logger *slog.Logger

	mu       sync.Mutex
	started  bool
	closed   bool
	srv      httpServer
	handler  http.Handler
	ownUsers *broker.Broker
	stop     context.CancelFunc
	bg       sync.WaitGroup

	mode     Mode
	now      func() time.Time
	log      *slog.Logger
	keys     *Keyring
	provider *provider
	scopes   []string
	audience string
	secure   bool
	port     atomic.Int64 // known once listening; read by the Host check

	usersMu sync.Mutex
	users   map[string]bool // Store IDs whose account UserTokens has
}

// Info is what a started server tells its caller.
type Info struct {
	Mode Mode
	Port int
	// URL is the server's base URL, e.g. http://127.0.0.1:8080, or
	// https://192.0.2.1:8443 on Addr with TLSConfig. A server on a
	// wildcard address gives its loopback URL.
	URL string
}

// httpServer is a running listener: *loopback.HTTPServer, or a
// netServer on Addr or with TLS.
type httpServer interface {
	Port() int
	Addr() string
	Close() error
}

// Start checks the configuration, discovers the provider in production
// mode, opens the listener and starts serving. A Server starts once.
func (s *Server) Start(ctx context.Context) (Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return Info{}, errors.New("openid: server already closed")
	case s.started:
		return Info{}, errors.New("openid: server already started")
	}
	if err := s.prepare(ctx); err != nil {
		return Info{}, err
	}
	s.port.Store(int64(s.Port))
	var srv httpServer
	var err error
	if s.Addr == "" && s.TLSConfig == nil {
		srv, err = loopback.ServeHTTP(s.handler, loopback.HTTPOptions{Port: s.Port, AllowPeer: s.AllowPeer, Logger: s.log})
	} else {
		srv, err = serveNet(s.handler, s.listenAddr(), s.TLSConfig, s.AllowPeer, s.log)
	}
	if err != nil {
		s.closeOwn()
		return Info{}, fmt.Errorf("openid: %w", err)
	}
	s.port.Store(int64(srv.Port()))
	s.srv, s.started = srv, true
	bgCtx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.bg.Add(1)
	go s.cleanLoop(bgCtx)
	s.log.Info("openid front-end serving", "mode", string(s.mode), "addr", srv.Addr())
	scheme := "http://"
	if s.TLSConfig != nil {
		scheme = "https://"
	}
	return Info{Mode: s.mode, Port: srv.Port(), URL: scheme + srv.Addr()}, nil
}

// listenAddr is where a netServer listens: Addr, or loopback's Port when
// only TLSConfig is set.
func (s *Server) listenAddr() string {
	if s.Addr != "" {
		return s.Addr
	}
	return net.JoinHostPort(loopback.IPv4, fmt.Sprint(s.Port))
}

// checkAddr refuses an Addr the server must not serve on.
func (s *Server) checkAddr() error {
	if s.Addr == "" {
		return nil
	}
	if s.Port != 0 {
		return errors.New("openid: set Addr or Port, not both")
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("openid: Addr %q: %w", s.Addr, err)
	}
	if isLoopbackHost(host) {
		return nil
	}
	var missing []string
	if s.TLSConfig == nil {
		missing = append(missing, "TLSConfig")
	}
	if s.OIDC == nil {
		missing = append(missing, "production mode (OIDC)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("openid: Addr %q is not loopback: it needs %s", s.Addr, strings.Join(missing, " and "))
	}
	return nil
}

// isLoopbackHost reports whether a listen address's host binds loopback
// only. "" and unspecified addresses bind every interface.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// prepare fills defaults and checks the configuration. It is separate from
// Start so tests can build the handler without a listener.
func (s *Server) prepare(ctx context.Context) error {
	s.now = s.Now
	if s.now == nil {
		s.now = time.Now
	}
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.SessionTTL <= 0 {
		s.SessionTTL = DefaultSessionTTL
	}
	if err := s.checkAddr(); err != nil {
		return err
	}
	s.users = map[string]bool{}
	if s.Store == nil {
		s.Store = NewMemStore()
	}
	if s.OIDC == nil {
		s.mode = Local
		if s.Tokens == nil {
			return errors.New("openid: local mode needs a token core (Tokens is nil)")
		}
		s.keys = s.Keys
		if s.keys == nil {
			kr, err := NewKeyring(GenerateKey("local"))
			if err != nil {
				return err
			}
			s.keys = kr
		}
		s.scopes = s.Scopes
		if len(s.scopes) == 0 {
			s.scopes = DefaultLocalScopes
		}
		s.scopes = broker.NormalizeScopes(s.scopes)
		s.audience = s.Audience
		if s.audience == "" {
			s.audience = DefaultLocalAudience
		}
	} else {
		s.mode = Production
		if s.Keys == nil {
			return errors.New("openid: production mode needs AEAD keys (Keys is nil)")
		}
		s.keys = s.Keys
		s.scopes = broker.NormalizeScopes(append(append([]string{}, loginScopes...), s.OIDC.Scopes...))
		s.audience = s.OIDC.ClientID
		s.secure = strings.HasPrefix(strings.ToLower(s.OIDC.RedirectURL), "https://")
		p, err := discover(ctx, *s.OIDC, s.scopes, s.now)
		if err != nil {
			return err
		}
		s.provider = p
		if s.UserTokens == nil {
			s.ownUsers = broker.New(broker.Options{Now: s.now, Logger: s.log})
			s.UserTokens = s.ownUsers
		}
	}
	if s.TLSConfig != nil {
		// Served over HTTPS itself, whatever the redirect URL says.
		s.secure = true
	}
	if s.Home == nil {
		s.Home = statusPage(s)
	}
	s.handler = s.routes()
	return nil
}

// Mode reports the mode the server runs in; valid after Start.
func (s *Server) Mode() Mode { return s.mode }

// cleanLoop removes expired Store records now and then. Every server
// sharing a Store does it; the deletes are idempotent.
func (s *Server) cleanLoop(ctx context.Context) {
	defer s.bg.Done()
	t := time.NewTicker(cleanupEvery)
	defer t.Stop()
	for {
		n, err := s.Cleanup(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("openid: removing expired browser sessions failed", "err", err)
		}
		if n > 0 {
			s.log.Info("openid: removed expired browser sessions and sign-ins", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Cleanup removes expired browser sessions and sign-ins from the Store,
// returns how many, and forgets the accounts (and cached tokens) of the
// browser sessions this server served that ended: those it removed, and
// those gone from the Store because another server sharing it removed
// them or signed them out.
func (s *Server) Cleanup(ctx context.Context) (int, error) {
	ids, err := s.Store.DeleteExpired(ctx, s.now())
	removed := make(map[string]bool, len(ids))
	for _, id := range ids {
		removed[id] = true
	}
	// Only accounts this server added are looked at: most removed IDs
	// are abandoned sign-ins, which never had one.
	s.usersMu.Lock()
	held := make([]string, 0, len(s.users))
	for id := range s.users {
		held = append(held, id)
	}
	s.usersMu.Unlock()
	for _, id := range held {
		if !removed[id] {
			if err != nil {
				continue // the Store is failing; the next round checks
			}
			_, gerr := s.Store.Get(ctx, id, s.now())
			if gerr == nil {
				continue
			}
			if !errors.Is(gerr, ErrNotFound) {
				return len(ids), gerr
			}
		}
		s.dropUser(id)
	}
	return len(ids), err
}

// Close stops the listener and ends every open connection. Safe to call
// more than once, and before Start.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.stop != nil {
		s.stop()
		s.bg.Wait()
		s.stop = nil
	}
	var err error
	if s.srv != nil {
		err = s.srv.Close()
		s.srv = nil
	}
	s.closeOwn()
	return err
}

func (s *Server) closeOwn() {
	if s.ownUsers != nil {
		s.ownUsers.Close()
		s.ownUsers = nil
	}
}

// hostAllowed is the DNS-rebinding check.
func (s *Server) hostAllowed(host string) bool {
	return loopback.HostAllowed(host, int(s.port.Load()), s.Hosts...)
}
