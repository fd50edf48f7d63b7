package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
)

// Limiter decides whether a task for a tier may be dispatched now.
type Limiter interface {
	// Allow takes a token for tier if one is available and reports whether
	// it did. It never blocks.
	Allow(tier string) bool
	// Wait takes a token for tier, waiting for one if need be. It returns
	// ctx.Err() when ctx ends first.
	Wait(ctx context.Context, tier string) error
}

var _ Limiter = (*TierLimiter)(nil)

// TierLimiter is a Limiter with one Bucket per tier. A tier with no limit is
// never limited. It is safe for concurrent use, and its zero value limits
// nothing until Update gives it limits.
//
// The limits can be replaced at run time with Update (the router does so on
// reload); Allow and Wait see either the old set or the new one, never a
// mixture, and take no lock.
type TierLimiter struct {
	clock Clock                     // nil in the zero value: the system clock
	mu    sync.Mutex                // serializes Update
	tiers atomic.Pointer[tierTable] // immutable once published
}

type tierTable struct {
	buckets map[string]*Bucket
}

// NewTierLimiter returns a TierLimiter with the given limits per tier.
func NewTierLimiter(limits map[string]Limit, opts ...Option) *TierLimiter {
	l := &TierLimiter{clock: buildOptions(opts).clock}
	l.Update(limits)
	return l
}

// Allow takes a token from tier's bucket; a tier without a limit is always
// allowed.
func (l *TierLimiter) Allow(tier string) bool {
	b := l.bucket(tier)
	return b == nil || b.Allow()
}

// Wait takes a token from tier's bucket as Bucket.Wait does; for a tier
// without a limit it returns at once (nil, or ctx.Err() if ctx has ended).
// A Wait in progress during Update finishes against the bucket it reserved
// from.
func (l *TierLimiter) Wait(ctx context.Context, tier string) error {
	b := l.bucket(tier)
	if b == nil {
		return ctx.Err()
	}
	return b.Wait(ctx)
}

// Tokens returns the tokens available for tier now (see Bucket.Tokens) and
// whether the tier is limited at all.
func (l *TierLimiter) Tokens(tier string) (tokens float64, limited bool) {
	b := l.bucket(tier)
	if b == nil {
		return 0, false
	}
	return b.Tokens(), true
}

// Limits returns a copy of the current limits, normalized as Limit
// describes.
func (l *TierLimiter) Limits() map[string]Limit {
	t := l.tiers.Load()
	if t == nil {
		return map[string]Limit{}
	}
	out := make(map[string]Limit, len(t.buckets))
	for tier, b := range t.buckets {
		out[tier] = b.Limit()
	}
	return out
}

// Update replaces the limits atomically. The map is copied. For each tier:
//
//   - limit unchanged (after normalization): the bucket is kept, with its
//     current tokens and reservations, so a reload does not hand out a fresh
//     burst;
//   - limit changed or new: a new, full bucket replaces it;
//   - tier absent from limits: no longer limited.
func (l *TierLimiter) Update(limits map[string]Limit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clock == nil {
		l.clock = SystemClock()
	}
	var old map[string]*Bucket
	if t := l.tiers.Load(); t != nil {
		old = t.buckets
	}
	buckets := make(map[string]*Bucket, len(limits))
	for tier, lim := range limits {
		lim = lim.normalized()
		if b, ok := old[tier]; ok && b.Limit() == lim {
			buckets[tier] = b
			continue
		}
		buckets[tier] = newBucket(lim, l.clock)
	}
	l.tiers.Store(&tierTable{buckets: buckets})
}

func (l *TierLimiter) bucket(tier string) *Bucket {
	t := l.tiers.Load()
	if t == nil {
		return nil
	}
	return t.buckets[tier]
}
