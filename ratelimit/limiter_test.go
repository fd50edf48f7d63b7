package ratelimit

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestTierLimiterKeepsTiersIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewTierLimiter(map[string]Limit{
			"local":    {RatePerSecond: 1, Burst: 2},
			"frontier": {RatePerSecond: 1, Burst: 1},
		})

		if !l.Allow("frontier") || l.Allow("frontier") {
			t.Fatal("frontier did not grant exactly its burst of 1")
		}
		first, second, third := l.Allow("local"), l.Allow("local"), l.Allow("local")
		if !first || !second || third {
			t.Fatal("draining frontier changed local, or local did not grant exactly 2")
		}
	})
}

func TestTierLimiterNeverLimitsAnUnknownTier(t *testing.T) {
	l := NewTierLimiter(map[string]Limit{"local": {Burst: 0}})
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
	if err := zero.Wait(testContext(t), "local"); err != nil {
		t.Fatalf("Wait on the zero TierLimiter = %v", err)
	}
	if got := zero.Limits(); len(got) != 0 {
		t.Fatalf("the zero TierLimiter has limits %v", got)
	}
}

func TestTierLimiterUnlimitedRate(t *testing.T) {
	l := NewTierLimiter(map[string]Limit{"local": {RatePerSecond: math.Inf(1)}})
	for range 1000 {
		if !l.Allow("local") {
			t.Fatal("a tier with an infinite rate was refused")
		}
	}
	if err := l.Wait(testContext(t), "local"); err != nil {
		t.Fatalf("Wait on a tier with an infinite rate = %v", err)
	}
	if tokens, limited := l.Tokens("local"); !limited || !math.IsInf(tokens, 1) {
		t.Fatalf("Tokens on a tier with an infinite rate = %v, %v; want +Inf, true", tokens, limited)
	}
}

func TestUpdatingATierLimiterKeepsTheTokensOfUnchangedTiers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local := Limit{RatePerSecond: 1, Burst: 3}
		l := NewTierLimiter(map[string]Limit{
			"local":    local,
			"standard": {RatePerSecond: 1, Burst: 3},
			"frontier": {RatePerSecond: 1, Burst: 1},
			"spare":    {RatePerSecond: 0, Burst: 2},
		})
		for _, tier := range []string{"local", "standard", "frontier", "spare"} {
			for l.Allow(tier) {
			}
		}

		l.Update(map[string]Limit{
			"local":    local,                                 // unchanged
			"standard": {RatePerSecond: 1, Burst: 5},          // changed
			"extra":    {RatePerSecond: 1, Burst: 1},          // added
			"spare":    {RatePerSecond: math.NaN(), Burst: 2}, // unchanged after normalization
			// frontier removed
		})

		if tokens, _ := l.Tokens("local"); tokens != 0 {
			t.Errorf("an unchanged limit got a fresh bucket: local holds %v tokens, want 0", tokens)
		}
		if tokens, _ := l.Tokens("spare"); tokens != 0 {
			t.Errorf("a limit equal after normalization got a fresh bucket: spare holds %v tokens, want 0", tokens)
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
		want := map[string]Limit{
			"local":    local,
			"standard": {RatePerSecond: 1, Burst: 5},
			"extra":    {RatePerSecond: 1, Burst: 1},
			"spare":    {Burst: 2},
		}
		got := l.Limits()
		if len(got) != len(want) {
			t.Fatalf("Limits() = %v after Update, want %v", got, want)
		}
		for tier, w := range want {
			if got[tier] != w {
				t.Errorf("Limits()[%q] = %+v after Update, want %+v", tier, got[tier], w)
			}
		}
	})
}

func TestTierLimiterUpdateKeepsAQueuedWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		limit := Limit{RatePerSecond: 1, Burst: 1}
		l := NewTierLimiter(map[string]Limit{"local": limit})
		l.Allow("local")

		start := time.Now()
		waited := make(chan time.Duration, 1)
		go func() {
			if err := l.Wait(t.Context(), "local"); err != nil {
				t.Errorf("Wait = %v", err)
			}
			waited <- time.Since(start)
		}()
		synctest.Wait() // the waiter has reserved the next token
		l.Update(map[string]Limit{"local": limit})
		if got := <-waited; got != time.Second {
			t.Fatalf("the waiter returned after %v, want 1s", got)
		}
		if l.Allow("local") {
			t.Fatal("an unchanged limit lost its reservation on Update: the waiter's token was granted again")
		}
	})
}

func TestTierLimiterUpdateCopiesTheMap(t *testing.T) {
	limits := map[string]Limit{"local": {Burst: 1}}
	l := NewTierLimiter(limits)
	limits["local"] = Limit{Burst: 100}
	limits["standard"] = Limit{}
	if !l.Allow("local") || l.Allow("local") {
		t.Fatal("changing the caller's map changed the limiter")
	}
	if !l.Allow("standard") {
		t.Fatal("a tier added to the caller's map became limited")
	}
	got := l.Limits()
	got["local"] = Limit{Burst: 100}
	if again := l.Limits(); again["local"] != (Limit{Burst: 1}) {
		t.Fatal("changing the map Limits returned changed the limiter")
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
				l.Limits()
			}
		})
	}
	for i := range 200 {
		l.Update(map[string]Limit{"local": {RatePerSecond: float64(i % 3), Burst: i}})
	}
	cancel()
	wg.Wait()
	if got := l.Limits()["local"]; got != (Limit{RatePerSecond: 1, Burst: 199}) {
		t.Fatalf("after the last Update the limit is %+v, want the last one given", got)
	}
}

func TestATierLimiterWaitBlocksUntilATokenIsDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewTierLimiter(map[string]Limit{"local": FromMaxConcurrent(4)})
		for range 4 {
			if err := l.Wait(t.Context(), "local"); err != nil {
				t.Fatal(err)
			}
		}

		start := time.Now()
		if err := l.Wait(t.Context(), "local"); err != nil {
			t.Fatalf("Wait for the refill = %v", err)
		}
		if waited := time.Since(start); waited != 15*time.Second {
			t.Fatalf("Wait returned after %v, want 15 s", waited)
		}

		cancelled, cancel := context.WithCancel(t.Context())
		cancel()
		if err := l.Wait(cancelled, "local"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait with an ended context = %v, want context.Canceled", err)
		}
		if err := l.Wait(cancelled, "unknown"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait on an unlimited tier with an ended context = %v, want context.Canceled", err)
		}
	})
}

func TestTierLimiterWaitCancelledWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewTierLimiter(map[string]Limit{"local": {RatePerSecond: 1, Burst: 1}})
		l.Allow("local")
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- l.Wait(ctx, "local") }()
		synctest.Wait()
		cancel()
		if err := <-done; err != context.Canceled {
			t.Fatalf("Wait cancelled while waiting = %v, want ctx.Err() itself", err)
		}
	})
}

func TestTierLimiterWaitErrorsNameTheTier(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewTierLimiter(map[string]Limit{
			"local":    {RatePerSecond: 1, Burst: 0},
			"frontier": {RatePerSecond: 1, Burst: 1},
		})
		err := l.Wait(t.Context(), "local")
		if !errors.Is(err, ErrNeverAvailable) || !strings.Contains(err.Error(), `"local"`) {
			t.Fatalf("Wait with burst 0 = %v, want ErrNeverAvailable naming tier \"local\"", err)
		}

		l.Allow("frontier")
		ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		defer cancel()
		err = l.Wait(ctx, "frontier")
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `"frontier"`) {
			t.Fatalf("Wait for a token due after the deadline = %v, want context.DeadlineExceeded naming tier \"frontier\"", err)
		}
	})
}
