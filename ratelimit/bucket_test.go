package ratelimit

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// advance moves a synctest bubble's fake clock forward by d. Inside a
// bubble, a sleep returns once every other goroutine of the bubble is
// blocked and the clock has moved by d: it moves time, it synchronises
// nothing. Call it only inside synctest.Test.
func advance(d time.Duration) { time.Sleep(d) } // sleep-ok: synctest fake clock; advances time

// testContext bounds a test that waits on goroutines outside a bubble, so a
// bug fails the test instead of hanging it.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func allowCount(b *bucket, tries int) int {
	n := 0
	for range tries {
		if b.allow() {
			n++
		}
	}
	return n
}

func TestBucketStartsFullAndEmptiesAfterBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(Limit{RatePerSecond: 10, Burst: 5})
		if got := b.tokens(); got != 5 {
			t.Fatalf("new bucket holds %v tokens, want 5", got)
		}
		if got := allowCount(b, 8); got != 5 {
			t.Fatalf("%d of 8 immediate Allow calls succeeded, want the burst of 5", got)
		}
		if got := b.tokens(); got != 0 {
			t.Fatalf("drained bucket holds %v tokens, want 0", got)
		}
	})
}

func TestBucketRefillsContinuously(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(Limit{RatePerSecond: 10, Burst: 5}) // one token per 100ms
		allowCount(b, 5)

		advance(250 * time.Millisecond)
		if got := b.tokens(); got != 2.5 {
			t.Fatalf("after 250ms at 10/s the bucket holds %v tokens, want 2.5", got)
		}
		if got := allowCount(b, 3); got != 2 {
			t.Fatalf("%d of 3 Allow calls succeeded with 2.5 tokens, want 2", got)
		}
		if got := b.tokens(); got != 0.5 {
			t.Fatalf("after taking 2 of 2.5 tokens the bucket holds %v, want 0.5", got)
		}

		advance(49 * time.Millisecond)
		if b.allow() {
			t.Fatal("the half token plus 49ms at 10/s made a whole token")
		}
		advance(time.Millisecond)
		if !b.allow() {
			t.Fatal("the half token plus 50ms at 10/s did not make one token")
		}

		advance(time.Hour)
		if got := b.tokens(); got != 5 {
			t.Fatalf("after an hour the bucket holds %v tokens, want it capped at the burst of 5", got)
		}
	})
}

func TestBucketWithRateZeroGrantsBurstTokensEver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(Limit{RatePerSecond: 0, Burst: 3})
		if got := allowCount(b, 5); got != 3 {
			t.Fatalf("%d Allow calls succeeded, want 3", got)
		}
		advance(24 * 365 * time.Hour)
		if b.allow() {
			t.Fatal("a rate-0 bucket refilled")
		}
		start := time.Now()
		if err := b.wait(t.Context()); !errors.Is(err, ErrNeverAvailable) {
			t.Fatalf("Wait on a spent rate-0 bucket = %v, want ErrNeverAvailable", err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("Wait on a spent rate-0 bucket took %v, want it to return at once", waited)
		}
		if got := b.tokens(); got != 0 {
			t.Fatalf("a refused Wait changed the tokens to %v, want 0", got)
		}
	})
}

func TestBucketWithRateZeroWaitTakesARemainingToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(Limit{RatePerSecond: 0, Burst: 1})
		if err := b.wait(t.Context()); err != nil {
			t.Fatalf("Wait on a rate-0 bucket with a token = %v", err)
		}
		if b.allow() {
			t.Fatal("Wait did not take the rate-0 bucket's only token")
		}
	})
}

func TestABucketAtItsEdgeLimitsAllowsWhatItsLimitSays(t *testing.T) {
	tests := []struct {
		name       string
		limit      Limit
		wantAllow  int // of 10 immediate calls
		wantTokens float64
	}{
		{"burst zero grants nothing", Limit{RatePerSecond: 5, Burst: 0}, 0, 0},
		{"negative burst grants nothing", Limit{RatePerSecond: 5, Burst: -1}, 0, 0},
		{"negative rate means no refill", Limit{RatePerSecond: -1, Burst: 2}, 2, 0},
		{"NaN rate means no refill", Limit{RatePerSecond: math.NaN(), Burst: 2}, 2, 0},
		{"infinite rate grants everything", Limit{RatePerSecond: math.Inf(1), Burst: 0}, 10, math.Inf(1)},
		{"rate and burst zero grant nothing", Limit{}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBucket(tt.limit)
				if got := allowCount(b, 10); got != tt.wantAllow {
					t.Fatalf("%d of 10 Allow calls succeeded, want %d", got, tt.wantAllow)
				}
				advance(time.Hour)
				if got := b.tokens(); got != tt.wantTokens {
					t.Fatalf("an hour later the bucket holds %v tokens, want %v", got, tt.wantTokens)
				}
			})
		})
	}
}

func TestALimitIsNormalizedToWhatTheBucketCanKeep(t *testing.T) {
	tests := []struct {
		name string
		in   Limit
		want Limit
	}{
		{"negative rate means zero", Limit{RatePerSecond: -1, Burst: 2}, Limit{Burst: 2}},
		{"NaN rate means zero", Limit{RatePerSecond: math.NaN(), Burst: 2}, Limit{Burst: 2}},
		{"negative burst means zero", Limit{RatePerSecond: 3, Burst: -4}, Limit{RatePerSecond: 3}},
		{"infinite rate is kept", Limit{RatePerSecond: math.Inf(1), Burst: 1}, Limit{RatePerSecond: math.Inf(1), Burst: 1}},
		{"in-range values are kept", Limit{RatePerSecond: 0.5, Burst: 7}, Limit{RatePerSecond: 0.5, Burst: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newBucket(tt.in).limit; got != tt.want {
				t.Fatalf("limit %+v normalized to %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestBucketConcurrentAllowGrantsExactlyTheBurst(t *testing.T) {
	const burst, goroutines, perGoroutine = 100, 32, 50
	for _, tt := range []struct {
		name string
		rate float64
	}{
		{"rate zero", 0},
		// In a bubble the clock stands still while goroutines run.
		{"refilling, clock standing still", 1000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBucket(Limit{RatePerSecond: tt.rate, Burst: burst})
				var granted atomic.Int64
				var wg sync.WaitGroup
				for range goroutines {
					wg.Go(func() {
						granted.Add(int64(allowCount(b, perGoroutine)))
					})
				}
				wg.Wait()
				if got := granted.Load(); got != burst {
					t.Fatalf("%d goroutines granted %d tokens in total, want exactly %d", goroutines, got, burst)
				}
			})
		})
	}
}

func TestBucketWaitReturnsAtOnceWhenATokenIsAvailable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(Limit{RatePerSecond: 1, Burst: 1})
		start := time.Now()
		if err := b.wait(t.Context()); err != nil {
			t.Fatalf("Wait on a full bucket = %v", err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("Wait on a full bucket took %v", waited)
		}
		if b.allow() {
			t.Fatal("Wait did not take the token")
		}
	})
}

func TestBucketWaitReturnsWhenTheTokenIsDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(Limit{RatePerSecond: 2, Burst: 1}) // one token per 500ms
		b.allow()

		start := time.Now()
		if err := b.wait(t.Context()); err != nil {
			t.Fatalf("Wait = %v", err)
		}
		if waited := time.Since(start); waited != 500*time.Millisecond {
			t.Fatalf("Wait returned after %v, want 500ms, when the token is due", waited)
		}
		if b.allow() {
			t.Fatal("the refilled token was granted twice")
		}
	})
}

func TestBucketConcurrentWaitersAreServedOnePerRefill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(Limit{RatePerSecond: 1, Burst: 1})
		b.allow()

		const waiters = 5
		start := time.Now()
		waited := make(chan time.Duration, waiters)
		for range waiters {
			go func() {
				if err := b.wait(t.Context()); err != nil {
					t.Errorf("Wait = %v", err)
				}
				waited <- time.Since(start)
			}()
		}
		var got []time.Duration
		for range waiters {
			got = append(got, <-waited)
		}
		slices.Sort(got)
		want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second}
		if !slices.Equal(got, want) {
			t.Fatalf("waiters returned after %v, want one per refill: %v", got, want)
		}
		if b.allow() {
			t.Fatal("a token was left over after every waiter was served")
		}
	})
}

func TestBucketWaitCancelledReturnsCtxErrAndGivesTheTokenBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(Limit{RatePerSecond: 1, Burst: 1})
		b.allow()

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- b.wait(ctx) }()
		synctest.Wait() // the waiter has reserved and is blocked
		if got := b.tokens(); got != -1 {
			t.Fatalf("with one waiter queued the bucket holds %v tokens, want -1", got)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Wait = %v, want context.Canceled", err)
		}
		if got := b.tokens(); got != 0 {
			t.Fatalf("after the cancelled Wait the bucket holds %v tokens, want 0", got)
		}

		advance(time.Second)
		if got := b.tokens(); got != 1 {
			t.Fatalf("after the cancelled reservation and one refill the bucket holds %v tokens, want 1", got)
		}
		if !b.allow() {
			t.Fatal("the cancelled reservation was not handed back")
		}
	})
}

func TestBucketWaitWithEndedContextTakesNothing(t *testing.T) {
	for _, tt := range []struct {
		name  string
		limit Limit
	}{
		{"refilling", Limit{RatePerSecond: 1, Burst: 1}},
		{"rate zero", Limit{Burst: 1}},
		{"unlimited", Limit{RatePerSecond: math.Inf(1)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBucket(tt.limit)
				before := b.tokens()
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				if err := b.wait(ctx); !errors.Is(err, context.Canceled) {
					t.Fatalf("Wait with an ended context = %v, want context.Canceled", err)
				}
				if got := b.tokens(); got != before {
					t.Fatalf("Wait with an ended context took a token: %v left, want %v", got, before)
				}
			})
		})
	}
}

func TestBucketWaitPastTheDeadlineFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(Limit{RatePerSecond: 1, Burst: 1})
		b.allow()
		ctx, cancel := context.WithTimeout(t.Context(), 999*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := b.wait(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait for a token due after the deadline = %v, want context.DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("Wait for a token due after the deadline took %v, want it to return at once", waited)
		}
		if ctx.Err() != nil {
			t.Fatal("the context ended: Wait did not return at once")
		}
		if got := b.tokens(); got != 0 {
			t.Fatalf("the refused Wait left %v tokens, want 0 (no reservation)", got)
		}

		ctx, cancel = context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		if err := b.wait(ctx); err != nil {
			t.Fatalf("Wait for a token due before the deadline = %v", err)
		}
		if waited := time.Since(start); waited != time.Second {
			t.Fatalf("Wait for a token due before the deadline returned after %v, want 1s", waited)
		}
	})
}

func TestBucketWaitWithBurstZeroFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(Limit{RatePerSecond: 1, Burst: 0})
		start := time.Now()
		if err := b.wait(t.Context()); !errors.Is(err, ErrNeverAvailable) {
			t.Fatalf("Wait with burst 0 = %v, want ErrNeverAvailable", err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("Wait with burst 0 took %v, want it to return at once", waited)
		}
	})
}

func TestBucketWaitOnTheRealClock(t *testing.T) {
	b := newBucket(Limit{RatePerSecond: 1000, Burst: 1}) // one token per millisecond
	b.allow()
	if err := b.wait(testContext(t)); err != nil {
		t.Fatalf("Wait outside a bubble = %v", err)
	}
}

func TestFromMaxConcurrentFollowsThePythonRule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(FromMaxConcurrent(4))
		if got := allowCount(b, 4); got != 4 {
			t.Fatalf("%d of 4 immediate tokens granted, want 4", got)
		}
		if b.allow() {
			t.Fatal("the 5th immediate token was granted")
		}
		advance(15*time.Second - time.Nanosecond)
		if b.allow() {
			t.Fatal("a token was granted before 60/4 = 15 s had passed")
		}
		advance(time.Nanosecond)
		if !b.allow() {
			t.Fatal("no token after 15 s")
		}
		if b.allow() {
			t.Fatal("two tokens after 15 s")
		}
	})
	if got := FromMaxConcurrent(0); got != (Limit{}) {
		t.Fatalf("FromMaxConcurrent(0) = %+v, want the zero Limit", got)
	}
	if got := FromMaxConcurrent(6); got != (Limit{RatePerSecond: 0.1, Burst: 6}) {
		t.Fatalf("FromMaxConcurrent(6) = %+v, want 6 tokens refilled at 6 per minute", got)
	}
}
