package ratelimit

import (
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestReserveTakesATokenAvailableNowDueAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewTierLimiter(map[string]Limit{"local": {RatePerSecond: 1, Burst: 2}})
		now := time.Now()
		for i := range 2 {
			r, ok := l.Reserve("local", time.Minute)
			if !ok || !r.Due().Equal(now) {
				t.Fatalf("reservation %d: due %v, ok %v; want a token due now", i, r.Due().Sub(now), ok)
			}
		}
		if got, _ := l.Tokens("local"); got != 0 {
			t.Fatalf("after two reservations of a burst of 2 the bucket holds %v tokens, want 0", got)
		}
	})
}

func TestReserveIsDueWhenTheTokenRefillsAndRefusesBeyondTheMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewTierLimiter(map[string]Limit{"local": {RatePerSecond: 2, Burst: 1}}) // one token per 500ms
		start := time.Now()
		l.Allow("local")
		var due []time.Duration
		for {
			r, ok := l.Reserve("local", time.Second)
			if !ok {
				break
			}
			due = append(due, r.Due().Sub(start))
		}
		if want := []time.Duration{500 * time.Millisecond, time.Second}; !slices.Equal(due, want) {
			t.Fatalf("reservations with a maximum wait of 1s due after %v, want %v", due, want)
		}
		// The refusal took nothing: with a longer wait, the next token is
		// the one after the two reserved, not one after a lost token.
		if got, _ := l.Tokens("local"); got != -2 {
			t.Fatalf("after a refused reservation the bucket holds %v tokens, want -2 (two reserved)", got)
		}
		r, ok := l.Reserve("local", 2*time.Second)
		if !ok || r.Due().Sub(start) != 1500*time.Millisecond {
			t.Fatalf("the next reservation is due after %v (ok %v), want 1.5s", r.Due().Sub(start), ok)
		}
	})
}

func TestReserveWithoutARefillOrAMaxWaitOnlyTakesATokenAvailableNow(t *testing.T) {
	tests := []struct {
		name    string
		limit   Limit
		maxWait time.Duration
		granted int // of 5 reservations at once
	}{
		{"no maximum wait is Allow", Limit{RatePerSecond: 1000, Burst: 2}, 0, 2},
		{"a negative maximum wait is Allow", Limit{RatePerSecond: 1000, Burst: 2}, -time.Second, 2},
		{"rate zero never refills", Limit{Burst: 2}, time.Hour, 2},
		{"burst zero grants nothing", Limit{RatePerSecond: 1000}, time.Hour, 0},
		{"an unlimited rate grants everything", Limit{RatePerSecond: math.Inf(1)}, 0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := NewTierLimiter(map[string]Limit{"local": tt.limit})
				granted := 0
				for range 5 {
					r, ok := l.Reserve("local", tt.maxWait)
					if ok {
						granted++
						if !r.Due().Equal(time.Now()) {
							t.Fatalf("a reservation is due in %v, want at once", time.Until(r.Due()))
						}
					}
				}
				if granted != tt.granted {
					t.Fatalf("%d of 5 reservations granted, want %d", granted, tt.granted)
				}
			})
		})
	}
}

func TestReserveGrantsATierWithoutALimitAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, l := range []*TierLimiter{NewTierLimiter(map[string]Limit{"local": {}}), {}} {
			r, ok := l.Reserve("standard", 0)
			if !ok || !r.Due().Equal(time.Now()) {
				t.Fatalf("a tier without a limit: due in %v, ok %v; want at once", time.Until(r.Due()), ok)
			}
			r.Cancel() // nothing to hand back; must not panic
		}
	})
}

func TestCancelledReservationsGiveTheirTokensBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewTierLimiter(map[string]Limit{"local": {RatePerSecond: 2, Burst: 1}})
		start := time.Now()
		now, _ := l.Reserve("local", time.Minute) // the one token, at once
		var held []Reservation
		for range 3 {
			r, ok := l.Reserve("local", time.Minute)
			if !ok {
				t.Fatal("a reservation within the maximum wait was refused")
			}
			held = append(held, r)
		}
		// Latest first: each is then the last reserved, whole to restore.
		for _, r := range slices.Backward(held) {
			r.Cancel()
		}
		now.Cancel() // taken at once: spent
		if got, _ := l.Tokens("local"); got != 0 {
			t.Fatalf("after cancelling the 3 reservations due later the bucket holds %v tokens, want 0", got)
		}
		r, ok := l.Reserve("local", time.Minute)
		if !ok || r.Due().Sub(start) != 500*time.Millisecond {
			t.Fatalf("the next reservation is due after %v (ok %v), want 500ms: the cancelled tokens handed back", r.Due().Sub(start), ok)
		}
	})
}

func TestCancelAfterTheTokenIsDueKeepsItSpent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewTierLimiter(map[string]Limit{"local": {RatePerSecond: 1, Burst: 1}})
		l.Allow("local")
		r, ok := l.Reserve("local", time.Minute)
		if !ok {
			t.Fatal("a reservation within the maximum wait was refused")
		}
		advance(time.Until(r.Due()))
		r.Cancel()
		if got, _ := l.Tokens("local"); got != 0 {
			t.Fatalf("cancelling a reservation once due left %v tokens, want 0: the token was used", got)
		}
	})
}

func TestConcurrentReservationsAreDueOnePerRefill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewTierLimiter(map[string]Limit{"local": {RatePerSecond: 10, Burst: 1}})
		start := time.Now()
		const n = 20
		var mu sync.Mutex
		var due []time.Duration
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				r, ok := l.Reserve("local", time.Minute)
				if !ok {
					t.Error("a reservation within the maximum wait was refused")
					return
				}
				mu.Lock()
				due = append(due, r.Due().Sub(start))
				mu.Unlock()
			})
		}
		wg.Wait()
		slices.Sort(due)
		for i, d := range due {
			if want := time.Duration(i) * 100 * time.Millisecond; d != want {
				t.Fatalf("reservations due after %v, want one per 100ms from 0", due)
			}
		}
	})
}
