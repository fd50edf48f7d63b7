// Package emit is the one place where actors and buses report events:
// each call writes one slog record (when the logger's level admits it)
// and hands one event.Event to every observer that wants it; it also runs
// interceptors around operations and carries trace contexts through a
// propagator. It imports nothing of Heddle but the event package, so the
// buses use it too. Actors hold an *Emitter where they would hold a
// *slog.Logger.
package emit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/wire"
)

// PanicLogInterval is the least time between two log records of observer
// or interceptor panics from one actor: a broken observer is usually
// broken for every event, and one record per interval (with the running
// count) says so without flooding the log.
const PanicLogInterval = 10 * time.Second

// Config is what an Emitter is made of.
type Config struct {
	// Logger receives each event as a slog record; nil means
	// slog.Default().
	Logger *slog.Logger
	// Actor names the kind of actor or bus, set on every Event.
	Actor string
	// Observers receive each event they want, after the logger.
	Observers []event.Observer
	// Interceptors wrap each operation, the first outermost.
	Interceptors []event.Interceptor
	// Propagator carries trace contexts through _trace_context.
	Propagator event.Propagator
}

// Emitter writes events to a logger and to observers. Make one with New;
// it is safe for concurrent use.
type Emitter struct {
	log   *slog.Logger
	actor string
	obs   []event.Observer
	icpt  []event.Interceptor
	prop  event.Propagator
	base  []slog.Attr // from With, for the observers (the logger has them)
	sel   *selection  // shared by an Emitter and those With makes of it
	fault *faults     // shared likewise
}

// selection caches, per event name, the observers that want it.
type selection struct {
	obs    []event.Observer
	byName sync.Map // string -> []event.Observer
}

func (s *selection) of(name string) []event.Observer {
	if len(s.obs) == 0 {
		return nil
	}
	if v, ok := s.byName.Load(name); ok {
		return v.([]event.Observer)
	}
	var want []event.Observer
	for _, o := range s.obs {
		if wants(o, name) {
			want = append(want, o)
		}
	}
	s.byName.Store(name, want)
	return want
}

// wants asks o whether it wants name, counting a panic in Wants as no.
func wants(o event.Observer, name string) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return event.Wants(o, name)
}

// faults counts the observer and interceptor panics of one actor and
// paces their logging.
type faults struct {
	n   atomic.Uint64
	log rate.Sometimes
}

// New returns an Emitter for cfg.
func New(cfg Config) *Emitter {
	l := cfg.Logger
	if l == nil {
		l = slog.Default()
	}
	return &Emitter{log: l, actor: cfg.Actor, obs: cfg.Observers, icpt: cfg.Interceptors, prop: cfg.Propagator,
		sel:   &selection{obs: cfg.Observers},
		fault: &faults{log: rate.Sometimes{First: 1, Interval: PanicLogInterval}}}
}

// Logger returns the Emitter's logger.
func (e *Emitter) Logger() *slog.Logger { return e.log }

// Observed reports whether the Emitter has any observer.
func (e *Emitter) Observed() bool { return len(e.obs) > 0 }

// With returns an Emitter whose events carry attrs as well.
func (e *Emitter) With(args ...any) *Emitter {
	c := *e
	c.base = append(append([]slog.Attr(nil), e.base...), argsToAttrs(args)...)
	c.log = e.log.With(args...)
	return &c
}

// ForActor returns an Emitter whose events name actor.
func (e *Emitter) ForActor(actor string) *Emitter {
	c := *e
	c.actor = actor
	return &c
}

// ObserverPanics returns how many times an observer or interceptor of
// this Emitter (or of one made from it, or it from) panicked. Each panic
// was recovered: the event went on to the other observers, the operation
// ran, and the actor went on.
func (e *Emitter) ObserverPanics() uint64 { return e.fault.n.Load() }

// Enabled reports whether an event named name at level would reach
// anyone: the logger at that level, or an observer that wants it.
// Callers use it to skip building attributes nobody reads.
func (e *Emitter) Enabled(ctx context.Context, level slog.Level, name string) bool {
	return e.log.Enabled(ctx, level) || len(e.sel.of(name)) > 0
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

// Log emits an event with no typed fields whose attributes are slog's
// key-value pairs.
func (e *Emitter) Log(ctx context.Context, level slog.Level, name string, args ...any) {
	if !e.Enabled(ctx, level, name) {
		return
	}
	e.LogAttrs(ctx, level, name, argsToAttrs(args)...)
}

// LogAttrs emits an event with no typed fields.
func (e *Emitter) LogAttrs(ctx context.Context, level slog.Level, name string, attrs ...slog.Attr) {
	e.Emit(ctx, level, event.Event{Name: name}, attrs...)
}

// Emit emits ev at level: the log record's message is ev.Name and its
// attributes attrs; observers that want ev.Name get ev with its Level,
// Actor (the Emitter's, unless set) and Attrs (the With attributes, then
// attrs, in a slice of their own) filled in. attrs is not kept: a caller
// may build it on its stack.
func (e *Emitter) Emit(ctx context.Context, level slog.Level, ev event.Event, attrs ...slog.Attr) {
	e.record(ctx, level, ev.Name, attrs)
	obs := e.sel.of(ev.Name)
	if len(obs) == 0 {
		return
	}
	ev.Level = level
	ev.Attrs = append(append(make([]slog.Attr, 0, len(e.base)+len(attrs)), e.base...), attrs...)
	if ev.Actor == "" {
		ev.Actor = e.actor
	}
	for _, o := range obs {
		e.observe(ctx, o, ev)
	}
}

// record writes the log record of an event when the logger's level admits
// it. It hands the record to the logger's handler itself, as
// slog.Logger.LogAttrs would, but without the caller's program counter:
// every record would name this function as its source, and finding it
// (runtime.Callers) is a fifth of what a record costs a handler writing
// text.
func (e *Emitter) record(ctx context.Context, level slog.Level, msg string, attrs []slog.Attr) {
	if ctx == nil {
		ctx = context.Background()
	}
	h := e.log.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(attrs...)
	_ = h.Handle(ctx, r)
}

// EmitArgs is Emit with slog's key-value pairs for the record's
// attributes; they are built only when someone gets the event.
func (e *Emitter) EmitArgs(ctx context.Context, level slog.Level, ev event.Event, args ...any) {
	if !e.Enabled(ctx, level, ev.Name) {
		return
	}
	e.Emit(ctx, level, ev, argsToAttrs(args)...)
}

// observe hands ev to o, recovering a panic so that a broken observer can
// neither crash the process nor cut short the actor's work. A
// runtime.Goexit in an observer is not stopped here: it ends the calling
// goroutine as it would anywhere, and the actors guard their goroutines
// against it where a task's outcome is at stake.
func (e *Emitter) observe(ctx context.Context, o event.Observer, ev event.Event) {
	defer func() {
		if v := recover(); v != nil {
			e.fault.report(ctx, e.log, ev.Name, v)
		}
	}()
	o.Observe(ctx, ev)
}

// report counts one panic and logs it, at most once per PanicLogInterval.
func (f *faults) report(ctx context.Context, log *slog.Logger, what string, v any) {
	n := f.n.Add(1)
	f.log.Do(func() {
		log.LogAttrs(ctx, slog.LevelError, event.ObserverPanicked,
			slog.String("event", what),
			slog.Uint64("observer_panics", n),
			slog.String("error", fmt.Sprint(v)),
			slog.String("stack", string(debug.Stack())))
	})
}

// Count reports an outcome that is counted, such as something dropped,
// refused or given up on: it adds one to count and emits one event, in
// one call, so that every drop has exactly one event and one count. args
// are slog's key-value pairs.
func (e *Emitter) Count(ctx context.Context, count *atomic.Uint64, level slog.Level, name string, args ...any) {
	count.Add(1)
	e.Log(ctx, level, name, args...)
}

// CountAttrs is Count with attributes.
func (e *Emitter) CountAttrs(ctx context.Context, count *atomic.Uint64, level slog.Level, name string, attrs ...slog.Attr) {
	count.Add(1)
	e.LogAttrs(ctx, level, name, attrs...)
}

// CountEvent is Count with a typed event: it adds ev.N() to count.
func (e *Emitter) CountEvent(ctx context.Context, count *atomic.Uint64, level slog.Level, ev event.Event, attrs ...slog.Attr) {
	count.Add(ev.N())
	e.Emit(ctx, level, ev, attrs...)
}

// Intercepted reports whether the Emitter has interceptors; when it has
// none, Intercept calls next directly.
func (e *Emitter) Intercepted() bool { return len(e.icpt) > 0 }

// errNextTwice is what a second call of an interceptor's next returns.
var errNextTwice = errors.New("heddle: an interceptor called next twice; the operation ran once")

// Intercept runs next inside the interceptors, the first outermost, and
// returns what the chain returns. next runs exactly once whatever the
// interceptors do: an interceptor that panics before calling it, or
// returns without calling it, is passed over (counted and logged as an
// observer panic) and next runs with the context it was offered; a
// second call gets an error and runs nothing.
//
// A panic in the operation itself is not an interceptor's: it goes up
// through the interceptors (whose deferred calls run, seeing the
// operation's error errOperationPanicked) and is raised again to the
// caller of Intercept, as if there were no interceptors.
func (e *Emitter) Intercept(ctx context.Context, op *event.Op, next event.Next) error {
	if len(e.icpt) == 0 {
		return next(ctx)
	}
	if op.Actor == "" {
		op.Actor = e.actor
	}
	var raised any
	guarded := func(ctx context.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				raised = v
				err = errOperationPanicked
			}
		}()
		return next(ctx)
	}
	err := e.intercept(ctx, 0, op, guarded)
	if raised != nil {
		panic(raised)
	}
	return err
}

// errOperationPanicked is what interceptors see returned by next when the
// operation panicked; the panic is raised again once they returned.
var errOperationPanicked = errors.New("heddle: the operation panicked")

func (e *Emitter) intercept(ctx context.Context, i int, op *event.Op, next event.Next) (err error) {
	if i == len(e.icpt) {
		return next(ctx)
	}
	var called bool
	var innerErr error
	inner := func(c context.Context) error {
		if called {
			return errNextTwice
		}
		called = true
		if c == nil {
			c = ctx
		}
		innerErr = e.intercept(c, i+1, op, next)
		return innerErr
	}
	defer func() {
		if v := recover(); v != nil {
			e.fault.report(ctx, e.log, "interceptor."+op.Kind.String(), v)
			if !called {
				err = inner(ctx)
			} else {
				err = innerErr
			}
		}
	}()
	err = e.icpt[i].Intercept(ctx, op, inner)
	if !called {
		e.fault.report(ctx, e.log, "interceptor."+op.Kind.String(), "returned without calling next")
		err = inner(ctx)
	}
	return err
}

// TraceKey is the task extension holding the W3C trace context.
const TraceKey = "_trace_context"

// Propagated reports whether the Emitter has a propagator.
func (e *Emitter) Propagated() bool { return e.prop != nil }

// Extract returns ctx carrying the trace context of ext's _trace_context,
// through the propagator; ctx itself when there is no propagator or no
// readable trace context.
func (e *Emitter) Extract(ctx context.Context, ext map[string]json.RawMessage) context.Context {
	if e.prop == nil {
		return ctx
	}
	raw, ok := ext[TraceKey]
	if !ok {
		return ctx
	}
	carrier := carrierOf(raw)
	if len(carrier) == 0 {
		return ctx
	}
	return e.prop.Extract(ctx, carrier)
}

// Inject returns ext with ctx's trace context written into its
// _trace_context, through the propagator, keeping the members of an
// existing _trace_context the propagator does not write. ext itself is not
// changed; without a propagator, or when ctx has no trace context, ext is
// returned as it is.
func (e *Emitter) Inject(ctx context.Context, ext map[string]json.RawMessage) map[string]json.RawMessage {
	data, ok := e.TraceContext(ctx, ext)
	if !ok {
		return ext
	}
	out := make(map[string]json.RawMessage, len(ext)+1)
	for k, v := range ext {
		out[k] = v
	}
	out[TraceKey] = data
	return out
}

// TraceContext returns the _trace_context Inject writes into ext, and
// false when it writes none (no propagator, or no trace context in ctx).
// A router that forwards a task's own bytes puts it in their place
// (wire.ReplaceMember) instead of encoding the task again.
func (e *Emitter) TraceContext(ctx context.Context, ext map[string]json.RawMessage) (json.RawMessage, bool) {
	if e.prop == nil {
		return nil, false
	}
	carrier := make(map[string]string, 2)
	e.prop.Inject(ctx, carrier)
	if len(carrier) == 0 {
		return nil, false
	}
	// The members of an existing _trace_context the propagator does not
	// write are kept (the last of a repeated key); one that is no object
	// is replaced.
	var keptBuf [4]wire.Member
	var kept []wire.Member
	if raw, ok := ext[TraceKey]; ok {
		kept = traceMembers(raw, keptBuf[:0])
	}
	var keysBuf [4]string
	keys := keysBuf[:0]
	for k := range carrier {
		keys = append(keys, k)
	}
	for _, m := range kept {
		if _, ok := carrier[string(m.Key)]; !ok && !slices.Contains(keys, string(m.Key)) {
			keys = append(keys, traceKey(m.Key))
		}
	}
	slices.Sort(keys)
	data := make([]byte, 0, 96)
	data = append(data, '{')
	for i, k := range keys {
		if i > 0 {
			data = append(data, ',')
		}
		data = appendJSONString(data, k)
		data = append(data, ':')
		if v, ok := carrier[k]; ok {
			data = appendJSONString(data, v)
		} else {
			data = append(data, lastMember(kept, k)...)
		}
	}
	data = append(data, '}')
	return data, true
}

// lastMember returns the value of the last member of members named key.
func lastMember(members []wire.Member, key string) []byte {
	for i := len(members) - 1; i >= 0; i-- {
		if string(members[i].Key) == key {
			return members[i].Val
		}
	}
	return nil
}

// appendJSONString appends s as a JSON string: as it is between quotes
// when it needs no escape (a traceparent never does), else as
// encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
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
