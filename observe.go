package heddle

import (
	"log/slog"

	"github.com/heddle-go/heddle/event"
)

// Option sets what every actor shares: where its events go (a logger,
// observers), what wraps its operations (interceptors) and how a trace
// context travels with its tasks (a propagator); package event describes
// each. Each actor's
// constructor (and each dispatch call) takes Options; settings specific to
// one actor live in its Config.
type Option func(*Settings)

// Settings are the values Options set, which each actor reads when it is
// made.
type Settings struct {
	// Logger receives each event as a slog record whose message is the
	// event name. Nil means slog.Default(), read when the actor is made.
	Logger *slog.Logger
	// Observers receive each event they want after the logger.
	Observers []event.Observer
	// Interceptors wrap each handler attempt, routing decision, dispatch
	// and goal, the first outermost.
	Interceptors []event.Interceptor
	// Propagator reads a task's _trace_context into the context of the
	// work done for it, and writes it into what is published on its
	// behalf. Nil: _trace_context is carried unchanged.
	Propagator event.Propagator
}

// WithLogger sets the logger an actor writes its events to. The default
// is slog.Default(); pass slog.New(slog.DiscardHandler) to silence an
// actor.
func WithLogger(l *slog.Logger) Option {
	return func(s *Settings) { s.Logger = l }
}

// WithObserver adds an Observer of the actor's events (see package
// event); it may be given more than once. An observer that is an
// event.Selector gets only the events it wants.
func WithObserver(o event.Observer) Option {
	return func(s *Settings) {
		if o != nil {
			s.Observers = append(s.Observers, o)
		}
	}
}

// WithInterceptor adds an Interceptor around the actor's operations (see
// event.Interceptor); it may be given more than once, the first outermost.
func WithInterceptor(i event.Interceptor) Option {
	return func(s *Settings) {
		if i != nil {
			s.Interceptors = append(s.Interceptors, i)
		}
	}
}

// WithPropagator sets how a trace context travels in a task's
// _trace_context (see event.Propagator; package otel has one).
func WithPropagator(p event.Propagator) Option {
	return func(s *Settings) { s.Propagator = p }
}
