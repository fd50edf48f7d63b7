// Package ratelimit holds token buckets and a limiter keyed by model tier.
//
// A Bucket holds up to Burst tokens and refills continuously at
// RatePerSecond tokens per second; it starts full. A TierLimiter keeps one
// Bucket per tier and is what the router consults before dispatching a task.
//
// Guarantees:
//
//   - Over any window of length t, a bucket grants at most
//     Burst + RatePerSecond*t tokens, counting both Allow and Wait.
//   - Allow never blocks, never allocates, and is safe for concurrent use; it
//     is lock-free (one compare-and-swap on a single word of state).
//   - Wait reserves its token before it waits, so concurrent waiters queue:
//     with one token due, exactly one waiter gets it and the next waits for
//     the following refill. A cancelled Wait returns ctx.Err() and gives back
//     a token it had not yet received.
//   - Buckets live in this process only. Each router replica has its own, so
//     N replicas together admit up to N times the configured rate; nothing is
//     shared across processes.
//   - Tokens are counted at dispatch: the limiter does not know when a worker
//     finishes, so "max concurrent" limits (see FromMaxConcurrent) throttle
//     the dispatch rate, not the work in flight.
//
// Time comes from a Clock. The default is the system clock; tests pass a
// FakeClock (WithClock) and move time with Advance instead of sleeping.
package ratelimit
