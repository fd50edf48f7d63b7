package otel_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	gootel "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/observe"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/otel"
)

func TestAHandlerAttemptContinuesThePythonTraceAndWhatItPublishesNamesItsSpan(t *testing.T) {
	rec, tp := recorder(t)
	tr := otel.New(otel.WithTracerProvider(tp))
	e := emitterOf(tr, "worker")
	task, _ := pythonTask(t)

	ctx := e.Extract(context.Background(), task.Extra)
	var published map[string]string
	var inHandler trace.SpanContext
	op := &event.Op{Kind: event.OpHandle, TaskID: task.TaskID, ParentTaskID: task.ParentTaskID, WorkerType: task.WorkerType,
		Tier: string(task.ModelTier), Attempt: 1, RetryCount: task.RetryCount}
	err := e.Intercept(ctx, op, func(ctx context.Context) error {
		inHandler = trace.SpanContextFromContext(ctx)
		published = traceContextOf(t, e.Inject(ctx, task.Extra))
		op.Status = "completed"
		return nil
	})
	if err != nil {
		t.Fatalf("Intercept = %v, want nil", err)
	}

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans ended, want 1", len(spans))
	}
	s := spans[0]
	if s.Name() != "heddle.handle echo" || s.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("span %q of kind %v, want \"heddle.handle echo\" of kind consumer", s.Name(), s.SpanKind())
	}
	if got := s.SpanContext().TraceID().String(); got != pythonTraceID {
		t.Errorf("trace id %s, want the Python task's %s", got, pythonTraceID)
	}
	if got := s.Parent().SpanID().String(); got != pythonSpanID || !s.Parent().IsRemote() {
		t.Errorf("parent span %s (remote %v), want the Python span %s, remote", got, s.Parent().IsRemote(), pythonSpanID)
	}
	if !inHandler.Equal(s.SpanContext()) {
		t.Errorf("the handler ran in span context %v, want the attempt's span %v", inHandler, s.SpanContext())
	}
	if want := traceparentOf(s.SpanContext()); published["traceparent"] != want {
		t.Errorf("the published _trace_context names %q, want the attempt's span %q", published["traceparent"], want)
	}
	checkAttrs(t, s,
		attribute.String("heddle.task_id", "48f15f83-ada1-4d72-9d95-209271679eed"),
		attribute.String("heddle.parent_task_id", "goal-1"),
		attribute.String("heddle.worker_type", "echo"),
		attribute.String("heddle.tier", "local"),
		attribute.Int("heddle.retry_count", 0),
		attribute.Int("heddle.attempt", 1),
		attribute.String("heddle.status", "completed"),
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.operation.name", "handle"))
	if s.Status().Code != codes.Unset {
		t.Errorf("a completed attempt's span has status %v, want unset", s.Status())
	}
	if _, ok := attr(s, "heddle.reason"); ok {
		t.Error("a completed attempt's span has a heddle.reason")
	}
}

func TestEachOperationHasItsSpanNameKindAndMessagingOperation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		op       event.Op
		wantName string
		wantKind trace.SpanKind
		wantType string
	}{
		{"a router's decision is a consumer span that processes the task",
			event.Op{Kind: event.OpRoute, WorkerType: "summarize", Subject: "heddle.tasks.incoming"}, "heddle.route summarize", trace.SpanKindConsumer, "process"},
		{"a handler attempt is a consumer span that processes the task",
			event.Op{Kind: event.OpHandle, WorkerType: "summarize"}, "heddle.handle summarize", trace.SpanKindConsumer, "process"},
		{"a dispatch is a producer span that sends the task",
			event.Op{Kind: event.OpDispatch, WorkerType: "summarize", Subject: "heddle.tasks.incoming"}, "heddle.dispatch summarize", trace.SpanKindProducer, "send"},
		{"a goal is a consumer span named after its orchestrator or pipeline",
			event.Op{Kind: event.OpGoal, WorkerType: "research", TaskID: "goal-7"}, "heddle.goal research", trace.SpanKindConsumer, "process"},
		{"an operation without a worker type is named after its kind alone",
			event.Op{Kind: event.OpRoute}, "heddle.route", trace.SpanKindConsumer, "process"},
		{"an operation of a kind this package does not know is an internal span",
			event.Op{Kind: event.OpKind(99), WorkerType: "x"}, "heddle.unknown x", trace.SpanKindInternal, "process"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, tp := recorder(t)
			op := tc.op
			if err := otel.New(otel.WithTracerProvider(tp)).Interceptor().Intercept(context.Background(), &op, func(context.Context) error { return nil }); err != nil {
				t.Fatal(err)
			}
			spans := rec.Ended()
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			s := spans[0]
			if s.Name() != tc.wantName || s.SpanKind() != tc.wantKind {
				t.Errorf("span %q of kind %v, want %q of kind %v", s.Name(), s.SpanKind(), tc.wantName, tc.wantKind)
			}
			checkAttrs(t, s, attribute.String("messaging.operation.type", tc.wantType), attribute.String("heddle.worker_type", tc.op.WorkerType))
			if tc.op.Subject != "" {
				checkAttrs(t, s, attribute.String("messaging.destination.name", tc.op.Subject))
			} else if _, ok := attr(s, "messaging.destination.name"); ok {
				t.Error("an operation without a subject has a messaging.destination.name")
			}
			if s.Parent().IsValid() {
				t.Errorf("an operation in a context without a trace has parent %v, want a new trace", s.Parent())
			}
		})
	}
}

func TestTheOutcomeSetsTheSpanStatusAndTheFailureIsRecorded(t *testing.T) {
	handlerErr := errors.New("the model refused")
	for _, tc := range []struct {
		name       string
		kind       event.OpKind
		status     string
		reason     string
		opErr      error
		nextErr    error
		wantCode   codes.Code
		wantDesc   string
		wantErrTyp string
	}{
		{name: "a completed attempt leaves the status unset", kind: event.OpHandle, status: "completed", wantCode: codes.Unset},
		{name: "a routed task leaves the status unset", kind: event.OpRoute, status: "routed", wantCode: codes.Unset},
		{name: "a task held for capacity leaves the status unset", kind: event.OpRoute, status: "held", wantCode: codes.Unset},
		{name: "a failed attempt records the handler's error and its reason kind",
			kind: event.OpHandle, status: "failed", reason: event.ReasonHandler, opErr: handlerErr, nextErr: handlerErr,
			wantCode: codes.Error, wantDesc: "the model refused", wantErrTyp: event.ReasonHandler},
		{name: "a dead letter is an error named by its reason even without an error value",
			kind: event.OpRoute, status: "dead_lettered", reason: event.ReasonNoWorker,
			wantCode: codes.Error, wantDesc: "heddle: dead_lettered: no_worker", wantErrTyp: event.ReasonNoWorker},
		{name: "a failed dispatch records the error the operation set",
			kind: event.OpDispatch, status: "failed", opErr: errors.New("rate_limited: tier 'local' has no available capacity"),
			wantCode: codes.Error, wantDesc: "rate_limited: tier 'local' has no available capacity", wantErrTyp: "_OTHER"},
		{name: "an error returned without any outcome still fails the span",
			kind: event.OpGoal, nextErr: handlerErr, wantCode: codes.Error, wantDesc: "the model refused", wantErrTyp: "_OTHER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, tp := recorder(t)
			op := &event.Op{Kind: tc.kind, TaskID: "t-1", WorkerType: "w"}
			err := otel.New(otel.WithTracerProvider(tp)).Interceptor().Intercept(context.Background(), op, func(context.Context) error {
				op.Status, op.Reason, op.Err = tc.status, tc.reason, tc.opErr
				return tc.nextErr
			})
			if err != tc.nextErr {
				t.Errorf("Intercept = %v, want what next returned, %v", err, tc.nextErr)
			}
			s := rec.Ended()[0]
			if s.Status().Code != tc.wantCode || s.Status().Description != tc.wantDesc {
				t.Errorf("status %+v, want %v %q", s.Status(), tc.wantCode, tc.wantDesc)
			}
			if tc.status != "" {
				checkAttrs(t, s, attribute.String("heddle.status", tc.status))
			}
			if tc.reason != "" {
				checkAttrs(t, s, attribute.String("heddle.reason", tc.reason))
			}
			var exceptions int
			for _, ev := range s.Events() {
				if ev.Name == "exception" {
					exceptions++
				}
			}
			if tc.wantCode == codes.Error {
				checkAttrs(t, s, attribute.String("error.type", tc.wantErrTyp))
				if exceptions != 1 {
					t.Errorf("%d exception events, want the error recorded once", exceptions)
				}
			} else if exceptions != 0 {
				t.Errorf("a successful operation's span has %d exception events", exceptions)
			}
		})
	}
}

func TestAPanicInTheOperationEndsItsSpanAsFailedAndGoesOnUp(t *testing.T) {
	rec, tp := recorder(t)
	in := otel.New(otel.WithTracerProvider(tp)).Interceptor()
	var got any
	func() {
		defer func() { got = recover() }()
		_ = in.Intercept(context.Background(), &event.Op{Kind: event.OpHandle, WorkerType: "w"}, func(context.Context) error {
			panic("handler broke")
		})
	}()
	if got != "handler broke" {
		t.Errorf("recovered %v, want the operation's panic to go on up", got)
	}
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Status().Code != codes.Error {
		t.Fatalf("ended spans %v, want one with status Error", spans)
	}
}

func TestAnUnreadableTraceparentStartsANewTraceAndIsCountedAndLogged(t *testing.T) {
	rec, tp := recorder(t)
	logs := testlog.New()
	tr := otel.New(otel.WithTracerProvider(tp), otel.WithLogger(logs.Logger()))
	e := emitterOf(tr, "router")
	long := "00-" + strings.Repeat("f", 1000)
	for i, raw := range []string{
		`{"traceparent": "not a traceparent", "tracestate": "vendor=1"}`,
		`{"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}`, // the all-zero trace id is invalid
		`{"traceparent": "` + long + `"}`,
	} {
		ext := map[string]json.RawMessage{"_trace_context": json.RawMessage(raw)}
		ctx := e.Extract(context.Background(), ext)
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			t.Errorf("%s: extracted %v, want no span context", raw, sc)
		}
		if err := e.Intercept(ctx, &event.Op{Kind: event.OpRoute}, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if n := tr.InvalidTraceContexts(); n != uint64(i+1) {
			t.Errorf("InvalidTraceContexts() = %d after %d unreadable ones", n, i+1)
		}
	}
	for _, s := range rec.Ended() {
		if s.Parent().IsValid() {
			t.Errorf("span %q has parent %v, want a new trace", s.Name(), s.Parent())
		}
	}
	logged := logs.All(otel.EventInvalidTraceContext)
	if len(logged) != 1 {
		t.Fatalf("%d %s records for three in a row, want one per %v", len(logged), otel.EventInvalidTraceContext, otel.InvalidLogInterval)
	}
	if got := logged[0].Str("traceparent"); got != "not a traceparent" || logged[0].Str("invalid_trace_contexts") != "1" {
		t.Errorf("logged traceparent %q, count %s; want the first one, count 1", got, logged[0].Str("invalid_trace_contexts"))
	}

	// A _trace_context that carries no traceparent at all is not an
	// unreadable one: there is nothing to continue.
	e.Extract(context.Background(), map[string]json.RawMessage{"_trace_context": json.RawMessage(`{"tracestate": "vendor=1"}`)})
	if n := tr.InvalidTraceContexts(); n != 3 {
		t.Errorf("InvalidTraceContexts() = %d after a _trace_context without traceparent, want 3 still", n)
	}
}

func TestAnUnreadableTraceparentIsLoggedCutShort(t *testing.T) {
	logs := testlog.New()
	tr := otel.New(otel.WithLogger(logs.Logger()))
	tr.Propagator().Extract(context.Background(), map[string]string{"traceparent": strings.Repeat("é", 200)})
	got := logs.All(otel.EventInvalidTraceContext)
	if len(got) != 1 {
		t.Fatalf("%d records, want 1", len(got))
	}
	if tp := got[0].Str("traceparent"); len(tp) > 131 || !strings.HasSuffix(tp, "...") || !strings.HasPrefix(tp, "éé") || strings.ContainsRune(tp, '\uFFFD') {
		t.Errorf("logged traceparent %q (%d bytes), want at most 128 bytes of valid UTF-8 and ...", tp, len(tp))
	}
}

func TestTheTracestateTravelsOnWithTheNewParent(t *testing.T) {
	_, tp := recorder(t)
	tr := otel.New(otel.WithTracerProvider(tp))
	e := emitterOf(tr, "worker")
	ext := map[string]json.RawMessage{"_trace_context": json.RawMessage(
		`{"traceparent": "00-` + pythonTraceID + `-` + pythonSpanID + `-01", "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", "x-other": "kept"}`)}
	var out map[string]string
	_ = e.Intercept(e.Extract(context.Background(), ext), &event.Op{Kind: event.OpHandle}, func(ctx context.Context) error {
		out = traceContextOf(t, e.Inject(ctx, ext))
		return nil
	})
	if out["tracestate"] != "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7" {
		t.Errorf("tracestate %q, want the incoming one", out["tracestate"])
	}
	if !strings.HasPrefix(out["traceparent"], "00-"+pythonTraceID+"-") || strings.Contains(out["traceparent"], pythonSpanID) {
		t.Errorf("traceparent %q, want the same trace with the new span as parent", out["traceparent"])
	}
	if out["x-other"] != "kept" {
		t.Errorf("_trace_context %v lost a member the propagator does not write", out)
	}
}

func TestACompositePropagatorCarriesBaggageToo(t *testing.T) {
	_, tp := recorder(t)
	tr := otel.New(otel.WithTracerProvider(tp),
		otel.WithPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))
	p := tr.Propagator()
	ctx := p.Extract(context.Background(), map[string]string{
		"traceparent": "00-" + pythonTraceID + "-" + pythonSpanID + "-01",
		"baggage":     "tenant=acme",
	})
	carrier := map[string]string{}
	p.Inject(ctx, carrier)
	if carrier["baggage"] != "tenant=acme" || carrier["traceparent"] != "00-"+pythonTraceID+"-"+pythonSpanID+"-01" {
		t.Errorf("injected %v, want the baggage and the traceparent back", carrier)
	}
	if n := tr.InvalidTraceContexts(); n != 0 {
		t.Errorf("InvalidTraceContexts() = %d for a readable one", n)
	}
}

func TestWithoutAnSDKTheWorkRunsOnceAndTheIncomingTraceIsCarriedOn(t *testing.T) {
	tr := otel.New(otel.WithTracerProvider(noop.NewTracerProvider()))
	e := emitterOf(tr, "worker")
	task, _ := pythonTask(t)
	wantErr := errors.New("handler failed")
	calls := 0
	var out map[string]string
	err := e.Intercept(e.Extract(context.Background(), task.Extra), &event.Op{Kind: event.OpHandle}, func(ctx context.Context) error {
		calls++
		out = traceContextOf(t, e.Inject(ctx, task.Extra))
		return wantErr
	})
	if calls != 1 || err != wantErr {
		t.Errorf("next ran %d times, Intercept = %v; want once and its error", calls, err)
	}
	if want := "00-" + pythonTraceID + "-" + pythonSpanID + "-01"; out["traceparent"] != want {
		t.Errorf("traceparent %q, want the incoming %q carried on", out["traceparent"], want)
	}
}

func TestTheDefaultsAreTheGlobalTracerProviderAndTheW3CTraceContext(t *testing.T) {
	// The only test that sets the global provider; the others give theirs.
	rec, tp := recorder(t)
	gootel.SetTracerProvider(tp)
	for name, tr := range map[string]*otel.Tracing{"New()": otel.New(), "the zero Tracing": new(otel.Tracing)} {
		rec.Reset()
		e := emitterOf(tr, "worker")
		task, _ := pythonTask(t)
		var out map[string]string
		_ = e.Intercept(e.Extract(context.Background(), task.Extra), &event.Op{Kind: event.OpHandle}, func(ctx context.Context) error {
			out = traceContextOf(t, e.Inject(ctx, task.Extra))
			return nil
		})
		spans := rec.Ended()
		if len(spans) != 1 {
			t.Errorf("%s: %d spans on the global provider, want 1", name, len(spans))
			continue
		}
		if spans[0].InstrumentationScope().Name != otel.ScopeName || spans[0].SpanContext().TraceID().String() != pythonTraceID {
			t.Errorf("%s: span of scope %q in trace %s, want scope %q in the Python trace", name,
				spans[0].InstrumentationScope().Name, spans[0].SpanContext().TraceID(), otel.ScopeName)
		}
		if want := traceparentOf(spans[0].SpanContext()); out["traceparent"] != want {
			t.Errorf("%s: traceparent %q, want %q", name, out["traceparent"], want)
		}
	}
}

func TestOptionsGiveAnActorTheInterceptorAndThePropagator(t *testing.T) {
	s := observe.Settings(otel.New().Options()...)
	if len(s.Interceptors) != 1 || s.Propagator == nil {
		t.Errorf("settings %+v, want one interceptor and a propagator", s)
	}
}

func TestConcurrentOperationsEachGetTheirOwnSpan(t *testing.T) {
	rec, tp := recorder(t)
	tr := otel.New(otel.WithTracerProvider(tp))
	in, p := tr.Interceptor(), tr.Propagator()
	const n = 64
	var wg sync.WaitGroup
	parents := make([]string, n)
	for i := range n {
		wg.Go(func() {
			ctx := p.Extract(context.Background(), map[string]string{"traceparent": "00-" + pythonTraceID + "-" + pythonSpanID + "-01"})
			_ = in.Intercept(ctx, &event.Op{Kind: event.OpHandle, WorkerType: "w", Attempt: 1}, func(ctx context.Context) error {
				c := map[string]string{}
				p.Inject(ctx, c)
				parents[i] = c["traceparent"]
				return nil
			})
		})
	}
	wg.Wait()
	spans := rec.Ended()
	if len(spans) != n {
		t.Fatalf("%d spans, want %d", len(spans), n)
	}
	seen := map[string]bool{}
	for _, s := range spans {
		seen[traceparentOf(s.SpanContext())] = true
	}
	for i, tp := range parents {
		if !seen[tp] {
			t.Errorf("operation %d published %q, which names none of the spans", i, tp)
		}
		delete(seen, tp)
	}
}

// spansByName indexes ended spans by name.
func spansByName(spans []sdktrace.ReadOnlySpan) map[string][]sdktrace.ReadOnlySpan {
	m := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		m[s.Name()] = append(m[s.Name()], s)
	}
	return m
}

func TestARouteSpanSaysWhereTheTaskWentAndAtWhichTier(t *testing.T) {
	rec, tp := recorder(t)
	op := &event.Op{Kind: event.OpRoute, WorkerType: "w", Subject: "heddle.tasks.incoming"}
	_ = otel.New(otel.WithTracerProvider(tp)).Interceptor().Intercept(context.Background(), op, func(context.Context) error {
		op.Tier, op.Subject, op.Status = "frontier", "heddle.tasks.w.frontier", "routed"
		return nil
	})
	checkAttrs(t, rec.Ended()[0],
		attribute.String("messaging.destination.name", "heddle.tasks.incoming"),
		attribute.String("heddle.forwarded_to", "heddle.tasks.w.frontier"),
		attribute.String("heddle.tier", "frontier"))
}
