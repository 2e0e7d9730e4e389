package broker

import (
	"context"
	"log/slog"
	"time"
	"unsafe"
)

// entry is one cached token. Entries are immutable: a refresh replaces the
// pointer in the cache, so readers never lock.
type entry struct {
	tok Token
	// natural is how long the source's tokens live when fresh (expiry minus
	// the time the mint started). It tells whether the source can meet a
	// caller's minimum lifetime at all.
	natural time.Duration
}

type mintFunc func(ctx context.Context) (Token, error)

// refreshThreshold is the remaining lifetime below which a hot token is
// re-minted in the background: a margin above the caller's minimum, but at
// least a quarter of the token's life, and never more than half of it (for
// upstreams whose tokens are shorter than the minimum).
func refreshThreshold(e *entry, minLifetime time.Duration) time.Duration {
	t := max(minLifetime+refreshMargin, e.natural/4)
	if t >= e.natural {
		t = e.natural / 2
	}
	return t
}

// tooShort reports whether the source's tokens cannot meet minLifetime even
// when fresh, so waiting for a mint would not help the caller.
func tooShort(e *entry, minLifetime time.Duration) bool {
	return e.natural < minLifetime+refreshMargin
}

// fastHit serves a plain hit, a token with minLifetime left that needs
// no refresh yet, without building the key string, the mint closure or
// the log attributes get needs for everything else.
func (b *Broker) fastHit(key []byte, minLifetime time.Duration) (Token, bool) {
	// The key is viewed as a string without a copy: Get only uses it for
	// a map lookup and keeps nothing, and key is not changed meanwhile. A
	// copy would cost a heap allocation per hit (keys are longer than the
	// compiler's 32-byte stack buffer for such conversions).
	e, ok := b.cache.Get(unsafe.String(unsafe.SliceData(key), len(key)))
	if !ok {
		return Token{}, false
	}
	left := e.tok.Lifetime(b.now())
	if left < minLifetime || left <= 0 || left < refreshThreshold(e, minLifetime) {
		return Token{}, false
	}
	b.stats.hits.Add(1)
	return e.tok, true
}

// get serves key from the cache or mints it; see the package doc for the
// rules.
func (b *Broker) get(ctx context.Context, key string, minLifetime time.Duration, mint mintFunc, attrs ...any) (Token, error) {
	now := b.now()
	seen, ok := b.cache.Get(key)
	if ok {
		left := seen.tok.Lifetime(now)
		switch {
		case left >= minLifetime && left > 0:
			b.stats.hits.Add(1)
			if left < refreshThreshold(seen, minLifetime) {
				b.refreshAsync(key, mint, attrs)
			}
			return seen.tok, nil
		case tooShort(seen, minLifetime) && left > seen.natural/4:
			b.stats.staleHits.Add(1)
			b.warnShort(key, seen, minLifetime, attrs)
			if left < refreshThreshold(seen, minLifetime) {
				b.refreshAsync(key, mint, attrs)
			}
			return seen.tok, nil
		}
	} else {
		seen = nil
	}
	b.stats.misses.Add(1)
	e, err := b.mintShared(ctx, key, seen, minLifetime, mint, attrs)
	if err != nil {
		return Token{}, err
	}
	left := e.tok.Lifetime(b.now())
	if left <= 0 {
		return Token{}, Transientf("the credential source returned an already expired token")
	}
	if left < minLifetime {
		b.warnShort(key, e, minLifetime, attrs)
	}
	return e.tok, nil
}

// mintShared joins or starts the one upstream call for key and waits for
// it or for ctx, whichever ends first. seen is the entry the caller found
// too short (nil on a miss): if another caller has replaced it by the time
// the call starts, the newer entry is used without minting again.
func (b *Broker) mintShared(ctx context.Context, key string, seen *entry, minLifetime time.Duration, mint mintFunc, attrs []any) (*entry, error) {
	ch := b.flight.DoChan(key, func() (any, error) {
		if cur, ok := b.cache.Peek(key); ok && cur != seen && cur.tok.Lifetime(b.now()) >= min(minLifetime, cur.natural/2) {
			return cur, nil
		}
		return b.mint(key, mint, attrs)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*entry), nil
	case <-ctx.Done():
		return nil, NewTransient(ctx.Err())
	}
}

// mint calls the source on the broker's own deadline and caches the result.
func (b *Broker) mint(key string, mint mintFunc, attrs []any) (*entry, error) {
	ctx, cancel := context.WithTimeout(b.bgCtx, b.opts.MintTimeout)
	defer cancel()
	start := b.now()
	tok, err := mint(ctx)
	latency := b.now().Sub(start)
	if err != nil {
		b.stats.mintErrors.Add(1)
		b.log.Debug("mint failed", append(attrs, slog.Duration("latency", latency), slog.String("class", ClassOf(err).String()), slog.Any("err", err))...)
		return nil, err
	}
	if tok.Expiry.IsZero() {
		tok.Expiry = start.Add(unknownExpiry)
	}
	e := &entry{tok: tok, natural: tok.Expiry.Sub(start)}
	b.stats.mints.Add(1)
	b.cache.Add(key, e)
	b.log.Debug("minted", append(attrs, slog.Duration("latency", latency), slog.Time("expiry", tok.Expiry))...)
	return e, nil
}

// refreshAsync re-mints key in the background unless a refresh for it is
// already running. Errors are only logged: callers still hold a usable
// token, and the next request retries.
func (b *Broker) refreshAsync(key string, mint mintFunc, attrs []any) {
	if _, busy := b.refreshing.LoadOrStore(key, struct{}{}); busy {
		return
	}
	if b.bgCtx.Err() != nil {
		b.refreshing.Delete(key)
		return
	}
	b.stats.refreshes.Add(1)
	b.bg.Add(1)
	go func() {
		defer b.bg.Done()
		defer b.refreshing.Delete(key)
		_, err, _ := b.flight.Do(key, func() (any, error) { return b.mint(key, mint, attrs) })
		if err != nil {
			b.log.Warn("background refresh failed", append(attrs, slog.Any("err", err))...)
		}
	}()
}

// warnShort logs, once per key, that the source's tokens are shorter than
// what a client asked for.
func (b *Broker) warnShort(key string, e *entry, minLifetime time.Duration, attrs []any) {
	if done, _ := b.warned.ContainsOrAdd(key, struct{}{}); done {
		return
	}
	b.log.Warn("upstream tokens live shorter than clients need; serving the freshest and refreshing ahead",
		append(attrs, slog.Duration("token_life", e.natural.Round(time.Second)), slog.Duration("wanted", minLifetime))...)
}
