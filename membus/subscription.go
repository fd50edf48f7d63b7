package membus

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
)

// msgBatch is the most *bus.Msg values the delivery goroutine allocates at
// once, in one array. A handler that keeps its *bus.Msg keeps that array,
// and the messages it refers to, reachable: at most msgBatch-1 neighbours.
const msgBatch = 16

// Subscription states. They only move forward: active → draining → closed,
// or active → closed.
const (
	subActive = iota
	subDraining
	subClosed
)

// envelope is one pending delivery: the message's parts, shared by every
// subscription that receives it, and the size it counts against the
// pending-bytes limit. The *bus.Msg values are built on the delivering
// goroutine, up to msgBatch at a time, which keeps their allocation off the
// publisher's path and gives each handler a Msg of its own.
type envelope struct {
	subject string
	reply   string
	header  bus.Header
	data    []byte
	size    int64
}

// cacheLinePad keeps fields written by different goroutines on different
// cache lines.
type cacheLinePad [64]byte

// subscription implements bus.Subscription. Publishers push onto the
// pending queue under mu; the subscription's goroutine takes what is
// pending under mu once per batch and hands the messages to the handler one
// by one, in order, without the lock.
//
// The pending counts are enqueued minus handled: publishers count what they
// enqueued (under mu), the goroutine counts what it handled (atomically,
// only it writes). Publishers read the goroutine's counts only when their
// last reading says a limit is reached; since those counts only grow, an
// old reading can only overstate what is pending, and the limit is checked
// again against a fresh one before a message is dropped.
type subscription struct {
	// Set when the subscription is created, read-only afterwards.
	conn     *Bus
	subject  string
	queue    string
	wildcard bool
	handler  bus.Handler
	maxMsgs  int64
	maxBytes int64
	ctx      context.Context // handed to the handler; cancelled by Unsubscribe and Close
	cancel   context.CancelFunc
	done     chan struct{} // closed when the delivery goroutine has returned
	wake     chan struct{} // one token per park; capacity 1
	// closed mirrors state == subClosed, so the goroutine notices an
	// Unsubscribe between two messages of a batch without locking.
	closed atomic.Bool

	_ cacheLinePad

	// Publisher side, guarded by mu.
	mu      sync.Mutex
	state   int
	parked  bool         // the goroutine waits on wake for a message or a state change
	onPark  func()       // tests: called under mu each time the goroutine parks
	slow    bool         // the last message offered was dropped (one report per episode)
	pending pendingQueue // read by the goroutine's pendingReader
	// enqMsgs and enqBytes count what was ever enqueued; seenMsgs and
	// seenBytes are the last reading of handledMsgs and handledBytes.
	enqMsgs   int64
	enqBytes  int64
	seenMsgs  int64
	seenBytes int64
	dropped   atomic.Int64

	_ cacheLinePad

	// Delivery side, written only by the subscription's goroutine after
	// each handler call: the messages and bytes handled so far. Pending
	// messages are those enqueued and not yet handled, the one being
	// handled included, as nats.go counts them.
	handledMsgs  atomic.Int64
	handledBytes atomic.Int64

	_ cacheLinePad
}

func newSubscription(b *Bus, subject string, o bus.SubscribeOptions, h bus.Handler) *subscription {
	ctx, cancel := context.WithCancel(context.Background())
	return &subscription{
		conn:     b,
		subject:  subject,
		queue:    o.Queue,
		wildcard: bus.HasWildcard(subject),
		handler:  h,
		maxMsgs:  int64(o.PendingMsgs),
		maxBytes: int64(o.PendingBytes),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
	}
}

// Subject implements bus.Subscription.
func (s *subscription) Subject() string { return s.subject }

// Queue implements bus.Subscription.
func (s *subscription) Queue() string { return s.queue }

// Pending implements bus.Pender: the messages enqueued and not yet
// handled, the one being handled included.
func (s *subscription) Pending() (msgs, bytes int) {
	s.mu.Lock()
	em, eb := s.enqMsgs, s.enqBytes
	s.mu.Unlock()
	return int(max(em-s.handledMsgs.Load(), 0)), int(max(eb-s.handledBytes.Load(), 0))
}

// Dropped implements bus.Subscription.
func (s *subscription) Dropped() int { return int(s.dropped.Load()) }

// Unsubscribe implements bus.Subscription. It must not be called from the
// subscription's own handler, since it waits for that handler to return.
// On a subscription already closed (by Unsubscribe, Drain or the
// connection's Close) it returns an error wrapping bus.ErrClosed.
func (s *subscription) Unsubscribe() error {
	if !s.stop() {
		return fmt.Errorf("membus: unsubscribe from %q: %w", s.subject, bus.ErrClosed)
	}
	s.conn.broker.remove(s)
	<-s.done
	return nil
}

// Drain implements bus.Subscription: the subscription stops receiving at
// once, and Drain returns when the handler has processed every message
// already pending. If ctx ends first, the rest is discarded, the handler's
// context is cancelled and Drain returns ctx.Err() without waiting for the
// handler (the connection's Close waits for it). It must not be called from
// the subscription's own handler.
func (s *subscription) Drain(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("membus: drain %q: %w", s.subject, bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.beginDrain() {
		return fmt.Errorf("membus: drain %q: %w", s.subject, bus.ErrClosed)
	}
	s.conn.broker.remove(s)
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.stop()
		return ctx.Err()
	}
}

// beginDrain moves an active subscription to draining; it reports false if
// the subscription was not active.
func (s *subscription) beginDrain() bool {
	s.mu.Lock()
	if s.state != subActive {
		s.mu.Unlock()
		return false
	}
	s.state = subDraining
	s.wakeLocked()
	return true
}

// stop closes the subscription without waiting: pending messages are
// discarded and the handler's context is cancelled. It reports false if the
// subscription was already closed.
func (s *subscription) stop() bool {
	s.mu.Lock()
	if s.state == subClosed {
		s.mu.Unlock()
		return false
	}
	s.state = subClosed
	s.closed.Store(true)
	s.dropQueueLocked()
	s.wakeLocked()
	s.cancel()
	return true
}

// wakeLocked releases s.mu and wakes the goroutine if it is parked. Only
// the caller that clears parked sends, so the send never blocks.
func (s *subscription) wakeLocked() {
	wake := s.parked
	s.parked = false
	s.mu.Unlock()
	if wake {
		s.wake <- struct{}{}
	}
}

// dropQueueLocked lets go of the pending messages once the subscription
// is closed; the goroutine drops its own references when it returns.
func (s *subscription) dropQueueLocked() {
	s.pending.reset()
}

// enqueue offers one message to the subscription, on the publisher's
// goroutine. It never blocks on the handler: when the pending limits are
// reached the message is dropped and counted, and the first drop of an
// episode is logged and reported.
func (s *subscription) enqueue(e *envelope) {
	s.mu.Lock()
	if s.state != subActive {
		s.mu.Unlock()
		return
	}
	if s.enqMsgs-s.seenMsgs >= s.maxMsgs || s.enqBytes-s.seenBytes+e.size > s.maxBytes {
		s.seenMsgs, s.seenBytes = s.handledMsgs.Load(), s.handledBytes.Load()
		if msgs, bytes := s.enqMsgs-s.seenMsgs, s.enqBytes-s.seenBytes; msgs >= s.maxMsgs || bytes+e.size > s.maxBytes {
			s.dropped.Add(1)
			first := !s.slow
			s.slow = true
			s.mu.Unlock()
			s.conn.stats.slowConsumerDropped.Add(1)
			if first {
				s.reportSlow(msgs, bytes)
			}
			return
		}
	}
	s.slow = false
	s.pending.push(*e)
	s.enqMsgs++
	s.enqBytes += e.size
	s.wakeLocked()
}

func (s *subscription) reportSlow(pendMsgs, pendBytes int64) {
	err := fmt.Errorf("membus: subscription on %q: %w: pending limit of %d messages or %d bytes reached",
		s.subject, bus.ErrSlowConsumer, s.maxMsgs, s.maxBytes)
	s.conn.log.Emit(context.Background(), slog.LevelWarn, event.Event{Name: event.BusSlowConsumer, Subject: s.subject, Err: err},
		slog.String("subject", s.subject), slog.String("queue", s.queue), slog.Int64("pending_msgs", pendMsgs),
		slog.Int64("pending_bytes", pendBytes), slog.Int64("dropped", s.dropped.Load()))
	s.conn.report(s.subject, err)
}

// run is the subscription's delivery goroutine. It learns how many
// messages are pending under mu, then delivers them without the lock.
func (s *subscription) run() {
	defer s.conn.wg.Done()
	defer s.finish()
	var (
		queue        pendingReader
		handled      int64
		handledBytes int64
		msgs         []bus.Msg // Msg values not yet handed out
	)
	for {
		s.mu.Lock()
		n := 0
		if s.state != subClosed {
			n = queue.take(&s.pending)
		}
		for n == 0 && s.state == subActive {
			s.pending.shrink()
			s.parked = true
			if s.onPark != nil {
				s.onPark()
			}
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
			if s.state != subClosed {
				n = queue.take(&s.pending)
			}
		}
		if n == 0 || s.state == subClosed {
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for i := range n {
			if len(msgs) == 0 {
				msgs = make([]bus.Msg, min(n-i, msgBatch))
			}
			m := &msgs[0]
			msgs = msgs[1:]
			e := queue.next()
			m.Subject, m.Reply, m.Header, m.Data = e.subject, e.reply, e.header, e.data
			if s.closed.Load() {
				return
			}
			s.deliver(m)
			handled++
			handledBytes += e.size
			s.handledBytes.Store(handledBytes)
			s.handledMsgs.Store(handled)
		}
	}
}

// finish marks the subscription closed once its goroutine stops, so that
// later calls on it report bus.ErrClosed.
func (s *subscription) finish() {
	s.mu.Lock()
	s.state = subClosed
	s.closed.Store(true)
	s.dropQueueLocked()
	s.mu.Unlock()
	s.cancel()
	s.conn.forget(s)
	close(s.done)
}

// deliver calls the handler for one message, turning an error or a panic
// into a report; the subscription goes on either way.
func (s *subscription) deliver(m *bus.Msg) {
	s.conn.stats.delivered.Add(1)
	defer func() {
		if r := recover(); r != nil {
			s.conn.stats.handlerPanics.Add(1)
			err := fmt.Errorf("membus: handler for %q panicked: %v", s.subject, r)
			s.conn.log.Error("bus.handler_panic", "subject", s.subject, "queue", s.queue,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			s.conn.report(s.subject, err)
		}
	}()
	if err := s.handler(s.ctx, m); err != nil {
		s.conn.stats.handlerErrors.Add(1)
		err = fmt.Errorf("membus: handler for %q: %w", s.subject, err)
		if s.conn.onErr == nil {
			s.conn.log.Warn("bus.handler_error", "subject", s.subject, "queue", s.queue, "error", err)
		}
		s.conn.report(s.subject, err)
	}
}
