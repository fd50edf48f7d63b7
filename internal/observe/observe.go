// Package observe makes the Emitter through which an actor reports its
// events, from the heddle.Options it was given. The Emitter itself lives
// in internal/emit, which the buses use too.
package observe

import (
	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/emit"
)

// Emitter writes an actor's events to its logger and observers; see
// emit.Emitter.
type Emitter = emit.Emitter

// TraceKey is the task extension holding the W3C trace context.
const TraceKey = emit.TraceKey

// PanicLogInterval is the least time between two log records of observer
// panics from one actor.
const PanicLogInterval = emit.PanicLogInterval

// EventObserverPanicked is logged when an observer panics; the actor goes
// on.
const EventObserverPanicked = event.ObserverPanicked

// New returns an Emitter for the settings opts make.
func New(opts ...heddle.Option) *Emitter {
	s := Settings(opts...)
	return emit.New(emit.Config{Logger: s.Logger, Observers: s.Observers, Interceptors: s.Interceptors, Propagator: s.Propagator})
}

// Actor returns an Emitter for the settings opts make, whose events name
// actor.
func Actor(actor string, opts ...heddle.Option) *Emitter {
	s := Settings(opts...)
	return emit.New(emit.Config{Logger: s.Logger, Actor: actor, Observers: s.Observers, Interceptors: s.Interceptors, Propagator: s.Propagator})
}

// Settings applies opts in order to the default heddle.Settings.
func Settings(opts ...heddle.Option) heddle.Settings {
	var s heddle.Settings
	for _, opt := range opts {
		if opt != nil {
			opt(&s)
		}
	}
	return s
}
