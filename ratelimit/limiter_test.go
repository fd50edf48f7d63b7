package ratelimit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestTierLimiterKeepsTiersIndependent(t *testing.T) {
	clock := NewFakeClock(testStart)
	l := NewTierLimiter(map[string]Limit{
		"local":    {RatePerSecond: 1, Burst: 2},
		"frontier": {RatePerSecond: 1, Burst: 1},
	}, WithClock(clock))

	if !l.Allow("frontier") || l.Allow("frontier") {
		t.Fatal("frontier did not grant exactly its burst of 1")
	}
	if !l.Allow("local") || !l.Allow("local") || l.Allow("local") {
		t.Fatal("draining frontier changed local, or local did not grant exactly 2")
	}
}

func TestTierLimiterNeverLimitsAnUnknownTier(t *testing.T) {
	l := NewTierLimiter(map[string]Limit{"local": {Burst: 0}}, WithClock(NewFakeClock(testStart)))
	for range 1000 {
		if !l.Allow("standard") {
			t.Fatal("a tier with no limit was refused")
		}
	}
	if err := l.Wait(testContext(t), "standard"); err != nil {
		t.Fatalf("Wait on a tier with no limit = %v", err)
	}
	if _, limited := l.Tokens("standard"); limited {
		t.Fatal("Tokens reports a tier with no limit as limited")
	}
	var zero TierLimiter
	if !zero.Allow("local") {
		t.Fatal("the zero TierLimiter limited a tier")
	}
}

func TestTierLimiterUpdate(t *testing.T) {
	clock := NewFakeClock(testStart)
	local := Limit{RatePerSecond: 1, Burst: 3}
	l := NewTierLimiter(map[string]Limit{
		"local":    local,
		"standard": {RatePerSecond: 1, Burst: 3},
		"frontier": {RatePerSecond: 1, Burst: 1},
	}, WithClock(clock))
	for _, tier := range []string{"local", "standard", "frontier"} {
		for l.Allow(tier) {
		}
	}

	l.Update(map[string]Limit{
		"local":    local,                        // unchanged
		"standard": {RatePerSecond: 1, Burst: 5}, // changed
		"extra":    {RatePerSecond: 1, Burst: 1}, // added
		// frontier removed
	})

	if tokens, _ := l.Tokens("local"); tokens != 0 {
		t.Errorf("an unchanged limit got a fresh bucket: local holds %v tokens, want 0", tokens)
	}
	if tokens, _ := l.Tokens("standard"); tokens != 5 {
		t.Errorf("a changed limit holds %v tokens, want a new full bucket of 5", tokens)
	}
	if tokens, _ := l.Tokens("extra"); tokens != 1 {
		t.Errorf("an added limit holds %v tokens, want a full bucket of 1", tokens)
	}
	if _, limited := l.Tokens("frontier"); limited {
		t.Error("a removed limit still limits")
	}
	if got := l.Limits(); len(got) != 3 || got["standard"].Burst != 5 {
		t.Errorf("Limits() = %v after Update", got)
	}
}

func TestTierLimiterUpdateCopiesTheMap(t *testing.T) {
	limits := map[string]Limit{"local": {Burst: 1}}
	l := NewTierLimiter(limits, WithClock(NewFakeClock(testStart)))
	limits["local"] = Limit{Burst: 100}
	limits["standard"] = Limit{}
	if !l.Allow("local") || l.Allow("local") {
		t.Fatal("changing the caller's map changed the limiter")
	}
	if !l.Allow("standard") {
		t.Fatal("a tier added to the caller's map became limited")
	}
}

func TestTierLimiterUpdateRacesSafelyWithAllow(t *testing.T) {
	l := NewTierLimiter(nil)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				l.Allow("local")
				l.Tokens("local")
			}
		})
	}
	for i := range 200 {
		l.Update(map[string]Limit{"local": {RatePerSecond: float64(i % 3), Burst: i}})
	}
	cancel()
	wg.Wait()
}

func TestTierLimiterWait(t *testing.T) {
	ctx := testContext(t)
	clock := NewFakeClock(testStart)
	l := NewTierLimiter(map[string]Limit{"local": FromMaxConcurrent(4)}, WithClock(clock))
	for range 4 {
		if err := l.Wait(ctx, "local"); err != nil {
			t.Fatal(err)
		}
	}

	done := make(chan error, 1)
	go func() { done <- l.Wait(ctx, "local") }()
	if err := clock.BlockUntilTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(15 * time.Second)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait = %v after 15 s", err)
		}
	case <-ctx.Done():
		t.Fatal("Wait did not return after 15 s")
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Wait(cancelled, "local"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with an ended context = %v, want context.Canceled", err)
	}
	if err := l.Wait(cancelled, "unknown"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on an unlimited tier with an ended context = %v, want context.Canceled", err)
	}
}
