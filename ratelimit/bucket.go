package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"

	"golang.org/x/time/rate"
)

// ErrNeverAvailable is returned by Wait when the token it asks for can never
// be granted: the burst is below one, or the rate is zero and the bucket's
// fixed supply of tokens is spent.
var ErrNeverAvailable = errors.New("ratelimit: no token will ever be available (burst < 1, or rate 0 with all tokens spent)")

// errDueAfterDeadline is returned by Wait when the context's deadline comes
// before the next token would; it wraps context.DeadlineExceeded because
// waiting would have ended with that error.
var errDueAfterDeadline = fmt.Errorf("ratelimit: the next token is due after the context's deadline: %w", context.DeadlineExceeded)

// bucket is one tier's token bucket: a rate.Limiter, and the normalized
// Limit it was made from, which Update compares and Limits reports. It adds
// to rate.Limiter the refusals rate.Limiter's Wait does not make at once
// (ErrNeverAvailable) and an infinite Tokens for an unlimited bucket.
type bucket struct {
	limit Limit
	lim   *rate.Limiter
}

func newBucket(l Limit) *bucket {
	l = l.normalized()
	r := rate.Limit(l.RatePerSecond)
	if math.IsInf(l.RatePerSecond, 1) {
		r = rate.Inf
	}
	return &bucket{limit: l, lim: rate.NewLimiter(r, l.Burst)}
}

func (b *bucket) unlimited() bool { return math.IsInf(b.limit.RatePerSecond, 1) }

// allow takes one token if one is available now, and reports whether it did.
func (b *bucket) allow() bool { return b.lim.Allow() }

// tokens returns the tokens available now: fractional while refilling,
// negative while waiters hold reservations, +Inf when unlimited.
func (b *bucket) tokens() float64 {
	if b.unlimited() {
		return math.Inf(1)
	}
	return b.lim.Tokens()
}

// wait takes one token, waiting for it if need be; see TierLimiter.Wait.
func (b *bucket) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case b.unlimited():
		return nil
	case b.limit.Burst < 1:
		return ErrNeverAvailable
	case b.limit.RatePerSecond == 0:
		// rate.Limiter would reserve a token due in InfDuration and wait
		// for ctx; no refill means the answer is known now.
		if b.lim.Allow() {
			return nil
		}
		return ErrNeverAvailable
	}
	err := b.lim.Wait(ctx)
	if err == nil || errors.Is(err, ctx.Err()) {
		return err
	}
	// With burst >= 1 and ctx not ended, rate.Limiter refuses only when
	// the token would come after ctx's deadline.
	return errDueAfterDeadline
}
