package heddle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/pipeline"
	"github.com/heddle-go/heddle/worker"
)

// foreignResult is a completed TaskResult as a foreign SDK writes it,
// with json.dumps spacing.
func foreignResult(taskID, parentTaskID, workerType string) []byte {
	parent := "null"
	if parentTaskID != "" {
		parent = fmt.Sprintf("%q", parentTaskID)
	}
	return fmt.Appendf(nil, `{"task_id": %q, "parent_task_id": %s, "worker_type": %q, "status": "completed", `+
		`"output": {"by": "foreign"}, "error": null, "model_used": null, "token_usage": {"prompt_tokens": 0, "completion_tokens": 0}, `+
		`"processing_time_ms": 0, "completed_at": "2026-12-01T21:54:28.041662Z"}`, taskID, parent, workerType)
}

// mixedBus connects natsbus to url for the test.
func mixedBus(t *testing.T, url string) *natsbus.Bus {
	t.Helper()
	b, err := natsbus.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// mixedConn connects plain nats.go, as a foreign SDK does.
func mixedConn(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestAGoWorkerAndAForeignProcessorShareEachTaskOnce(t *testing.T) {
	const tasks = 200
	url := natstest.RunServer(t)
	workerType := "mixed-" + uuid.NewString()[:8]
	ctx := testkit.Context(t)

	var foreign atomic.Int64
	nc := mixedConn(t, url)
	if _, err := nc.QueueSubscribe(heddle.WorkerSubjectAllTiers(workerType), "processors-"+workerType, func(m *nats.Msg) {
		var task struct {
			TaskID       string `json:"task_id"`
			ParentTaskID string `json:"parent_task_id"`
		}
		if err := json.Unmarshal(m.Data, &task); err != nil {
			t.Errorf("the foreign processor got %q: %v", m.Data, err)
			return
		}
		foreign.Add(1)
		if err := nc.Publish(heddle.ResultSubject(task.ParentTaskID), foreignResult(task.TaskID, task.ParentTaskID, workerType)); err != nil {
			t.Error(err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	connect := func() *natsbus.Bus { return mixedBus(t, url) }
	w, err := worker.NewDynamic(connect(), workerType, func(_ context.Context, in map[string]any) (map[string]any, error) {
		return map[string]any{"by": "go"}, nil
	}, worker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	stop := testkit.StartActor(t, w.Run, w.Ready())

	caller := connect()
	s, err := dispatch.NewStream(ctx, caller, heddle.SubjectResultsDefault, dispatch.Direct(), dispatch.Timeout(testkit.Wait))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	batch := make([]heddle.TaskMessage, tasks)
	for i := range batch {
		batch[i] = heddle.NewTaskMessage(workerType, map[string]any{"i": i})
	}
	if err := s.Dispatch(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for res, err := range s.Results(ctx) {
		if err != nil {
			t.Fatalf("after %d results: %v", len(seen), err)
		}
		seen[res.TaskID]++
	}
	stop() // drains the Go worker: every task it took is done
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	goDone := int64(w.Stats().Completed)
	t.Logf("tasks sent %d: Go worker %d, foreign processor %d", tasks, goDone, foreign.Load())
	if len(seen) != tasks {
		t.Errorf("results for %d tasks, want %d", len(seen), tasks)
	}
	if got := goDone + foreign.Load(); got != tasks {
		t.Errorf("%d tasks processed in all, want each of the %d processed exactly once", got, tasks)
	}
	if goDone == 0 || foreign.Load() == 0 {
		t.Errorf("Go worker %d, foreign processor %d: want both in the pool", goDone, foreign.Load())
	}
	if st := s.Stats(); st.Duplicates != 0 {
		t.Errorf("%d duplicate results", st.Duplicates)
	}
}

func TestAGoPipelineAndAForeignOneShareEachGoalOnce(t *testing.T) {
	const goals = 50
	url := natstest.RunServer(t)
	workerType := "mixed-stage-" + uuid.NewString()[:8]
	ctx := testkit.Context(t)
	connect := func() *natsbus.Bus { return mixedBus(t, url) }

	var foreign atomic.Int64
	nc := mixedConn(t, url)
	if _, err := nc.QueueSubscribe(heddle.SubjectGoalsIncoming, heddle.PipelineQueueGroup, func(m *nats.Msg) {
		var goal struct {
			GoalID string `json:"goal_id"`
		}
		if err := json.Unmarshal(m.Data, &goal); err != nil {
			t.Errorf("the foreign pipeline got %q: %v", m.Data, err)
			return
		}
		foreign.Add(1)
		if err := nc.Publish(heddle.ResultSubject(goal.GoalID), foreignResult(goal.GoalID, "", "foreign-pipeline")); err != nil {
			t.Error(err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	w, err := worker.NewDynamic(connect(), workerType, func(_ context.Context, in map[string]any) (map[string]any, error) {
		return map[string]any{"ok": true}, nil
	}, worker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(connect(), pipeline.Config{Name: "mixed", Direct: true,
		Stages: []pipeline.Stage{{Name: "only", WorkerType: workerType}}})
	if err != nil {
		t.Fatal(err)
	}
	testkit.StartActor(t, w.Run, w.Ready())
	stopPipeline := testkit.StartActor(t, p.Run, p.Ready())

	caller := connect()
	var mu sync.Mutex
	finals := map[string]string{}
	var wg sync.WaitGroup
	for range goals {
		wg.Go(func() {
			goal := heddle.NewOrchestratorGoal("run it", nil)
			res, err := dispatch.SubmitGoal(ctx, caller, goal, dispatch.Timeout(testkit.Wait))
			if err != nil {
				t.Errorf("goal %s: %v", goal.GoalID, err)
				return
			}
			mu.Lock()
			finals[goal.GoalID] = res.WorkerType
			mu.Unlock()
		})
	}
	wg.Wait()
	stopPipeline()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	goDone := int64(p.Stats().GoalsReceived)
	t.Logf("goals sent %d: Go pipeline %d, foreign pipeline %d", goals, goDone, foreign.Load())
	if len(finals) != goals {
		t.Errorf("final results for %d goals, want %d", len(finals), goals)
	}
	if got := goDone + foreign.Load(); got != goals {
		t.Errorf("%d goals run in all, want each of the %d run exactly once", got, goals)
	}
	if goDone == 0 || foreign.Load() == 0 {
		t.Errorf("Go pipeline %d, foreign pipeline %d: want both in the group", goDone, foreign.Load())
	}
}
