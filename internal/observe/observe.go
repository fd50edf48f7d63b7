// Package observe is the one place where actors report events: each call
// writes one slog record (when the logger's level admits it) and hands one
// heddle.Event to every observer. Actors hold an *Emitter where they would
// hold a *slog.Logger; its methods mirror slog.Logger's.
package observe

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/heddle-go/heddle"
)

// PanicLogInterval is the least time between two log records of observer
// panics from one actor: a broken observer is usually broken for every
// event, and one record per interval (with the running count) says so
// without flooding the log.
const PanicLogInterval = 10 * time.Second

// EventObserverPanicked is logged when an observer panics; the actor goes
// on. Its attributes are observer_panics (the actor's count so far) and
// error (the panic value).
const EventObserverPanicked = "observer.panicked"

// Emitter writes events to a logger and to observers. The zero value is
// not usable; make one with New. It is safe for concurrent use.
type Emitter struct {
	log    *slog.Logger
	obs    []heddle.Observer
	base   []slog.Attr // from With, for the observers (the logger has them)
	panics *panics     // shared by an Emitter and those With makes of it
}

// panics counts the observer panics of one actor and paces their logging.
type panics struct {
	n   atomic.Uint64
	log rate.Sometimes
}

// New returns an Emitter for the settings opts make.
func New(opts ...heddle.Option) *Emitter {
	s := Settings(opts...)
	return &Emitter{log: s.Logger, obs: s.Observers, panics: &panics{log: rate.Sometimes{First: 1, Interval: PanicLogInterval}}}
}

// Settings applies opts in order to the default heddle.Settings: a nil
// Logger becomes slog.Default().
func Settings(opts ...heddle.Option) heddle.Settings {
	var s heddle.Settings
	for _, opt := range opts {
		if opt != nil {
			opt(&s)
		}
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	return s
}

// Observed reports whether the Emitter has any observer.
func (e *Emitter) Observed() bool { return len(e.obs) > 0 }

// With returns an Emitter whose events carry attrs as well.
func (e *Emitter) With(args ...any) *Emitter {
	base := append(append([]slog.Attr(nil), e.base...), argsToAttrs(args)...)
	return &Emitter{log: e.log.With(args...), obs: e.obs, base: base, panics: e.panics}
}

// ObserverPanics returns how many times an observer of this Emitter (or of
// one With made from it, or it from) panicked. Each panic was recovered:
// the event went on to the other observers and the actor went on.
func (e *Emitter) ObserverPanics() uint64 { return e.panics.n.Load() }

// Enabled reports whether an event at level would reach anyone: the
// logger at that level, or any observer. Callers use it to skip building
// attributes nobody reads.
func (e *Emitter) Enabled(ctx context.Context, level slog.Level) bool {
	return len(e.obs) > 0 || e.log.Enabled(ctx, level)
}

// Debug emits an event at LevelDebug; args are slog's key-value pairs.
func (e *Emitter) Debug(name string, args ...any) {
	e.Log(context.Background(), slog.LevelDebug, name, args...)
}

// Info emits an event at LevelInfo.
func (e *Emitter) Info(name string, args ...any) {
	e.Log(context.Background(), slog.LevelInfo, name, args...)
}

// Warn emits an event at LevelWarn.
func (e *Emitter) Warn(name string, args ...any) {
	e.Log(context.Background(), slog.LevelWarn, name, args...)
}

// Error emits an event at LevelError.
func (e *Emitter) Error(name string, args ...any) {
	e.Log(context.Background(), slog.LevelError, name, args...)
}

// Log emits an event whose attributes are slog's key-value pairs.
func (e *Emitter) Log(ctx context.Context, level slog.Level, name string, args ...any) {
	if !e.Enabled(ctx, level) {
		return
	}
	e.LogAttrs(ctx, level, name, argsToAttrs(args)...)
}

// LogAttrs emits an event with attrs.
func (e *Emitter) LogAttrs(ctx context.Context, level slog.Level, name string, attrs ...slog.Attr) {
	if e.log.Enabled(ctx, level) {
		e.log.LogAttrs(ctx, level, name, attrs...)
	}
	if len(e.obs) == 0 {
		return
	}
	if len(e.base) > 0 {
		attrs = append(append(make([]slog.Attr, 0, len(e.base)+len(attrs)), e.base...), attrs...)
	}
	ev := heddle.Event{Name: name, Level: level, Attrs: attrs}
	for _, a := range attrs {
		switch a.Key {
		case "task_id":
			ev.TaskID = a.Value.String()
		case "worker_type":
			ev.WorkerType = a.Value.String()
		case "subject":
			ev.Subject = a.Value.String()
		case "reason":
			ev.Reason = a.Value.String()
		case "processing_time_ms":
			if a.Value.Kind() == slog.KindInt64 {
				ev.Duration = time.Duration(a.Value.Int64()) * time.Millisecond
			}
		case "duration", "elapsed":
			if a.Value.Kind() == slog.KindDuration {
				ev.Duration = a.Value.Duration()
			}
		}
	}
	for _, o := range e.obs {
		e.observe(ctx, o, ev)
	}
}

// observe hands ev to o, recovering a panic so that a broken observer can
// neither crash the process nor cut short the actor's work. A
// runtime.Goexit in an observer is not stopped here: it ends the calling
// goroutine as it would anywhere, and the actors guard their goroutines
// against it where a task's outcome is at stake.
func (e *Emitter) observe(ctx context.Context, o heddle.Observer, ev heddle.Event) {
	defer func() {
		if v := recover(); v != nil {
			n := e.panics.n.Add(1)
			e.panics.log.Do(func() {
				e.log.LogAttrs(ctx, slog.LevelError, EventObserverPanicked,
					slog.String("event", ev.Name),
					slog.Uint64("observer_panics", n),
					slog.String("error", fmt.Sprint(v)),
					slog.String("stack", string(debug.Stack())))
			})
		}
	}()
	o.Observe(ctx, ev)
}

// Count reports an outcome that is counted, such as something dropped,
// refused or given up on (a malformed message, an evicted dead letter, a
// late result, ...): it adds one to count and emits one event, in one
// call, so that every drop has exactly one event and one count. args are
// slog's key-value pairs.
func (e *Emitter) Count(ctx context.Context, count *atomic.Uint64, level slog.Level, name string, args ...any) {
	count.Add(1)
	e.Log(ctx, level, name, args...)
}

// CountAttrs is Count with attributes.
func (e *Emitter) CountAttrs(ctx context.Context, count *atomic.Uint64, level slog.Level, name string, attrs ...slog.Attr) {
	count.Add(1)
	e.LogAttrs(ctx, level, name, attrs...)
}

// argsToAttrs turns slog's alternating key-value arguments into attrs, as
// slog.Logger.Log reads them.
func argsToAttrs(args []any) []slog.Attr {
	attrs := make([]slog.Attr, 0, len(args)/2+1)
	for len(args) > 0 {
		switch k := args[0].(type) {
		case slog.Attr:
			attrs = append(attrs, k)
			args = args[1:]
		case string:
			if len(args) == 1 {
				attrs = append(attrs, slog.String("!BADKEY", k))
				args = nil
				continue
			}
			attrs = append(attrs, slog.Any(k, args[1]))
			args = args[2:]
		default:
			attrs = append(attrs, slog.Any("!BADKEY", k))
			args = args[1:]
		}
	}
	return attrs
}
