package ratelimit

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"time"
)

// ErrNeverAvailable is returned by Wait when the token it asks for can never
// be granted: the burst is below one, or the rate is zero and the bucket's
// fixed supply of tokens is spent.
var ErrNeverAvailable = errors.New("ratelimit: no token will ever be available (burst < 1, or rate 0 with all tokens spent)")

// maxHorizon bounds burst × refill interval, in nanoseconds (about 146
// years), so that the bucket's arithmetic cannot overflow an int64.
const maxHorizon = int64(1) << 62

// Limit describes one token bucket.
type Limit struct {
	// RatePerSecond is the refill rate. Zero (or a negative or NaN value)
	// means no refill: the bucket grants Burst tokens in its lifetime.
	// math.Inf(1) means unlimited. Rates above one token per nanosecond are
	// treated as one token per nanosecond.
	RatePerSecond float64
	// Burst is the capacity, and the number of tokens a new bucket holds.
	// Below one, the bucket grants nothing (unless the rate is infinite).
	Burst int
}

// normalized folds the out-of-range values into the ones they mean, so that
// equal behaviour means equal Limit values.
func (l Limit) normalized() Limit {
	if math.IsNaN(l.RatePerSecond) || l.RatePerSecond < 0 {
		l.RatePerSecond = 0
	}
	if l.Burst < 0 {
		l.Burst = 0
	}
	return l
}

// FromMaxConcurrent returns the limit the Python Heddle router builds from a
// tier's max_concurrent: capacity maxConcurrent, starting full, refilled at
// maxConcurrent tokens per 60 seconds (one every 60/maxConcurrent s). A
// maxConcurrent of zero or less gives a limit that grants nothing.
func FromMaxConcurrent(maxConcurrent int) Limit {
	if maxConcurrent <= 0 {
		return Limit{}
	}
	return Limit{RatePerSecond: float64(maxConcurrent) / 60, Burst: maxConcurrent}
}

// Option configures a Bucket or a TierLimiter.
type Option func(*options)

type options struct {
	clock Clock
}

// WithClock sets the clock; the default is SystemClock().
func WithClock(c Clock) Option {
	return func(o *options) { o.clock = c }
}

func buildOptions(opts []Option) options {
	o := options{clock: SystemClock()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.clock == nil {
		o.clock = SystemClock()
	}
	return o
}

type bucketMode uint8

const (
	modeFixed     bucketMode = iota // rate 0: state counts tokens taken
	modeRefill                      // state is the theoretical arrival time
	modeUnlimited                   // rate +Inf: every request granted
)

// Bucket is a token bucket, safe for concurrent use. Make one with
// NewBucket; the zero value grants nothing.
//
// In refill mode the bucket is kept as a single "theoretical arrival time"
// (the generic cell rate algorithm): the instant at which the bucket would
// be full again. Taking n tokens moves it n refill intervals later, and is
// allowed while it stays within burst intervals of now. That makes Allow one
// atomic compare-and-swap, and lets Wait reserve a future token by moving
// the same value.
type Bucket struct {
	limit    Limit
	mode     bucketMode
	burst    int64 // tokens the bucket can hold (after the horizon cap)
	interval int64 // nanoseconds per token
	tau      int64 // burst * interval
	clock    Clock
	system   bool         // clock is the system clock: read it with time.Since
	epoch    time.Time    // clock reading at creation; times are ns since it
	state    atomic.Int64 // see bucketMode
}

// NewBucket returns a full bucket holding burst tokens, refilled
// continuously at ratePerSecond. See Limit for the meaning of zero, negative
// and infinite values.
func NewBucket(ratePerSecond float64, burst int, opts ...Option) *Bucket {
	return newBucket(Limit{RatePerSecond: ratePerSecond, Burst: burst}, buildOptions(opts).clock)
}

func newBucket(l Limit, clock Clock) *Bucket {
	l = l.normalized()
	b := &Bucket{limit: l, clock: clock, burst: int64(l.Burst)}
	switch {
	case math.IsInf(l.RatePerSecond, 1):
		b.mode = modeUnlimited
	case l.RatePerSecond == 0:
		b.mode = modeFixed
	default:
		b.mode = modeRefill
		iv := math.Max(1, math.Round(1e9/l.RatePerSecond))
		b.interval = int64(math.Min(iv, float64(maxHorizon)))
		if b.burst > maxHorizon/b.interval {
			b.burst = maxHorizon / b.interval
		}
		b.tau = b.burst * b.interval
		b.epoch = clock.Now()
		_, b.system = clock.(systemClock)
	}
	return b
}

// Limit returns the bucket's limit, with out-of-range values normalized.
func (b *Bucket) Limit() Limit { return b.limit }

// now returns the clock's time in nanoseconds since the bucket was made.
// For the system clock, time.Since reads only the monotonic clock, which
// costs about half of time.Now.
func (b *Bucket) now() int64 {
	if b.system {
		return int64(time.Since(b.epoch))
	}
	return int64(b.clock.Now().Sub(b.epoch))
}

// Allow takes one token if one is available now, and reports whether it did.
func (b *Bucket) Allow() bool { return b.AllowN(1) }

// AllowN takes n tokens if all n are available now, and reports whether it
// did; it takes none otherwise. AllowN(0) is always true.
func (b *Bucket) AllowN(n int) bool {
	if n <= 0 {
		return true
	}
	if b.mode == modeUnlimited {
		return true
	}
	if int64(n) > b.burst {
		return false
	}
	if b.mode == modeFixed {
		for {
			taken := b.state.Load()
			if taken+int64(n) > b.burst {
				return false
			}
			if b.state.CompareAndSwap(taken, taken+int64(n)) {
				return true
			}
		}
	}
	now := b.now()
	cost := int64(n) * b.interval
	for {
		tat := b.state.Load()
		next := max(tat, now) + cost
		if next-now > b.tau {
			return false
		}
		if b.state.CompareAndSwap(tat, next) {
			return true
		}
	}
}

// Tokens returns the tokens available now. It may be fractional (refill is
// continuous) and negative while Wait callers hold reservations for tokens
// not yet refilled. An unlimited bucket reports +Inf.
func (b *Bucket) Tokens() float64 {
	switch b.mode {
	case modeUnlimited:
		return math.Inf(1)
	case modeFixed:
		return float64(b.burst - b.state.Load())
	}
	ahead := max(b.state.Load()-b.now(), 0)
	return float64(b.tau-ahead) / float64(b.interval)
}

// Wait takes one token, waiting for the refill if none is available now. It
// returns ctx.Err() if ctx ends first (or had already ended; no token is
// taken then), and ErrNeverAvailable at once if the bucket can never grant
// the token.
//
// The token is reserved before Wait blocks, so concurrent waiters are
// served one per refill interval in the order they reserved. A cancelled
// Wait hands its reservation back.
func (b *Bucket) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch b.mode {
	case modeUnlimited:
		return nil
	case modeFixed:
		if b.AllowN(1) {
			return nil
		}
		return ErrNeverAvailable
	}
	if b.burst < 1 {
		return ErrNeverAvailable
	}
	now := b.now()
	var next int64
	for {
		tat := b.state.Load()
		next = max(tat, now) + b.interval
		if b.state.CompareAndSwap(tat, next) {
			break
		}
	}
	grantAt := next - b.tau
	if grantAt <= now {
		return nil
	}
	// Measure again: time may have moved since the reservation.
	d := grantAt - b.now()
	if d <= 0 {
		return nil
	}
	t := b.clock.NewTimer(time.Duration(d))
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		t.Stop()
		if b.now() < grantAt {
			b.state.Add(-b.interval)
		}
		return ctx.Err()
	}
}
