package membus

import (
	"log/slog"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
)

// DefaultMaxPayload is the largest message a connection accepts unless
// WithMaxPayload says otherwise; it is the NATS server default.
const DefaultMaxPayload = bus.DefaultMaxPayload

// Option configures one connection made by New or Connect.
type Option func(*options)

type options struct {
	logger     *slog.Logger
	observers  []event.Observer
	onErr      bus.ErrorHandler
	maxPayload int
	zeroCopy   bool
}

func newOptions(opts []Option) options {
	o := options{maxPayload: DefaultMaxPayload}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	return o
}

// WithLogger sets the logger for the connection's events: bus.slow_consumer
// (warn, once per episode, with the subscription's drop count so far as
// dropped), bus.no_subscriber (debug), bus.handler_panic (error, with the
// stack), bus.handler_error (warn, only when no error handler is set),
// each with the attribute subject, and bus.closed (debug, with the
// attribute error) when Close or Drain closes the connection. An
// in-process connection is never lost, so there is no bus.disconnected or
// bus.reconnected. The default, and nil, is slog.Default() as it is when
// New or Connect is called; pass slog.New(slog.DiscardHandler) to silence
// the connection.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithObserver adds an observer of the connection's events (see package
// event), as heddle.WithObserver does for an actor; it may be given more
// than once. A panicking observer is recovered and counted.
func WithObserver(o event.Observer) Option {
	return func(opts *options) {
		if o != nil {
			opts.observers = append(opts.observers, o)
		}
	}
}

// WithErrorHandler sets the handler for the connection's asynchronous errors:
// slow-consumer drops on its subscriptions (wrapping bus.ErrSlowConsumer),
// errors returned by its handlers and their recovered panics.
//
// The handler may be called concurrently: for a slow consumer on the
// goroutine that published the dropped message (possibly another
// connection's), for a handler error or panic on the subscription's
// goroutine. It must be quick and must not block; it may call the bus.
func WithErrorHandler(h bus.ErrorHandler) Option {
	return func(o *options) { o.onErr = h }
}

// WithMaxPayload sets the largest message (bus.Msg.Size) the connection
// publishes; larger ones are rejected with an error wrapping
// bus.ErrMaxPayload. Values <= 0 keep DefaultMaxPayload.
func WithMaxPayload(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxPayload = n
		}
	}
}

// WithZeroCopyPublish makes the connection's Publish hand msg.Data and
// msg.Header over to the bus instead of copying them: subscribers receive
// the publisher's own slice and map, and the publisher must not modify
// either (nor the backing array of Data, nor the header's value slices)
// after Publish returns, just as after sending a []byte on a channel. The
// msg struct itself stays the publisher's.
//
// This spares a copy and an allocation of every payload, which is most of
// what a publish costs. It breaks the promise the bus otherwise keeps, as
// nats.go does, that a publisher may reuse its buffers once Publish
// returns; use it only where every publisher on the connection gives up its
// buffers. The actors of package heddle never change a payload or a header
// after publishing it (they publish freshly encoded buffers, or forward the
// read-only ones they received), so a connection that only they use may
// take this option.
//
// Only publishes made on this connection are affected; what subscribers may
// do with a delivered message is unchanged (see "Message ownership" in the
// package documentation).
func WithZeroCopyPublish() Option {
	return func(o *options) { o.zeroCopy = true }
}
