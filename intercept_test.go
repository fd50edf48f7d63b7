package heddle_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/pipeline"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// chain is a stand-in tracer: each intercepted operation is a "span"
// named after the operation, child of the span in its context; the
// propagator writes the current span's path as the traceparent.
type chain struct {
	mu    sync.Mutex
	spans []string // each span's path, in the order they started
	ops   []event.Op
	ended chan struct{} // a token per ended operation, when not nil
}

type spanKey struct{}

func spanOf(ctx context.Context) string { s, _ := ctx.Value(spanKey{}).(string); return s }

func (c *chain) Intercept(ctx context.Context, op *event.Op, next event.Next) error {
	path := spanOf(ctx) + "/" + op.Kind.String()
	c.mu.Lock()
	c.spans = append(c.spans, path)
	c.mu.Unlock()
	err := next(context.WithValue(ctx, spanKey{}, path))
	c.mu.Lock()
	c.ops = append(c.ops, *op)
	c.mu.Unlock()
	if c.ended != nil {
		c.ended <- struct{}{}
	}
	return err
}

// waitOps waits until n operations of kind have ended. A route operation
// can end after its caller has its answer: the router answers a task
// nobody serves as soon as the bus says so, which may be before its
// forward returns.
func (c *chain) waitOps(t *testing.T, kind event.OpKind, n int) {
	t.Helper()
	for len(c.opsOf(kind)) < n {
		select {
		case <-c.ended:
		case <-time.After(testkit.Wait):
			t.Fatalf("%d %s operations ended within %s, want %d", len(c.opsOf(kind)), kind, testkit.Wait, n)
		}
	}
}

func (c *chain) Extract(ctx context.Context, carrier map[string]string) context.Context {
	return context.WithValue(ctx, spanKey{}, carrier["traceparent"])
}

func (c *chain) Inject(ctx context.Context, carrier map[string]string) {
	if s := spanOf(ctx); s != "" {
		carrier["traceparent"] = s
	}
}

func (c *chain) options() []heddle.Option {
	return []heddle.Option{heddle.WithInterceptor(c), heddle.WithPropagator(c)}
}

func (c *chain) opsOf(kind event.OpKind) []event.Op {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []event.Op
	for _, op := range c.ops {
		if op.Kind == kind {
			out = append(out, op)
		}
	}
	return out
}

func TestATraceContextRunsFromTheCallerThroughTheRouterAndTheWorkerToTheResult(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		c := chain{ended: make(chan struct{}, 16)}
		var handlerSpan string
		attempts := 0
		w, err := worker.NewDynamic(connect(), "traced", func(ctx context.Context, in map[string]any) (map[string]any, error) {
			attempts++
			handlerSpan = spanOf(ctx)
			if attempts == 1 {
				return nil, errors.New("first attempt fails")
			}
			return map[string]any{"ok": true}, nil
		}, worker.Config{RetryBackoff: 1}, c.options()...)
		if err != nil {
			t.Fatal(err)
		}
		rt, err := router.New(connect(), router.Config{}, c.options()...)
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, w.Run, w.Ready())
		testkit.StartActor(t, rt.Run, rt.Ready())

		// The caller's own context is in a trace that came from Python.
		ctx := context.WithValue(testkit.Context(t), spanKey{}, "py")
		task := heddle.NewTaskMessage("traced", nil)
		task.MaxRetries = 1
		task.Extra = map[string]json.RawMessage{"_trace_context": json.RawMessage(`{"traceparent":"stale","tracestate":"vendor=1"}`)}
		res, err := dispatch.Request(ctx, connect(), task, dispatch.With(c.options()...))
		if err != nil || res.Status != heddle.StatusCompleted {
			t.Fatalf("Request = %+v, %v; want completed", res, err)
		}

		const wantHandler = "py/dispatch/route/handle"
		if handlerSpan != wantHandler {
			t.Errorf("the handler ran in span %q, want %q: dispatch, then route, then handle, each the child of the one before", handlerSpan, wantHandler)
		}
		var tc map[string]string
		if err := json.Unmarshal(res.Extra["_trace_context"], &tc); err != nil {
			t.Fatalf("the result's _trace_context %s: %v", res.Extra["_trace_context"], err)
		}
		if tc["traceparent"] != wantHandler || tc["tracestate"] != "vendor=1" {
			t.Errorf("the result's _trace_context %v, want the worker's span and the tracestate kept", tc)
		}
		handles := c.opsOf(event.OpHandle)
		if len(handles) != 2 || handles[0].Attempt != 1 || handles[0].Status != "failed" || handles[0].Reason != event.ReasonHandler ||
			handles[1].Attempt != 2 || handles[1].Status != "completed" || handles[1].TaskID != task.TaskID {
			t.Errorf("handle ops %+v, want attempt 1 failed (handler_error) and attempt 2 completed", handles)
		}
		c.waitOps(t, event.OpRoute, 1)
		routes := c.opsOf(event.OpRoute)
		if len(routes) != 1 || routes[0].Status != "routed" || routes[0].Subject != heddle.WorkerSubject("traced", heddle.TierStandard) {
			t.Errorf("route ops %+v, want one routed to the worker's subject", routes)
		}
		dispatches := c.opsOf(event.OpDispatch)
		if len(dispatches) != 1 || dispatches[0].Status != "completed" || dispatches[0].TaskID != task.TaskID {
			t.Errorf("dispatch ops %+v, want one completed", dispatches)
		}
	})
}

func TestARouteOpReportsADeadLetterWithItsReasonKind(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		c := chain{ended: make(chan struct{}, 16)}
		rt, err := router.New(connect(), router.Config{}, c.options()...)
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, rt.Run, rt.Ready())
		_, err = dispatch.Request(testkit.Context(t), connect(), heddle.NewTaskMessage("nobody_serves_this", nil), dispatch.With(c.options()...))
		var dl *dispatch.DeadLetterError
		if !errors.As(err, &dl) {
			t.Fatalf("Request = %v, want a dead letter", err)
		}
		c.waitOps(t, event.OpRoute, 1)
		routes := c.opsOf(event.OpRoute)
		if len(routes) != 1 || routes[0].Status != "routed" {
			t.Errorf("route ops %+v, want one routed (the bus says later that nothing serves it)", routes)
		}
		d := c.opsOf(event.OpDispatch)
		if len(d) != 1 || d[0].Status != "failed" || d[0].Reason != event.ReasonNoWorker || !strings.Contains(d[0].Err.Error(), "no_worker") {
			t.Errorf("dispatch ops %+v, want one failed with reason no_worker", d)
		}
	})
}

func TestAGoalsTraceContextRunsThroughThePipelineToItsStagesAndItsFinalResult(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		var c chain
		var handlerSpan string
		w, err := worker.NewDynamic(connect(), "stage_worker", func(ctx context.Context, in map[string]any) (map[string]any, error) {
			handlerSpan = spanOf(ctx)
			return map[string]any{"ok": true}, nil
		}, worker.Config{}, c.options()...)
		if err != nil {
			t.Fatal(err)
		}
		p, err := pipeline.New(connect(), pipeline.Config{Name: "traced_pipeline", Direct: true,
			Stages: []pipeline.Stage{{Name: "only", WorkerType: "stage_worker"}}}, c.options()...)
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, w.Run, w.Ready())
		testkit.StartActor(t, p.Run, p.Ready())

		goal := heddle.NewOrchestratorGoal("trace me", nil)
		goal.Extra = map[string]json.RawMessage{"_trace_context": json.RawMessage(`{"traceparent":"py"}`)}
		res, err := dispatch.SubmitGoal(testkit.Context(t), connect(), goal, dispatch.To("traced_pipeline"))
		if err != nil || res.Status != heddle.StatusCompleted {
			t.Fatalf("SubmitGoal = %+v, %v; want completed", res, err)
		}
		// The goal's span continues the Python trace; the stage's dispatch
		// is its child, the handler the dispatch's (Direct: no router).
		if want := "py/goal/dispatch/handle"; handlerSpan != want {
			t.Errorf("the stage's handler ran in span %q, want %q", handlerSpan, want)
		}
		var tc map[string]string
		if err := json.Unmarshal(res.Extra["_trace_context"], &tc); err != nil || tc["traceparent"] != "py/goal" {
			t.Errorf("the final result's _trace_context %s, want the goal's span py/goal", res.Extra["_trace_context"])
		}
		if g := c.opsOf(event.OpGoal); len(g) != 1 || g[0].Status != "completed" || g[0].TaskID != goal.GoalID || g[0].WorkerType != "traced_pipeline" {
			t.Errorf("goal ops %+v, want one completed for the goal", g)
		}
	})
}

func TestACallersCallsRunInsideItsInterceptors(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		var c chain
		var handlerSpan string
		w, err := worker.NewDynamic(connect(), "caller_traced", func(ctx context.Context, in map[string]any) (map[string]any, error) {
			handlerSpan = spanOf(ctx)
			return map[string]any{}, nil
		}, worker.Config{}, c.options()...)
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, w.Run, w.Ready())
		ctx := context.WithValue(testkit.Context(t), spanKey{}, "app")
		caller, err := dispatch.NewCaller(ctx, connect(), heddle.SubjectResultsDefault, dispatch.With(c.options()...))
		if err != nil {
			t.Fatal(err)
		}
		defer caller.Close()
		res, err := caller.Request(ctx, heddle.NewTaskMessage("caller_traced", nil), dispatch.Direct())
		if err != nil || res.Status != heddle.StatusCompleted {
			t.Fatalf("Request = %+v, %v", res, err)
		}
		if want := "app/dispatch/handle"; handlerSpan != want {
			t.Errorf("handler span %q, want %q", handlerSpan, want)
		}
	})
}
