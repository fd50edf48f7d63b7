package heddle_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
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
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()

		rt, err := router.New(connect(), router.Config{
			Rules: router.StaticRules(router.Rules{TierOverrides: map[string]string{"upper": "local"}}),
		})
		if err != nil {
			t.Fatal(err)
		}
		wk, err := worker.New(connect(), "upper", flowUpper, worker.Config{Tiers: []heddle.ModelTier{heddle.TierLocal}})
		if err != nil {
			t.Fatal(err)
		}
		flowActor(ctx, t, rt)
		flowActor(ctx, t, wk)

		caller := connect()
		task := heddle.NewTaskMessage("upper", map[string]any{"text": "heddle"})
		res, err := dispatch.Request(ctx, caller, task, dispatch.Timeout(10*time.Second))
		if err != nil {
			t.Fatalf("DispatchAndWait: %v", err)
		}
		if res.Status != heddle.StatusCompleted || res.Output["upper"] != "HEDDLE" {
			t.Fatalf("result = %+v, want completed with upper=HEDDLE", res)
		}
		if res.TaskID != task.TaskID {
			t.Fatalf("result task_id = %q, want %q", res.TaskID, task.TaskID)
		}
		if got := rt.Stats().Overridden; got != 1 {
			t.Errorf("router overridden = %d, want 1 (standard → local)", got)
		}
	})
}

// flowRules is a rules source the test changes at run time, as an operator
// edits configs/router_rules.yaml before sending heddle.control.reload.
type flowRules struct {
	mu    sync.Mutex
	rules router.Rules
}

func (f *flowRules) set(r router.Rules) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = r
}

func (f *flowRules) source(context.Context) (router.Rules, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rules.Clone(), nil
}

func TestARateLimitedTaskReplayedAfterAReloadDeliversItsResult(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()

		// One token and a refill so slow (one token in about 30 years)
		// that the second task is rate limited for certain.
		one := router.Rules{RateLimits: map[string]router.TierRateLimit{"standard": {MaxConcurrent: 1, RatePerSecond: 1e-9}}}
		rules := &flowRules{rules: one}
		events := testlog.New()
		logger := events.Logger()
		rt, err := router.New(connect(), router.Config{
			Rules: rules.source,
		}, heddle.WithLogger(logger))
		if err != nil {
			t.Fatal(err)
		}
		wk, err := worker.New(connect(), "upper", flowUpper, worker.Config{})
		if err != nil {
			t.Fatal(err)
		}
		dead, err := deadletter.New(connect(), deadletter.Config{}, heddle.WithLogger(logger))
		if err != nil {
			t.Fatal(err)
		}
		flowActor(ctx, t, rt)
		flowActor(ctx, t, wk)
		flowActor(ctx, t, dead)

		caller := connect()
		first := heddle.NewTaskMessage("upper", map[string]any{"text": "first"})
		if res, err := dispatch.Request(ctx, caller, first, dispatch.Timeout(10*time.Second)); err != nil || res.Status != heddle.StatusCompleted {
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
		got := events.Wait(t, "dead_letter.received", 1)[0]
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
		rules.set(router.Rules{RateLimits: map[string]router.TierRateLimit{"standard": {MaxConcurrent: 10}}})
		if err := caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectControlReload, Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		events.Wait(t, "router.reloaded", 1)

		stream, err := dispatch.NewStream(ctx, caller, second.ResultSubject(), dispatch.Timeout(10*time.Second))
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
		if dead.Stats().Replayed != 1 || dead.Len() != 0 {
			t.Fatalf("after replay: replay count %d, %d entries; want 1 and 0", dead.Stats().Replayed, dead.Len())
		}
	})
}
