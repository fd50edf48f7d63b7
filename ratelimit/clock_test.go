package ratelimit

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFakeClockFiresDueTimersOnAdvance(t *testing.T) {
	clock := NewFakeClock(testStart)
	early := clock.NewTimer(time.Second)
	late := clock.NewTimer(3 * time.Second)
	stopped := clock.NewTimer(time.Second)
	if !stopped.Stop() {
		t.Fatal("Stop on a pending timer reported false")
	}

	clock.Advance(2 * time.Second)
	select {
	case got := <-early.C():
		if want := testStart.Add(2 * time.Second); !got.Equal(want) {
			t.Fatalf("timer delivered %v, want the clock's time %v", got, want)
		}
	default:
		t.Fatal("a due timer did not fire")
	}
	select {
	case <-late.C():
		t.Fatal("a timer fired before its time")
	case <-stopped.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	if early.Stop() {
		t.Fatal("Stop on a fired timer reported true")
	}
	if got := clock.PendingTimers(); got != 1 {
		t.Fatalf("PendingTimers = %d, want 1", got)
	}
	clock.Advance(-time.Hour)
	if got := clock.Now(); !got.Equal(testStart.Add(2 * time.Second)) {
		t.Fatalf("a negative Advance moved the clock to %v", got)
	}
}

func TestFakeClockTimerWithNoDurationHasFired(t *testing.T) {
	var clock FakeClock
	select {
	case <-clock.NewTimer(0).C():
	default:
		t.Fatal("a zero-duration timer had not fired")
	}
}

func TestFakeClockBlockUntilTimersHonoursContext(t *testing.T) {
	clock := NewFakeClock(testStart)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := clock.BlockUntilTimers(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("BlockUntilTimers with an ended context = %v", err)
	}
	if err := clock.BlockUntilTimers(ctx, 0); err != nil {
		t.Fatalf("BlockUntilTimers(0) = %v", err)
	}
}
