package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
)

// report hands an asynchronous error to the user's error handler.
func (b *Bus) report(subject string, err error) {
	if b.errh != nil {
		b.errh(subject, err)
	}
}

// onDisconnect runs when the connection is lost. nats.go calls it once per
// outage, before its reconnect attempts, so the outage is reported once
// however long it lasts.
func (b *Bus) onDisconnect(nc *nats.Conn, err error) {
	if err == nil {
		if b.closing.Load() {
			// A deliberate Close or the end of a Drain.
			return
		}
		if nc.IsClosed() {
			// Closed without reconnecting (reconnecting disabled, or the
			// tail of an outage already reported): bus.closed says so.
			return
		}
		err = nc.LastError()
	}
	// The read loop has stopped, so no subscription drops anything until a
	// reconnect; the counts are recorded now in case nats.go closes the
	// connection, and forgets them, at the end of the outage.
	b.recordDrops()
	b.reasonMu.Lock()
	b.outage = outage{down: true, since: time.Now(), cause: err}
	b.reasonMu.Unlock()
	b.stats.disconnects.Add(1)
	b.log.Emit(context.Background(), slog.LevelWarn, event.Event{Name: event.BusDisconnected, Err: err}, slog.Any("error", err))
}

// onReconnectErr runs after each failed reconnect attempt. It is not
// logged, so that an outage is one event and not one per attempt; it is
// counted for bus.reconnected and for why the bus closed.
func (b *Bus) onReconnectErr(_ *nats.Conn, err error) {
	b.reasonMu.Lock()
	b.outage.attempts++
	b.outage.lastErr = err
	b.reasonMu.Unlock()
}

func (b *Bus) onReconnect(nc *nats.Conn) {
	b.reasonMu.Lock()
	o := b.outage
	b.outage = outage{}
	b.reasonMu.Unlock()
	b.stats.reconnects.Add(1)
	attrs := []slog.Attr{slog.String("url", nc.ConnectedUrlRedacted())}
	if b.countsAttempts {
		attrs = append(attrs, slog.Int("reconnect_attempts", o.attempts+1))
	}
	if o.down {
		attrs = append(attrs, slog.Duration("disconnected_for", time.Since(o.since)))
	}
	ev := event.Event{Name: event.BusReconnected}
	if o.down {
		ev.Duration = time.Since(o.since)
	}
	b.log.Emit(context.Background(), slog.LevelInfo, ev, attrs...)
}

// onClosed runs when the connection is closed for good: by Close, at the
// end of Drain, or by nats.go when it will not or cannot reconnect. In the
// last case it records why and closes the bus, so callers see
// bus.ErrClosed, handler contexts end and Done is closed.
func (b *Bus) onClosed(nc *nats.Conn) {
	if !b.closing.Load() {
		b.closeReason(b.lostReason(nc), false)
	}
	b.markConnClosed()
	b.close(nc)
}

// lostReason says why NATS closed the connection without being asked to.
func (b *Bus) lostReason(nc *nats.Conn) error {
	b.reasonMu.Lock()
	o := b.outage
	b.reasonMu.Unlock()
	last := nc.LastError()
	switch {
	case !nc.Opts.AllowReconnect || nc.Opts.MaxReconnect == 0:
		return fmt.Errorf("natsbus: connection to %s lost and reconnecting is disabled: %w: %w", b.servers, firstErr(last, o.cause), bus.ErrClosed)
	case last == nil || errors.Is(last, nats.ErrNoServers):
		// nats.go says ErrNoServers when it has spent its attempts; what
		// went wrong is why the last one failed.
		cause := firstErr(o.lastErr, last, o.cause)
		if b.countsAttempts {
			return fmt.Errorf("natsbus: connection closed after %d reconnect %s to %s: %w: %w", o.attempts, plural(o.attempts, "attempt"), b.servers, cause, bus.ErrClosed)
		}
		return fmt.Errorf("natsbus: connection closed, reconnect attempts to %s spent: %w: %w", b.servers, cause, bus.ErrClosed)
	}
	// nats.go gave up for a reason of its own, such as credentials the
	// server refused twice in a row.
	return fmt.Errorf("natsbus: connection to %s closed: %w: %w", b.servers, last, bus.ErrClosed)
}

// firstErr returns the first non-nil error, or nats.ErrConnectionClosed.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nats.ErrConnectionClosed
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
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
		} else if n, err := ns.Dropped(); err == nil {
			dropped = n
		}
		b.log.Emit(context.Background(), slog.LevelWarn, event.Event{Name: event.BusSlowConsumer, Subject: subject, Err: err},
			slog.String("subject", subject), slog.String("queue", queue), slog.Int("dropped", dropped))
		err = fmt.Errorf("natsbus: subscription %q: pending limit reached, %d message(s) dropped so far: %w (%w)", subject, dropped, bus.ErrSlowConsumer, err)
	case errors.Is(err, nats.ErrDrainTimeout):
		b.drainTimedOut.Store(true)
		b.log.Emit(context.Background(), slog.LevelError, event.Event{Name: event.BusError, Subject: subject, Err: err},
			slog.String("subject", subject), slog.Any("error", err))
	default:
		b.log.Emit(context.Background(), slog.LevelError, event.Event{Name: event.BusError, Subject: subject, Err: err},
			slog.String("subject", subject), slog.Any("error", err))
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
	// Disconnects counts outages: connections lost while the bus went on
	// to reconnect (bus.disconnected). A connection that NATS closes
	// without reconnecting is reported as bus.closed instead.
	Disconnects uint64
	// Reconnects counts outages that ended (bus.reconnected).
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
