package worker_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/worker"
)

func TestRunReturnsErrClosedWhenTheBusClosesUnderIt(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wb := connect()
		if _, ok := wb.(bus.Closer); !ok {
			t.Fatalf("%T does not implement bus.Closer", wb)
		}
		entered := make(chan struct{}, 1)
		wt := workerTestType("orphan")
		w, err := worker.NewDynamic(wb, wt, func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			entered <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}, worker.Config{DrainTimeout: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		// Run's context never ends: only the bus closing can end Run, and
		// a drain that waited out its timeout would take an hour.
		done := make(chan error, 1)
		go func() { done <- w.Run(context.Background()) }()
		<-w.Ready()
		workerPublishTask(t, connect(), heddle.NewTaskMessage(wt, nil))
		<-entered

		if err := wb.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, bus.ErrClosed) {
				t.Errorf("Run = %v, want an error wrapping bus.ErrClosed", err)
			}
		case <-time.After(testkit.Wait):
			t.Fatal("Run did not return after its bus closed")
		}
		// The task in flight is settled: its result could not be published.
		if s := w.Stats(); s.Received != 1 || s.PublishErrors != 1 || s.Completed+s.Failed != 0 {
			t.Errorf("Stats() = %+v, want the task received and its publish failed", s)
		}
	})
}

// observerOf returns an Observer calling f on the events named.
func observerOf(f func(), names ...string) event.Observer {
	return event.ObserverFunc(func(_ context.Context, e event.Event) {
		for _, n := range names {
			if e.Name == n {
				f()
			}
		}
	})
}

// failOdd completes a task whose payload "i" is even and fails one whose
// "i" is odd.
func failOdd(_ context.Context, in map[string]any) (map[string]any, error) {
	if i, _ := in["i"].(float64); int(i)%2 == 1 {
		return nil, worker.Permanent(errors.New("odd"))
	}
	return map[string]any{"ok": true}, nil
}

// callAll makes n calls to workerType at once, payload "i" from 0 to n-1,
// and checks that each is answered, completed when i is even and failed
// when it is odd.
func callAll(t *testing.T, b bus.Bus, workerType string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			task := heddle.NewTaskMessage(workerType, map[string]any{"i": i})
			res, err := dispatch.Request(testkit.Context(t), b, task, dispatch.Direct())
			want := heddle.StatusCompleted
			if i%2 == 1 {
				want = heddle.StatusFailed
			}
			if err != nil || res.Status != want {
				t.Errorf("call %d: %+v, %v; want %s", i, res, err, want)
			}
		})
	}
	wg.Wait()
}

var workerEvents = []string{"worker.received", "worker.completed", "worker.failed"}

func TestAPanickingObserverLosesNoTask(t *testing.T) {
	const calls = 20
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("observed")
		w, err := worker.NewDynamic(connect(), wt, failOdd, worker.Config{},
			heddle.WithObserver(observerOf(func() { panic("observer bug") }, workerEvents...)))
		if err != nil {
			t.Fatal(err)
		}
		run := workerStart(t, w)
		callAll(t, connect(), wt, calls)
		if err := run.stop(t); err != nil {
			t.Errorf("Run = %v", err)
		}
		// One panic per event: received, then completed or failed.
		want := worker.Stats{Received: calls, Completed: calls / 2, Failed: calls / 2, ObserverPanics: 2 * calls}
		if s := w.Stats(); s != want {
			t.Errorf("Stats() = %+v, want %+v", s, want)
		}
	})
}

func TestAnObserverCallingGoexitLosesNoTaskAndThePoolKeepsItsSize(t *testing.T) {
	const calls, concurrency = 20, 2
	for _, event := range workerEvents {
		t.Run(event, func(t *testing.T) {
			natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
				wt := workerTestType("goexit_observed")
				var both sync.WaitGroup
				both.Add(concurrency)
				w, err := worker.NewDynamic(connect(), wt, func(ctx context.Context, in map[string]any) (map[string]any, error) {
					if in["both"] == true {
						// Returns once concurrency handlers run at once.
						both.Done()
						both.Wait()
					}
					return failOdd(ctx, in)
				}, worker.Config{Concurrency: concurrency},
					heddle.WithObserver(observerOf(runtime.Goexit, event)))
				if err != nil {
					t.Fatal(err)
				}
				run := workerStart(t, w)
				b := connect()
				callAll(t, b, wt, calls)
				// The pool still has its size: two tasks that wait for each
				// other both finish.
				var wg sync.WaitGroup
				for range concurrency {
					wg.Go(func() {
						res, err := dispatch.Request(testkit.Context(t), b, heddle.NewTaskMessage(wt, map[string]any{"both": true}), dispatch.Direct())
						if err != nil || res.Status != heddle.StatusCompleted {
							t.Errorf("a task of the pair: %+v, %v; want completed alongside the other", res, err)
						}
					})
				}
				wg.Wait()
				if err := run.stop(t); err != nil {
					t.Errorf("Run = %v", err)
				}
				s := w.Stats()
				exits := map[string]uint64{"worker.received": calls + concurrency,
					"worker.completed": calls/2 + concurrency, "worker.failed": calls / 2}[event]
				if s.Received != calls+concurrency || s.Completed != calls/2+concurrency || s.Failed != calls/2 || s.Goexits != exits {
					t.Errorf("Stats() = %+v, want %d received, %d completed, %d failed, %d Goexits",
						s, calls+concurrency, calls/2+concurrency, calls/2, exits)
				}
			})
		})
	}
}

func TestThePoolKeepsItsSizeThroughStuckHandlersAndGoexits(t *testing.T) {
	for _, tt := range []struct{ concurrency, goexits int }{{1, 1}, {4, 2}} {
		t.Run(fmt.Sprintf("concurrency=%d", tt.concurrency), func(t *testing.T) {
			natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
				testPoolSize(t, connect, tt.concurrency, tt.goexits)
			})
		})
	}
}

// testPoolSize gives up on concurrency stuck handlers, has goexits of
// their replacements call runtime.Goexit, lets the stuck ones return, and
// checks that concurrency handlers still run at once.
func testPoolSize(t *testing.T, connect func() bus.Bus, concurrency, goexits int) {
	release := make(chan struct{})
	var all sync.WaitGroup
	all.Add(concurrency)
	allIn := make(chan struct{})
	go func() {
		all.Wait()
		close(allIn)
	}()
	logs := testlog.New()
	wt := workerTestType("pool")
	w, err := worker.NewDynamic(connect(), wt, func(ctx context.Context, in map[string]any) (map[string]any, error) {
		switch in["do"] {
		case "stuck":
			<-release // ignores its context
		case "goexit":
			runtime.Goexit()
		case "all":
			all.Done()
			select {
			case <-allIn:
			case <-ctx.Done():
				return nil, errors.New("fewer handlers than Concurrency ran at once")
			}
		}
		return map[string]any{}, nil
	}, worker.Config{Concurrency: concurrency, TaskTimeout: 300 * time.Millisecond}, heddle.WithLogger(logs.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	run := workerStart(t, w)
	b := connect()
	results := workerCollect(t, b, heddle.SubjectResultsDefault)
	expect := func(n int, want string) {
		t.Helper()
		for range n {
			if r := results.next(t); r.Status != heddle.StatusFailed || !strings.Contains(r.Error, want) {
				t.Fatalf("result %s %q, want failed with %q", r.Status, r.Error, want)
			}
		}
	}
	for range concurrency {
		workerPublishTask(t, b, heddle.NewTaskMessage(wt, map[string]any{"do": "stuck"}))
	}
	expect(concurrency, "timed out")
	for range goexits {
		workerPublishTask(t, b, heddle.NewTaskMessage(wt, map[string]any{"do": "goexit"}))
		expect(1, "runtime.Goexit")
	}
	close(release)
	logs.Wait(t, "worker.discarded", concurrency)

	// The handler's TaskTimeout bounds its wait for the others: each
	// fails if fewer than concurrency run at once.
	for range concurrency {
		workerPublishTask(t, b, heddle.NewTaskMessage(wt, map[string]any{"do": "all"}))
	}
	for range concurrency {
		if r := results.next(t); r.Status != heddle.StatusCompleted {
			t.Fatalf("result %s %q; want every one of %d handlers running at once", r.Status, r.Error, concurrency)
		}
	}
	// concurrency handlers ran at once, so the pool is whole again.
	if s := w.Stats(); s.PoolLive != concurrency || s.PoolHung != 0 {
		t.Errorf("Stats() pool %d live, %d hung; want %d live, none hung", s.PoolLive, s.PoolHung, concurrency)
	}
	if err := run.stop(t); err != nil {
		t.Errorf("Run = %v", err)
	}
	want := worker.Stats{Received: uint64(2*concurrency + goexits), Completed: uint64(concurrency), Failed: uint64(concurrency + goexits),
		Abandoned: uint64(concurrency), Discarded: uint64(concurrency), Goexits: uint64(goexits)}
	if s := w.Stats(); s != want {
		t.Errorf("Stats() = %+v, want %+v", s, want)
	}
	if n := len(logs.Events("worker.pool_shrunk", "")); n != 0 {
		t.Errorf("worker.pool_shrunk logged %d times; no more handlers were stuck than the pool has goroutines", n)
	}
}

func TestShutdownWithABacklogIsBounded(t *testing.T) {
	// The drain's bound leaves half a DrainTimeout for waking the
	// goroutines that end it; one second keeps that well above what a
	// loaded machine delays them by under -race (up to 0.3 s measured).
	const backlog, concurrency, drainTimeout = 20_000, 2, time.Second
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		release := make(chan struct{})
		var started atomic.Int64
		entered := make(chan struct{}, backlog)
		discarded := make(chan struct{}, concurrency)
		wt := workerTestType("backlog")
		w, err := worker.NewDynamic(connect(), wt, func(context.Context, map[string]any) (map[string]any, error) {
			started.Add(1)
			entered <- struct{}{}
			<-release // ignores its context
			return map[string]any{}, nil
		}, worker.Config{Concurrency: concurrency, DrainTimeout: drainTimeout, Tiers: []heddle.ModelTier{heddle.TierStandard}},
			heddle.WithObserver(observerOf(func() { discarded <- struct{}{} }, "worker.discarded")))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		<-w.Ready()
		caller := connect()
		results := make(chan heddle.TaskResult, backlog)
		sub, err := caller.Subscribe(context.Background(), heddle.SubjectResultsDefault, func(_ context.Context, m *bus.Msg) error {
			r, err := heddle.DecodeTaskResult(m.Data)
			if err != nil {
				t.Errorf("malformed result: %v", err)
			}
			results <- r
			return nil
		}, bus.PendingLimits(2*backlog, bus.DefaultPendingBytes))
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		data, _ := heddle.NewTaskMessage(wt, nil).Encode()
		subject := heddle.WorkerSubject(wt, heddle.TierStandard)
		for range backlog {
			workerPublishRaw(t, caller, subject, data)
		}
		for range concurrency {
			<-entered
		}
		if err := caller.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}

		began := time.Now()
		cancel()
		var runErr error
		select {
		case runErr = <-done:
		case <-time.After(testkit.Wait):
			t.Fatal("Run did not return")
		}
		took := time.Since(began)
		close(release)
		for range concurrency { // the stuck handlers return
			<-discarded
		}
		if !errors.Is(runErr, context.DeadlineExceeded) {
			t.Errorf("Run = %v, want the drain timeout reported", runErr)
		}
		if took > 2*drainTimeout {
			t.Errorf("Run returned %s after its context ended, want within 2 × DrainTimeout (%s)", took, 2*drainTimeout)
		}
		if n := started.Load(); n != concurrency {
			t.Errorf("%d handlers started; want the %d started before the drain gave up, and none after", n, concurrency)
		}
		// Every task the worker received has exactly one result, failed by
		// the shutdown.
		s := w.Stats()
		for range s.Received {
			select {
			case r := <-results:
				if r.Status != heddle.StatusFailed || !strings.Contains(r.Error, "shut down") {
					t.Fatalf("result %s %q, want failed by the shutdown", r.Status, r.Error)
				}
			case <-time.After(testkit.Wait):
				t.Fatalf("%d tasks received, fewer results", s.Received)
			}
		}
		if s.Failed != s.Received || s.Completed != 0 || s.PublishErrors != 0 {
			t.Errorf("Stats() = %+v, want every task received failed", s)
		}
		t.Logf("Run returned %s after its context ended; %d of %d tasks received and failed, the rest discarded by the bus",
			took.Round(time.Millisecond), s.Received, backlog)
	})
}

func TestTheTasksAWorkersSubscriptionsDropAreCountedExactly(t *testing.T) {
	const tasks, pending = 2000, 10
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		release := make(chan struct{})
		logs := testlog.New()
		wt := workerTestType("flooded")
		w, err := worker.NewDynamic(connect(), wt, func(context.Context, map[string]any) (map[string]any, error) {
			<-release
			return map[string]any{}, nil
		}, worker.Config{Concurrency: 1, PendingMsgs: pending}, heddle.WithLogger(logs.Logger()))
		if err != nil {
			t.Fatal(err)
		}
		run := workerStart(t, w)
		caller := connect()
		data, _ := heddle.NewTaskMessage(wt, nil).Encode()
		subject := heddle.WorkerSubject(wt, heddle.TierStandard)
		for range tasks {
			workerPublishRaw(t, caller, subject, data)
		}
		// Once the server has them, they are on their way to the worker's
		// connection, and its drain sees each of them: delivered or
		// dropped.
		if err := caller.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		close(release)
		if err := run.stop(t); err != nil {
			t.Errorf("Run = %v", err)
		}
		s := w.Stats()
		if s.Dropped == 0 || s.Received+s.Dropped != tasks || s.Completed != s.Received {
			t.Errorf("Stats() = %+v: %d received + %d dropped, want > 0 dropped and %d in all, each received completed",
				s, s.Received, s.Dropped, tasks)
		}
		var reported uint64
		for _, e := range logs.Events("worker.slow_consumer", "") {
			reported += e.Attrs["dropped"].(uint64)
		}
		if reported != s.Dropped {
			t.Errorf("worker.slow_consumer events report %d dropped tasks, Stats %d", reported, s.Dropped)
		}
		if again := w.Stats().Dropped; again != s.Dropped {
			t.Errorf("Stats().Dropped went from %d to %d after Run returned", s.Dropped, again)
		}
		t.Logf("%d tasks: %d received, %d dropped", tasks, s.Received, s.Dropped)
	})
}

func TestAnObserverCallingGoexitInTheWatchsEventsStopsNoTimeout(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		release := make(chan struct{})
		wt := workerTestType("watched")
		w, err := worker.NewDynamic(connect(), wt, func(context.Context, map[string]any) (map[string]any, error) {
			<-release // ignores its context
			return map[string]any{}, nil
		}, worker.Config{Concurrency: 1, TaskTimeout: 50 * time.Millisecond},
			heddle.WithObserver(observerOf(runtime.Goexit, "worker.abandoned")))
		if err != nil {
			t.Fatal(err)
		}
		run := workerStart(t, w)
		defer close(release)
		b := connect()
		// The watch reports each abandoned handler, and each report ends it:
		// the second task times out only if another watch took its place.
		for i := range 2 {
			res, err := dispatch.Request(testkit.Context(t), b, heddle.NewTaskMessage(wt, nil), dispatch.Direct())
			if err != nil || res.Status != heddle.StatusFailed || !strings.Contains(res.Error, worker.ErrTaskTimeout.Error()) {
				t.Fatalf("task %d: %+v, %v; want failed at its timeout", i, res, err)
			}
		}
		if err := run.stop(t); err != nil {
			t.Errorf("Run = %v", err)
		}
		if s := w.Stats(); s.Abandoned != 2 || s.Failed != 2 {
			t.Errorf("Stats() = %+v, want 2 abandoned and failed", s)
		}
	})
}

// stallSecondSubscribe passes the first Subscribe through and holds the
// second until its context ends, as a bus slow to answer does.
type stallSecondSubscribe struct {
	bus.Bus
	calls   atomic.Int32
	stalled chan struct{}
}

func (s *stallSecondSubscribe) Subscribe(ctx context.Context, subject string, h bus.Handler, opts ...bus.SubscribeOption) (bus.Subscription, error) {
	if s.calls.Add(1) == 2 {
		close(s.stalled)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Bus.Subscribe(ctx, subject, h, opts...)
}

func TestAWorkerStoppedWhileSubscribingDrainsAndReturnsNil(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		sb := &stallSecondSubscribe{Bus: connect(), stalled: make(chan struct{})}
		w, err := worker.NewDynamic(sb, workerTestType("starting"), failOdd, worker.Config{
			Tiers:        []heddle.ModelTier{heddle.TierLocal, heddle.TierStandard},
			DrainTimeout: time.Hour,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		<-sb.stalled
		cancel()
		select {
		case err := <-done:
			// A stop during start is a stop like any other: no drain
			// timeout, no subscribe error.
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(testkit.Wait):
			t.Fatal("Run did not return after its context ended during subscribe")
		}
	})
}

func TestStatsPendingCountsTheTasksTheSubscriptionsHold(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		entered, release := make(chan struct{}, 1), make(chan struct{})
		wt := workerTestType("pending")
		w, err := worker.NewDynamic(b, wt, func(ctx context.Context, in map[string]any) (map[string]any, error) {
			entered <- struct{}{}
			<-release
			return in, nil
		}, worker.Config{Concurrency: 1, NoHeartbeat: true})
		if err != nil {
			t.Fatal(err)
		}
		run := workerStart(t, w)
		workerPublishTask(t, b, heddle.NewTaskMessage(wt, nil))
		<-entered // the one pool goroutine is busy
		for range 3 {
			workerPublishTask(t, b, heddle.NewTaskMessage(wt, nil))
		}
		// Published on the worker's own connection: they are with its
		// subscription when the flush returns.
		if err := b.Flush(testkit.Context(t)); err != nil {
			t.Fatal(err)
		}
		// One of the three waits in the delivery for the busy pool (the
		// bus counts it or not), the others in the subscription; the
		// first may still be counted for the instant between its hand-off
		// and the end of its delivery call.
		if n := w.Stats().Pending; n < 2 || n > 4 {
			t.Errorf("Stats().Pending = %d, want 2 to 4", n)
		}
		close(release)
		for range 3 {
			<-entered
		}
		if err := run.stop(t); err != nil {
			t.Fatal(err)
		}
		if n := w.Stats().Pending; n != 0 {
			t.Errorf("Stats().Pending after Run = %d, want 0", n)
		}
	})
}
