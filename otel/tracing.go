// Package otel traces a Heddle mesh with OpenTelemetry: a span for each
// task a router routes, each handler attempt of a worker, each task a
// caller dispatches and each goal an orchestrator or pipeline works on,
// and the W3C trace context carried in each task's _trace_context, the
// object the Python Heddle reads and writes ({"traceparent": ...,
// "tracestate": ...}). One trace thus runs from a Python caller through a
// Go router and a Go worker and back to the caller.
//
// Make a Tracing with New and give its Options to every actor and
// dispatch call that should take part:
//
//	tr := otel.New(otel.WithTracerProvider(tp))
//	w, err := worker.New(b, "summarize", summarize, worker.Config{}, tr.Options()...)
//	out, err := dispatch.Call[In, Out](ctx, b, "summarize", in, dispatch.With(tr.Options()...))
//
// An actor given the options reads a task's _trace_context into the
// context its work runs with (the handler's context holds the span), and
// writes the context of its own span into what it publishes on the task's
// behalf: the router into the forwarded task, the worker into the result,
// a dispatch into the task it sends, an orchestrator or pipeline (its
// goal span) into the goal's subtasks and final result. Other members of
// _trace_context are kept. A task whose traceparent cannot be read is served all the same,
// in a new trace; it is counted and logged (otel.invalid_trace_context).
//
// Spans, their kinds and attributes:
//
//	heddle.route <worker_type>     consumer  a router's decision and its forward or dead letter
//	heddle.handle <worker_type>    consumer  one handler attempt of a worker (a retry is a new span)
//	heddle.dispatch <worker_type>  producer  a caller's publish of one task and its wait for the result
//	heddle.goal <name>             consumer  an orchestrator's or pipeline's work on one goal
//
// Each span carries heddle.task_id, heddle.parent_task_id,
// heddle.worker_type, heddle.tier, heddle.retry_count and (for a handler
// attempt) heddle.attempt as the operation starts, and heddle.status and
// heddle.reason as it ends (a route span also heddle.forwarded_to, the
// worker subject, and the tier the router resolved); and the messaging
// semantic conventions that fit: messaging.system ("nats": the mesh's
// protocol, also on the in-process bus, which has NATS semantics),
// messaging.destination.name (the subject the task was received on or
// sent to), messaging.operation.type ("process", or "send" for a
// dispatch) and messaging.operation.name (route, handle, dispatch, goal).
// A failed handler attempt or dispatch, a failed goal and a dead-lettered
// task end their span with status Error, the error recorded and
// error.type set to the reason kind.
//
// Only this package imports OpenTelemetry: a program that does not
// import it builds none.
package otel

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	gootel "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/version"
)

// ScopeName is the instrumentation scope of the spans: the name of the
// Tracer this package asks the TracerProvider for.
const ScopeName = "github.com/heddle-go/heddle/otel"

// EventInvalidTraceContext is logged when a task's _trace_context holds a
// traceparent the propagator cannot read: the work done for the task
// starts a new trace. Logged at most once per InvalidLogInterval, with
// the running count (see Tracing.InvalidTraceContexts).
const EventInvalidTraceContext = "otel.invalid_trace_context"

// InvalidLogInterval is the least time between two log records of
// invalid trace contexts: a producer that writes a broken traceparent
// usually writes it on every task, and one record per interval (with the
// count) says so without flooding the log.
const InvalidLogInterval = 10 * time.Second

// maxLoggedTraceparent bounds how much of a foreign traceparent is logged
// (a valid one is 55 bytes).
const maxLoggedTraceparent = 128

// Tracing makes spans for the operations of the actors it is given to,
// and carries their trace context through the tasks' _trace_context.
// Make one with New; one Tracing serves any number of actors and calls,
// concurrently. The zero value traces with the global TracerProvider and
// the W3C trace context propagator, as New() does.
type Tracing struct {
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	log     *slog.Logger
	invalid atomic.Uint64
	logged  atomic.Int64 // when EventInvalidTraceContext was last logged, in Unix nanoseconds
	names   spanNames
}

// Option configures a Tracing.
type Option func(*config)

type config struct {
	tp   trace.TracerProvider
	prop propagation.TextMapPropagator
	log  *slog.Logger
}

// WithTracerProvider sets the TracerProvider the spans come from. The
// default is the global one (go.opentelemetry.io/otel's
// GetTracerProvider, read when New is called; a provider set globally
// later is used too, since the global provider delegates to it), as
// OpenTelemetry instrumentation libraries do. A nil tp keeps the default.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	}
}

// WithPropagator sets how a trace context is read from and written to a
// task's _trace_context. The default is propagation.TraceContext{}, the
// W3C traceparent and tracestate that the Python Heddle writes; compose it
// with propagation.Baggage{} (propagation.NewCompositeTextMapPropagator)
// to carry baggage too. A nil p keeps the default.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) {
		if p != nil {
			c.prop = p
		}
	}
}

// WithLogger sets the logger EventInvalidTraceContext is written to; the
// default is slog.Default(), read when New is called.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// New returns a Tracing configured by opts.
func New(opts ...Option) *Tracing {
	var c config
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	t := &Tracing{}
	if c.tp != nil {
		t.tracer = newTracer(c.tp)
	}
	t.prop = c.prop
	t.log = c.log
	return t
}

func newTracer(tp trace.TracerProvider) trace.Tracer {
	return tp.Tracer(ScopeName, trace.WithInstrumentationVersion(version.SDK), trace.WithSchemaURL(semconv.SchemaURL))
}

// tracerFor returns t's tracer, the global provider's for a Tracing made
// without one.
func (t *Tracing) tracerFor() trace.Tracer {
	if t.tracer != nil {
		return t.tracer
	}
	return newTracer(gootel.GetTracerProvider())
}

func (t *Tracing) propagator() propagation.TextMapPropagator {
	if t.prop != nil {
		return t.prop
	}
	return propagation.TraceContext{}
}

func (t *Tracing) logger() *slog.Logger {
	if t.log != nil {
		return t.log
	}
	return slog.Default()
}

// Interceptor returns the event.Interceptor that makes a span around
// each operation it wraps; pass it with heddle.WithInterceptor, or both
// it and the propagator with Options.
func (t *Tracing) Interceptor() event.Interceptor {
	return interceptor{tracer: t.tracerFor(), names: &t.names}
}

// Propagator returns the event.Propagator that reads and writes a task's
// _trace_context; pass it with heddle.WithPropagator, or both it and the
// interceptor with Options.
func (t *Tracing) Propagator() event.Propagator {
	return carrierPropagator{t: t, prop: t.propagator()}
}

// Options returns heddle.WithInterceptor(t.Interceptor()) and
// heddle.WithPropagator(t.Propagator()), for any actor's constructor
// (worker.New, router.New, ...) and, through dispatch.With, any dispatch
// call. An actor needs both to continue a trace: the propagator alone
// carries the incoming trace context on unchanged; the interceptor alone
// makes spans that start new traces and are written nowhere.
func (t *Tracing) Options() []heddle.Option {
	return []heddle.Option{heddle.WithInterceptor(t.Interceptor()), heddle.WithPropagator(t.Propagator())}
}

// InvalidTraceContexts returns how many _trace_context objects held a
// traceparent the propagator could not read. Each was logged as
// EventInvalidTraceContext (at most once per InvalidLogInterval, with
// this count), and the work for its task started a new trace.
func (t *Tracing) InvalidTraceContexts() uint64 { return t.invalid.Load() }

// reportInvalid counts one unreadable traceparent and logs it, paced.
func (t *Tracing) reportInvalid(ctx context.Context, traceparent string) {
	n := t.invalid.Add(1)
	last, now := t.logged.Load(), time.Now().UnixNano()
	if last != 0 && now-last < int64(InvalidLogInterval) || !t.logged.CompareAndSwap(last, now) {
		return
	}
	if len(traceparent) > maxLoggedTraceparent {
		traceparent = strings.ToValidUTF8(traceparent[:maxLoggedTraceparent], "") + "..."
	}
	t.logger().LogAttrs(ctx, slog.LevelWarn, EventInvalidTraceContext,
		slog.String("traceparent", traceparent),
		slog.Uint64("invalid_trace_contexts", n))
}
