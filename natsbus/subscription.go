package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle/bus"
)

// Subscribe registers h for subject (wildcards allowed, within the bus's
// namespace, see WithSubjectPrefix), in a queue group if bus.Queue is
// given, and returns once the server has the interest: every message
// published afterwards, from any connection, that matches subject is
// delivered. Errors wrap bus.ErrBadSubject or bus.ErrBadQueue (subject and
// queue group name are checked with bus.ValidateSubscribeSubject and
// bus.ValidateQueue before anything reaches the server) or bus.ErrClosed;
// when ctx ends before the server confirmed the interest,
// the subscription is removed and ctx.Err() returned. With
// bus.LocalInterest it returns without that round trip: only this
// connection's later publishes, and the replies they cause, are then
// sure to find the interest.
//
// Messages wait in a pending buffer bounded by bus.PendingLimits (default
// bus.DefaultPendingMsgs and bus.DefaultPendingBytes; the message the
// handler is processing counts against them). When it is full, new
// messages are dropped and reported as bus.ErrSlowConsumer.
func (b *Bus) Subscribe(ctx context.Context, subject string, h bus.Handler, opts ...bus.SubscribeOption) (bus.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if b.closed.Load() {
		return nil, fmt.Errorf("natsbus: subscribe to %q: %w", subject, bus.ErrClosed)
	}
	if h == nil {
		return nil, fmt.Errorf("natsbus: subscribe to %q: nil handler", subject)
	}
	if err := bus.ValidateSubscribeSubject(subject); err != nil {
		return nil, fmt.Errorf("natsbus: subscribe: %w", err)
	}
	o, err := bus.NewSubscribeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("natsbus: subscribe to %q: %w", subject, err)
	}

	s := &subscription{b: b, subject: subject, queue: o.Queue, h: h, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if o.Queue == "" {
		s.ns, err = b.nc.Subscribe(b.wire(subject), s.deliver)
	} else {
		s.ns, err = b.nc.QueueSubscribe(b.wire(subject), o.Queue, s.deliver)
	}
	if err != nil {
		s.cancel()
		return nil, b.subscribeError(subject, err)
	}
	// The delivery goroutine calls this when it exits, which is how Drain
	// learns that the pending messages have been handled.
	s.ns.SetClosedHandler(func(string) { close(s.done) })
	if err := s.ns.SetPendingLimits(o.PendingMsgs, o.PendingBytes); err != nil {
		s.abort()
		return nil, b.subscribeError(subject, err)
	}
	if !b.register(s) {
		s.abort()
		return nil, fmt.Errorf("natsbus: subscribe to %q: %w", subject, bus.ErrClosed)
	}
	if o.LocalInterest {
		// The server reads this connection's SUB before any PUB it sends
		// later, so those publishes and their replies find the interest.
		return s, nil
	}
	if err := b.flush(ctx); err != nil {
		s.abort()
		b.unregister(s)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("natsbus: subscribe to %q: confirming interest with the server: %w", subject, err)
	}
	return s, nil
}

func (b *Bus) subscribeError(subject string, err error) error {
	switch {
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrBadSubscription):
		return fmt.Errorf("natsbus: subscribe to %q: %w", subject, bus.ErrClosed)
	case errors.Is(err, nats.ErrBadSubject):
		return fmt.Errorf("natsbus: subscribe to %q: %w: %w", subject, bus.ErrBadSubject, err)
	case errors.Is(err, nats.ErrBadQueueName):
		return fmt.Errorf("natsbus: subscribe to %q: %w: %w", subject, bus.ErrBadQueue, err)
	}
	return fmt.Errorf("natsbus: subscribe to %q: %w", subject, err)
}

// subscription is one NATS subscription and the handler it feeds.
type subscription struct {
	b  *Bus
	ns *nats.Subscription
	// subject is the logical subject, without the bus's prefix; ns has
	// the wire subject.
	subject string
	queue   string
	h       bus.Handler
	ctx     context.Context
	cancel  context.CancelFunc
	// done is closed by nats.go when the delivery goroutine has exited.
	done chan struct{}

	// mu is held while the handler runs, so stop can wait for it.
	mu      sync.Mutex
	stopped bool // guarded by mu

	// dropped is the highest drop count read from nats.go, which forgets
	// its count once the subscription is closed; see finalDrops and
	// deliver for how the last one is read in time.
	dropped  atomic.Int64
	stopOnce sync.Once
	// ended is set by the first Unsubscribe or Drain.
	ended atomic.Bool
	// draining is set when Drain begins; see deliver.
	draining atomic.Bool
}

var _ bus.Subscription = (*subscription)(nil)

// deliver runs on the subscription's nats.go delivery goroutine.
func (s *subscription) deliver(m *nats.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	msg := &bus.Msg{Subject: s.b.logical(m.Subject), Header: bus.Header(m.Header), Data: m.Data}
	if m.Reply != "" {
		msg.Reply = s.b.logical(m.Reply)
	}
	err := s.call(msg)
	if s.draining.Load() || s.b.draining.Load() {
		// A message is dropped only while others are pending (one larger
		// than the byte limit aside), and nats.go counts the message whose
		// handler runs as pending until the handler returns, so it cannot
		// close a draining subscription before this read: the last read
		// of a drain comes after its last drop.
		s.Dropped()
	}
	if err != nil {
		s.b.stats.handlerErrors.Add(1)
		err = fmt.Errorf("natsbus: handler for %q: %w", s.subject, err)
		if s.b.errh == nil {
			s.b.log.LogAttrs(s.ctx, slog.LevelWarn, "bus.handler_error",
				slog.String("subject", s.subject), slog.String("queue", s.queue), slog.Any("error", err))
		}
		s.b.report(s.subject, err)
	}
}

// call runs the handler, turning a panic into an error so the
// subscription keeps delivering.
func (s *subscription) call(msg *bus.Msg) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.panicked(r)
		}
	}()
	return s.h(s.ctx, msg)
}

func (s *subscription) panicked(r any) error {
	s.b.stats.handlerPanics.Add(1)
	s.b.log.LogAttrs(s.ctx, slog.LevelError, "bus.handler_panic",
		slog.String("subject", s.subject), slog.String("queue", s.queue),
		slog.String("panic", fmt.Sprint(r)), slog.String("stack", string(debug.Stack())))
	s.b.report(s.subject, fmt.Errorf("natsbus: handler for %q: %w: %v", s.subject, ErrHandlerPanic, r))
	return nil
}

func (s *subscription) Subject() string { return s.subject }
func (s *subscription) Queue() string   { return s.queue }

// Pending implements bus.Pender with nats.go's count; 0 once the
// subscription is closed.
func (s *subscription) Pending() (msgs, bytes int) {
	m, b, err := s.ns.Pending()
	if err != nil {
		return 0, 0
	}
	return m, b
}

// Dropped returns how many messages the subscription dropped because its
// pending limits were reached. The count never goes down, and after the
// subscription or the bus is closed it stays readable with its final
// value.
func (s *subscription) Dropped() int {
	if n, err := s.ns.Dropped(); err == nil {
		return s.recordDropped(int64(n))
	}
	return int(s.dropped.Load())
}

// recordDropped keeps n if it is the highest count read so far, so that
// of two concurrent reads the older cannot overwrite the newer.
func (s *subscription) recordDropped(n int64) int {
	for {
		old := s.dropped.Load()
		if n <= old {
			return int(old)
		}
		if s.dropped.CompareAndSwap(old, n) {
			return int(n)
		}
	}
}

// finalDrops reads the drop count for the last time before the
// subscription is closed at once. Lifting the pending limits first means
// nothing can be dropped between this read and the close; what arrives in
// between is discarded with the rest of the pending messages.
func (s *subscription) finalDrops() {
	_ = s.ns.SetPendingLimits(-1, -1)
	s.Dropped()
}

// Unsubscribe removes the interest at once, discards pending messages,
// cancels the handler's context and waits for a running handler to
// return. It returns an error wrapping bus.ErrClosed when the subscription
// was already unsubscribed or drained, or the bus is closed. It must not be
// called from the subscription's own handler.
func (s *subscription) Unsubscribe() error {
	if s.b.closed.Load() || !s.ended.CompareAndSwap(false, true) {
		return fmt.Errorf("natsbus: unsubscribe from %q: %w", s.subject, bus.ErrClosed)
	}
	err := s.remove()
	switch {
	case err == nil, errors.Is(err, nats.ErrBadSubscription):
		return nil
	case errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("natsbus: unsubscribe from %q: %w", s.subject, bus.ErrClosed)
	}
	return fmt.Errorf("natsbus: unsubscribe from %q: %w", s.subject, err)
}

// Drain removes the interest at the server, lets the handler process the
// messages already pending, and returns when it has. When ctx ends first
// the subscription is closed at once, its remaining messages discarded,
// and ctx.Err() returned. Like Unsubscribe, it returns an error wrapping
// bus.ErrClosed when the subscription was already unsubscribed or drained,
// or the bus is closed.
func (s *subscription) Drain(ctx context.Context) error {
	if s.b.closed.Load() || !s.ended.CompareAndSwap(false, true) {
		return fmt.Errorf("natsbus: drain %q: %w", s.subject, bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		s.remove()
		return err
	}
	s.draining.Store(true)
	s.Dropped()
	if err := s.ns.Drain(); err != nil {
		s.remove()
		switch {
		case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrBadSubscription):
			return fmt.Errorf("natsbus: drain %q: %w", s.subject, bus.ErrClosed)
		}
		return fmt.Errorf("natsbus: drain %q: %w", s.subject, err)
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		s.remove()
		return ctx.Err()
	}
	s.stop()
	s.b.unregister(s)
	return nil
}

// remove takes the subscription away at once: it stops the NATS
// subscription (discarding what is pending), waits for a running handler
// and forgets the subscription.
func (s *subscription) remove() error {
	s.finalDrops()
	err := s.ns.Unsubscribe()
	s.stop()
	s.b.unregister(s)
	return err
}

// abort undoes a Subscribe that failed after the NATS subscription was
// made.
func (s *subscription) abort() {
	s.ns.Unsubscribe()
	s.stop()
}

// stop cancels the handler's context, waits for a running handler to
// return and keeps any message still on its way from being handled.
func (s *subscription) stop() {
	s.stopOnce.Do(func() {
		s.cancel()
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
	})
}
