package otel_test

import (
	"context"
	"encoding/json"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/otel"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// benchWindow bounds the tasks in flight in the stream benchmarks, so no
// subscription's pending limit is reached and every task is answered.
const benchWindow = 512

type benchEcho struct {
	Text string  `json:"text"`
	N    float64 `json:"n"`
}

// BenchmarkTaskPath is the A/B of tracing on the task path, on membus: a
// router and an echo worker (typed, with its contracts), each on its own
// connection, run without tracing (off), with this package's Options on
// the no-op TracerProvider (noop: the actors intercept and propagate, no
// span is recorded), and with them on a TracerProvider that samples every
// span and exports them, in batches, to a no-op exporter (on): the whole
// cost of making the spans and carrying the trace context, without the
// cost of a network exporter.
//
//   - stream: a caller publishes tasks on heddle.tasks.incoming with up
//     to benchWindow unanswered and reads the results, as the root's
//     BenchmarkTaskPath does; each task carries the _trace_context of a
//     sampled trace, as a traced Python caller writes it, in both runs,
//     so that only the Go actors' tracing differs. A task makes a route
//     and a handle span. Figure: tasks/s.
//   - request: one caller at a time runs dispatch.Request through the
//     router and worker, given the Options too when on (a dispatch span
//     as well). Figure: ns/op, the round trip.
func BenchmarkTaskPath(b *testing.B) {
	for _, mode := range []string{"off", "noop", "on"} {
		b.Run("membus/stream/"+mode, func(b *testing.B) { benchStream(b, benchOptions(b, mode)) })
	}
	for _, mode := range []string{"off", "noop", "on"} {
		b.Run("membus/request/"+mode, func(b *testing.B) { benchRequest(b, benchOptions(b, mode)) })
	}
}

// benchOptions returns the tracing options of mode: none when off; on
// the no-op TracerProvider, which records nothing, for noop (what the
// actors' interception and propagation cost without any span); on a
// sampling SDK provider with a no-op exporter for on.
func benchOptions(b *testing.B, mode string) []heddle.Option {
	switch mode {
	case "off":
		return nil
	case "noop":
		return otel.New(otel.WithTracerProvider(noop.NewTracerProvider())).Options()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return otel.New(otel.WithTracerProvider(tp)).Options()
}

// memConnect returns a function that opens connections to one new
// membus broker, closed when the benchmark ends.
func memConnect(tb testing.TB) func() bus.Bus {
	for _, tr := range natstest.Transports() {
		if tr.Name == "membus" {
			return tr.Connector(tb)
		}
	}
	tb.Fatal("natstest.Transports has no membus")
	return nil
}

// benchMesh starts a router and an echo worker, each on a connection of
// its own, stopped when the benchmark ends.
func benchMesh(tb testing.TB, connect func() bus.Bus, opts []heddle.Option) {
	ctx, cancel := context.WithCancel(context.Background())
	rt, err := router.New(connect(), router.Config{}, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	wk, err := worker.New(connect(), "echo", func(_ context.Context, in benchEcho) (benchEcho, error) {
		return in, nil
	}, worker.Config{}, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 2)
	for _, a := range []interface{ Run(context.Context) error }{rt, wk} {
		go func() { done <- a.Run(ctx) }()
	}
	tb.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				tb.Error(err)
			}
		}
	})
	<-rt.Ready()
	<-wk.Ready()
}

func benchStream(b *testing.B, opts []heddle.Option) {
	connect := memConnect(b)
	benchMesh(b, connect, opts)
	caller := connect()
	window := make(chan struct{}, benchWindow)
	sub, err := caller.Subscribe(b.Context(), heddle.SubjectResultsDefault, func(context.Context, *bus.Msg) error {
		<-window
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Unsubscribe() })
	task := heddle.NewTaskMessage("echo", map[string]any{"text": "Heddle routes tasks.", "n": 42})
	task.Extra = map[string]json.RawMessage{"_trace_context": json.RawMessage(`{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`)}
	data, err := task.Encode()
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		window <- struct{}{}
		if err := caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming, Data: data}); err != nil {
			b.Fatal(err)
		}
	}
	for range benchWindow {
		window <- struct{}{}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

func benchRequest(b *testing.B, opts []heddle.Option) {
	connect := memConnect(b)
	benchMesh(b, connect, opts)
	caller := connect()
	var callOpts []dispatch.Option
	if opts != nil {
		callOpts = append(callOpts, dispatch.With(opts...))
	}
	ctx := b.Context()
	payload := map[string]any{"text": "Heddle routes tasks.", "n": 42}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := dispatch.Request(ctx, caller, heddle.NewTaskMessage("echo", payload), callOpts...)
		if err != nil || res.Status != heddle.StatusCompleted {
			b.Fatalf("Request = %+v, %v", res, err)
		}
	}
}
