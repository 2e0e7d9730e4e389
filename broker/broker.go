package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// Defaults for Options fields left zero.
const (
	DefaultCacheSize   = 4096
	DefaultMintTimeout = time.Minute
	// refreshMargin is how much earlier than a caller's minimum lifetime a
	// hot token is refreshed in the background.
	refreshMargin = time.Minute
	// unknownExpiry stands in for a token whose source gave no expiry.
	unknownExpiry = time.Hour
)

// Options configure a Broker. The zero value is usable.
type Options struct {
	// CacheSize bounds the number of cached tokens (all accounts, access
	// and ID tokens together). Least recently used entries go first.
	CacheSize int
	// MintTimeout bounds one upstream mint. A mint runs on its own deadline,
	// not the caller's, so one impatient caller does not fail the others
	// waiting on the same key.
	MintTimeout time.Duration
	// Now is the clock; tests inject one. Defaults to time.Now.
	Now func() time.Time
	// Logger receives one debug line per mint and warnings for degraded
	// states. Defaults to slog.Default().
	Logger *slog.Logger
}

// AccountInfo describes an account the broker serves.
type AccountInfo struct {
	ID    string
	Email string
}

type account struct {
	id  string
	src Source
}

// Broker is the token core. It is safe for concurrent use; one Broker per
// process is shared by every session and front-end so they share the cache.
type Broker struct {
	opts  Options
	now   func() time.Time
	log   *slog.Logger
	cache *lru.Cache[string, *entry]

	flight     singleflight.Group
	refreshing sync.Map // cache key -> struct{}: background refresh in progress
	// warned holds the keys whose short-lifetime warning was given. It is
	// bounded like the cache: an unbounded set would grow with every
	// distinct scope set a client asks for.
	warned *lru.Cache[string, struct{}]

	mu        sync.RWMutex
	accounts  map[string]*account
	defaultID string

	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup

	stats counters
}

// New returns a Broker with no accounts.
func New(opts Options) *Broker {
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.MintTimeout <= 0 {
		opts.MintTimeout = DefaultMintTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cache, err := lru.New[string, *entry](opts.CacheSize)
	if err != nil {
		panic(err) // only for a non-positive size, excluded above
	}
	warned, err := lru.New[string, struct{}](opts.CacheSize)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Broker{
		opts:     opts,
		now:      opts.Now,
		log:      opts.Logger,
		cache:    cache,
		warned:   warned,
		accounts: map[string]*account{},
		bgCtx:    ctx,
		bgCancel: cancel,
	}
}

// AddAccount makes src available as account id. The first account added
// becomes the default until SetDefault says otherwise.
func (b *Broker) AddAccount(id string, src Source) error {
	if id == "" {
		return errors.New("broker: empty account id")
	}
	if src == nil {
		return fmt.Errorf("broker: account %q has no source", id)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, dup := b.accounts[id]; dup {
		return fmt.Errorf("broker: account %q added twice", id)
	}
	b.accounts[id] = &account{id: id, src: src}
	if b.defaultID == "" {
		b.defaultID = id
	}
	return nil
}

// RemoveAccount stops serving an account and drops its cached tokens.
// Removing the default account leaves the broker without a default.
func (b *Broker) RemoveAccount(id string) {
	b.mu.Lock()
	delete(b.accounts, id)
	if b.defaultID == id {
		b.defaultID = ""
	}
	b.mu.Unlock()
	for _, kind := range []string{"a", "i"} {
		prefix := kind + "\x00" + id + "\x00"
		for _, key := range b.cache.Keys() {
			if strings.HasPrefix(key, prefix) {
				b.cache.Remove(key)
			}
		}
	}
}

// SetDefault chooses the account used when a front-end has no account
// name of its own (e.g. the metadata server's "default").
func (b *Broker) SetDefault(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.accounts[id]; !ok {
		return fmt.Errorf("broker: default account %q is not served", id)
	}
	b.defaultID = id
	return nil
}

// Default returns the default account id, or "" when there is none.
func (b *Broker) Default() string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.defaultID
}

// Accounts lists the served accounts sorted by id.
func (b *Broker) Accounts() []AccountInfo {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]AccountInfo, 0, len(b.accounts))
	for _, a := range b.accounts {
		out = append(out, AccountInfo{ID: a.id, Email: a.src.Email()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Email returns the email of an account.
func (b *Broker) Email(accountID string) (string, error) {
	a, err := b.account(accountID)
	if err != nil {
		return "", err
	}
	return a.src.Email(), nil
}

func (b *Broker) account(id string) (*account, error) {
	b.mu.RLock()
	a := b.accounts[id]
	b.mu.RUnlock()
	if a == nil {
		return nil, NewFatal(fmt.Errorf("%w %q", ErrUnknownAccount, id))
	}
	return a, nil
}

// NormalizeScopes returns scopes sorted and de-duplicated, the form used
// for cache keys and passed to sources. The input is not modified.
func NormalizeScopes(scopes []string) []string {
	out := slices.Clone(scopes)
	slices.Sort(out)
	return slices.Compact(out)
}

// AccessToken returns an access token of the account for scopes with at
// least minLifetime left (see the package doc for short-lived upstreams).
func (b *Broker) AccessToken(ctx context.Context, accountID string, scopes []string, minLifetime time.Duration) (Token, error) {
	a, err := b.account(accountID)
	if err != nil {
		return Token{}, err
	}
	if len(scopes) == 0 {
		return Token{}, Fatalf("no scopes requested")
	}
	if !normalized(scopes) {
		scopes = NormalizeScopes(scopes)
	}
	// The key is built on the stack and looked up without a copy: a hit,
	// by far the most common call, allocates nothing.
	var buf [keyBuf]byte
	kb := append(buf[:0], "a\x00"...)
	kb = append(kb, accountID...)
	for _, s := range scopes {
		kb = append(kb, 0)
		kb = append(kb, s...)
	}
	if tok, ok := b.fastHit(kb, minLifetime); ok {
		return tok, nil
	}
	key := string(kb)
	// The source may keep the scopes and the caller may reuse its slice.
	scopes = slices.Clone(scopes)
	mint := func(ctx context.Context) (Token, error) {
		return a.src.AccessToken(ctx, scopes, minLifetime)
	}
	return b.get(ctx, key, minLifetime, mint, slog.String("account", accountID), slog.Any("scopes", scopes))
}

// keyBuf is the stack space for a cache key; longer keys spill to the
// heap and work the same.
const keyBuf = 512

// normalized reports whether scopes are already sorted without
// duplicates, as most callers pass them, so NormalizeScopes would only
// copy them.
func normalized(scopes []string) bool {
	for i := 1; i < len(scopes); i++ {
		if scopes[i-1] >= scopes[i] {
			return false
		}
	}
	return true
}

// IDToken returns an ID token of the account for audience with at least
// minLifetime left.
func (b *Broker) IDToken(ctx context.Context, accountID, audience string, minLifetime time.Duration) (Token, error) {
	a, err := b.account(accountID)
	if err != nil {
		return Token{}, err
	}
	if audience == "" {
		return Token{}, Fatalf("no audience requested")
	}
	var buf [keyBuf]byte
	kb := append(buf[:0], "i\x00"...)
	kb = append(kb, accountID...)
	kb = append(kb, 0)
	kb = append(kb, audience...)
	if tok, ok := b.fastHit(kb, minLifetime); ok {
		return tok, nil
	}
	key := string(kb)
	mint := func(ctx context.Context) (Token, error) {
		return a.src.IDToken(ctx, audience, minLifetime)
	}
	return b.get(ctx, key, minLifetime, mint, slog.String("account", accountID), slog.String("audience", audience))
}

// Close stops background refreshes and waits for them to end. Calls in
// progress finish; the Broker must not be used afterwards.
func (b *Broker) Close() {
	b.bgCancel()
	b.bg.Wait()
}

// counters are the broker's running totals, read through Stats.
type counters struct {
	hits, staleHits, misses, mints, mintErrors, refreshes atomic.Uint64
}

// Stats is a snapshot of the broker's counters.
type Stats struct {
	Hits       uint64 // served from the cache with the requested lifetime
	StaleHits  uint64 // served the freshest token of a short-lived upstream
	Misses     uint64 // had to wait for a mint
	Mints      uint64 // upstream calls that returned a token
	MintErrors uint64 // upstream calls that failed
	Refreshes  uint64 // background refreshes started
	Entries    int    // tokens in the cache now
}

// Stats returns the current counters.
func (b *Broker) Stats() Stats {
	return Stats{
		Hits:       b.stats.hits.Load(),
		StaleHits:  b.stats.staleHits.Load(),
		Misses:     b.stats.misses.Load(),
		Mints:      b.stats.mints.Load(),
		MintErrors: b.stats.mintErrors.Load(),
		Refreshes:  b.stats.refreshes.Load(),
		Entries:    b.cache.Len(),
	}
}
