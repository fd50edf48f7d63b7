package emit_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/emit"
	"github.com/heddle-go/heddle/internal/testlog"
)

// collector keeps every event it observes.
type collector struct {
	mu     sync.Mutex
	events []event.Event
}

func (c *collector) Observe(_ context.Context, e event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e.Clone())
}

func TestAnEventReachesTheLoggerAndEveryObserverWithItsTypedFields(t *testing.T) {
	logs := testlog.New()
	var a, b collector
	e := emit.New(emit.Config{Logger: logs.Logger(), Actor: "worker", Observers: []event.Observer{&a, &b}}).
		With(slog.String("worker_type", "summarize"))
	cause := errors.New("boom")
	e.Emit(context.Background(), slog.LevelWarn, event.Event{Name: event.WorkerFailed, TaskID: "t-1", WorkerType: "summarize",
		Tier: "local", Reason: event.ReasonHandler, Err: cause, Attempt: 2}, slog.String("task_id", "t-1"), slog.String("reason", "handler_error"))

	if got := logs.All(event.WorkerFailed); len(got) != 1 || got[0].Str("worker_type") != "summarize" || got[0].Str("task_id") != "t-1" {
		t.Errorf("logged %+v, want one worker.failed record with worker_type and task_id", got)
	}
	for _, c := range []*collector{&a, &b} {
		if len(c.events) != 1 {
			t.Fatalf("observer got %d events, want 1", len(c.events))
		}
		ev := c.events[0]
		if ev.Name != event.WorkerFailed || ev.Level != slog.LevelWarn || ev.Actor != "worker" || ev.TaskID != "t-1" ||
			ev.Tier != "local" || ev.Reason != event.ReasonHandler || !errors.Is(ev.Err, cause) || ev.Attempt != 2 {
			t.Errorf("event %+v, want the typed fields as emitted", ev)
		}
		if len(ev.Attrs) != 3 {
			t.Errorf("event has %d attributes, want the With attribute and the two given", len(ev.Attrs))
		}
	}
}

// picky wants only worker.completed, and counts how often it is asked.
type picky struct {
	collector
	asked atomic.Int32
}

func (p *picky) Wants(name string) bool {
	p.asked.Add(1)
	return name == event.WorkerCompleted
}

func TestASelectorGetsOnlyWhatItWantsAndIsAskedOncePerName(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
	p := &picky{}
	e := emit.New(emit.Config{Logger: quiet, Observers: []event.Observer{p}})
	ctx := context.Background()
	for range 10 {
		if e.Enabled(ctx, slog.LevelDebug, event.WorkerReceived) {
			t.Fatal("Enabled(worker.received) is true though neither the logger nor the observer wants it")
		}
		if !e.Enabled(ctx, slog.LevelDebug, event.WorkerCompleted) {
			t.Fatal("Enabled(worker.completed) is false though the observer wants it")
		}
		e.Emit(ctx, slog.LevelInfo, event.Event{Name: event.WorkerCompleted})
		e.Emit(ctx, slog.LevelInfo, event.Event{Name: event.WorkerReceived})
	}
	if len(p.events) != 10 {
		t.Errorf("observer got %d events, want the 10 worker.completed", len(p.events))
	}
	if n := p.asked.Load(); n != 2 {
		t.Errorf("Wants was asked %d times, want once per name (2)", n)
	}
}

func TestAPanickingObserverIsCountedAndTheOthersStillObserve(t *testing.T) {
	logs := testlog.New()
	var c collector
	bad := event.ObserverFunc(func(context.Context, event.Event) { panic("observer bug") })
	e := emit.New(emit.Config{Logger: logs.Logger(), Observers: []event.Observer{bad, &c}})
	var n atomic.Uint64
	for range 3 {
		e.CountEvent(context.Background(), &n, slog.LevelWarn, event.Event{Name: event.DeadLetterEvicted, Count: 2})
	}
	if n.Load() != 6 || len(c.events) != 3 || e.ObserverPanics() != 3 {
		t.Errorf("count %d, observed %d, panics %d; want 6 (Count 2 each), 3 and 3", n.Load(), len(c.events), e.ObserverPanics())
	}
	if got := logs.All(event.ObserverPanicked); len(got) != 1 {
		t.Errorf("%d observer.panicked records, want 1 within the log interval", len(got))
	}
}

func TestNextRunsExactlyOnceWhateverTheInterceptorsDo(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	key := struct{ name string }{"k"}
	cases := map[string]event.InterceptorFunc{
		"passes a context of its own": func(ctx context.Context, op *event.Op, next event.Next) error {
			return next(context.WithValue(ctx, key, "set"))
		},
		"panics before next": func(context.Context, *event.Op, event.Next) error { panic("before") },
		"panics after next": func(ctx context.Context, _ *event.Op, next event.Next) error {
			_ = next(ctx)
			panic("after")
		},
		"never calls next": func(context.Context, *event.Op, event.Next) error { return nil },
		"calls next twice": func(ctx context.Context, _ *event.Op, next event.Next) error {
			_ = next(ctx)
			if err := next(ctx); err == nil {
				t.Error("a second call of next returned nil, want an error")
			}
			return nil
		},
	}
	for name, icpt := range cases {
		t.Run(name, func(t *testing.T) {
			e := emit.New(emit.Config{Logger: quiet, Interceptors: []event.Interceptor{icpt}})
			runs := 0
			var seen any
			err := e.Intercept(context.Background(), &event.Op{Kind: event.OpRoute}, func(ctx context.Context) error {
				runs++
				seen = ctx.Value(key)
				return nil
			})
			if runs != 1 {
				t.Fatalf("the operation ran %d times, want once", runs)
			}
			if err != nil {
				t.Errorf("Intercept = %v, want the operation's nil", err)
			}
			if name == "passes a context of its own" && seen != "set" {
				t.Errorf("the operation's context has %v, want the interceptor's value", seen)
			}
			if wantPanics := name != "passes a context of its own" && name != "calls next twice"; wantPanics != (e.ObserverPanics() > 0) {
				t.Errorf("ObserverPanics() = %d; counted: %v, want %v", e.ObserverPanics(), !wantPanics, wantPanics)
			}
		})
	}
}

func TestInterceptorsNestFirstOutermostAndReadTheOutcome(t *testing.T) {
	var order []string
	mk := func(name string) event.Interceptor {
		return event.InterceptorFunc(func(ctx context.Context, op *event.Op, next event.Next) error {
			order = append(order, name+">")
			err := next(ctx)
			order = append(order, "<"+name+":"+op.Status)
			return err
		})
	}
	e := emit.New(emit.Config{Logger: slog.New(slog.DiscardHandler), Actor: "router", Interceptors: []event.Interceptor{mk("a"), mk("b")}})
	op := &event.Op{Kind: event.OpRoute}
	failed := errors.New("dead-lettered")
	err := e.Intercept(context.Background(), op, func(context.Context) error {
		op.Status = "dead_lettered"
		return failed
	})
	if !errors.Is(err, failed) || op.Actor != "router" {
		t.Errorf("Intercept = %v, op.Actor %q; want the operation's error and the actor", err, op.Actor)
	}
	want := []string{"a>", "b>", "<b:dead_lettered", "<a:dead_lettered"}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
}

// mapPropagator keeps a trace id in the context under traceKey.
type mapPropagator struct{}

type traceKey struct{}

func (mapPropagator) Extract(ctx context.Context, c map[string]string) context.Context {
	return context.WithValue(ctx, traceKey{}, c["traceparent"])
}

func (mapPropagator) Inject(ctx context.Context, c map[string]string) {
	if v, ok := ctx.Value(traceKey{}).(string); ok {
		c["traceparent"] = v
	}
}

func TestThePropagatorReadsAndWritesTraceContext(t *testing.T) {
	e := emit.New(emit.Config{Logger: slog.New(slog.DiscardHandler), Propagator: mapPropagator{}})
	in := map[string]json.RawMessage{
		"_trace_context": json.RawMessage(`{"traceparent":"00-aaaa-01","vendor":"kept"}`),
		"_tenant":        json.RawMessage(`"acme"`),
	}
	ctx := e.Extract(context.Background(), in)
	if got := ctx.Value(traceKey{}); got != "00-aaaa-01" {
		t.Fatalf("extracted %v, want the traceparent", got)
	}
	out := e.Inject(context.WithValue(ctx, traceKey{}, "00-bbbb-01"), in)
	var tc map[string]string
	if err := json.Unmarshal(out["_trace_context"], &tc); err != nil {
		t.Fatal(err)
	}
	if tc["traceparent"] != "00-bbbb-01" || tc["vendor"] != "kept" || string(out["_tenant"]) != `"acme"` {
		t.Errorf("injected %s (and %s), want the new traceparent, the vendor member and _tenant kept", out["_trace_context"], out["_tenant"])
	}
	if string(in["_trace_context"]) != `{"traceparent":"00-aaaa-01","vendor":"kept"}` {
		t.Error("Inject changed the map it was given")
	}
	none := emit.New(emit.Config{Logger: slog.New(slog.DiscardHandler)})
	if got := none.Inject(ctx, in); string(got["_trace_context"]) != string(in["_trace_context"]) {
		t.Error("without a propagator, Inject changed _trace_context")
	}
	if ctx := e.Extract(context.Background(), map[string]json.RawMessage{"_trace_context": json.RawMessage(`"not an object"`)}); ctx.Value(traceKey{}) != nil {
		t.Error("a _trace_context that is not an object was extracted")
	}
}

func TestAPanicInTheOperationReachesTheCallerThroughTheInterceptors(t *testing.T) {
	var sawErr error
	e := emit.New(emit.Config{Logger: slog.New(slog.DiscardHandler), Interceptors: []event.Interceptor{
		event.InterceptorFunc(func(ctx context.Context, _ *event.Op, next event.Next) error {
			sawErr = next(ctx)
			return sawErr
		})}})
	defer func() {
		if v := recover(); v != "handler bug" {
			t.Errorf("recovered %v, want the operation's own panic", v)
		}
		if sawErr == nil {
			t.Error("the interceptor saw no error from the panicking operation")
		}
		if e.ObserverPanics() != 0 {
			t.Errorf("ObserverPanics() = %d: the operation's panic was blamed on the interceptor", e.ObserverPanics())
		}
	}()
	_ = e.Intercept(context.Background(), &event.Op{Kind: event.OpHandle}, func(context.Context) error { panic("handler bug") })
	t.Error("Intercept returned although the operation panicked")
}

func TestAnObservedEventCostsNoAllocationAndCloneKeepsItsAttributes(t *testing.T) {
	var kept []event.Event
	keep := event.ObserverFunc(func(_ context.Context, e event.Event) { kept = append(kept[:0], e.Clone()) })
	e := emit.New(emit.Config{Logger: slog.New(slog.DiscardHandler), Actor: "worker", Observers: []event.Observer{
		event.ObserverFunc(func(context.Context, event.Event) {})}})
	ctx := context.Background()
	emitOne := func(e *emit.Emitter, id string) {
		e.Emit(ctx, slog.LevelInfo, event.Event{Name: event.WorkerCompleted, TaskID: id}, slog.String("task_id", id), slog.Int("retry_count", 0))
	}
	emitOne(e, "warm")
	if n := testing.AllocsPerRun(100, func() { emitOne(e, "t-1") }); n != 0 {
		t.Errorf("an event to an observer allocates %v times, want 0", n)
	}

	k := emit.New(emit.Config{Logger: slog.New(slog.DiscardHandler), Observers: []event.Observer{keep}})
	emitOne(k, "t-1")
	first := kept[0]
	emitOne(k, "t-2")
	if len(first.Attrs) != 2 || first.Attrs[0].Value.String() != "t-1" {
		t.Errorf("a cloned event's attributes are %v after the next event, want its own task_id t-1", first.Attrs)
	}
}

// dispatchOnly wraps dispatches alone.
type dispatchOnly struct{ calls *int }

func (d dispatchOnly) Intercept(ctx context.Context, _ *event.Op, next event.Next) error {
	*d.calls++
	return next(ctx)
}

func (dispatchOnly) Intercepts(kind event.OpKind) bool { return kind == event.OpDispatch }

func TestAnOpSelectorWrapsOnlyTheKindsItWants(t *testing.T) {
	calls := 0
	plain := 0
	all := event.InterceptorFunc(func(ctx context.Context, _ *event.Op, next event.Next) error {
		plain++
		return next(ctx)
	})
	e := emit.New(emit.Config{Logger: slog.New(slog.DiscardHandler), Interceptors: []event.Interceptor{dispatchOnly{&calls}}})
	if e.Intercepted(event.OpRoute) || !e.Intercepted(event.OpDispatch) {
		t.Errorf("Intercepted(route) %v, Intercepted(dispatch) %v; want false, true", e.Intercepted(event.OpRoute), e.Intercepted(event.OpDispatch))
	}
	both := emit.New(emit.Config{Logger: slog.New(slog.DiscardHandler), Interceptors: []event.Interceptor{dispatchOnly{&calls}, all}})
	ran := 0
	op := func(context.Context) error { ran++; return nil }
	for _, kind := range []event.OpKind{event.OpHandle, event.OpRoute, event.OpDispatch, event.OpGoal} {
		if err := e.Intercept(context.Background(), &event.Op{Kind: kind}, op); err != nil {
			t.Fatal(err)
		}
		if err := both.Intercept(context.Background(), &event.Op{Kind: kind}, op); err != nil {
			t.Fatal(err)
		}
	}
	if ran != 8 || calls != 2 || plain != 4 {
		t.Errorf("operations ran %d times, the dispatch interceptor %d, the plain one %d; want 8, 2 (one dispatch per emitter), 4", ran, calls, plain)
	}
}
