package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle/bus"
)

// report hands an asynchronous error to the user's error handler.
func (b *Bus) report(subject string, err error) {
	if b.errh != nil {
		b.errh(subject, err)
	}
}

func (b *Bus) onDisconnect(nc *nats.Conn, err error) {
	if err == nil {
		if b.closing.Load() {
			// A deliberate Close or the end of a Drain.
			return
		}
		// nats.go passes nil when it closes a connection it will not
		// reconnect; the cause is its last error.
		err = nc.LastError()
	}
	b.stats.disconnects.Add(1)
	b.log.LogAttrs(context.Background(), slog.LevelWarn, "bus.disconnected", slog.Any("error", err))
}

func (b *Bus) onReconnect(nc *nats.Conn) {
	b.stats.reconnects.Add(1)
	b.log.LogAttrs(context.Background(), slog.LevelInfo, "bus.reconnected", slog.String("url", nc.ConnectedUrlRedacted()))
}

// onClosed runs when the connection is closed for good: by Close, at the
// end of Drain, or by nats.go when reconnecting failed. In the last case it
// closes the bus so callers see bus.ErrClosed and handler contexts end.
func (b *Bus) onClosed(*nats.Conn) {
	b.markConnClosed()
	b.Close()
}

func (b *Bus) onAsyncError(_ *nats.Conn, ns *nats.Subscription, err error) {
	var subject, queue string
	if ns != nil {
		subject, queue = b.logical(ns.Subject), ns.Queue
	}
	switch {
	case errors.Is(err, nats.ErrSlowConsumer):
		b.stats.slowConsumers.Add(1)
		dropped := 0
		if s := b.lookup(ns); s != nil {
			dropped = s.Dropped()
		}
		b.log.LogAttrs(context.Background(), slog.LevelWarn, "bus.slow_consumer",
			slog.String("subject", subject), slog.String("queue", queue), slog.Int("dropped", dropped))
		err = fmt.Errorf("natsbus: subscription %q: pending limit reached, %d message(s) dropped so far: %w (%w)", subject, dropped, bus.ErrSlowConsumer, err)
	case errors.Is(err, nats.ErrDrainTimeout):
		b.drainTimedOut.Store(true)
		b.log.LogAttrs(context.Background(), slog.LevelError, "bus.error", slog.String("subject", subject), slog.Any("error", err))
	default:
		b.log.LogAttrs(context.Background(), slog.LevelError, "bus.error", slog.String("subject", subject), slog.Any("error", err))
	}
	b.report(subject, err)
}

func chainConn(ours, theirs nats.ConnHandler) nats.ConnHandler {
	if theirs == nil {
		return ours
	}
	return func(nc *nats.Conn) {
		ours(nc)
		theirs(nc)
	}
}

func chainConnErr(ours, theirs nats.ConnErrHandler) nats.ConnErrHandler {
	if theirs == nil {
		return ours
	}
	return func(nc *nats.Conn, err error) {
		ours(nc, err)
		theirs(nc, err)
	}
}

func chainErr(ours, theirs nats.ErrHandler) nats.ErrHandler {
	if theirs == nil {
		return ours
	}
	return func(nc *nats.Conn, ns *nats.Subscription, err error) {
		ours(nc, ns, err)
		theirs(nc, ns, err)
	}
}

// Stats counts the bus's connection and delivery events since it was
// created.
type Stats struct {
	// Disconnects counts lost connections (bus.disconnected).
	Disconnects uint64
	// Reconnects counts successful reconnects (bus.reconnected).
	Reconnects uint64
	// SlowConsumers counts slow-consumer reports (bus.slow_consumer); each
	// covers a run of one or more dropped messages. Subscription.Dropped
	// has the exact number of drops.
	SlowConsumers uint64
	// HandlerErrors counts errors returned by handlers.
	HandlerErrors uint64
	// HandlerPanics counts recovered handler panics.
	HandlerPanics uint64
}

type stats struct {
	disconnects, reconnects, slowConsumers, handlerErrors, handlerPanics atomic.Uint64
}

// Stats returns a snapshot of the bus's counters.
func (b *Bus) Stats() Stats {
	return Stats{
		Disconnects:   b.stats.disconnects.Load(),
		Reconnects:    b.stats.reconnects.Load(),
		SlowConsumers: b.stats.slowConsumers.Load(),
		HandlerErrors: b.stats.handlerErrors.Load(),
		HandlerPanics: b.stats.handlerPanics.Load(),
	}
}
