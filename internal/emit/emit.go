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
	"github.com/heddle-go/heddle/internal/cowmap"
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
	byOp  [opKinds][]event.Interceptor // icpt, of each kind those that want it
	prop  event.Propagator
	base  []slog.Attr // from With, for the observers (the logger has them)
	sel   *selection  // shared by an Emitter and those With makes of it
	fault *faults     // shared likewise
}

// selection caches, per event name, the observers that want it, so that
// each event's lookup is one atomic load and one map read.
type selection struct {
	obs    []event.Observer
	byName cowmap.Map[string, []event.Observer]
}

func (s *selection) of(name string) []event.Observer {
	if len(s.obs) == 0 {
		return nil
	}
	return s.byName.LoadOrCompute(name, func() ([]event.Observer, bool) {
		var want []event.Observer
		for _, o := range s.obs {
			if wants(o, name) {
				want = append(want, o)
			}
		}
		return want, true
	})
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
	e := &Emitter{log: l, actor: cfg.Actor, obs: cfg.Observers, icpt: cfg.Interceptors, prop: cfg.Propagator,
		sel:   &selection{obs: cfg.Observers},
		fault: &faults{log: rate.Sometimes{First: 1, Interval: PanicLogInterval}}}
	for k := range e.byOp {
		for _, i := range cfg.Interceptors {
			if intercepts(i, event.OpKind(k)) {
				e.byOp[k] = append(e.byOp[k], i)
			}
		}
	}
	return e
}

// opKinds bounds the event.OpKind values an Emitter tells apart; an
// operation of a kind beyond them goes to every interceptor.
const opKinds = 8

// interceptors returns the interceptors that wrap operations of kind.
func (e *Emitter) interceptors(kind event.OpKind) []event.Interceptor {
	if int(kind) < len(e.byOp) {
		return e.byOp[kind]
	}
	return e.icpt
}

// intercepts asks i whether it wraps kind, counting a panic in
// Intercepts as yes (the interceptor's own guard then applies).
func intercepts(i event.Interceptor, kind event.OpKind) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = true
		}
	}()
	return event.Intercepts(i, kind)
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
	if ev.Actor == "" {
		ev.Actor = e.actor
	}
	// The observers get the attributes in a slice of their own that is
	// theirs for the call only (event.Observer says so): a pooled one,
	// cleared before it goes back, so that an event costs no allocation.
	buf := attrPool.Get().(*[]slog.Attr)
	ev.Attrs = append(append((*buf)[:0], e.base...), attrs...)
	for _, o := range obs {
		e.observe(ctx, o, ev)
	}
	clear(ev.Attrs)
	if cap(ev.Attrs) <= maxPooledAttrs {
		*buf = ev.Attrs[:0]
		attrPool.Put(buf)
	}
}

// maxPooledAttrs bounds the attribute slices kept for reuse, so that one
// event with many attributes does not pin a large slice.
const maxPooledAttrs = 64

var attrPool = sync.Pool{New: func() any {
	s := make([]slog.Attr, 0, 16)
	return &s
}}

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

// Intercepted reports whether the Emitter has interceptors that wrap
// operations of kind; when it has none, Intercept calls next directly.
func (e *Emitter) Intercepted(kind event.OpKind) bool { return len(e.interceptors(kind)) > 0 }

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
	icpt := e.interceptors(op.Kind)
	if len(icpt) == 0 {
		return next(ctx)
	}
	if op.Actor == "" {
		op.Actor = e.actor
	}
	c := &chain{e: e, icpt: icpt, op: op, next: next}
	c.links = c.buf[:0]
	if len(icpt) > len(c.buf) {
		c.links = make([]link, 0, len(icpt))
	}
	c.links = c.links[:len(icpt)]
	for i := range c.links {
		l := &c.links[i]
		l.c, l.i = c, i
		l.next = l.call
	}
	err := c.run(ctx, 0)
	if c.raised != nil {
		panic(c.raised)
	}
	return err
}

// errOperationPanicked is what interceptors see returned by next when the
// operation panicked; the panic is raised again once they returned.
var errOperationPanicked = errors.New("heddle: the operation panicked")

// chain is one call of Intercept: the operation and the state of each
// interceptor's link, allocated together.
type chain struct {
	e      *Emitter
	icpt   []event.Interceptor
	op     *event.Op
	next   event.Next
	raised any // the operation's panic, raised again at the end
	links  []link
	buf    [2]link
}

// link is the next an interceptor is given: it runs the rest of the
// chain once.
type link struct {
	c      *chain
	i      int
	ctx    context.Context // the context the interceptor was offered
	called bool
	err    error
	next   event.Next // call, bound once
}

// call runs the interceptors after this link's, then the operation; a
// second call runs nothing.
func (l *link) call(ctx context.Context) error {
	if l.called {
		return errNextTwice
	}
	l.called = true
	if ctx == nil {
		ctx = l.ctx
	}
	l.err = l.c.run(ctx, l.i+1)
	return l.err
}

// run calls interceptor i, or the operation once every interceptor has
// been entered.
func (c *chain) run(ctx context.Context, i int) (err error) {
	if i == len(c.links) {
		return c.operation(ctx)
	}
	l := &c.links[i]
	l.ctx = ctx
	defer func() {
		if v := recover(); v != nil {
			c.e.fault.report(ctx, c.e.log, "interceptor."+c.op.Kind.String(), v)
			if !l.called {
				err = l.call(ctx)
			} else {
				err = l.err
			}
		}
	}()
	err = c.icpt[i].Intercept(ctx, c.op, l.next)
	if !l.called {
		c.e.fault.report(ctx, c.e.log, "interceptor."+c.op.Kind.String(), "returned without calling next")
		err = l.call(ctx)
	}
	return err
}

// operation runs the operation, keeping a panic of its own to be raised
// again once the interceptors have returned.
func (c *chain) operation(ctx context.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			c.raised = v
			err = errOperationPanicked
		}
	}()
	return c.next(ctx)
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
		putCarrier(carrier)
		return ctx
	}
	defer putCarrier(carrier)
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
	carrier := getCarrier()
	defer putCarrier(carrier)
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
