package dispatch_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/membus"
)

// BenchmarkCappedCollection dispatches n tasks through one Stream with at
// most 100 in flight and collects every result, on membus with one echo
// worker. Collecting a result must cost the same whatever n: ns/task
// stays flat from 1,000 to 100,000 tasks.
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
				s, err := dispatch.NewStream(b.Context(), broker, heddle.SubjectResultsDefault,
					dispatch.Direct(), dispatch.MaxInFlight(100), dispatch.Timeout(time.Minute))
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
