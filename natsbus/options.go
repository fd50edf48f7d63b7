package natsbus

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
)

// Defaults used by Connect when the matching option is not given. The
// timings are the nats.go defaults, which are also what Python Heddle's
// NATS adapter runs with, so a mixed Go/Python mesh reconnects on the same
// schedule. The reconnect budget is not: nats.go gives up after 60
// attempts (two minutes at the default wait) and closes the connection for
// good, and a mesh of long-running processes must outlast a longer NATS
// outage than that.
const (
	// DefaultURL is dialled when Connect is given an empty URL.
	DefaultURL = nats.DefaultURL
	// DefaultConnectTimeout bounds the dial and handshake of each attempt
	// to reach a server.
	DefaultConnectTimeout = nats.DefaultTimeout
	// DefaultReconnectWait is the pause between reconnect attempts to the
	// same server.
	DefaultReconnectWait = nats.DefaultReconnectWait
	// DefaultMaxReconnects is how many reconnect attempts are made after a
	// disconnect before the bus gives up and closes; negative means
	// without end.
	DefaultMaxReconnects = -1
)

// Option configures Connect or New.
type Option func(*options)

type options struct {
	logger         *slog.Logger
	observers      []event.Observer
	errorHandler   bus.ErrorHandler
	reconnectWait  time.Duration
	maxReconnects  int
	connectTimeout time.Duration
	name           string
	natsOpts       []nats.Option
	subjectPrefix  string

	// connectOnly names the options that configure dialling; New rejects
	// them because its connection is already dialled.
	connectOnly []string
}

func newOptions(opts []Option) options {
	o := options{
		reconnectWait:  DefaultReconnectWait,
		maxReconnects:  DefaultMaxReconnects,
		connectTimeout: DefaultConnectTimeout,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	return o
}

// validate reports options whose values the bus cannot use.
func (o options) validate() error {
	if p := o.subjectPrefix; p != "" {
		if !strings.HasSuffix(p, ".") {
			return fmt.Errorf("natsbus: WithSubjectPrefix(%q): %w: the prefix must end with '.'", p, bus.ErrBadSubject)
		}
		if err := bus.ValidatePublishSubject(p[:len(p)-1]); err != nil {
			return fmt.Errorf("natsbus: WithSubjectPrefix(%q): %w", p, err)
		}
	}
	return nil
}

// WithLogger sets the logger the bus writes its events to:
//
//   - bus.disconnected (warn; attribute error): the connection was lost
//     and the bus is reconnecting. It is logged once per outage, however
//     many attempts the outage takes.
//   - bus.reconnected (info; url, disconnected_for, reconnect_attempts):
//     the outage is over; subscriptions are live again.
//   - bus.closed (error; error, url, reconnect_attempts): the bus closed
//     itself because NATS closed the connection for good (the reconnect
//     budget of WithMaxReconnects spent, reconnecting disabled,
//     credentials refused). After Close or Drain it is logged at debug
//     level with the attribute error only. Either way Bus.Err says why.
//     reconnect_attempts counts the attempts of the outage, the
//     successful one included in bus.reconnected; a bus made by New
//     leaves it out (see New).
//   - bus.slow_consumer (warn; subject, queue, dropped): a subscription
//     began to drop messages; dropped is its count so far
//     (Subscription.Dropped), logged once per run of consecutive drops.
//   - bus.handler_panic (error; subject, queue, panic, stack), bus.error
//     (error; subject, error) for other asynchronous errors the server or
//     client reports, and, when no error handler is set, bus.handler_error
//     (warn; subject, queue, error).
//
// The default, and nil, is slog.Default() as it is when Connect or New is
// called; pass slog.New(slog.DiscardHandler) to silence the bus.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithObserver adds an observer of the bus's events (see package event:
// actor.connected, bus.disconnected, bus.reconnected, bus.slow_consumer,
// bus.closed, ...), as heddle.WithObserver does for an actor; it may be
// given more than once. A panicking observer is recovered and counted.
func WithObserver(o event.Observer) Option {
	return func(opts *options) {
		if o != nil {
			opts.observers = append(opts.observers, o)
		}
	}
}

// WithErrorHandler sets the function that receives asynchronous errors:
// slow-consumer drops (wrapping bus.ErrSlowConsumer), handler errors,
// recovered handler panics (wrapping ErrHandlerPanic) and errors the server
// reports, such as permission violations. It may be called from several
// goroutines at once and should return quickly. The default does nothing;
// every such error except a handler's returned error is logged whether or
// not a handler is set.
func WithErrorHandler(h bus.ErrorHandler) Option {
	return func(o *options) { o.errorHandler = h }
}

// WithReconnectWait sets the pause between reconnect attempts to the same
// server (DefaultReconnectWait unless set). nats.go adds a random jitter of
// up to 100 ms to it, which nats.ReconnectJitter, passed with
// WithNATSOptions, changes. Connect only.
func WithReconnectWait(d time.Duration) Option {
	return func(o *options) {
		o.connectOnly = append(o.connectOnly, "WithReconnectWait")
		if d > 0 {
			o.reconnectWait = d
		}
	}
}

// WithMaxReconnects sets how many reconnect attempts are made after a
// disconnect before the bus closes itself; a negative n, the default
// (DefaultMaxReconnects), retries forever and zero disables reconnecting.
// A bus that closes itself says why in Bus.Err and logs bus.closed, and
// every actor on it returns from Run. Connect only.
func WithMaxReconnects(n int) Option {
	return func(o *options) {
		o.connectOnly = append(o.connectOnly, "WithMaxReconnects")
		o.maxReconnects = n
	}
}

// WithConnectTimeout bounds the dial and handshake of each connection
// attempt. Connect only.
func WithConnectTimeout(d time.Duration) Option {
	return func(o *options) {
		o.connectOnly = append(o.connectOnly, "WithConnectTimeout")
		if d > 0 {
			o.connectTimeout = d
		}
	}
}

// WithName sets the connection name the server shows in its monitoring
// endpoints. Connect only.
func WithName(name string) Option {
	return func(o *options) {
		o.connectOnly = append(o.connectOnly, "WithName")
		o.name = name
	}
}

// WithNATSOptions passes nats.go options through to the connection, for
// authentication (nats.UserCredentials, nats.Token, nats.Nkey), TLS
// (nats.Secure, nats.RootCAs, nats.ClientCert) and anything else natsbus
// does not wrap. They are applied after the natsbus options, so on a
// conflict they win. Connection event handlers set here (disconnect,
// reconnect, failed reconnect attempt, closed, async error) are kept and
// called after the bus's own.
// NoCallbacksAfterClientClose is overridden: the bus needs the closed
// callback to finish Drain. Connect only.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(o *options) {
		o.connectOnly = append(o.connectOnly, "WithNATSOptions")
		o.natsOpts = append(o.natsOpts, opts...)
	}
}

// WithSubjectPrefix puts the bus in a subject namespace: prefix is
// prepended to the subject of every Publish and Subscribe and removed from
// Msg.Subject on delivery, so the code using the bus sees only its logical
// subjects and never the prefix. Subscription.Subject and the subjects
// passed to the error handler and logged are logical too. Buses with
// different prefixes on one server do not see each other's messages, and a
// wildcard subscription matches only within its own namespace ("*" and ">"
// never stand for the prefix). Queue group names are not prefixed: a
// message reaches only subscriptions of its own namespace, so members of a
// group of the same name in another namespace never compete for it.
//
// prefix is one or more tokens that follow the publish subject rule of
// package bus, followed by '.', for example "test.5f3a." or "tenant-a.";
// Connect and New fail with an error wrapping bus.ErrBadSubject otherwise.
// An empty prefix, the default, means no namespace. The namespace is the
// bus's, not the connection's: what is published or subscribed through Conn
// directly uses wire subjects, prefix included.
//
// Its use is isolating tests that share one server, and tenants or
// environments that share a cluster without separate accounts; NATS
// accounts isolate more strongly where they are available.
func WithSubjectPrefix(prefix string) Option {
	return func(o *options) { o.subjectPrefix = prefix }
}
