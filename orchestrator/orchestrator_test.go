package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/orchestrator"
	"github.com/heddle-go/heddle/worker"
)

// orchestratorPartialTimeout is the collection timeout of the test whose
// answering subtasks must arrive before it: they arrive within
// milliseconds, so only a stalled machine comes near it.
const orchestratorPartialTimeout = 2 * time.Second

// orchestratorRun starts o.Run and waits until it is subscribed. The
// returned stop cancels Run and returns its error; cleanup calls it too.
func orchestratorRun(t *testing.T, o *orchestrator.Orchestrator) (stop func() error, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- o.Run(ctx) }()
	select {
	case <-o.Ready():
	case err := <-errc:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(testkit.Wait):
		cancel()
		t.Fatal("orchestrator not ready")
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-errc
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return stop, errc
}

func newTestOrchestrator(t *testing.T, b bus.Bus, cfg orchestrator.Config, log *slog.Logger) *orchestrator.Orchestrator {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o, err := orchestrator.New(b, cfg, heddle.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// orchestratorWorkers runs n heddle Workers of workerType, each on its own
// connection, until stop is called or the test ends. A worker counts a
// task once its result is published, so a caller holding the result may
// read Stats a moment early: stop them first.
func orchestratorWorkers(t *testing.T, connect func() bus.Bus, n int, workerType string,
	handler func(ctx context.Context, in map[string]any) (map[string]any, error)) (workers []*worker.Worker, stop func()) {
	t.Helper()
	var stops []func()
	for range n {
		w, err := worker.NewDynamic(connect(), workerType, handler, worker.Config{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		stops = append(stops, sync.OnceFunc(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker Run: %v", err)
			}
		}))
		select {
		case <-w.Ready():
		case <-time.After(testkit.Wait):
			t.Fatal("worker not ready")
		}
		workers = append(workers, w)
	}
	stop = func() {
		for _, s := range stops {
			s()
		}
	}
	t.Cleanup(stop)
	return workers, stop
}

func orchestratorTasks(workerType string, n int) orchestrator.DecomposeFunc {
	return func(_ context.Context, _ heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) {
		tasks := make([]heddle.TaskMessage, n)
		for i := range tasks {
			tasks[i] = heddle.NewTaskMessage(workerType, map[string]any{"n": i})
		}
		return tasks, nil
	}
}

func submitTestGoal(t *testing.T, b bus.Bus, goal heddle.OrchestratorGoal) *heddle.TaskResult {
	t.Helper()
	res, err := dispatch.SubmitGoal(testkit.Context(t), b, goal, dispatch.Timeout(testkit.Wait))
	if err != nil {
		t.Fatalf("SubmitGoal: %v", err)
	}
	if res.TaskID != goal.GoalID || res.WorkerType != orchestrator.WorkerType {
		t.Fatalf("final result %+v is not the goal's", res)
	}
	return res
}

// orchestratorTimeoutMeta returns output.metadata.timeout.
func orchestratorTimeoutMeta(t *testing.T, res *heddle.TaskResult) map[string]any {
	t.Helper()
	meta, _ := res.Output["metadata"].(map[string]any)
	timeout, ok := meta["timeout"].(map[string]any)
	if !ok {
		t.Fatalf("final result output %v has no metadata.timeout", res.Output)
	}
	return timeout
}

func TestOrchestratorFansOutAndSynthesizes(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		workers, stopWorkers := orchestratorWorkers(t, connect, 4, "square", func(_ context.Context, in map[string]any) (map[string]any, error) {
			n := in["n"].(float64)
			return map[string]any{"square": n * n}, nil
		})
		rec := testlog.New()
		var mu sync.Mutex
		var problems []string
		o := newTestOrchestrator(t, connect(), orchestrator.Config{
			Decompose: orchestratorTasks("square", 100),
			Synthesize: func(_ context.Context, goal heddle.OrchestratorGoal, results []heddle.TaskResult) (map[string]any, error) {
				sum := 0.0
				seen := map[string]bool{}
				for _, r := range results {
					if r.ParentTaskID != goal.GoalID || r.Status != heddle.StatusCompleted || seen[r.TaskID] {
						mu.Lock()
						problems = append(problems, fmt.Sprintf("%+v", r))
						mu.Unlock()
					}
					seen[r.TaskID] = true
					sum += r.Output["square"].(float64)
				}
				return map[string]any{"count": len(results), "sum": sum}, nil
			},
			Direct:  true,
			Timeout: testkit.Wait,
		}, rec.Logger())
		orchestratorRun(t, o)

		goal := heddle.NewOrchestratorGoal("sum the squares below 100", nil)
		res := submitTestGoal(t, connect(), goal)
		if res.Status != heddle.StatusCompleted || res.Output["count"] != float64(100) || res.Output["sum"] != float64(328350) {
			t.Fatalf("final result %+v, want all 100 squares summed", res)
		}
		if _, timedOut := res.Output["metadata"]; timedOut {
			t.Fatalf("final result carries metadata %v, want none", res.Output["metadata"])
		}
		if len(problems) > 0 {
			t.Fatalf("Synthesize got results not of this goal or repeated: %v", problems)
		}
		stopWorkers()
		var handled uint64
		for _, w := range workers {
			handled += w.Stats().Completed
		}
		if handled != 100 {
			t.Fatalf("the workers completed %d tasks, want 100", handled)
		}
		if st := o.Stats(); st != (orchestrator.Stats{GoalsReceived: 1, GoalsCompleted: 1}) {
			t.Fatalf("stats %+v", st)
		}
		// Each subtask result is logged once, with the parent_task_id an
		// operator cross-checks against the dispatched task.
		collected := rec.All("result_stream.collected")
		if len(collected) != 100 {
			t.Fatalf("%d result_stream.collected events, want 100", len(collected))
		}
		for _, c := range collected {
			if c.Attrs["parent_task_id"] != goal.GoalID || c.Attrs["worker_type"] != "square" {
				t.Fatalf("collected event %+v, want parent_task_id %s", c.Attrs, goal.GoalID)
			}
		}
		if recs := rec.All("orchestrator.goal_received"); len(recs) != 1 || recs[0].Attrs["goal_id"] != goal.GoalID {
			t.Fatalf("goal_received events %+v", recs)
		}
		recs := rec.Wait(t, "orchestrator.goal_completed", 1)
		if recs[0].Attrs["goal_id"] != goal.GoalID || recs[0].Attrs["status"] != "completed" || recs[0].Attrs["collected_count"] != int64(100) {
			t.Fatalf("goal_completed event %+v", recs[0].Attrs)
		}
	})
}

func TestOrchestratorLimitsSubtasksInFlight(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		const total, limit = 12, 3
		wk, ob := connect(), connect()
		tasks := make(chan heddle.TaskMessage, total+1)
		_, err := wk.Subscribe(context.Background(), heddle.WorkerSubjectAllTiers("held"), func(_ context.Context, m *bus.Msg) error {
			task, err := heddle.DecodeTaskMessage(m.Data)
			if err != nil { // the sentinel
				task = heddle.TaskMessage{WorkerType: string(m.Data)}
			}
			tasks <- task
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		o := newTestOrchestrator(t, ob, orchestrator.Config{
			Decompose:   orchestratorTasks("held", total),
			MaxInFlight: limit,
			Direct:      true,
			Timeout:     testkit.Wait,
		}, nil)
		orchestratorRun(t, o)
		final := make(chan *heddle.TaskResult, 1)
		go func() {
			res, err := dispatch.SubmitGoal(testkit.Context(t), connect(), heddle.NewOrchestratorGoal("held", nil), dispatch.Timeout(testkit.Wait))
			if err != nil {
				t.Error(err)
			}
			final <- res
		}()
		ctx := testkit.Context(t)
		next := func() heddle.TaskMessage {
			select {
			case task := <-tasks:
				return task
			case <-ctx.Done():
				t.Fatal("no subtask arrived")
				return heddle.TaskMessage{}
			}
		}
		var held []heddle.TaskMessage
		for range limit {
			held = append(held, next())
		}
		// The orchestrator published the first three and then nothing: a
		// sentinel it publishes now arrives before any fourth subtask.
		if err := ob.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := ob.Publish(ctx, &bus.Msg{Subject: heddle.WorkerSubject("held", heddle.TierStandard), Data: []byte("sentinel")}); err != nil {
			t.Fatal(err)
		}
		if got := next(); got.WorkerType != "sentinel" {
			t.Fatalf("subtask %s was published while %d were awaiting results", got.TaskID, limit)
		}
		// Each result lets exactly one more subtask out.
		for answered := 0; len(held) > 0; answered++ {
			task := held[0]
			held = held[1:]
			if err := wk.Publish(ctx, &bus.Msg{Subject: task.ResultSubject(), Data: testkit.Encode(t, testkit.Echo(task))}); err != nil {
				t.Fatal(err)
			}
			if answered+limit < total {
				held = append(held, next())
			}
		}
		res := <-final
		if list, _ := res.Output["results"].([]any); res.Status != heddle.StatusCompleted || len(list) != total {
			t.Fatalf("final result %+v, want the %d results listed by the default Synthesize", res, total)
		}
	})
}

func TestOrchestratorTimeoutStillPublishesTheFinalResult(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		testkit.Responder(t, connect(), "fast", "", func(task heddle.TaskMessage) [][]byte {
			return [][]byte{testkit.Encode(t, testkit.Echo(task))}
		})
		t.Run("partial results are synthesized and metadata.timeout names the missing subtask", func(t *testing.T) {
			var silentID string
			var got []string
			rec := testlog.New()
			o := newTestOrchestrator(t, connect(), orchestrator.Config{
				Decompose: func(context.Context, heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) {
					silent := heddle.NewTaskMessage("silent", nil)
					silentID = silent.TaskID
					return []heddle.TaskMessage{heddle.NewTaskMessage("fast", nil), silent, heddle.NewTaskMessage("fast", nil)}, nil
				},
				Synthesize: func(_ context.Context, _ heddle.OrchestratorGoal, results []heddle.TaskResult) (map[string]any, error) {
					for _, r := range results {
						got = append(got, r.WorkerType)
					}
					return map[string]any{"partial": len(results), "metadata": map[string]any{"model": "none"}}, nil
				},
				Direct:  true,
				Timeout: orchestratorPartialTimeout,
			}, rec.Logger())
			orchestratorRun(t, o)
			res := submitTestGoal(t, connect(), heddle.NewOrchestratorGoal("mostly fast", nil))

			if res.Status != heddle.StatusCompleted || res.Output["partial"] != float64(2) || !slices.Equal(got, []string{"fast", "fast"}) {
				t.Fatalf("final result %+v (Synthesize got %v), want the two fast results synthesized", res, got)
			}
			timeout := orchestratorTimeoutMeta(t, res)
			want := fmt.Sprint(map[string]any{"pending_task_ids": []any{silentID}, "expected_count": float64(3),
				"collected_count": float64(2), "timeout_seconds": orchestratorPartialTimeout.Seconds()})
			if fmt.Sprint(timeout) != want {
				t.Fatalf("metadata.timeout = %v, want %v", timeout, want)
			}
			if meta := res.Output["metadata"].(map[string]any); meta["model"] != "none" {
				t.Fatalf("Synthesize's own metadata was lost: %v", meta)
			}
			if st := o.Stats(); st.GoalsTimedOut != 1 || st.GoalsCompleted != 1 {
				t.Fatalf("stats %+v", st)
			}
			recs := rec.Wait(t, "orchestrator.goal_completed", 1)
			if fmt.Sprint(recs[0].Attrs["pending_task_ids"]) != "["+silentID+"]" {
				t.Fatalf("goal_completed event %+v, want the pending task_ids", recs[0].Attrs)
			}
		})
		t.Run("a Synthesize error after a timeout gives a failed result that still carries metadata.timeout", func(t *testing.T) {
			o := newTestOrchestrator(t, connect(), orchestrator.Config{
				Decompose: orchestratorTasks("silent", 2),
				Synthesize: func(context.Context, heddle.OrchestratorGoal, []heddle.TaskResult) (map[string]any, error) {
					return nil, errors.New("nothing to summarize")
				},
				Direct:  true,
				Timeout: testkit.ShortTimeout,
			}, nil)
			orchestratorRun(t, o)
			res := submitTestGoal(t, connect(), heddle.NewOrchestratorGoal("all silent", nil))
			if res.Status != heddle.StatusFailed || !strings.Contains(res.Error, "synthesize: nothing to summarize") {
				t.Fatalf("final result %+v, want failed naming the Synthesize error", res)
			}
			timeout := orchestratorTimeoutMeta(t, res)
			if ids, _ := timeout["pending_task_ids"].([]any); len(ids) != 2 || timeout["collected_count"] != float64(0) {
				t.Fatalf("metadata.timeout = %v, want both subtasks pending", timeout)
			}
			if st := o.Stats(); st.GoalsFailed != 1 || st.GoalsTimedOut != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	})
}

func TestOrchestratorFailuresStillPublishAFailedFinalResult(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		t.Run("a Decompose error", func(t *testing.T) {
			o := newTestOrchestrator(t, connect(), orchestrator.Config{
				Decompose: func(context.Context, heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) {
					return nil, errors.New("no plan")
				},
			}, nil)
			orchestratorRun(t, o)
			res := submitTestGoal(t, connect(), heddle.NewOrchestratorGoal("impossible", nil))
			if res.Status != heddle.StatusFailed || res.Error != "decompose: no plan" || res.Output != nil {
				t.Fatalf("final result %+v, want failed with the Decompose error", res)
			}
			if st := o.Stats(); st.GoalsFailed != 1 || st.GoalsCompleted != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
		t.Run("a panic in Synthesize", func(t *testing.T) {
			o := newTestOrchestrator(t, connect(), orchestrator.Config{
				Decompose: func(context.Context, heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) { return nil, nil },
				Synthesize: func(context.Context, heddle.OrchestratorGoal, []heddle.TaskResult) (map[string]any, error) {
					panic("out of ideas")
				},
			}, nil)
			orchestratorRun(t, o)
			res := submitTestGoal(t, connect(), heddle.NewOrchestratorGoal("panic", nil))
			if res.Status != heddle.StatusFailed || res.Error != "synthesize panicked: out of ideas" {
				t.Fatalf("final result %+v, want failed naming the panic", res)
			}
		})
		for _, tt := range []struct {
			name      string
			decompose orchestrator.DecomposeFunc
			synth     orchestrator.SynthesizeFunc
			want      string
		}{
			{"runtime.Goexit in Decompose", func(context.Context, heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) {
				runtime.Goexit()
				return nil, nil
			}, nil, "decompose called runtime.Goexit before returning"},
			{"runtime.Goexit in Synthesize", func(context.Context, heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) { return nil, nil },
				func(context.Context, heddle.OrchestratorGoal, []heddle.TaskResult) (map[string]any, error) {
					runtime.Goexit()
					return nil, nil
				}, "synthesize called runtime.Goexit before returning"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				o := newTestOrchestrator(t, connect(), orchestrator.Config{Decompose: tt.decompose, Synthesize: tt.synth}, nil)
				orchestratorRun(t, o)
				for i := range 2 { // and the orchestrator goes on serving
					res := submitTestGoal(t, connect(), heddle.NewOrchestratorGoal("goexit", nil))
					if res.Status != heddle.StatusFailed || res.Error != tt.want {
						t.Fatalf("goal %d: final result %+v, want failed with %q", i, res, tt.want)
					}
				}
				if s := o.Stats(); s.GoalsReceived != 2 || s.GoalsFailed != 2 {
					t.Errorf("Stats = %+v, want 2 received and 2 failed", s)
				}
			})
		}
		t.Run("a subtask that cannot be dispatched", func(t *testing.T) {
			o := newTestOrchestrator(t, connect(), orchestrator.Config{
				Decompose: func(context.Context, heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) {
					return []heddle.TaskMessage{heddle.NewTaskMessage("bad worker", nil)}, nil
				},
			}, nil)
			orchestratorRun(t, o)
			res := submitTestGoal(t, connect(), heddle.NewOrchestratorGoal("bad subtask", nil))
			if res.Status != heddle.StatusFailed || !strings.Contains(res.Error, "worker_type") {
				t.Fatalf("final result %+v, want failed naming worker_type", res)
			}
		})
		t.Run("an invalid goal naming a goal_id", func(t *testing.T) {
			caller := connect()
			rec := testlog.New()
			o := newTestOrchestrator(t, connect(), orchestrator.Config{Decompose: orchestratorTasks("x", 1)}, rec.Logger())
			orchestratorRun(t, o)
			s, err := dispatch.NewStream(testkit.Context(t), caller, heddle.ResultSubject("goal-bad"), dispatch.Timeout(testkit.Wait))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if err := s.Expect("goal-bad"); err != nil {
				t.Fatal(err)
			}
			ctx := testkit.Context(t)
			if err := caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectGoalsIncoming, Data: []byte(`{"goal_id":"goal-bad","instruction":"x","priority":"asap"}`)}); err != nil {
				t.Fatal(err)
			}
			results, err := s.Collect(ctx)
			if err != nil || len(results) != 1 || results[0].Status != heddle.StatusFailed || !strings.Contains(results[0].Error, "priority") {
				t.Fatalf("Collect = %+v, %v; want a failed final result naming priority", results, err)
			}
			recs := rec.Wait(t, "orchestrator.parse_error", 1)
			if recs[0].Attrs["goal_id"] != "goal-bad" || o.Stats().ParseErrors != 1 || o.Stats().GoalsReceived != 0 {
				t.Fatalf("parse_error event %+v, stats %+v", recs[0].Attrs, o.Stats())
			}
		})
	})
}

func TestOrchestratorRunDrainsOnCancel(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		received := make(chan struct{}, 10)
		release := make(chan struct{})
		testkit.Responder(t, connect(), "gated", "", func(task heddle.TaskMessage) [][]byte {
			received <- struct{}{}
			<-release
			return [][]byte{testkit.Encode(t, testkit.Echo(task))}
		})
		t.Run("a goal in progress finishes and publishes its result before Run returns", func(t *testing.T) {
			o := newTestOrchestrator(t, connect(), orchestrator.Config{
				Decompose: orchestratorTasks("gated", 1), Direct: true, Timeout: testkit.Wait,
			}, nil)
			stop, runDone := orchestratorRun(t, o)
			final := make(chan *heddle.TaskResult, 1)
			go func() {
				res, err := dispatch.SubmitGoal(testkit.Context(t), connect(), heddle.NewOrchestratorGoal("slow", nil), dispatch.Timeout(testkit.Wait))
				if err != nil {
					t.Error(err)
				}
				final <- res
			}()
			<-received
			stopped := make(chan error, 1)
			go func() { stopped <- stop() }()
			select {
			case err := <-runDone:
				t.Fatalf("Run returned (%v) with a goal in progress", err)
			case res := <-final:
				t.Fatalf("final result %+v before the subtask was answered", res)
			default:
			}
			close(release)
			if res := <-final; res == nil || res.Status != heddle.StatusCompleted {
				t.Fatalf("final result %+v, want completed", res)
			}
			if err := <-stopped; err != nil {
				t.Fatalf("Run: %v", err)
			}
		})
		t.Run("a goal still running when DrainTimeout expires gets a failed result", func(t *testing.T) {
			rec := testlog.New()
			o := newTestOrchestrator(t, connect(), orchestrator.Config{
				Decompose: orchestratorTasks("nobody", 1), Direct: true, Timeout: testkit.Wait,
				DrainTimeout: testkit.ShortTimeout,
			}, rec.Logger())
			stop, _ := orchestratorRun(t, o)
			caller := connect()
			goal := heddle.NewOrchestratorGoal("never answered", nil)
			s, err := dispatch.NewStream(testkit.Context(t), caller, goal.ResultSubject(), dispatch.Timeout(testkit.Wait))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if err := s.Expect(goal.GoalID); err != nil {
				t.Fatal(err)
			}
			data, _ := goal.Encode()
			ctx := testkit.Context(t)
			if err := caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectGoalsIncoming, Data: data}); err != nil {
				t.Fatal(err)
			}
			rec.Wait(t, "orchestrator.goal_received", 1)
			if err := stop(); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Run = %v, want the drain cut short (DeadlineExceeded)", err)
			}
			results, err := s.Collect(ctx)
			if err != nil || len(results) != 1 || results[0].Status != heddle.StatusFailed ||
				!strings.Contains(results[0].Error, orchestrator.ErrShutdown.Error()) {
				t.Fatalf("Collect = %+v, %v; want a failed result naming the shutdown", results, err)
			}
		})
	})
}

func TestEveryGoalReceivedBeforeShutdownGetsAFinalResultEvenIfItNeverStarted(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rec := testlog.New()
		started := make(chan struct{}, 1)
		o := newTestOrchestrator(t, connect(), orchestrator.Config{
			// One goal at a time, and it holds its slot until the drain
			// timeout cancels it: the others wait for a slot that never
			// frees in time.
			MaxConcurrentGoals: 1,
			DrainTimeout:       testkit.ShortTimeout,
			Decompose: func(ctx context.Context, _ heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) {
				select {
				case started <- struct{}{}:
				default:
				}
				<-ctx.Done()
				return nil, context.Cause(ctx)
			},
		}, rec.Logger())
		stop, _ := orchestratorRun(t, o)
		caller := connect()
		const n = 4
		goals := make([]heddle.OrchestratorGoal, n)
		streams := make([]*dispatch.Stream, n)
		ctx := testkit.Context(t)
		for i := range goals {
			goals[i] = heddle.NewOrchestratorGoal(fmt.Sprintf("goal %d", i), nil)
			s, err := dispatch.NewStream(ctx, caller, goals[i].ResultSubject(), dispatch.Timeout(testkit.Wait))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if err := s.Expect(goals[i].GoalID); err != nil {
				t.Fatal(err)
			}
			streams[i] = s
			data, _ := goals[i].Encode()
			if err := caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectGoalsIncoming, Data: data}); err != nil {
				t.Fatal(err)
			}
		}
		if err := caller.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		<-started
		_ = stop()
		for i, s := range streams {
			results, err := s.Collect(ctx)
			if err != nil || len(results) != 1 || results[0].Status != heddle.StatusFailed ||
				!strings.Contains(results[0].Error, orchestrator.ErrShutdown.Error()) {
				t.Errorf("goal %d: Collect = %+v, %v; want a failed result naming the shutdown", i, results, err)
			}
		}
		if st := o.Stats(); st.GoalsReceived != n || st.GoalsFailed != n {
			t.Errorf("Stats = %+v, want %d received and %d failed", st, n, n)
		}
		if got := len(rec.All("orchestrator.goal_completed")); got != n {
			t.Errorf("%d orchestrator.goal_completed events, want one per goal (%d)", got, n)
		}
	})
}

func TestAnAddressedOnlyOrchestratorServesItsGoalsAndLeavesTheSharedOnes(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		o := newTestOrchestrator(t, connect(), orchestrator.Config{Name: "planner", AddressedOnly: true,
			Decompose: func(context.Context, heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) { return nil, nil }}, nil)
		orchestratorRun(t, o)
		caller := connect()
		ctx := testkit.Context(t)
		send := func(subject string, timeout time.Duration) ([]heddle.TaskResult, error) {
			goal := heddle.NewOrchestratorGoal("plan", nil)
			s, err := dispatch.NewStream(ctx, caller, goal.ResultSubject(), dispatch.Timeout(timeout))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Expect(goal.GoalID); err != nil {
				t.Fatal(err)
			}
			data, _ := goal.Encode()
			if err := caller.Publish(ctx, &bus.Msg{Subject: subject, Data: data}); err != nil {
				t.Fatal(err)
			}
			return s.Collect(ctx)
		}
		addressed, err := heddle.GoalSubject("planner")
		if err != nil {
			t.Fatal(err)
		}
		if res, err := send(addressed, testkit.Wait); err != nil || len(res) != 1 || res[0].Status != heddle.StatusCompleted {
			t.Fatalf("addressed goal: %+v, %v; want completed", res, err)
		}
		// A shared goal is not this orchestrator's: nobody answers it.
		var te *dispatch.TimeoutError
		if res, err := send(heddle.SubjectGoalsIncoming, testkit.ShortTimeout); !errors.As(err, &te) || len(res) != 0 {
			t.Fatalf("shared goal: %+v, %v; want no answer (a timeout)", res, err)
		}
		if st := o.Stats(); st.GoalsReceived != 1 {
			t.Errorf("Stats = %+v, want exactly the addressed goal received", st)
		}
	})
}

func TestOrchestratorRejectsBadConfigAndASecondRun(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		for name, cfg := range map[string]orchestrator.Config{
			"without Decompose":                 {},
			"with a negative limit":             {Decompose: orchestratorTasks("x", 1), MaxConcurrentGoals: -1},
			"with a bad queue group":            {Decompose: orchestratorTasks("x", 1), QueueGroup: "two words"},
			"addressed only, without a name":    {Decompose: orchestratorTasks("x", 1), AddressedOnly: true},
			"with a name unusable in a subject": {Decompose: orchestratorTasks("x", 1), Name: "two words"},
		} {
			if _, err := orchestrator.New(b, cfg); !errors.Is(err, heddle.ErrConfig) {
				t.Errorf("NewOrchestrator %s: %v, want ErrOrchestratorConfig", name, err)
			}
		}
		o := newTestOrchestrator(t, b, orchestrator.Config{Decompose: orchestratorTasks("x", 1)}, nil)
		orchestratorRun(t, o)
		if err := o.Run(context.Background()); !errors.Is(err, heddle.ErrStarted) {
			t.Fatalf("second Run: %v, want ErrOrchestratorStarted", err)
		}
	})
}
