package heddle_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest"
	"github.com/heddle-go/heddle/ratelimit"
)

// flowActor runs an actor until the test ends and waits for it to be
// subscribed.
func flowActor(ctx context.Context, t *testing.T, a interface {
	Run(context.Context) error
	Ready() <-chan struct{}
}) {
	t.Helper()
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-ctx.Done():
		t.Fatalf("actor not ready: %v", ctx.Err())
	}
}

type flowIn struct {
	Text string `json:"text"`
}

type flowOut struct {
	Upper string `json:"upper"`
}

func flowUpper(ctx context.Context, in flowIn) (flowOut, error) {
	return flowOut{Upper: strings.ToUpper(in.Text)}, nil
}

func TestATaskFlowsFromCallerThroughRouterAndWorkerToItsResult(t *testing.T) {
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()

		router, err := heddle.NewRouter(connect(), heddle.RouterConfig{
			Rules: heddle.StaticRules(heddle.RouterRules{TierOverrides: map[string]string{"upper": "local"}}),
		})
		if err != nil {
			t.Fatal(err)
		}
		worker, err := heddle.NewWorker(connect(), "upper", flowUpper, heddle.WorkerConfig{Tiers: []heddle.ModelTier{heddle.TierLocal}})
		if err != nil {
			t.Fatal(err)
		}
		flowActor(ctx, t, router)
		flowActor(ctx, t, worker)

		caller := connect()
		task := heddle.NewTaskMessage("upper", map[string]any{"text": "heddle"})
		res, err := heddle.DispatchAndWait(ctx, caller, task, heddle.DispatchTimeout(10*time.Second))
		if err != nil {
			t.Fatalf("DispatchAndWait: %v", err)
		}
		if res.Status != heddle.StatusCompleted || res.Output["upper"] != "HEDDLE" {
			t.Fatalf("result = %+v, want completed with upper=HEDDLE", res)
		}
		if res.TaskID != task.TaskID {
			t.Fatalf("result task_id = %q, want %q", res.TaskID, task.TaskID)
		}
		if got := router.Stats().Overridden; got != 1 {
			t.Errorf("router overridden = %d, want 1 (standard → local)", got)
		}
	})
}

// flowRules is a rules source the test changes at run time, as an operator
// edits configs/router_rules.yaml before sending heddle.control.reload.
type flowRules struct {
	mu    sync.Mutex
	rules heddle.RouterRules
}

func (f *flowRules) set(r heddle.RouterRules) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = r
}

func (f *flowRules) source(context.Context) (heddle.RouterRules, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rules.Clone(), nil
}

func TestARateLimitedTaskReplayedAfterAReloadDeliversItsResult(t *testing.T) {
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()

		one := heddle.RouterRules{RateLimits: map[string]heddle.TierRateLimit{"standard": {MaxConcurrent: 1}}}
		rules := &flowRules{rules: one}
		events := newLogRecorder()
		logger := events.logger()
		// A fake clock that never advances: the bucket never refills, so
		// the second task is rate limited for certain.
		router, err := heddle.NewRouter(connect(), heddle.RouterConfig{
			Rules: rules.source,
			Clock: ratelimit.NewFakeClock(time.Now()),
		}, heddle.WithLogger(logger))
		if err != nil {
			t.Fatal(err)
		}
		worker, err := heddle.NewWorker(connect(), "upper", flowUpper, heddle.WorkerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		dead, err := heddle.NewDeadLetterConsumer(connect(), heddle.DeadLetterConfig{}, heddle.WithLogger(logger))
		if err != nil {
			t.Fatal(err)
		}
		flowActor(ctx, t, router)
		flowActor(ctx, t, worker)
		flowActor(ctx, t, dead)

		caller := connect()
		first := heddle.NewTaskMessage("upper", map[string]any{"text": "first"})
		if res, err := heddle.DispatchAndWait(ctx, caller, first, heddle.DispatchTimeout(10*time.Second)); err != nil || res.Status != heddle.StatusCompleted {
			t.Fatalf("first task: %+v, %v", res, err)
		}

		second := heddle.NewTaskMessage("upper", map[string]any{"text": "second"})
		data, err := second.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming, Data: data}); err != nil {
			t.Fatal(err)
		}
		got := events.wait(t, "dead_letter.received", 1)[0]
		if reason := got.Str("reason"); reason != "rate_limited: tier 'standard' has no available capacity" {
			t.Fatalf("dead letter reason = %q", reason)
		}
		entries, total := dead.List(0, 10)
		if total != 1 || entries[0].DeadLetter.TaskID != second.TaskID {
			t.Fatalf("dead letters = %d %+v, want the second task", total, entries)
		}
		if string(entries[0].DeadLetter.Original()) != string(data) {
			t.Fatalf("dead letter does not keep the original bytes:\n got %s\nwant %s", entries[0].DeadLetter.Original(), data)
		}

		// Raise the limit and reload every router replica over the bus.
		rules.set(heddle.RouterRules{RateLimits: map[string]heddle.TierRateLimit{"standard": {MaxConcurrent: 10}}})
		if err := caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectControlReload, Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		events.wait(t, "router.reloaded", 1)

		stream, err := heddle.NewResultStream(ctx, caller, second.ResultSubject(), heddle.StreamConfig{Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		if err := stream.Expect(second.TaskID); err != nil {
			t.Fatal(err)
		}
		if err := dead.Replay(ctx, entries[0].ID); err != nil {
			t.Fatalf("Replay: %v", err)
		}
		results, err := stream.Collect(ctx)
		if err != nil {
			t.Fatalf("Collect: %v", err)
		}
		if len(results) != 1 || results[0].Output["upper"] != "SECOND" {
			t.Fatalf("replayed task results = %+v, want SECOND", results)
		}
		if dead.ReplayCount() != 1 || dead.Len() != 0 {
			t.Fatalf("after replay: replay count %d, %d entries; want 1 and 0", dead.ReplayCount(), dead.Len())
		}
	})
}
