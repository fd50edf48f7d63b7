// Package ratelimit limits how fast the router dispatches tasks to each
// model tier. A TierLimiter keeps one token bucket per tier, built on
// golang.org/x/time/rate; the router calls Allow before it dispatches a
// task (or Reserve, for a tier whose tasks may wait for a token), and
// replaces the limits with Update when its rules are reloaded.
//
// A bucket holds up to Burst tokens and refills continuously at
// RatePerSecond tokens per second; it starts full. FromMaxConcurrent gives
// the bucket the Python Heddle router builds from a tier's max_concurrent.
//
// Guarantees:
//
//   - Over any window of length t, a bucket grants at most
//     Burst + RatePerSecond*t tokens, counting Allow, Wait and the
//     reservations Reserve grants, each at the time it is due (to within
//     float64 rounding).
//   - Allow never waits for a token, never allocates, and is safe for
//     concurrent use. Finding a tier's bucket takes no lock (an atomic
//     pointer to an immutable table); the bucket is a rate.Limiter, which
//     holds its own mutex for a few arithmetic steps, so only calls for the
//     same tier contend.
//   - Update swaps the whole table at once: a caller sees the old limits or
//     the new ones, never a mixture, and a tier whose limit is unchanged
//     keeps its bucket, so a reload does not hand out a fresh burst.
//   - Wait reserves its token before it waits, so concurrent waiters queue:
//     with one token due, exactly one waiter gets it and the next waits for
//     the following refill. Wait returns at once when it knows it cannot
//     succeed: ErrNeverAvailable when no token will ever come, and an error
//     wrapping context.DeadlineExceeded when the token is due after ctx's
//     deadline.
//   - Reserve never waits: it takes the token a Wait would wait for and
//     says when it is due, or refuses at once, taking nothing, when that
//     is beyond the caller's maximum wait. Reservations queue as Wait
//     callers do, and Cancel hands back a token not yet due.
//   - A TierLimiter's buckets live in this process only: each router
//     replica with its own admits the configured rate, so N replicas
//     together admit up to N times it. A SharedLimiter keeps one bucket per
//     tier in a Store the replicas share (NewMemoryStore in one process,
//     package natslimit's JetStream key-value bucket across processes), so
//     that they admit the configured rate in total; router.Config.Limiter
//     takes it.
//   - Tokens are counted at dispatch: the limiter does not know when a worker
//     finishes, so "max concurrent" limits (see FromMaxConcurrent) throttle
//     the dispatch rate, not the work in flight.
//
// Buckets read the time with time.Now and wait with time timers, so tests
// control time by running inside a testing/synctest bubble.
package ratelimit
