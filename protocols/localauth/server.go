package localauth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
	"credbroker/lucictx"
)

// MinTokenLifetime is how long every token served has left at least.
// LUCI's server uses the same value; depot_tools' client refuses tokens
// with less than a minute left, and this leaves room for clock skew and
// slow children.
const MinTokenLifetime = 3 * time.Minute

// secretLen is the size of the shared secret, as LUCI makes it (its base64
// form is 64 characters without padding).
const secretLen = 48

// Tokens is the part of the token core the server uses; *broker.Broker
// implements it.
type Tokens interface {
	AccessToken(ctx context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error)
	IDToken(ctx context.Context, account, audience string, minLifetime time.Duration) (broker.Token, error)
}

// emailer is implemented by token cores that know their accounts' emails
// (*broker.Broker does); it fills in the emails Accounts leaves empty.
type emailer interface {
	Email(account string) (string, error)
}

// Account is an account the server serves.
type Account struct {
	ID string
	// Email is put into LUCI_CONTEXT for clients that show or check it.
	// When empty it is asked from the token core; "-" there means none.
	Email string
}

// Server is a local_auth server. Set the exported fields, then call Start;
// the fields must not change afterwards.
type Server struct {
	// Tokens mints the tokens. Required.
	Tokens Tokens
	// Accounts are the accounts served. Requests for others get 404.
	Accounts []Account
	// DefaultAccount is the account children use unless told otherwise. It
	// must be one of Accounts, or empty: then children do not pick up
	// credentials from this server unless they name an account.
	DefaultAccount string
	// Port is the TCP port on 127.0.0.1 to listen on; 0 picks a free one.
	Port int
	// Secret is the shared secret clients must send; when empty a random
	// one is made. A daemon sets it to keep a session's secret across its
	// own restarts. It is a credential: never log it.
	Secret []byte
	// Logger gets one debug line per request that reaches the token core
	// and an error line per panic. Defaults to slog.Default().
	Logger *slog.Logger

	mu       sync.Mutex
	started  bool
	closed   bool
	srv      *loopback.HTTPServer
	secret   []byte
	accounts map[string]bool
	// last is the encoded answer of the latest access token served:
	// clients ask for the same cached token over and over.
	last atomic.Pointer[answer]
	// recent is the latest request that passed the checks (see decode).
	recent atomic.Pointer[recentRequest]
	// debug is whether Logger takes debug lines, asked once at Start.
	debug bool
}

// Info is what clients need to reach a started server: the contents of the
// local_auth section of LUCI_CONTEXT.
type Info struct {
	Port int
	// Secret is the shared secret. It is a credential: never log it.
	Secret []byte
	// Accounts are sorted by ID; Email is "-" for an account without one.
	Accounts         []lucictx.LocalAuthAccount
	DefaultAccountID string
}

// LocalAuth returns the local_auth section describing the server.
func (i Info) LocalAuth() *lucictx.LocalAuth {
	return &lucictx.LocalAuth{
		RPCPort:          uint32(i.Port),
		Secret:           slices.Clone(i.Secret),
		Accounts:         slices.Clone(i.Accounts),
		DefaultAccountID: i.DefaultAccountID,
	}
}

// Start opens the listener and starts serving. Requests in progress are
// cancelled when ctx ends, but the server keeps its port until Close. A
// Server starts once.
func (s *Server) Start(ctx context.Context) (Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return Info{}, errors.New("localauth: server already closed")
	case s.started:
		return Info{}, errors.New("localauth: server already started")
	case s.Tokens == nil:
		return Info{}, errors.New("localauth: no token core (Tokens is nil)")
	}
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	s.debug = s.Logger.Enabled(ctx, slog.LevelDebug)

	accounts, err := s.describeAccounts()
	if err != nil {
		return Info{}, err
	}
	s.accounts = map[string]bool{}
	for _, a := range accounts {
		s.accounts[a.ID] = true
	}
	if len(s.Secret) > 0 {
		s.secret = slices.Clone(s.Secret)
	} else {
		s.secret = make([]byte, secretLen)
		rand.Read(s.secret) // never fails; crashes the process if the OS has no randomness
	}

	// Requests end with ctx: the loopback server derives every request's
	// context from it.
	srv, err := loopback.ServeHTTP(s.routes(), loopback.HTTPOptions{Port: s.Port, Context: ctx, Logger: s.Logger})
	if err != nil {
		return Info{}, fmt.Errorf("localauth: %w", err)
	}
	s.srv = srv
	s.started = true
	return Info{
		Port:             srv.Port(),
		Secret:           slices.Clone(s.secret),
		Accounts:         accounts,
		DefaultAccountID: s.DefaultAccount,
	}, nil
}

// describeAccounts validates Accounts and DefaultAccount and returns the
// accounts as LUCI_CONTEXT lists them.
func (s *Server) describeAccounts() ([]lucictx.LocalAuthAccount, error) {
	em, _ := s.Tokens.(emailer)
	out := make([]lucictx.LocalAuthAccount, 0, len(s.Accounts))
	seen := map[string]bool{}
	for _, a := range s.Accounts {
		if a.ID == "" {
			return nil, errors.New("localauth: an account has an empty id")
		}
		if seen[a.ID] {
			return nil, fmt.Errorf("localauth: account %q listed twice", a.ID)
		}
		seen[a.ID] = true
		email := a.Email
		if email == "" && em != nil {
			e, err := em.Email(a.ID)
			if err != nil {
				return nil, fmt.Errorf("localauth: email of account %q: %w", a.ID, err)
			}
			email = e
		}
		if email == "" {
			email = lucictx.NoEmail
		}
		out = append(out, lucictx.LocalAuthAccount{ID: a.ID, Email: email})
	}
	if s.DefaultAccount != "" && !seen[s.DefaultAccount] {
		return nil, fmt.Errorf("localauth: default account %q is not among the accounts served", s.DefaultAccount)
	}
	slices.SortFunc(out, func(a, b lucictx.LocalAuthAccount) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Close stops the listener and ends every open connection, including idle
// keep-alive ones, so no token flows after it returns. Safe to call more
// than once, and before Start.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	s.srv = nil
	return err
}
