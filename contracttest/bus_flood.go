package contracttest

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/heddle-go/heddle/bus"
)

// The flood subtests' sizes: a pending limit small enough that nearly
// every message of the flood is dropped, and two waves, the first to start
// the drops and have them reported, the second to drop more after the
// report.
const (
	busFloodLimit = 10
	busFloodFirst = 200
	busFloodTotal = 1000
)

func busTestFloodSubscriptionDrain(h *busHarness) {
	busFlood(h, func(c *busConn, s bus.Subscription) {
		if err := s.Drain(h.ctx); err != nil {
			h.t.Fatalf("Subscription.Drain: %v", err)
		}
	})
}

func busTestFloodConnectionDrain(h *busHarness) {
	busFlood(h, func(c *busConn, _ bus.Subscription) { h.drain(c) })
}

// busFlood floods a subscription whose handler is stuck, ends it with end
// and checks that every message was either delivered or counted as
// dropped, exactly, and that Dropped still says so once the subscription
// is gone.
//
// One connection publishes and subscribes, so the order of its publishes,
// its Flush and its drain is the order in which the subscription sees
// them: when the second wave's Flush returns, every message has reached
// the subscription, while its handler is still stuck.
func busFlood(h *busHarness, end func(c *busConn, s bus.Subscription)) {
	c := h.connect()
	subject := h.subject("flood")
	gate := h.gate()
	started := make(chan struct{}, 1)
	var delivered atomic.Int64
	s := h.subscribe(c, subject, func(ctx context.Context, m *bus.Msg) error {
		if string(m.Data) == "0" {
			started <- struct{}{}
			gate.wait(ctx)
		}
		delivered.Add(1)
		return nil
	}, bus.PendingLimits(busFloodLimit, bus.DefaultPendingBytes))

	h.publish(c, subject, []byte("0"))
	busRecv(h.t, started, "the handler to start on message 0")
	h.publishIDsFrom(c, subject, 1, busFloodFirst)
	h.waitErr(c, "the slow-consumer report of the first wave", func(e busAsyncError) bool {
		return errors.Is(e.err, bus.ErrSlowConsumer)
	})
	// Nothing is accepted while the handler is stuck, so these drops
	// continue the episode already reported and bring no report of their
	// own: only the count says how many there were.
	h.publishIDsFrom(c, subject, busFloodFirst, busFloodTotal)
	gate.open()
	end(c, s)

	got, dropped := int(delivered.Load()), s.Dropped()
	if got+dropped != busFloodTotal {
		h.t.Errorf("delivered %d and Dropped() = %d after the subscription ended; want them to add up to the %d messages published",
			got, dropped, busFloodTotal)
	}
	if min := busFloodTotal - busFloodLimit - 1; dropped < min {
		h.t.Errorf("Dropped() = %d after the subscription ended; the handler was stuck through the flood, want at least %d", dropped, min)
	}
	if again := s.Dropped(); again != dropped {
		h.t.Errorf("Dropped() went from %d to %d on a subscription that had ended", dropped, again)
	}
}
