package otel_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/otel"
)

// BenchmarkIntercept measures one traced operation alone: the span of a
// handler attempt continuing a remote parent, its attributes and its
// end, on a TracerProvider that samples it and exports it in batches to a
// no-op exporter (sdk), and on the no-op TracerProvider (noop), which
// records nothing.
func BenchmarkIntercept(b *testing.B) {
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer func() { _ = sdk.Shutdown(context.Background()) }()
	for name, tr := range map[string]*otel.Tracing{
		"sdk":  otel.New(otel.WithTracerProvider(sdk)),
		"noop": otel.New(otel.WithTracerProvider(noop.NewTracerProvider())),
	} {
		b.Run(name, func(b *testing.B) {
			in, p := tr.Interceptor(), tr.Propagator()
			parent := p.Extract(context.Background(), map[string]string{"traceparent": "00-" + pythonTraceID + "-" + pythonSpanID + "-01"})
			next := func(context.Context) error { return nil }
			b.ReportAllocs()
			for b.Loop() {
				op := event.Op{Kind: event.OpHandle, TaskID: "48f15f83-ada1-4d72-9d95-209271679eed", ParentTaskID: "goal-1",
					WorkerType: "echo", Tier: "local", Attempt: 1, Subject: "heddle.tasks.echo.local"}
				_ = in.Intercept(parent, &op, func(ctx context.Context) error {
					op.Status = "completed"
					return next(ctx)
				})
			}
		})
	}
}

// BenchmarkSDKSpan measures what the OpenTelemetry SDK alone costs per
// span, with nothing of Heddle: a span started as the child of a remote
// parent, with no attribute, and ended, on a TracerProvider that samples
// it and exports it to a no-op exporter, in batches (batch, the SDK's
// advice for production) or as each span ends (sync). It is the floor
// under BenchmarkTaskPath's on mode, which makes two spans per task.
func BenchmarkSDKSpan(b *testing.B) {
	for _, mode := range []string{"batch", "sync"} {
		b.Run(mode, func(b *testing.B) {
			// WithBatcher starts its processor's goroutine when called.
			var opt sdktrace.TracerProviderOption
			if mode == "sync" {
				opt = sdktrace.WithSyncer(tracetest.NewNoopExporter())
			} else {
				opt = sdktrace.WithBatcher(tracetest.NewNoopExporter())
			}
			tp := sdktrace.NewTracerProvider(opt)
			defer func() { _ = tp.Shutdown(context.Background()) }()
			tracer := tp.Tracer("bench")
			parent := otel.New().Propagator().Extract(context.Background(),
				map[string]string{"traceparent": "00-" + pythonTraceID + "-" + pythonSpanID + "-01"})
			b.ReportAllocs()
			for b.Loop() {
				_, span := tracer.Start(parent, "heddle.handle echo")
				span.End()
			}
		})
	}
}
