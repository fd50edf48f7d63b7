package ratelimit

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var testStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// testContext bounds a test that waits on goroutines, so a bug fails the
// test instead of hanging it.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func allowCount(b *Bucket, tries int) int {
	n := 0
	for range tries {
		if b.Allow() {
			n++
		}
	}
	return n
}

func TestBucketStartsFullAndEmptiesAfterBurst(t *testing.T) {
	clock := NewFakeClock(testStart)
	b := NewBucket(10, 5, WithClock(clock))
	if got := b.Tokens(); got != 5 {
		t.Fatalf("new bucket holds %v tokens, want 5", got)
	}
	if got := allowCount(b, 8); got != 5 {
		t.Fatalf("%d of 8 immediate Allow calls succeeded, want the burst of 5", got)
	}
	if got := b.Tokens(); got != 0 {
		t.Fatalf("drained bucket holds %v tokens, want 0", got)
	}
}

func TestBucketRefillsContinuouslyAfterAdvance(t *testing.T) {
	clock := NewFakeClock(testStart)
	b := NewBucket(10, 5, WithClock(clock)) // one token per 100ms
	allowCount(b, 5)

	clock.Advance(250 * time.Millisecond)
	if got := b.Tokens(); got != 2.5 {
		t.Fatalf("after 250ms at 10/s the bucket holds %v tokens, want 2.5", got)
	}
	if got := allowCount(b, 3); got != 2 {
		t.Fatalf("%d of 3 Allow calls succeeded with 2.5 tokens, want 2", got)
	}
	if got := b.Tokens(); got != 0.5 {
		t.Fatalf("after taking 2 of 2.5 tokens the bucket holds %v, want 0.5", got)
	}

	clock.Advance(50 * time.Millisecond)
	if !b.Allow() {
		t.Fatal("the half token plus 50ms at 10/s did not make one token")
	}

	clock.Advance(time.Hour)
	if got := b.Tokens(); got != 5 {
		t.Fatalf("after an hour the bucket holds %v tokens, want it capped at the burst of 5", got)
	}
}

func TestBucketAllowN(t *testing.T) {
	clock := NewFakeClock(testStart)
	b := NewBucket(1, 5, WithClock(clock))
	if !b.AllowN(0) {
		t.Fatal("AllowN(0) was refused")
	}
	if b.AllowN(6) {
		t.Fatal("AllowN above the burst was granted")
	}
	if !b.AllowN(3) {
		t.Fatal("AllowN(3) with 5 tokens was refused")
	}
	if b.AllowN(3) {
		t.Fatal("AllowN(3) with 2 tokens was granted")
	}
	if got := b.Tokens(); got != 2 {
		t.Fatalf("a refused AllowN took tokens: %v left, want 2", got)
	}
}

func TestBucketWithRateZeroGrantsBurstTokensEver(t *testing.T) {
	clock := NewFakeClock(testStart)
	b := NewBucket(0, 3, WithClock(clock))
	if got := allowCount(b, 5); got != 3 {
		t.Fatalf("%d Allow calls succeeded, want 3", got)
	}
	clock.Advance(24 * 365 * time.Hour)
	if b.Allow() {
		t.Fatal("a rate-0 bucket refilled")
	}
	if err := b.Wait(testContext(t)); !errors.Is(err, ErrNeverAvailable) {
		t.Fatalf("Wait on a spent rate-0 bucket = %v, want ErrNeverAvailable", err)
	}
}

func TestBucketEdgeLimits(t *testing.T) {
	clock := NewFakeClock(testStart)
	tests := []struct {
		name      string
		rate      float64
		burst     int
		wantAllow int // of 10 immediate calls
	}{
		{"burst zero grants nothing", 5, 0, 0},
		{"negative burst grants nothing", 5, -1, 0},
		{"negative rate means no refill", -1, 2, 2},
		{"NaN rate means no refill", math.NaN(), 2, 2},
		{"infinite rate grants everything", math.Inf(1), 0, 10},
		{"rate and burst zero grant nothing", 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBucket(tt.rate, tt.burst, WithClock(clock))
			if got := allowCount(b, 10); got != tt.wantAllow {
				t.Fatalf("%d of 10 Allow calls succeeded, want %d", got, tt.wantAllow)
			}
		})
	}
	var zero Bucket
	if zero.Allow() {
		t.Fatal("the zero Bucket granted a token")
	}
}

func TestBucketConcurrentAllowGrantsExactlyTheBurst(t *testing.T) {
	const burst, goroutines, perGoroutine = 100, 32, 50
	for _, tt := range []struct {
		name string
		rate float64
	}{
		{"rate zero", 0},
		{"refilling, clock stopped", 1000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBucket(tt.rate, burst, WithClock(NewFakeClock(testStart)))
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
	}
}

func TestBucketWaitReturnsAtOnceWhenATokenIsAvailable(t *testing.T) {
	b := NewBucket(1, 1, WithClock(NewFakeClock(testStart)))
	if err := b.Wait(testContext(t)); err != nil {
		t.Fatalf("Wait on a full bucket = %v", err)
	}
	if b.Allow() {
		t.Fatal("Wait did not take the token")
	}
}

func TestBucketWaitReturnsAfterAdvance(t *testing.T) {
	ctx := testContext(t)
	clock := NewFakeClock(testStart)
	b := NewBucket(2, 1, WithClock(clock)) // one token per 500ms
	b.Allow()

	done := make(chan error, 1)
	go func() { done <- b.Wait(ctx) }()
	if err := clock.BlockUntilTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(499 * time.Millisecond)
	if clock.PendingTimers() != 1 {
		t.Fatal("Wait's timer fired before the token was due")
	}
	clock.Advance(time.Millisecond)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait = %v after the refill", err)
		}
	case <-ctx.Done():
		t.Fatal("Wait did not return after the clock reached the refill")
	}
	if b.Allow() {
		t.Fatal("the refilled token was granted twice")
	}
}

func TestBucketConcurrentWaitersAreServedOnePerRefill(t *testing.T) {
	ctx := testContext(t)
	clock := NewFakeClock(testStart)
	b := NewBucket(1, 1, WithClock(clock))
	b.Allow()

	const waiters = 5
	done := make(chan error, waiters)
	for range waiters {
		go func() { done <- b.Wait(ctx) }()
	}
	if err := clock.BlockUntilTimers(ctx, waiters); err != nil {
		t.Fatal(err)
	}
	for i := range waiters {
		clock.Advance(time.Second)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("waiter %d: %v", i, err)
			}
		case <-ctx.Done():
			t.Fatalf("no waiter returned after refill %d", i+1)
		}
		if got, want := clock.PendingTimers(), waiters-i-1; got != want {
			t.Fatalf("after refill %d, %d waiters still wait, want %d", i+1, got, want)
		}
	}
	if b.Allow() {
		t.Fatal("a token was left over after every waiter was served")
	}
}

func TestBucketWaitCancelledReturnsCtxErrAndGivesTheTokenBack(t *testing.T) {
	ctx := testContext(t)
	clock := NewFakeClock(testStart)
	b := NewBucket(1, 1, WithClock(clock))
	b.Allow()

	waitCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Wait(waitCtx) }()
	if err := clock.BlockUntilTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Wait = %v, want context.Canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("cancelled Wait did not return")
	}
	if clock.PendingTimers() != 0 {
		t.Fatal("cancelled Wait left its timer behind")
	}

	clock.Advance(time.Second)
	if got := b.Tokens(); got != 1 {
		t.Fatalf("after the cancelled reservation and one refill the bucket holds %v tokens, want 1", got)
	}
	if !b.Allow() {
		t.Fatal("the cancelled reservation was not handed back")
	}
}

func TestBucketWaitWithEndedContextTakesNothing(t *testing.T) {
	b := NewBucket(1, 1, WithClock(NewFakeClock(testStart)))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with an ended context = %v, want context.Canceled", err)
	}
	if got := b.Tokens(); got != 1 {
		t.Fatalf("Wait with an ended context took a token: %v left", got)
	}
}

func TestBucketWaitWithBurstZeroFailsAtOnce(t *testing.T) {
	b := NewBucket(1, 0, WithClock(NewFakeClock(testStart)))
	if err := b.Wait(testContext(t)); !errors.Is(err, ErrNeverAvailable) {
		t.Fatalf("Wait with burst 0 = %v, want ErrNeverAvailable", err)
	}
}

func TestBucketWaitOnSystemClock(t *testing.T) {
	b := NewBucket(1000, 1) // one token per millisecond, real time
	b.Allow()
	if err := b.Wait(testContext(t)); err != nil {
		t.Fatalf("Wait on the system clock = %v", err)
	}
}

func TestFromMaxConcurrentFollowsThePythonRule(t *testing.T) {
	clock := NewFakeClock(testStart)
	b := newBucket(FromMaxConcurrent(4), clock)
	if got := allowCount(b, 4); got != 4 {
		t.Fatalf("%d of 4 immediate tokens granted, want 4", got)
	}
	if b.Allow() {
		t.Fatal("the 5th immediate token was granted")
	}
	clock.Advance(15*time.Second - time.Nanosecond)
	if b.Allow() {
		t.Fatal("a token was granted before 60/4 = 15 s had passed")
	}
	clock.Advance(time.Nanosecond)
	if !b.Allow() {
		t.Fatal("no token after 15 s")
	}
	if b.Allow() {
		t.Fatal("two tokens after 15 s")
	}
	if got := FromMaxConcurrent(0); got != (Limit{}) {
		t.Fatalf("FromMaxConcurrent(0) = %+v, want the zero Limit", got)
	}
}
