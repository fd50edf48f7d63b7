package otel_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/emit"
	"github.com/heddle-go/heddle/otel"
)

// The trace the Python Heddle's fixture task carries in its
// _trace_context.
const (
	pythonTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	pythonSpanID  = "00f067aa0ba902b7"
)

// pythonTask returns the task the Python Heddle's pipeline wrote with a
// _trace_context, decoded, and its bytes as written.
func pythonTask(t testing.TB) (heddle.TaskMessage, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "contracttest", "testdata", "python-heddle", "TaskMessage__pipeline_stage_with_trace.json"))
	if err != nil {
		t.Fatal(err)
	}
	task, err := heddle.DecodeTaskMessage(data)
	if err != nil {
		t.Fatalf("the Python fixture does not decode: %v", err)
	}
	if _, ok := task.Extra["_trace_context"]; !ok {
		t.Fatal("the Python fixture has no _trace_context")
	}
	return task, data
}

// recorder returns a TracerProvider that samples every span and records
// it, shut down when the test ends.
func recorder(t testing.TB) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return rec, tp
}

// emitterOf returns the Emitter an actor given tr's Options would have.
func emitterOf(tr *otel.Tracing, actor string) *emit.Emitter {
	return emit.New(emit.Config{Actor: actor, Interceptors: []event.Interceptor{tr.Interceptor()}, Propagator: tr.Propagator()})
}

// traceContextOf reads the _trace_context of a message's extensions.
func traceContextOf(t testing.TB, ext map[string]json.RawMessage) map[string]string {
	t.Helper()
	raw, ok := ext["_trace_context"]
	if !ok {
		t.Fatal("no _trace_context")
	}
	var tc map[string]string
	if err := json.Unmarshal(raw, &tc); err != nil {
		t.Fatalf("_trace_context %s: %v", raw, err)
	}
	return tc
}

// traceparentOf returns the W3C traceparent naming sc.
func traceparentOf(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// attr returns the value of span's attribute key, and whether it has it.
func attr(span sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	i := slices.IndexFunc(span.Attributes(), func(kv attribute.KeyValue) bool { return kv.Key == key })
	if i < 0 {
		return attribute.Value{}, false
	}
	return span.Attributes()[i].Value, true
}

// checkAttrs reports each of want that span lacks or has another value of.
func checkAttrs(t testing.TB, span sdktrace.ReadOnlySpan, want ...attribute.KeyValue) {
	t.Helper()
	for _, kv := range want {
		got, ok := attr(span, kv.Key)
		if !ok {
			t.Errorf("span %q has no attribute %s, want %s", span.Name(), kv.Key, kv.Value.String())
		} else if got != kv.Value {
			t.Errorf("span %q: %s = %s, want %s", span.Name(), kv.Key, got.String(), kv.Value.String())
		}
	}
}

// spanNamed returns the one ended span named name.
func spanNamed(t testing.TB, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		names := make([]string, len(spans))
		for i, s := range spans {
			names[i] = s.Name()
		}
		t.Fatalf("%d spans named %q among %q, want 1", len(found), name, names)
	}
	return found[0]
}
