// Package event is the observer seam of Heddle: the Event every actor and
// bus reports, the Observer that receives it, the Interceptor that wraps
// each handler attempt, routing decision and dispatch, and the Propagator
// that carries a trace context through a task's _trace_context. Metrics
// (package metrics), tracing (package otel) and users' own code attach
// here without touching the actors.
//
// The package imports nothing of Heddle, so the buses report through it
// too (bus.slow_consumer, bus.disconnected, ...).
//
// # Events
//
// Every actor reports each thing that happened exactly once, as one
// Event, to its slog.Logger (the record's message is the event's Name)
// and to every Observer that wants it. The names are the constants below
// (WorkerCompleted, RouterDeadLettered, ...), the same the runbooks read in
// the logs. An Event's typed fields are set by the actor that emits it,
// from what it knows, not parsed from the log attributes: TaskID,
// WorkerType, Tier and Status of the task concerned; Reason, the bounded
// reason kind (one of the Reason constants, safe as a metric label), and
// Detail, the free text; Err, the error; Attempt, the handler attempt;
// Duration, how long the work took; Count, how many things the event
// stands for (messages a bus dropped at once, missed timer fires).
//
// # Cost
//
// An Observer that implements Selector receives only the events it
// wants; an actor whose observers want none of an event builds nothing
// for it, and an observed event allocates nothing: its Attrs are lent for
// the call (Event.Clone keeps them). An Interceptor that implements
// OpSelector wraps only the kinds of operation it names. Observe is called
// synchronously on the actor's goroutine: count, record, or hand off. A
// panic in an Observer or an Interceptor is recovered and counted by the
// actor (observer.panicked), which goes on.
package event

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// Event is one thing that happened in an actor or a bus. See the package
// documentation for what each field holds.
type Event struct {
	// Name is the event's name, one of the constants of this package (or
	// a name of the user's own actors).
	Name string
	// Level is the slog level the event is logged at.
	Level slog.Level
	// Actor is the kind of actor or bus that emitted it: "worker",
	// "router", "dispatch", "dead_letter", "orchestrator", "pipeline",
	// "scheduler", "registry", "membus", "natsbus".
	Actor string
	// TaskID, WorkerType and Tier identify the task concerned, when there
	// is one; Subject is the bus subject concerned.
	TaskID     string
	WorkerType string
	Tier       string
	Subject    string
	// Status is the outcome the event reports, when it reports one
	// ("completed", "failed", "routed", "dead_lettered", ...).
	Status string
	// Reason is a bounded reason kind: one of the Reason constants (or a
	// short word of the user's own actors); empty when the event has none.
	Reason string
	// Detail is the free text that goes with Reason (a dead letter's
	// whole reason, a parse error's message); never a metric label.
	Detail string
	// Err is the error concerned, when there is one.
	Err error
	// Attempt is the handler attempt the event concerns, from 1; 0 when
	// it concerns none.
	Attempt int
	// Duration is how long the work took, when it is known.
	Duration time.Duration
	// Count is how many things the event stands for when it is more than
	// one (messages dropped at once, timer fires missed); 0 means one.
	Count uint64
	// Attrs are every attribute of the log record, the typed fields'
	// included, under the wire field names.
	Attrs []slog.Attr
}

// N returns how many things e stands for: Count, or 1 when Count is 0.
func (e Event) N() uint64 {
	if e.Count == 0 {
		return 1
	}
	return e.Count
}

// Clone returns a copy of e whose Attrs are a slice of its own: what an
// Observer keeps beyond its call to Observe (see Observer), as
// slog.Record.Clone is for a slog.Handler.
func (e Event) Clone() Event {
	e.Attrs = slices.Clone(e.Attrs)
	return e
}

// Observer receives the Events of the actors and buses it is given to.
// Observe may be called from many goroutines at once; it must be safe for
// concurrent use and fast. The Event's Attrs belong to the caller for the
// duration of the call only, and are reused once it returns (so that an
// event costs no allocation): an Observer that keeps the Event, or its
// Attrs, keeps e.Clone().
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(ctx context.Context, e Event)

// Observe calls f(ctx, e).
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// Selector is implemented by an Observer that receives only some events.
// Wants is asked once per event name when the actor is made (and once
// for a name the actor had not announced), not per event; an actor whose
// observers want none of an event does not build it.
type Selector interface {
	Wants(name string) bool
}

// Only returns an Observer that receives, of o's events, those named.
func Only(o Observer, names ...string) Observer {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return only{o, set}
}

type only struct {
	Observer
	names map[string]bool
}

func (o only) Wants(name string) bool { return o.names[name] }

// Wants reports whether o wants the events named name: true unless o is a
// Selector that says otherwise.
func Wants(o Observer, name string) bool {
	if s, ok := o.(Selector); ok {
		return s.Wants(name)
	}
	return true
}
