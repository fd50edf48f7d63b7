// Package membus is an in-process bus.Bus with the semantics of core NATS:
// subject wildcards, queue groups, per-subscription pending limits, max
// payload. Use it in tests, examples and single-process deployments; it
// passes the same conformance suite (contracttest.TestBus) as natsbus.
//
// # Connections and brokers
//
// New creates a broker (the in-process counterpart of a NATS server) and
// returns a first connection to it; (*Bus).Connect opens further
// connections to the same broker. Connections see each other's messages;
// each has its own options, statistics and subscriptions, and closing one
// leaves the others working. The broker has no goroutines of its own and
// lives as long as a connection refers to it.
//
//	b := membus.New(membus.WithLogger(logger))
//	worker := b.Connect(membus.WithErrorHandler(onErr))
//
// # Delivery semantics
//
// Delivery is at-most-once, exactly as with core NATS; nothing is stored
// or retried. A published message is lost, and Publish still succeeds,
// when:
//
//   - no subscription matches its subject when Publish runs (counted in
//     Stats.NoSubscriber, logged at debug level as bus.no_subscriber);
//   - a matching subscription already holds its pending limit of messages
//     or bytes because its handler is slow (counted in Subscription.Dropped
//     and Stats.SlowConsumerDropped; the first drop of each episode is
//     logged as bus.slow_consumer and reported to the subscribing
//     connection's error handler with an error wrapping bus.ErrSlowConsumer);
//   - the subscription is closed (Unsubscribe, Close, or a Drain whose
//     context ends) before its handler gets to the message;
//   - the process exits.
//
// Routing happens inside Publish: when Publish returns, the message sits in
// the pending queue of every subscription that will receive it (or was
// dropped), so Flush has nothing to wait for. Publish never blocks on a
// subscriber. A subscription is live as soon as Subscribe returns.
// Messages from one publishing goroutine reach each subscription in publish
// order; each subscription calls its handler on one goroutine, never
// concurrently with itself. Each message goes to every plain subscription
// and to one member, chosen at random, of each queue group.
//
// # Message ownership
//
// By default Publish copies msg.Data and msg.Header once, so the publisher
// may reuse them as soon as Publish returns, as with nats.go. Each copy is
// an allocation of its own, freed once no handler keeps the message.
//
// A connection made with WithZeroCopyPublish copies nothing: its Publish
// hands msg.Data and msg.Header themselves over to the subscribers, and the
// publisher must not modify them afterwards, as after sending a []byte on
// a channel. Copying each payload is most of what a publish costs; this
// option removes it where publishers give up their buffers anyway. The
// actors of package heddle do: they never reuse a buffer after publishing
// it.
//
// Either way, each handler call gets a *bus.Msg of its own, but every
// subscription that receives the message shares its Data and Header:
// handlers must treat them as read-only (copy before changing) and may keep
// them, and the *bus.Msg, after they return. The *bus.Msg values of
// consecutive deliveries are allocated together, up to 16 at a time, so a
// handler that keeps its *bus.Msg also keeps its neighbours' in memory,
// with what they refer to.
//
// # Closing
//
// Drain stops delivery to the connection's subscriptions, waits until
// their handlers have processed what was pending and closes the connection;
// Publish still works while it waits, so handlers can publish their
// results. Close discards pending messages, cancels handler contexts and
// waits for running handlers to return. Neither may be called from one of
// the connection's own handlers, since they wait for those handlers. Once
// either has closed the connection, Done is closed and Err says which
// (bus.Closer), so actors on the connection return from Run.
package membus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/emit"
)

// Connection states; they only move forward.
const (
	stateOpen int32 = iota
	stateDraining
	stateClosed
)

// Bus is one connection to an in-process broker. It implements bus.Bus and
// is safe for concurrent use.
type Bus struct {
	broker     *broker
	log        *emit.Emitter
	onErr      bus.ErrorHandler
	maxPayload int
	zeroCopy   bool

	state atomic.Int32
	mu    sync.Mutex                 // guards subs and state changes
	subs  map[*subscription]struct{} // subscriptions whose goroutine runs
	wg    sync.WaitGroup             // counts those goroutines

	stats counters
	kept  bus.Values

	// done is closed once the connection has closed; why is written just
	// before and says how (bus.Closer).
	done     chan struct{}
	doneOnce sync.Once
	why      error
}

var (
	_ bus.Bus    = (*Bus)(nil)
	_ bus.Keeper = (*Bus)(nil)
	_ bus.Closer = (*Bus)(nil)
)

// Keep implements bus.Keeper: each connection keeps its own values.
func (b *Bus) Keep(key any, create func() any) any { return b.kept.Keep(key, create) }

// New creates a broker and returns a first connection to it.
func New(opts ...Option) *Bus {
	return newConn(newBroker(), opts)
}

// Connect opens another connection to the broker b is connected to. The
// new connection takes only opts (nothing is inherited from b). Connect
// works even after b is closed, as long as the broker is reachable through
// b.
func (b *Bus) Connect(opts ...Option) *Bus {
	return newConn(b.broker, opts)
}

func newConn(br *broker, opts []Option) *Bus {
	o := newOptions(opts)
	return &Bus{
		broker:     br,
		log:        emit.New(emit.Config{Logger: o.logger, Actor: "membus", Observers: o.observers}),
		onErr:      o.onErr,
		maxPayload: o.maxPayload,
		zeroCopy:   o.zeroCopy,
		subs:       map[*subscription]struct{}{},
		done:       make(chan struct{}),
	}
}

// Done implements bus.Closer: the channel is closed once Close or Drain
// has closed the connection.
func (b *Bus) Done() <-chan struct{} { return b.done }

// Err implements bus.Closer: nil while the connection is open or
// draining; once Done is closed, an error wrapping bus.ErrClosed that says
// which call closed it.
func (b *Bus) Err() error {
	select {
	case <-b.done:
		return b.why
	default:
		return nil
	}
}

// markClosed records that the connection has closed and how, once.
func (b *Bus) markClosed(how string) {
	b.doneOnce.Do(func() {
		b.why = fmt.Errorf("membus: connection closed by %s: %w", how, bus.ErrClosed)
		b.log.Emit(context.Background(), slog.LevelDebug, event.Event{Name: event.BusClosed, Reason: "closed", Err: b.why},
			slog.Any("error", b.why))
		close(b.done)
	})
}

// Publish implements bus.Bus. It routes msg to every matching subscription
// before it returns, never waiting for a handler. It fails with an error
// wrapping bus.ErrBadSubject, bus.ErrMaxPayload or bus.ErrClosed, or with
// ctx.Err(); a message no subscription matches is dropped without error.
// Publish keeps working while the connection drains. It copies msg.Data
// and msg.Header, unless the connection was made with WithZeroCopyPublish
// (see "Message ownership" in the package documentation).
func (b *Bus) Publish(ctx context.Context, msg *bus.Msg) error {
	if msg == nil {
		return errors.New("membus: publish: nil message")
	}
	if b.state.Load() == stateClosed {
		return fmt.Errorf("membus: publish to %q: %w", msg.Subject, bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	size := len(msg.Data)
	if len(msg.Header) > 0 {
		size = msg.Size()
	}
	if size > b.maxPayload {
		if err := bus.ValidatePublishSubject(msg.Subject); err != nil {
			return fmt.Errorf("membus: publish: %w", err)
		}
		return fmt.Errorf("membus: publish to %q: %w: message is %d bytes, the limit is %d",
			msg.Subject, bus.ErrMaxPayload, size, b.maxPayload)
	}
	// The route lookup comes before validation: a subject the table knows
	// was validated when it got there.
	r, known := b.broker.tab.Load().lookup(msg.Subject)
	if !known {
		if err := bus.ValidatePublishSubject(msg.Subject); err != nil {
			return fmt.Errorf("membus: publish: %w", err)
		}
	}
	if msg.Reply != "" {
		if err := bus.ValidatePublishSubject(msg.Reply); err != nil {
			return fmt.Errorf("membus: publish: reply: %w", err)
		}
	}
	b.stats.published.Add(1)
	if r.empty() {
		b.stats.noSubscriber.Add(1)
		if b.log.Enabled(ctx, slog.LevelDebug, event.BusNoSubscriber) {
			b.log.Emit(ctx, slog.LevelDebug, event.Event{Name: event.BusNoSubscriber, Subject: msg.Subject},
				slog.String("subject", msg.Subject))
		}
		if msg.Reply != "" {
			// As the NATS server does: a status message on the reply
			// subject, to whoever listens there.
			return b.Publish(ctx, &bus.Msg{Subject: msg.Reply, Header: bus.Header{bus.StatusHeader: {bus.StatusNoResponders}}})
		}
		return nil
	}
	e := envelope{subject: msg.Subject, reply: msg.Reply, header: msg.Header, data: msg.Data, size: int64(size)}
	if !b.zeroCopy {
		e.header = msg.Header.Clone()
		// Clipped: every subscription shares the copy, so one appending
		// to it must not write where another could.
		e.data = slices.Clip(bytes.Clone(msg.Data))
	}
	for _, s := range r.plain {
		s.enqueue(&e)
	}
	for i := range r.groups {
		r.groups[i].pick().enqueue(&e)
	}
	return nil
}

// Subscribe implements bus.Bus. The subscription is live when Subscribe
// returns: every publish that starts afterwards, on any connection of the
// broker, reaches it. It fails with an error wrapping bus.ErrBadSubject,
// bus.ErrBadQueue or bus.ErrClosed (also while the connection drains), or
// with ctx.Err().
func (b *Bus) Subscribe(ctx context.Context, subject string, h bus.Handler, opts ...bus.SubscribeOption) (bus.Subscription, error) {
	if b.state.Load() != stateOpen {
		return nil, fmt.Errorf("membus: subscribe to %q: %w", subject, bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := bus.ValidateSubscribeSubject(subject); err != nil {
		return nil, fmt.Errorf("membus: subscribe: %w", err)
	}
	if h == nil {
		return nil, fmt.Errorf("membus: subscribe to %q: nil handler", subject)
	}
	o, err := bus.NewSubscribeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("membus: subscribe to %q: %w", subject, err)
	}
	s := newSubscription(b, subject, o, h)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state.Load() != stateOpen {
		s.cancel()
		return nil, fmt.Errorf("membus: subscribe to %q: %w", subject, bus.ErrClosed)
	}
	b.subs[s] = struct{}{}
	b.wg.Add(1)
	go s.run()
	b.broker.add(s)
	return s, nil
}

// Flush implements bus.Bus. Publish routes synchronously, so Flush only
// reports bus.ErrClosed or ctx.Err().
func (b *Bus) Flush(ctx context.Context) error {
	if b.state.Load() == stateClosed {
		return fmt.Errorf("membus: flush: %w", bus.ErrClosed)
	}
	return ctx.Err()
}

// Drain implements bus.Bus: every subscription of the connection stops
// receiving at once, Drain waits until their handlers have processed what
// was pending, then closes the connection. Publish works until then.
// If ctx ends first, Drain closes the connection without waiting (pending
// messages are discarded, handler contexts cancelled) and returns
// ctx.Err(); a later Close waits for the handlers. A Drain whose ctx is
// already done does nothing and returns ctx.Err().
func (b *Bus) Drain(ctx context.Context) error {
	if b.state.Load() != stateOpen {
		return fmt.Errorf("membus: drain: %w", bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	if b.state.Load() != stateOpen {
		b.mu.Unlock()
		return fmt.Errorf("membus: drain: %w", bus.ErrClosed)
	}
	b.state.Store(stateDraining)
	subs := b.liveSubs()
	b.mu.Unlock()

	b.broker.remove(subs...)
	for _, s := range subs {
		s.beginDrain()
	}
	for _, s := range subs {
		select {
		case <-s.done:
		case <-ctx.Done():
			b.shutdown(subs)
			b.markClosed("Drain, whose context ended before its handlers had finished")
			return ctx.Err()
		}
	}
	b.state.Store(stateClosed)
	b.wg.Wait()
	b.markClosed("Drain")
	return nil
}

// Close implements bus.Bus: pending messages are discarded, handler
// contexts are cancelled, and Close returns when every handler of the
// connection has returned and every goroutine it started has stopped; Done
// is closed by then. Close is idempotent: it returns nil every time, also
// after Drain.
func (b *Bus) Close() error {
	b.mu.Lock()
	b.state.Store(stateClosed)
	subs := b.liveSubs()
	b.mu.Unlock()
	b.shutdown(subs)
	b.wg.Wait()
	b.markClosed("Close")
	return nil
}

// liveSubs returns the subscriptions whose goroutine is still running,
// draining ones included. Called with b.mu held.
func (b *Bus) liveSubs() []*subscription {
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	return subs
}

// shutdown closes the connection and its subscriptions without waiting.
func (b *Bus) shutdown(subs []*subscription) {
	b.state.Store(stateClosed)
	b.broker.remove(subs...)
	for _, s := range subs {
		s.stop()
	}
}

// forget drops a subscription whose goroutine has stopped.
func (b *Bus) forget(s *subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// report hands an asynchronous error to the error handler, if any.
func (b *Bus) report(subject string, err error) {
	if b.onErr != nil {
		b.onErr(subject, err)
	}
}
