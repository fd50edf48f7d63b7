package worker_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/worker"
)

func TestATaskFailsAtItsTimeoutEvenWhenTheHandlerIgnoresItsContext(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		release := make(chan struct{})
		logs := testlog.New()
		w, err := worker.NewDynamic(connect(), "stubborn", func(_ context.Context, in map[string]any) (map[string]any, error) {
			if in["stuck"] == true {
				<-release // ignores its context
			}
			return map[string]any{"ok": true}, nil
		}, worker.Config{Concurrency: 1, TaskTimeout: 50 * time.Millisecond}, heddle.WithLogger(logs.Logger()))
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, w.Run, w.Ready())
		defer close(release)
		b := connect()
		res, err := dispatch.Request(testkit.Context(t), b, heddle.NewTaskMessage("stubborn", map[string]any{"stuck": true}), dispatch.Direct())
		if err != nil || res.Status != heddle.StatusFailed || !strings.Contains(res.Error, worker.ErrTaskTimeout.Error()) {
			t.Fatalf("result %+v, %v; want failed with ErrTaskTimeout's text", res, err)
		}
		// The pool of one goroutine still serves: another took the stuck one's place.
		res, err = dispatch.Request(testkit.Context(t), b, heddle.NewTaskMessage("stubborn", nil), dispatch.Direct())
		if err != nil || res.Status != heddle.StatusCompleted {
			t.Fatalf("the next task: %+v, %v; want completed by the replacement goroutine", res, err)
		}
		logs.Wait(t, "worker.abandoned", 1)
		logs.Wait(t, "worker.completed", 1) // each follows its count
		if s := w.Stats(); s.Abandoned != 1 || s.Failed != 1 || s.Completed != 1 {
			t.Errorf("Stats() = %+v, want 1 abandoned and failed, 1 completed", s)
		}
		release <- struct{}{} // the stuck handler returns at last
		logs.Wait(t, "worker.discarded", 1)
		if s := w.Stats(); s.Discarded != 1 || s.Completed != 1 {
			t.Errorf("Stats() = %+v, want the late output discarded, not counted as completed", s)
		}
	})
}

func TestAHandlerCallingGoexitFailsItsTaskAndThePoolGoesOn(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		w, err := worker.NewDynamic(connect(), "goexit", func(_ context.Context, in map[string]any) (map[string]any, error) {
			if in["exit"] == true {
				runtime.Goexit() // what t.FailNow does in a handler
			}
			return map[string]any{"ok": true}, nil
		}, worker.Config{Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		stop := testkit.StartActor(t, w.Run, w.Ready())
		b := connect()
		for range 3 {
			res, err := dispatch.Request(testkit.Context(t), b, heddle.NewTaskMessage("goexit", map[string]any{"exit": true}), dispatch.Direct())
			if err != nil || res.Status != heddle.StatusFailed || !strings.Contains(res.Error, "runtime.Goexit") {
				t.Fatalf("result %+v, %v; want failed naming runtime.Goexit", res, err)
			}
		}
		res, err := dispatch.Request(testkit.Context(t), b, heddle.NewTaskMessage("goexit", nil), dispatch.Direct())
		if err != nil || res.Status != heddle.StatusCompleted {
			t.Fatalf("after the Goexits: %+v, %v; want the pool of one still serving", res, err)
		}
		stop() // the counts are final once Run has returned
		if s := w.Stats(); s.Goexits != 3 || s.Failed != 3 || s.Completed != 1 {
			t.Errorf("Stats() = %+v, want 3 Goexits failed and 1 completed", s)
		}
	})
}

func TestShutdownAnswersEveryTaskReceivedWithinItsBound(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		const tasks = 15
		release := make(chan struct{})
		defer close(release)
		started := make(chan struct{}, tasks)
		wb := connect()
		w, err := worker.NewDynamic(wb, "draining", func(context.Context, map[string]any) (map[string]any, error) {
			started <- struct{}{}
			<-release // ignores its context
			return map[string]any{}, nil
		}, worker.Config{Concurrency: 1, DrainTimeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		<-w.Ready()
		caller := connect()
		results, _ := testkit.Subscribe(t, caller, heddle.SubjectResultsDefault)
		// Published on the worker's own connection: once the flush has
		// returned, every task is with the worker's subscription, however
		// loaded the machine, before the drain begins.
		for range tasks {
			data, _ := heddle.NewTaskMessage("draining", nil).Encode()
			testkit.Publish(t, wb, heddle.WorkerSubject("draining", heddle.TierStandard), data, nil)
		}
		select {
		case <-started:
		case <-time.After(testkit.Wait):
			t.Fatal("the first task never started")
		}
		if err := wb.Flush(testkit.Context(t)); err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Run = %v, want the drain timeout reported", err)
			}
		case <-time.After(testkit.Wait):
			t.Fatal("Run did not return: the drain is not bounded")
		}
		// Every task the worker received has its failed result.
		for i := range tasks {
			res, err := heddle.DecodeTaskResult(testkit.Recv(t, results, "a result").Data)
			if err != nil || res.Status != heddle.StatusFailed || !strings.Contains(res.Error, "shut down") {
				t.Fatalf("result %d: %+v, %v; want failed by the shutdown", i, res, err)
			}
		}
		if s := w.Stats(); s.Received != tasks || s.Failed != tasks {
			t.Errorf("Stats() = %+v, want %d received and %d failed", s, tasks, tasks)
		}
	})
}
