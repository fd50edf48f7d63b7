package router_test

import (
	"context"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/router"
)

// tracer records each routing operation and stands in for a trace
// propagator: Extract puts the task's traceparent in the context, the
// interceptor appends "/route" to it, Inject writes what the context
// holds.
type tracer struct {
	ops chan event.Op // each operation once it ended
}

type traceKey struct{}

func (tr *tracer) Intercept(ctx context.Context, op *event.Op, next event.Next) error {
	parent, _ := ctx.Value(traceKey{}).(string)
	err := next(context.WithValue(ctx, traceKey{}, parent+"/route"))
	tr.ops <- *op
	return err
}

func (tr *tracer) Extract(ctx context.Context, carrier map[string]string) context.Context {
	return context.WithValue(ctx, traceKey{}, carrier["traceparent"])
}

func (tr *tracer) Inject(ctx context.Context, carrier map[string]string) {
	if s, _ := ctx.Value(traceKey{}).(string); s != "" {
		carrier["traceparent"] = s
	}
}

// next returns the next operation that ended.
func (tr *tracer) next(ctx context.Context, t *testing.T) event.Op {
	t.Helper()
	select {
	case op := <-tr.ops:
		return op
	case <-ctx.Done():
		t.Fatal("no routing operation ended")
		return event.Op{}
	}
}

// TestTracedRouteDecodesOnceAndNamesTheForwardedTask routes tasks through
// a router with an interceptor, with and without a propagator. The route
// operation must name the task the worker receives, including a task_id
// the router assigned; a re-encoded task keeps its payload, metadata and
// extensions, and carries the trace context the route ran in.
func TestTracedRouteDecodesOnceAndNamesTheForwardedTask(t *testing.T) {
	for _, propagate := range []bool{false, true} {
		name := "interceptor"
		if propagate {
			name = "interceptor_and_propagator"
		}
		t.Run(name, func(t *testing.T) {
			natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
				ctx := testkit.Context(t)
				tr := &tracer{ops: make(chan event.Op, 8)}
				opts := []heddle.Option{heddle.WithInterceptor(tr)}
				if propagate {
					opts = append(opts, heddle.WithPropagator(tr))
				}
				rt, err := router.New(connect(), router.Config{Rules: router.StaticRules(router.Rules{
					TierOverrides: map[string]string{"resizer": "local"},
				})}, opts...)
				if err != nil {
					t.Fatal(err)
				}
				testkit.StartActor(t, rt.Run, rt.Ready())

				wk := connect()
				got := make(chan *bus.Msg, 8)
				for _, wt := range []string{"echo", "resizer"} {
					sub, err := wk.Subscribe(ctx, heddle.WorkerSubjectAllTiers(wt), func(_ context.Context, m *bus.Msg) error {
						got <- m
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = sub.Unsubscribe() })
				}
				if err := wk.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				caller := connect()
				receive := func(t *testing.T, data string) (*bus.Msg, heddle.TaskMessage) {
					t.Helper()
					if err := caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming, Data: []byte(data)}); err != nil {
						t.Fatal(err)
					}
					select {
					case m := <-got:
						task, err := heddle.DecodeTaskMessage(m.Data)
						if err != nil {
							t.Fatalf("forwarded task does not decode: %v\n%s", err, m.Data)
						}
						return m, task
					case <-ctx.Done():
						t.Fatalf("no task forwarded for %s", data)
						return nil, heddle.TaskMessage{}
					}
				}

				// No task_id: the router assigns one, and the operation
				// names the one the worker gets.
				m, task := receive(t, `{"worker_type":"echo","payload":{"n":1},"metadata":{"k":"v"},`+
					`"_trace_context":{"traceparent":"caller"}}`)
				if task.TaskID == "" {
					t.Fatal("forwarded task has no task_id")
				}
				op := tr.next(ctx, t)
				if op.TaskID != task.TaskID {
					t.Errorf("op names task %q, the worker got %q", op.TaskID, task.TaskID)
				}
				if op.Kind != event.OpRoute || op.Status != "routed" || op.WorkerType != "echo" ||
					op.Tier != string(heddle.TierStandard) || op.Subject != m.Subject || m.Subject != "heddle.tasks.echo.standard" {
					t.Errorf("op = %+v, forwarded to %s; want a routed OpRoute of echo at standard on its worker subject", op, m.Subject)
				}
				if task.Payload["n"] != float64(1) || task.Metadata["k"] != "v" {
					t.Errorf("re-encoded task = %+v, want its payload and metadata", task)
				}
				wantTrace := `{"traceparent":"caller"}`
				if propagate {
					wantTrace = `{"traceparent":"caller/route"}`
				}
				if tc := string(task.Extra["_trace_context"]); tc != wantTrace {
					t.Errorf("_trace_context = %s, want %s", tc, wantTrace)
				}

				// An override re-encodes the task with the new tier.
				m, task = receive(t, `{"task_id":"t-override","worker_type":"resizer","model_tier":"frontier",`+
					`"payload":{"w":640},"request_id":"r-1","_tenant":"acme"}`)
				op = tr.next(ctx, t)
				if m.Subject != "heddle.tasks.resizer.local" || task.ModelTier != heddle.TierLocal || op.Tier != "local" ||
					op.Subject != m.Subject || op.Status != "routed" {
					t.Errorf("op = %+v, forwarded to %s with tier %s; want both at local", op, m.Subject, task.ModelTier)
				}
				if task.Payload["w"] != float64(640) || task.RequestID != "r-1" || string(task.Extra["_tenant"]) != `"acme"` {
					t.Errorf("re-encoded task = %+v, want its payload, request_id and _tenant", task)
				}

				// A task with its id and tier: forwarded untouched without
				// a propagator.
				orig := `{"task_id":"t-plain","worker_type":"echo","payload":{}}`
				m, _ = receive(t, orig)
				if !propagate && string(m.Data) != orig {
					t.Errorf("forwarded %s, want the original bytes %s", m.Data, orig)
				}
				if op := tr.next(ctx, t); op.TaskID != "t-plain" || op.Status != "routed" || op.Subject != m.Subject {
					t.Errorf("op = %+v, want routed to %s", op, m.Subject)
				}

				// An invalid task: the operation records its dead letter.
				if err := caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming,
					Data: []byte(`{"task_id":"t-bad","worker_type":"echo"}`)}); err != nil {
					t.Fatal(err)
				}
				if op := tr.next(ctx, t); op.TaskID != "t-bad" || op.Status != "dead_lettered" || op.Reason != event.ReasonInvalidTaskMessage || op.Err == nil {
					t.Errorf("op = %+v, want dead_lettered as %s with its error", op, event.ReasonInvalidTaskMessage)
				}
			})
		})
	}
}
