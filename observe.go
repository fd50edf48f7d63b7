package heddle

import (
	"context"
	"log/slog"
	"time"
)

// Event is one thing that happened in an actor: a task received, routed,
// dead-lettered, completed, failed, retried or dropped; a result
// collected, ignored, late or duplicated; a goal received or completed.
// Every actor reports each such thing exactly once, as one Event, to the
// logger and to every Observer it was given (see WithObserver); metrics,
// tracing and heartbeats attach there without touching the actors.
//
// Name is the event name the runbooks use (worker.completed,
// router.dead_lettered, result_stream.late, ...), which is also the slog
// message. The typed fields are set when the event concerns them; Attrs
// holds every attribute, typed ones included, under the wire field names.
type Event struct {
	Name  string
	Level slog.Level
	// TaskID, WorkerType and Subject identify what the event is about.
	TaskID     string
	WorkerType string
	Subject    string
	// Reason says why a task or message was dropped, dead-lettered or
	// failed: a dead-letter reason prefix (ReasonRateLimited, ...) or a
	// short word (publish, contract, timeout, ...).
	Reason string
	// Duration is how long the work took, when it is known.
	Duration time.Duration
	// Attrs are the event's attributes, as logged.
	Attrs []slog.Attr
}

// Observer receives every Event of the actors it is given to. Observe is
// called synchronously on the actor's goroutine, possibly from many
// goroutines at once: it must be safe for concurrent use and fast (count,
// record, or hand off to a channel of its own).
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(ctx context.Context, e Event)

// Observe calls f(ctx, e).
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// Option sets what every actor shares: where its events go. Each actor's
// constructor (and each dispatch call) takes Options; settings specific to
// one actor live in its Config.
type Option func(*Settings)

// Settings are the values Options set, which each actor reads when it is
// made.
type Settings struct {
	// Logger receives each event as a slog record whose message is the
	// event name. Nil means slog.Default(), read when the actor is made.
	Logger *slog.Logger
	// Observers receive each event after the logger.
	Observers []Observer
}

// WithLogger sets the logger an actor writes its events to. The default
// is slog.Default(); pass slog.New(slog.DiscardHandler) to silence an
// actor.
func WithLogger(l *slog.Logger) Option {
	return func(s *Settings) { s.Logger = l }
}

// WithObserver adds an Observer of the actor's events; it may be given
// more than once.
func WithObserver(o Observer) Option {
	return func(s *Settings) {
		if o != nil {
			s.Observers = append(s.Observers, o)
		}
	}
}
