package ratelimit

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/internal/observe"
)

// Admitter is what the router asks of a rate limiter: Allow for a tier
// whose tasks may not wait, Reserve for one whose tasks may wait up to a
// maximum, and Update when its rules are (re)loaded. TierLimiter (one
// process) and SharedLimiter (one bucket per tier for every replica) are
// Admitters.
type Admitter interface {
	Allow(tier string) bool
	Reserve(tier string, maxWait time.Duration) (Reservation, bool)
	Update(limits map[string]Limit)
}

var (
	_ Admitter = (*TierLimiter)(nil)
	_ Admitter = (*SharedLimiter)(nil)
)

// BucketState is a shared token bucket's state as a Store keeps it: the
// tokens it held at At. Tokens is negative while reservations wait for
// tokens not refilled yet.
type BucketState struct {
	Tokens float64
	At     time.Time
}

// Store keeps the state of shared token buckets, one per key (a tier), for
// every SharedLimiter that uses it. Implementations must be safe for
// concurrent use: MemoryStore, in this process, and natslimit.Store, a
// JetStream key-value bucket.
type Store interface {
	// Get returns the state under key and its revision; a key never
	// written has revision 0 and no error.
	Get(ctx context.Context, key string) (BucketState, uint64, error)
	// CompareAndSwap stores state under key if the key's revision is
	// still rev (rev 0: if the key is absent), and reports whether it
	// did. Losing to another writer is (false, nil); an error means the
	// store could not answer.
	CompareAndSwap(ctx context.Context, key string, state BucketState, rev uint64) (bool, error)
}

// Defaults of SharedConfig.
const (
	DefaultStoreTimeout = 250 * time.Millisecond
	DefaultRetryAfter   = time.Second
	DefaultMaxAttempts  = 16
)

// SharedConfig configures a SharedLimiter.
type SharedConfig struct {
	// Store keeps the buckets; required. Every replica that is to share a
	// limit uses the same store (the same JetStream bucket, or the same
	// MemoryStore in one process).
	Store Store
	// Replicas is how many replicas share the limit; it sizes the
	// fallback (see SharedLimiter). Zero means 1: a replica that loses
	// the store then admits the whole limit by itself.
	Replicas int
	// StoreTimeout bounds the store calls of one admission (a get and a
	// compare-and-set, retried). Zero means DefaultStoreTimeout.
	StoreTimeout time.Duration
	// RetryAfter is how long a replica decides locally after the store
	// failed before it tries the store again. Zero means
	// DefaultRetryAfter.
	RetryAfter time.Duration
	// MaxAttempts bounds the get and compare-and-set rounds of one
	// admission when other replicas keep winning the race; past it the
	// task is refused, so the limit is never exceeded. Zero means
	// DefaultMaxAttempts.
	MaxAttempts int
	// Now reads the clock, for the stored buckets and the fallback ones;
	// nil means time.Now. Tests drive a fake clock through it. Replicas' clocks should agree to within a small part of
	// a token's interval: a clock behind the stored time refills nothing
	// until it catches up.
	Now func() time.Time
}

// SharedStats counts a SharedLimiter's decisions; each counter only
// increases.
type SharedStats struct {
	// StoreDecisions counts the admissions decided on the store, granted
	// or refused.
	StoreDecisions uint64
	// Conflicts counts the compare-and-sets lost to another replica (each
	// retried).
	Conflicts uint64
	// Contended counts the tasks refused because MaxAttempts rounds in a
	// row were lost to other replicas.
	Contended uint64
	// LocalDecisions counts the admissions decided by the fallback bucket
	// while the store was unreachable.
	LocalDecisions uint64
	// StoreErrors counts the admissions whose store calls failed; each
	// was then decided by the fallback bucket.
	StoreErrors uint64
}

// SharedLimiter is an Admitter whose buckets live in a Store, so that
// every router replica using the same store draws from one bucket per
// tier: together they admit the configured rate, not one rate each.
//
// The algorithm is TierLimiter's token bucket, with its state (tokens,
// time of the last refill) in the store: each admission reads the tier's
// state, refills it from the time elapsed, takes one token and writes it
// back with compare-and-set; when another replica wrote first it reads
// again, up to SharedConfig.MaxAttempts rounds, then refuses. A refusal
// for want of tokens writes nothing. A bucket the store has never seen
// starts full. On a JetStream key-value store an admission costs one get
// and one compare-and-set, two round trips to the server.
//
// Differences from TierLimiter:
//
//   - Update keeps the stored tokens whatever the limit becomes (capped
//     at the new burst): replicas reloading at slightly different times
//     must not hand out a fresh burst each.
//   - A Reservation's Cancel hands nothing back: the token it reserved
//     in the store stays spent.
//
// Fallback: when a store call fails or times out (SharedConfig.
// StoreTimeout), the replica decides locally, with a bucket of its own per
// tier at 1/Replicas of the limit (rate/N, burst rounded up to a whole
// token), for SharedConfig.RetryAfter, then tries the store again. The N
// replicas together then admit about the configured rate, as long as
// SharedConfig.Replicas is right. The first failure logs
// ratelimit.store_unreachable (warn; error, replicas) and the first success
// after it ratelimit.store_recovered (info), once per outage; both are
// counted in Stats.
type SharedLimiter struct {
	cfg    SharedConfig
	log    *observe.Emitter
	limits atomic.Pointer[map[string]Limit]
	local  *TierLimiter // the fallback

	downUntil atomic.Int64 // UnixNano before which the store is not tried
	down      atomic.Bool  // between store_unreachable and store_recovered

	stats struct {
		store, conflicts, contended, local, errors atomic.Uint64
	}
}

// NewShared returns a SharedLimiter on cfg.Store, limiting nothing until
// Update gives it limits. A nil Store or a negative field is an error
// wrapping heddle.ErrConfig that names it. opts set the logger
// (heddle.WithLogger) and observers.
func NewShared(cfg SharedConfig, opts ...heddle.Option) (*SharedLimiter, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: ratelimit: SharedConfig.Store is nil", heddle.ErrConfig)
	}
	for _, f := range []struct {
		name  string
		value int64
	}{{"Replicas", int64(cfg.Replicas)}, {"StoreTimeout", int64(cfg.StoreTimeout)}, {"RetryAfter", int64(cfg.RetryAfter)}, {"MaxAttempts", int64(cfg.MaxAttempts)}} {
		if f.value < 0 {
			return nil, fmt.Errorf("%w: ratelimit: SharedConfig.%s must not be negative, got %d", heddle.ErrConfig, f.name, f.value)
		}
	}
	cfg.Replicas = max(cfg.Replicas, 1)
	cfg.StoreTimeout = cmp.Or(cfg.StoreTimeout, DefaultStoreTimeout)
	cfg.RetryAfter = cmp.Or(cfg.RetryAfter, DefaultRetryAfter)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &SharedLimiter{cfg: cfg, log: observe.Actor("ratelimit", opts...), local: NewTierLimiter(nil)}
	l.Update(nil)
	return l, nil
}

// Update replaces the limits; the map is copied. A tier absent from limits
// is no longer limited. The stored buckets keep their tokens (see
// SharedLimiter); the fallback buckets are rebuilt as TierLimiter.Update
// does, at 1/Replicas of each limit.
func (l *SharedLimiter) Update(limits map[string]Limit) {
	own := make(map[string]Limit, len(limits))
	local := make(map[string]Limit, len(limits))
	for tier, lim := range limits {
		lim = lim.normalized()
		own[tier] = lim
		local[tier] = fallbackLimit(lim, l.cfg.Replicas)
	}
	l.limits.Store(&own)
	l.local.Update(local)
}

// fallbackLimit is one replica's share of lim among n.
func fallbackLimit(lim Limit, n int) Limit {
	if n <= 1 || math.IsInf(lim.RatePerSecond, 1) {
		return lim
	}
	return Limit{RatePerSecond: lim.RatePerSecond / float64(n), Burst: (lim.Burst + n - 1) / n}
}

// Allow takes a token from tier's shared bucket if one is available now,
// and reports whether it did; a tier without a limit is always allowed.
func (l *SharedLimiter) Allow(tier string) bool {
	_, ok := l.admit(tier, 0)
	return ok
}

// Reserve takes a token from tier's shared bucket for the earliest time it
// can be had, provided that is no more than maxWait away, as
// TierLimiter.Reserve does; a refusal takes nothing. The Reservation's
// Cancel hands nothing back to the store. While the store is unreachable
// the fallback bucket reserves, and its Reservation can be cancelled.
func (l *SharedLimiter) Reserve(tier string, maxWait time.Duration) (Reservation, bool) {
	return l.admit(tier, maxWait)
}

// Stats returns the limiter's counters.
func (l *SharedLimiter) Stats() SharedStats {
	s := &l.stats
	return SharedStats{StoreDecisions: s.store.Load(), Conflicts: s.conflicts.Load(), Contended: s.contended.Load(),
		LocalDecisions: s.local.Load(), StoreErrors: s.errors.Load()}
}

func (l *SharedLimiter) admit(tier string, maxWait time.Duration) (Reservation, bool) {
	now := l.cfg.Now()
	lim, limited := (*l.limits.Load())[tier]
	switch {
	case !limited || math.IsInf(lim.RatePerSecond, 1):
		return Reservation{due: now}, true
	case lim.Burst < 1:
		return Reservation{due: now}, false
	}
	if now.UnixNano() < l.downUntil.Load() {
		l.stats.local.Add(1)
		return l.localAdmit(tier, now, maxWait)
	}
	due, ok, err := l.take(tier, lim, now, maxWait)
	if err != nil {
		l.stats.errors.Add(1)
		l.stats.local.Add(1)
		l.downUntil.Store(now.Add(l.cfg.RetryAfter).UnixNano())
		if l.down.CompareAndSwap(false, true) {
			l.log.Warn("ratelimit.store_unreachable", "error", err.Error(), "tier", tier, "replicas", l.cfg.Replicas,
				"retry_after", l.cfg.RetryAfter)
		}
		return l.localAdmit(tier, now, maxWait)
	}
	l.stats.store.Add(1)
	if l.down.CompareAndSwap(true, false) {
		l.log.Info("ratelimit.store_recovered", "tier", tier)
	}
	return Reservation{due: due}, ok
}

func (l *SharedLimiter) localAdmit(tier string, now time.Time, maxWait time.Duration) (Reservation, bool) {
	b := l.local.bucket(tier)
	switch {
	case b == nil || b.unlimited():
		return Reservation{due: now}, true
	case maxWait <= 0:
		return Reservation{due: now}, b.lim.AllowN(now, 1)
	}
	return b.reserve(now, maxWait)
}

// take runs the compare-and-set rounds of one admission: it returns when
// the token is due and whether it was granted, or the store's error.
func (l *SharedLimiter) take(tier string, lim Limit, now time.Time, maxWait time.Duration) (time.Time, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.StoreTimeout)
	defer cancel()
	for range l.cfg.MaxAttempts {
		st, rev, err := l.cfg.Store.Get(ctx, tier)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("reading tier %q: %w", tier, err)
		}
		next, wait, ok := refill(st, rev, lim, now, maxWait)
		if !ok {
			return time.Time{}, false, nil
		}
		swapped, err := l.cfg.Store.CompareAndSwap(ctx, tier, next, rev)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("writing tier %q: %w", tier, err)
		}
		if swapped {
			return next.At.Add(wait), true, nil
		}
		l.stats.conflicts.Add(1)
	}
	l.stats.contended.Add(1)
	return time.Time{}, false, nil
}

// refill computes the state after taking one token from st (revision rev,
// 0 for a bucket never written, which starts full) at now, and how long
// after the new state's time the token is due; ok is false when the token
// is due later than maxWait (or never).
func refill(st BucketState, rev uint64, lim Limit, now time.Time, maxWait time.Duration) (next BucketState, wait time.Duration, ok bool) {
	burst := float64(lim.Burst)
	tokens, at := burst, now
	if rev != 0 {
		tokens, at = st.Tokens, st.At
		if now.After(at) {
			// Tokens only refill up to the burst; reservations below zero
			// are paid back first.
			tokens = math.Min(burst, tokens+lim.RatePerSecond*now.Sub(at).Seconds())
			at = now
		}
		tokens = math.Min(burst, tokens)
	}
	if short := 1 - tokens; short > 0 {
		if maxWait <= 0 || lim.RatePerSecond == 0 {
			return st, 0, false
		}
		if wait = secondsToDuration(short / lim.RatePerSecond); wait > maxWait {
			return st, 0, false
		}
	}
	return BucketState{Tokens: tokens - 1, At: at}, wait, true
}
