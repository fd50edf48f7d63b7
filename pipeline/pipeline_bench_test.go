package pipeline_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/pipeline"
)

// pipelineBenchResponder answers every task for workerType with a
// completed result echoing the payload.
func pipelineBenchResponder(b *testing.B, conn bus.Bus, workerType string) {
	b.Helper()
	_, err := conn.Subscribe(context.Background(), heddle.WorkerSubjectAllTiers(workerType), func(ctx context.Context, m *bus.Msg) error {
		task, err := heddle.DecodeTaskMessage(m.Data)
		if err != nil {
			return err
		}
		data, err := task.Result(heddle.StatusCompleted, task.Payload, nil).Encode()
		if err != nil {
			return err
		}
		return conn.Publish(ctx, &bus.Msg{Subject: task.ResultSubject(), Data: data})
	}, bus.Queue(heddle.WorkerQueueGroup(workerType)))
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPipelineDiamond measures one goal through the diamond A -> (B,
// C) -> D of echo stages (ns/op is per goal), against the same four tasks
// sent by hand with DispatchAndWait (B and C concurrently) in the same
// run: the difference is the Pipeline's own cost (planning, mapping,
// conditions, the final result).
func BenchmarkPipelineDiamond(b *testing.B) {
	for _, tr := range natstest.Transports() {
		b.Run(tr.Name, func(b *testing.B) {
			connect := tr.Connector(b)
			workers, caller := connect(), connect()
			for _, wt := range []string{"bench_a", "bench_b", "bench_c", "bench_d"} {
				pipelineBenchResponder(b, workers, wt)
			}
			ctx := context.Background()
			stageTimeout := 10 * time.Second

			b.Run("pipeline", func(b *testing.B) {
				p, err := pipeline.New(caller, pipeline.Config{Name: "bench", Direct: true, Timeout: stageTimeout,
					Stages: []pipeline.Stage{
						{Name: "A", WorkerType: "bench_a", InputMapping: map[string]string{"f": "goal.context.f"}},
						{Name: "B", WorkerType: "bench_b", InputMapping: map[string]string{"a": "A.output.f"}},
						{Name: "C", WorkerType: "bench_c", InputMapping: map[string]string{"a": "A.output.f"}},
						{Name: "D", WorkerType: "bench_d", InputMapping: map[string]string{"b": "B.output.a", "c": "C.output.a"}},
					}})
				if err != nil {
					b.Fatal(err)
				}
				goalContext := map[string]any{"f": "file"}
				lat := make(testkit.Latencies, 0, b.N)
				b.ReportAllocs()
				for b.Loop() {
					start := time.Now()
					res, err := p.Execute(ctx, heddle.NewOrchestratorGoal("bench", goalContext))
					if err != nil || res.Status != heddle.StatusCompleted {
						b.Fatalf("Execute: %v", err)
					}
					lat = append(lat, time.Since(start))
				}
				lat.Report(b)
			})

			b.Run("dispatch_and_wait_by_hand", func(b *testing.B) {
				call := func(goalID, workerType string, payload map[string]any) map[string]any {
					task := heddle.NewTaskMessage(workerType, payload)
					task.ParentTaskID = goalID
					res, err := dispatch.Request(ctx, caller, task, dispatch.Direct(), dispatch.Timeout(stageTimeout))
					if err != nil || res.Status != heddle.StatusCompleted {
						b.Errorf("DispatchAndWait %s: %v", workerType, err)
						return nil
					}
					return res.Output
				}
				lat := make(testkit.Latencies, 0, b.N)
				b.ReportAllocs()
				for b.Loop() {
					start := time.Now()
					goal := heddle.NewOrchestratorGoal("bench", nil)
					a := call(goal.GoalID, "bench_a", map[string]any{"f": "file"})
					var bOut, cOut map[string]any
					var wg sync.WaitGroup
					wg.Go(func() { bOut = call(goal.GoalID, "bench_b", map[string]any{"a": a["f"]}) })
					wg.Go(func() { cOut = call(goal.GoalID, "bench_c", map[string]any{"a": a["f"]}) })
					wg.Wait()
					call(goal.GoalID, "bench_d", map[string]any{"b": bOut["a"], "c": cOut["a"]})
					lat = append(lat, time.Since(start))
				}
				lat.Report(b)
			})
		})
	}
}
