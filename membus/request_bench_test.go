package membus_test

import (
	"context"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/membus"
)

// BenchmarkDispatchRequest measures one dispatch.Request round trip on
// membus, caller and worker on connections of their own with the default
// (copying) Publish: the task goes straight to the worker subject
// (dispatch.Direct), a minimal responder (testkit.Responder, decode and
// encode only) answers, and the call returns its result. It reports the
// p50 and p99 latency in microseconds. The responder does the least a
// worker must, so the bus's share of the round trip is as large as it gets
// on this path.
//
// It is one of the two user-visible paths (with BenchmarkTaskPath in the
// root package) on which membus's payload copies and pending queue were
// chosen (BENCHMARKS.md, "membus: payload copies and pending queue").
func BenchmarkDispatchRequest(b *testing.B) {
	ctx := context.Background()
	first := membus.New()
	b.Cleanup(func() { _ = first.Close() })
	worker := first.Connect()
	b.Cleanup(func() { _ = worker.Close() })
	testkit.Responder(b, worker, "bench_echo", "", func(task heddle.TaskMessage) [][]byte {
		return [][]byte{testkit.Encode(b, testkit.Echo(task))}
	})
	payload := map[string]any{"text": "Heddle routes tasks.", "n": 42}
	lat := make(testkit.Latencies, 0, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		res, err := dispatch.Request(ctx, first, heddle.NewTaskMessage("bench_echo", payload),
			dispatch.Direct(), dispatch.Timeout(10*time.Second))
		if err != nil || res.Status != heddle.StatusCompleted {
			b.Fatalf("dispatch.Request: %v %v", res, err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	lat.Report(b)
}
