package dispatch

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/observe"
)

// emitter is where a Stream's, a Caller's or a call's result_stream.*
// events go.
//
// Those events are emitted on a bus's delivery goroutine (collected,
// ignored, ...) or on the calling goroutine (timeout, unserved), and
// observers are user code. observe.Emitter recovers an observer's panic;
// a runtime.Goexit cannot be recovered and would end the goroutine it runs
// on: the subscription's deliveries, so that no later result on it would
// be seen, or the caller's own goroutine, so that its call would never
// return. With observers, each event is therefore emitted on a goroutine
// of its own, which the emitting one waits for: a Goexit ends only that
// goroutine. Without observers nothing changes hands; the logger's
// handler is trusted as the bus's own logging is.
type emitter struct {
	e        *observe.Emitter
	observed bool // some observer gets the events
}

// newEmitter returns the emitter for the settings opts make.
func newEmitter(opts ...heddle.Option) emitter {
	e := observe.Actor("dispatch", opts...)
	return emitter{e: e, observed: e.Observed()}
}

// enabled reports whether an event named name at level reaches anyone.
func (m emitter) enabled(ctx context.Context, level slog.Level, name string) bool {
	return m.e.Enabled(ctx, level, name)
}

// countEvent adds ev.N() to n (when n is not nil) and emits ev.
func (m emitter) countEvent(ctx context.Context, n *atomic.Uint64, level slog.Level, ev event.Event, attrs ...slog.Attr) {
	if n != nil {
		n.Add(ev.N())
	}
	if !m.observed {
		m.e.Emit(ctx, level, ev, attrs...)
		return
	}
	m.shielded(func() { m.e.Emit(ctx, level, ev, attrs...) })
}

// warn emits an event at LevelWarn.
func (m emitter) warn(name string, args ...any) {
	if !m.observed {
		m.e.Warn(name, args...)
		return
	}
	m.shielded(func() { m.e.Warn(name, args...) })
}

// shielded runs emit, which calls observers, on a goroutine of its own and
// waits for it to end, however it ends. A panic that gets through (from
// the logger's handler: observers' panics are recovered by observe) is
// raised again here, where it would have been raised without the shield.
func (m emitter) shielded(emit func()) {
	done := make(chan struct{})
	var raised any
	go func() {
		defer close(done)
		defer func() { raised = recover() }()
		emit()
	}()
	<-done
	if raised != nil {
		panic(raised)
	}
}
