package otel_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/otel"
	"github.com/heddle-go/heddle/pipeline"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// mesh is a router and an echo worker, each on its own connection and
// traced by tr; stop stops both, after which every span they made has
// ended.
func mesh(t *testing.T, connect func() bus.Bus, tr *otel.Tracing, rules router.Rules, handle func(context.Context, map[string]any) (map[string]any, error)) (stop func()) {
	t.Helper()
	rt, err := router.New(connect(), router.Config{Rules: router.StaticRules(rules)}, tr.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.NewDynamic(connect(), "echo", handle, worker.Config{RetryBackoff: 1}, tr.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	stopWorker := testkit.StartActor(t, w.Run, w.Ready())
	stopRouter := testkit.StartActor(t, rt.Run, rt.Ready())
	return func() { stopRouter(); stopWorker() }
}

func echo(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil }

// checkChild reports whether child's parent is parent, in parent's trace.
func checkChild(t *testing.T, child sdktrace.ReadOnlySpan, parent trace.SpanContext) {
	t.Helper()
	if child.SpanContext().TraceID() != parent.TraceID() {
		t.Errorf("span %q is in trace %s, want %s", child.Name(), child.SpanContext().TraceID(), parent.TraceID())
	}
	if child.Parent().SpanID() != parent.SpanID() {
		t.Errorf("span %q has parent %s, want %s", child.Name(), child.Parent().SpanID(), parent.SpanID())
	}
}

func TestAPythonTaskPassesTheRouterAndTheWorkerInItsTraceAndTheResultNamesTheWorkersSpan(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rec, tp := recorder(t)
		tr := otel.New(otel.WithTracerProvider(tp))
		stop := mesh(t, connect, tr, router.Rules{}, echo)

		// The caller plays the Python pipeline: it publishes the bytes the
		// Python Heddle wrote and reads the result off the bus.
		task, data := pythonTask(t)
		caller := connect()
		results, _ := testkit.Subscribe(t, caller, heddle.ResultSubject(task.ParentTaskID))
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
		res, err := heddle.DecodeTaskResult(testkit.Recv(t, results, "the result").Data)
		if err != nil || res.Status != heddle.StatusCompleted {
			t.Fatalf("result %+v, %v; want completed", res, err)
		}
		stop()

		spans := rec.Ended()
		if len(spans) != 2 {
			t.Fatalf("%d spans, want a route and a handle", len(spans))
		}
		route, handle := spanNamed(t, spans, "heddle.route echo"), spanNamed(t, spans, "heddle.handle echo")
		python := trace.NewSpanContext(trace.SpanContextConfig{TraceID: mustTraceID(t, pythonTraceID), SpanID: mustSpanID(t, pythonSpanID)})
		checkChild(t, route, python)
		checkChild(t, handle, route.SpanContext())
		if !route.Parent().IsRemote() || !handle.Parent().IsRemote() {
			t.Errorf("the route's and the handle's parents are remote: %v, %v; want both read from _trace_context", route.Parent().IsRemote(), handle.Parent().IsRemote())
		}
		if got, want := traceContextOf(t, res.Extra)["traceparent"], traceparentOf(handle.SpanContext()); got != want {
			t.Errorf("the result's traceparent %q, want the worker's span %q", got, want)
		}
		common := []attribute.KeyValue{
			attribute.String("heddle.task_id", task.TaskID),
			attribute.String("heddle.parent_task_id", "goal-1"),
			attribute.String("heddle.worker_type", "echo"),
			attribute.String("heddle.tier", "local"),
			attribute.Int("heddle.retry_count", 0),
		}
		checkAttrs(t, route, append(common, attribute.String("heddle.status", "routed"),
			attribute.String("messaging.destination.name", heddle.SubjectTasksIncoming),
			attribute.String("heddle.forwarded_to", heddle.WorkerSubject("echo", heddle.TierLocal)))...)
		checkAttrs(t, handle, append(common, attribute.String("heddle.status", "completed"), attribute.Int("heddle.attempt", 1))...)
	})
}

func TestACallersTraceRunsThroughItsDispatchTheRouterAndEachAttemptOfTheWorker(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rec, tp := recorder(t)
		tr := otel.New(otel.WithTracerProvider(tp))
		attempts := 0
		stop := mesh(t, connect, tr, router.Rules{}, func(_ context.Context, in map[string]any) (map[string]any, error) {
			if attempts++; attempts == 1 {
				return nil, errors.New("the first attempt fails")
			}
			return in, nil
		})

		ctx, callerSpan := tp.Tracer("caller").Start(testkit.Context(t), "caller")
		task := heddle.NewTaskMessage("echo", map[string]any{"text": "hi"})
		task.MaxRetries = 1
		res, err := dispatch.Request(ctx, connect(), task, dispatch.With(tr.Options()...))
		callerSpan.End()
		if err != nil || res.Status != heddle.StatusCompleted {
			t.Fatalf("Request = %+v, %v; want completed on the second attempt", res, err)
		}
		stop()

		spans := rec.Ended()
		byName := spansByName(spans)
		if len(spans) != 5 || len(byName["heddle.handle echo"]) != 2 {
			t.Fatalf("spans %v, want the caller's, a dispatch, a route and two handle attempts", byName)
		}
		dispatchSpan := spanNamed(t, spans, "heddle.dispatch echo")
		route := spanNamed(t, spans, "heddle.route echo")
		checkChild(t, dispatchSpan, callerSpan.SpanContext())
		checkChild(t, route, dispatchSpan.SpanContext())
		if dispatchSpan.SpanKind() != trace.SpanKindProducer {
			t.Errorf("the dispatch span's kind is %v, want producer", dispatchSpan.SpanKind())
		}
		checkAttrs(t, dispatchSpan, attribute.String("heddle.task_id", task.TaskID), attribute.String("heddle.status", "completed"),
			attribute.String("messaging.destination.name", heddle.SubjectTasksIncoming))

		var failed, completed sdktrace.ReadOnlySpan
		for _, h := range byName["heddle.handle echo"] {
			checkChild(t, h, route.SpanContext())
			switch v, _ := attr(h, "heddle.attempt"); v.AsInt64() {
			case 1:
				failed = h
			case 2:
				completed = h
			}
		}
		if failed == nil || completed == nil {
			t.Fatal("the handle spans are not attempts 1 and 2")
		}
		if failed.Status().Code != codes.Error || failed.Status().Description != "the first attempt fails" {
			t.Errorf("attempt 1 has status %+v, want Error with the handler's error", failed.Status())
		}
		checkAttrs(t, failed, attribute.String("heddle.status", "failed"), attribute.String("heddle.reason", event.ReasonHandler),
			attribute.String("error.type", event.ReasonHandler))
		checkAttrs(t, completed, attribute.String("heddle.status", "completed"), attribute.Int("heddle.retry_count", 1))
		if completed.Status().Code != codes.Unset {
			t.Errorf("attempt 2 has status %+v, want unset", completed.Status())
		}
		if got, want := traceContextOf(t, res.Extra)["traceparent"], traceparentOf(completed.SpanContext()); got != want {
			t.Errorf("the result's traceparent %q, want the completed attempt's span %q", got, want)
		}
	})
}

func TestADeadLetteredTaskFailsItsRouteAndItsDispatchSpanWithTheReason(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rec, tp := recorder(t)
		tr := otel.New(otel.WithTracerProvider(tp))
		stop := mesh(t, connect, tr, router.Rules{RateLimits: map[string]router.TierRateLimit{"standard": {MaxConcurrent: 0}}}, echo)

		_, err := dispatch.Request(testkit.Context(t), connect(), heddle.NewTaskMessage("echo", nil), dispatch.With(tr.Options()...))
		var dl *dispatch.DeadLetterError
		if !errors.As(err, &dl) {
			t.Fatalf("Request = %v, want a dead letter", err)
		}
		stop()

		spans := rec.Ended()
		route, dispatchSpan := spanNamed(t, spans, "heddle.route echo"), spanNamed(t, spans, "heddle.dispatch echo")
		checkChild(t, route, dispatchSpan.SpanContext())
		for _, s := range []sdktrace.ReadOnlySpan{route, dispatchSpan} {
			if s.Status().Code != codes.Error {
				t.Errorf("span %q has status %+v, want Error", s.Name(), s.Status())
			}
			checkAttrs(t, s, attribute.String("heddle.reason", event.ReasonRateLimited), attribute.String("error.type", event.ReasonRateLimited))
		}
		checkAttrs(t, route, attribute.String("heddle.status", "dead_lettered"))
		checkAttrs(t, dispatchSpan, attribute.String("heddle.status", "failed"))
		if _, ok := spansByName(spans)["heddle.handle echo"]; ok {
			t.Error("a dead-lettered task reached the worker")
		}
	})
}

func mustTraceID(t *testing.T, s string) trace.TraceID {
	t.Helper()
	id, err := trace.TraceIDFromHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustSpanID(t *testing.T, s string) trace.SpanID {
	t.Helper()
	id, err := trace.SpanIDFromHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestATaskWithAnUnreadableTraceContextIsServedInANewTraceThatTheResultCarries(t *testing.T) {
	for _, tc := range []struct {
		name, traceContext string
		counted            bool // by the router, the one actor that reads it
	}{
		{"a traceparent that is not one", `{"traceparent": "00-not-a-trace-01", "tracestate": "vendor=1"}`, true},
		{"a _trace_context that is not an object", `"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
				rec, tp := recorder(t)
				tr := otel.New(otel.WithTracerProvider(tp))
				stop := mesh(t, connect, tr, router.Rules{}, echo)

				caller := connect()
				results, _ := testkit.Subscribe(t, caller, heddle.SubjectResultsDefault)
				data := []byte(`{"task_id": "t-broken-trace", "worker_type": "echo", "payload": {}, "_trace_context": ` + tc.traceContext + `}`)
				testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
				res, err := heddle.DecodeTaskResult(testkit.Recv(t, results, "the result").Data)
				if err != nil || res.Status != heddle.StatusCompleted || res.TaskID != "t-broken-trace" {
					t.Fatalf("result %+v, %v; want the task completed", res, err)
				}
				stop()

				spans := rec.Ended()
				route, handle := spanNamed(t, spans, "heddle.route echo"), spanNamed(t, spans, "heddle.handle echo")
				if route.Parent().IsValid() {
					t.Errorf("the route span has parent %v, want a new trace", route.Parent())
				}
				checkChild(t, handle, route.SpanContext())
				if got, want := traceContextOf(t, res.Extra)["traceparent"], traceparentOf(handle.SpanContext()); got != want {
					t.Errorf("the result's traceparent %q, want the worker's span %q", got, want)
				}
				if n := tr.InvalidTraceContexts(); tc.counted && n != 1 {
					t.Errorf("InvalidTraceContexts() = %d, want 1: the router read it, the worker read the router's", n)
				}
			})
		})
	}
}

func TestAGoalFromPythonRunsThroughThePipelineItsStageTheRouterAndTheWorkerInOneTrace(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rec, tp := recorder(t)
		tr := otel.New(otel.WithTracerProvider(tp))
		stopMesh := mesh(t, connect, tr, router.Rules{}, echo)
		p, err := pipeline.New(connect(), pipeline.Config{Name: "summarize_pipeline",
			Stages: []pipeline.Stage{{Name: "only", WorkerType: "echo"}}}, tr.Options()...)
		if err != nil {
			t.Fatal(err)
		}
		stopPipeline := testkit.StartActor(t, p.Run, p.Ready())

		// The goal comes from a traced Python submitter.
		goal := heddle.NewOrchestratorGoal("summarize this", nil)
		goal.Extra = map[string]json.RawMessage{"_trace_context": json.RawMessage(`{"traceparent": "00-` + pythonTraceID + `-` + pythonSpanID + `-01"}`)}
		res, err := dispatch.SubmitGoal(testkit.Context(t), connect(), goal, dispatch.To("summarize_pipeline"))
		if err != nil || res.Status != heddle.StatusCompleted {
			t.Fatalf("SubmitGoal = %+v, %v; want completed", res, err)
		}
		stopPipeline()
		stopMesh()

		spans := rec.Ended()
		goalSpan := spanNamed(t, spans, "heddle.goal summarize_pipeline")
		stage := spanNamed(t, spans, "heddle.dispatch echo")
		route := spanNamed(t, spans, "heddle.route echo")
		handle := spanNamed(t, spans, "heddle.handle echo")
		python := trace.NewSpanContext(trace.SpanContextConfig{TraceID: mustTraceID(t, pythonTraceID), SpanID: mustSpanID(t, pythonSpanID)})
		checkChild(t, goalSpan, python)
		checkChild(t, stage, goalSpan.SpanContext())
		checkChild(t, route, stage.SpanContext())
		checkChild(t, handle, route.SpanContext())
		if goalSpan.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("the goal span's kind is %v, want consumer", goalSpan.SpanKind())
		}
		checkAttrs(t, goalSpan, attribute.String("heddle.task_id", goal.GoalID), attribute.String("heddle.status", "completed"),
			attribute.String("heddle.worker_type", "summarize_pipeline"))
		if got, want := traceContextOf(t, res.Extra)["traceparent"], traceparentOf(goalSpan.SpanContext()); got != want {
			t.Errorf("the final result's traceparent %q, want the goal's span %q", got, want)
		}
	})
}
