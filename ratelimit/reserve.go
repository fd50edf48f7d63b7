package ratelimit

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// Reservation is a token taken from a tier's bucket for use at a given
// time, now or later. The zero Reservation is a token due at once that
// needs no handing back.
type Reservation struct {
	r   *rate.Reservation // nil when nothing can be handed back
	due time.Time
}

// Due returns when the token may be used; the time Reserve was called
// when it was available at once.
func (r Reservation) Due() time.Time { return r.due }

// Cancel hands the token back to its bucket when it is not due yet, so
// that a task given up while it waits does not leave its tier a token
// short. As rate.Reservation.CancelAt does, it restores only what no later
// reservation has been counted against: cancelling several reservations of
// one bucket from the latest to the earliest restores them all. A token
// already due, or taken at once, is spent and stays so.
func (r Reservation) Cancel() {
	// rate.Reservation restores a token at the very instant it is due;
	// by then the holder may have used it.
	if now := time.Now(); r.r != nil && now.Before(r.due) {
		r.r.CancelAt(now)
	}
}

// Reserve takes a token from tier's bucket for the earliest time it can
// be had, provided that time is no more than maxWait away, and reports
// whether it did. A token available now is taken as Allow takes it, due
// at once; a tier without a limit is always granted at once.
//
// When the token would come later than maxWait (or never: burst below
// one, or rate zero with every token spent), Reserve takes nothing and
// returns false, so that a refusal does not push back the tokens of the
// callers after it. A maxWait of zero or less makes Reserve an Allow.
//
// A granted Reservation counts against the bucket at once: a later
// Reserve or Wait on the same tier is due after it, so callers that
// reserve in turn are due in that order. Keep the Reservation to Cancel
// it if the work it was for is given up before Due.
func (l *TierLimiter) Reserve(tier string, maxWait time.Duration) (Reservation, bool) {
	now := time.Now()
	b := l.bucket(tier)
	if b == nil {
		return Reservation{due: now}, true
	}
	return b.reserve(now, maxWait)
}

// reserve takes a token due within maxWait of now; see TierLimiter.Reserve.
func (b *bucket) reserve(now time.Time, maxWait time.Duration) (Reservation, bool) {
	switch {
	case b.unlimited():
		return Reservation{due: now}, true
	case maxWait <= 0 || b.limit.RatePerSecond == 0 || b.limit.Burst < 1:
		// Nothing to wait for: no time allowed, no refill, or no token
		// ever.
		return Reservation{due: now}, b.lim.AllowN(now, 1)
	}
	// Checked before reserving, so that a refusal leaves the bucket as it
	// was: a reservation handed back is restored only in so far as nobody
	// reserved behind it meanwhile.
	if short := 1 - b.lim.TokensAt(now); short > 0 && secondsToDuration(short/b.limit.RatePerSecond) > maxWait {
		return Reservation{}, false
	}
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return Reservation{}, false
	}
	delay := r.DelayFrom(now)
	if delay > maxWait {
		// A concurrent caller reserved between the check and ours, or
		// float rounding put the token a hair beyond maxWait.
		r.CancelAt(now)
		return Reservation{}, false
	}
	if delay == 0 {
		return Reservation{due: now}, true
	}
	return Reservation{r: r, due: now.Add(delay)}, true
}

// secondsToDuration converts as rate.Limit's durationFromTokens does, so
// that the check before reserving agrees with the reservation's delay.
func secondsToDuration(s float64) time.Duration {
	if d := s * float64(time.Second); d < math.MaxInt64 {
		return time.Duration(d)
	}
	return math.MaxInt64
}
