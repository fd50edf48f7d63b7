package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Limiter decides whether a task for a tier may be dispatched now.
type Limiter interface {
	// Allow takes a token for tier if one is available and reports whether
	// it did. It never waits for a token.
	Allow(tier string) bool
	// Wait takes a token for tier, waiting for one if need be. It returns
	// ctx.Err() when ctx ends first, and an error wrapping
	// context.DeadlineExceeded at once when ctx's deadline comes before
	// the token would.
	Wait(ctx context.Context, tier string) error
}

var _ Limiter = (*TierLimiter)(nil)

// TierLimiter is a Limiter with one token bucket (a rate.Limiter) per tier.
// A tier with no limit is never limited. It is safe for concurrent use, and
// its zero value limits nothing until Update gives it limits.
//
// The limits can be replaced at run time with Update (the router does so on
// reload); Allow, Wait and Tokens see either the old set or the new one,
// never a mixture, and take no lock to find a tier's bucket.
type TierLimiter struct {
	mu    sync.Mutex                // serializes Update
	tiers atomic.Pointer[tierTable] // immutable once published
}

type tierTable struct {
	buckets map[string]*bucket
}

// NewTierLimiter returns a TierLimiter with the given limits per tier; the
// map is copied.
func NewTierLimiter(limits map[string]Limit) *TierLimiter {
	l := &TierLimiter{}
	l.Update(limits)
	return l
}

// Allow takes a token from tier's bucket if one is available now, and
// reports whether it did; a tier without a limit is always allowed. It
// never waits for a token and never allocates.
func (l *TierLimiter) Allow(tier string) bool {
	b := l.bucket(tier)
	return b == nil || b.allow()
}

// Wait takes a token from tier's bucket, waiting for the refill if none is
// available now. For a tier without a limit it returns at once (nil, or
// ctx.Err() if ctx has ended).
//
// Errors:
//   - ctx.Err() itself if ctx has ended, or ends while Wait waits; no
//     token is granted;
//   - an error wrapping context.DeadlineExceeded, at once, when ctx has a
//     deadline before which the token cannot come; no token is taken;
//   - an error wrapping ErrNeverAvailable, at once, when the bucket can
//     never grant the token (burst below one, or rate zero with every
//     token spent).
//
// The token is reserved before Wait blocks, so concurrent waiters are
// served one per refill interval in the order they reserved. A Wait
// cancelled while it waits hands its reservation back, unless a later Wait
// has already queued behind it (rate.Reservation.Cancel). A Wait in
// progress during Update finishes against the bucket it reserved from.
func (l *TierLimiter) Wait(ctx context.Context, tier string) error {
	b := l.bucket(tier)
	if b == nil {
		return ctx.Err()
	}
	err := b.wait(ctx)
	if err == nil || err == ctx.Err() {
		return err
	}
	return fmt.Errorf("tier %q: %w", tier, err)
}

// Tokens returns the tokens available for tier now, and whether the tier is
// limited at all. The count is fractional while the bucket refills,
// negative while Wait callers hold reservations for tokens not yet
// refilled, and +Inf for an unlimited rate.
func (l *TierLimiter) Tokens(tier string) (tokens float64, limited bool) {
	b := l.bucket(tier)
	if b == nil {
		return 0, false
	}
	return b.tokens(), true
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
		out[tier] = b.limit
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
	var old map[string]*bucket
	if t := l.tiers.Load(); t != nil {
		old = t.buckets
	}
	buckets := make(map[string]*bucket, len(limits))
	for tier, lim := range limits {
		if b, ok := old[tier]; ok && b.limit == lim.normalized() {
			buckets[tier] = b
			continue
		}
		buckets[tier] = newBucket(lim)
	}
	l.tiers.Store(&tierTable{buckets: buckets})
}

func (l *TierLimiter) bucket(tier string) *bucket {
	t := l.tiers.Load()
	if t == nil {
		return nil
	}
	return t.buckets[tier]
}
