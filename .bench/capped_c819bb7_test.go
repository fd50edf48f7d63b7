package heddle_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/membus"
)

// BenchmarkCappedCollection is dispatch/capped_bench_test.go of the
// restructured tree, adapted to this commit's names (NewResultStream,
// StreamConfig.DispatchDirect).
func BenchmarkCappedCollection(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) {
			broker := membus.New(membus.WithZeroCopyPublish())
			b.Cleanup(func() { _ = broker.Close() })
			worker := broker.Connect()
			b.Cleanup(func() { _ = worker.Close() })
			streamBenchResponder(b, worker, "capped", "")
			tasks := make([]heddle.TaskMessage, n)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				for i := range tasks {
					tasks[i] = heddle.NewTaskMessage("capped", map[string]any{"i": i})
				}
				b.StartTimer()
				s, err := heddle.NewResultStream(b.Context(), broker, heddle.SubjectResultsDefault,
					heddle.StreamConfig{DispatchDirect: true, MaxInFlight: 100, Timeout: time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Dispatch(b.Context(), tasks...); err != nil {
					b.Fatal(err)
				}
				got := 0
				for _, err := range s.Results(b.Context()) {
					if err != nil {
						b.Fatal(err)
					}
					got++
				}
				if got != n {
					b.Fatalf("collected %d of %d", got, n)
				}
				_ = s.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/task")
		})
	}
}
