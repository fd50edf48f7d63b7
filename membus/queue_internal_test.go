package membus

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/heddle-go/heddle/bus"
)

// TestQueueMemoryFollowsThePendingLimit floods a subscription whose handler
// is stuck, checks that its queue then holds exactly the pending limit (the
// message being handled included) in slices of at most twice that, and,
// once the flood is delivered and the subscription waits again, that the
// queue has let go of the burst's slices.
func TestQueueMemoryFollowsThePendingLimit(t *testing.T) {
	const (
		limit = 5000
		flood = 3 * limit
	)
	ctx := context.Background()
	b := New(WithLogger(slog.New(slog.DiscardHandler)))
	t.Cleanup(func() { _ = b.Close() })
	started := make(chan struct{})
	release := make(chan struct{})
	handled := make(chan struct{}, limit)
	sub, err := b.Subscribe(ctx, "flood", func(ctx context.Context, m *bus.Msg) error {
		if string(m.Data) == "block" {
			close(started)
			<-release
		}
		handled <- struct{}{}
		return nil
	}, bus.PendingLimits(limit, 0))
	if err != nil {
		t.Fatal(err)
	}
	s := sub.(*subscription)
	publish := func(data string) {
		t.Helper()
		if err := b.Publish(ctx, &bus.Msg{Subject: "flood", Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	publish("block")
	waitFor(t, started, "the handler to block")
	for i := range flood {
		publish(strconv.Itoa(i))
	}
	s.mu.Lock()
	queued, capacity := s.pending.queued()
	s.mu.Unlock()
	if queued != limit-1 {
		t.Errorf("flooded: %d messages queued besides the one being handled, want %d", queued, limit-1)
	}
	if capacity > 2*limit {
		t.Errorf("flooded: the queue's slices have room for %d messages, want at most %d", capacity, 2*limit)
	}
	if got := s.Dropped(); got != flood-(limit-1) {
		t.Errorf("Dropped() = %d, want %d", got, flood-(limit-1))
	}

	close(release)
	for i := range limit {
		waitFor(t, handled, "message "+strconv.Itoa(i))
	}
	// Once the flood is handled the goroutine parks, trimming the queue
	// first; onPark says when.
	parkedNow := make(chan struct{}, 1)
	s.mu.Lock()
	if s.parked {
		parkedNow <- struct{}{}
	} else {
		s.onPark = func() {
			select {
			case parkedNow <- struct{}{}:
			default:
			}
		}
	}
	s.mu.Unlock()
	waitFor(t, parkedNow, "the subscription to wait again after delivering the flood")
	s.mu.Lock()
	queued, capacity = s.pending.queued()
	s.mu.Unlock()
	if queued != 0 || capacity > keepIdle {
		t.Errorf("idle after the flood: the queue holds %d messages and keeps room for %d, want none and at most %d", queued, capacity, keepIdle)
	}
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
