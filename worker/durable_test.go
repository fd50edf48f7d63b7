package worker_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/worker"
)

// durableStream ensures the stream a durable worker of workerType uses,
// so that tasks can be stored before any worker runs.
func durableStream(t *testing.T, b bus.Bus, workerType string) bus.Durable {
	t.Helper()
	d := b.(bus.Durable)
	err := d.EnsureStream(testkit.Context(t), bus.StreamConfig{Name: worker.DurableStreamName(workerType),
		Subjects: []string{heddle.WorkerSubjectAllTiers(workerType)}, WorkQueue: true})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// storeTasks stores n tasks for workerType and returns their ids in
// order.
func storeTasks(t *testing.T, d bus.Durable, workerType string, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for range n {
		task, data := testkit.Task(t, workerType, heddle.TierStandard)
		if _, err := d.PublishDurable(testkit.Context(t), &bus.Msg{Subject: heddle.WorkerSubject(workerType, heddle.TierStandard), Data: data}, task.TaskID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.TaskID)
	}
	return ids
}

// durableWorker returns a durable worker of workerType on b.
func durableWorker(t *testing.T, b bus.Bus, workerType string, dc worker.DurableConfig, concurrency int,
	h func(ctx context.Context, in map[string]any) (map[string]any, error)) *worker.Worker {
	t.Helper()
	w, err := worker.NewDynamic(b, workerType, h, worker.Config{Durable: &dc, Concurrency: concurrency, NoHeartbeat: true,
		DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// results decodes the next n results on ch, by task id.
func results(t *testing.T, ch <-chan *bus.Msg, n int) map[string][]heddle.TaskResult {
	t.Helper()
	got := map[string][]heddle.TaskResult{}
	for range n {
		m := testkit.Recv(t, ch, "a result")
		r, err := heddle.DecodeTaskResult(m.Data)
		if err != nil {
			t.Fatalf("result %s: %v", m.Data, err)
		}
		got[r.TaskID] = append(got[r.TaskID], r)
	}
	return got
}

func TestDurableWorkerServesStoredTasksAndAcknowledgesEachOnceItsResultIsOut(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("durable_serve")
		caller := connect()
		resCh, _ := testkit.Subscribe(t, caller, heddle.SubjectResultsAll)
		d := durableStream(t, caller, wt)
		ids := storeTasks(t, d, wt, 5)

		dc := worker.DurableConfig{AckWait: 300 * time.Millisecond}
		echo := func(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil }
		first := workerStart(t, durableWorker(t, connect(), wt, dc, 4, echo))
		got := results(t, resCh, len(ids))
		for _, id := range ids {
			if len(got[id]) != 1 || got[id][0].Status != heddle.StatusCompleted {
				t.Fatalf("task %s: results %+v, want one completed result", id, got[id])
			}
		}
		if err := first.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}

		// A second worker gets only the next task: the first five were
		// acknowledged. Its handler outlasts the ack wait three times, so
		// an unacknowledged task would have come back meanwhile.
		var mu sync.Mutex
		runs := 0
		second := durableWorker(t, connect(), wt, dc, 4, func(ctx context.Context, in map[string]any) (map[string]any, error) {
			mu.Lock()
			runs++
			mu.Unlock()
			select {
			case <-time.After(3 * dc.AckWait):
			case <-ctx.Done():
			}
			return in, nil
		})
		workerStart(t, second)
		sentinel := storeTasks(t, d, wt, 1)
		got = results(t, resCh, 1)
		if len(got[sentinel[0]]) != 1 {
			t.Fatalf("next result %v, want the sentinel %s's", got, sentinel[0])
		}
		mu.Lock()
		defer mu.Unlock()
		if runs != 1 {
			t.Fatalf("the second worker ran %d handlers, want 1 (the sentinel): acknowledged tasks came back", runs)
		}
	})
}

func TestDurableWorkerKilledMidTaskHasItsTasksCompletedByAnotherReplicaEachCallerGettingOneResult(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("durable_kill")
		caller := connect()
		resCh, _ := testkit.Subscribe(t, caller, heddle.SubjectResultsAll)
		d := durableStream(t, caller, wt)
		const n = 6
		ids := storeTasks(t, d, wt, n)
		dc := worker.DurableConfig{AckWait: 500 * time.Millisecond}

		var mu sync.Mutex
		runs := map[string]map[string]int{"A": {}, "B": {}}
		started := make(chan struct{}, n)
		handler := func(name string, block bool) func(ctx context.Context, in map[string]any) (map[string]any, error) {
			return func(ctx context.Context, in map[string]any) (map[string]any, error) {
				task, _ := worker.TaskFromContext(ctx)
				mu.Lock()
				runs[name][task.TaskID]++
				mu.Unlock()
				if block {
					started <- struct{}{}
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return map[string]any{"by": name}, nil
			}
		}
		connA := connect()
		a := workerStart(t, durableWorker(t, connA, wt, dc, n, handler("A", true)))
		for range n {
			select {
			case <-started:
			case <-time.After(testkit.Wait):
				t.Fatal("worker A did not start every task")
			}
		}
		workerStart(t, durableWorker(t, connect(), wt, dc, n, handler("B", false)))
		_ = connA.Close() // the process dies: its connection goes
		if err := a.stop(t); !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("worker A's Run returned %v, want an error wrapping bus.ErrClosed", err)
		}

		got := results(t, resCh, n)
		sentinel := storeTasks(t, d, wt, 1)
		if next := results(t, resCh, 1); len(next[sentinel[0]]) != 1 {
			t.Fatalf("a result %v came after the %d tasks' results, before the sentinel's", next, n)
		}
		mu.Lock()
		defer mu.Unlock()
		duplicates := 0
		for _, id := range ids {
			if len(got[id]) != 1 || got[id][0].Status != heddle.StatusCompleted || got[id][0].Output["by"] != "B" {
				t.Errorf("task %s: results %+v, want exactly one, completed by B", id, got[id])
			}
			if runs["A"][id] != 1 || runs["B"][id] != 1 {
				t.Errorf("task %s ran %d times on A and %d on B, want once on each", id, runs["A"][id], runs["B"][id])
			}
			duplicates += runs["A"][id] + runs["B"][id] - 1
		}
		t.Logf("%d tasks, none lost; %d duplicate runs, each the killed worker's interrupted run", n, duplicates)
	})
}

func TestDurableWorkerDeadLettersATaskAfterMaxDeliverCrashesInsteadOfLoopingOnIt(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("durable_poison")
		caller := connect()
		resCh, _ := testkit.Subscribe(t, caller, heddle.SubjectResultsAll)
		dlCh, _ := testkit.Subscribe(t, caller, heddle.SubjectDeadLetter)
		d := durableStream(t, caller, wt)
		task, data := testkit.Task(t, wt, heddle.TierStandard)
		if _, err := d.PublishDurable(testkit.Context(t), &bus.Msg{Subject: heddle.WorkerSubject(wt, heddle.TierStandard), Data: data}, task.TaskID); err != nil {
			t.Fatal(err)
		}
		dc := worker.DurableConfig{AckWait: 300 * time.Millisecond, MaxDeliver: 2}
		for attempt := range dc.MaxDeliver {
			started := make(chan struct{}, 1)
			conn := connect()
			r := workerStart(t, durableWorker(t, conn, wt, dc, 1, func(ctx context.Context, _ map[string]any) (map[string]any, error) {
				started <- struct{}{}
				<-ctx.Done()
				return nil, ctx.Err()
			}))
			select {
			case <-started:
			case <-time.After(testkit.Wait):
				t.Fatalf("attempt %d never started", attempt+1)
			}
			_ = conn.Close() // the handler takes its process down
			_ = r.stop(t)
		}
		var mu sync.Mutex
		ran := map[string]int{}
		last := durableWorker(t, connect(), wt, dc, 1, func(ctx context.Context, in map[string]any) (map[string]any, error) {
			got, _ := worker.TaskFromContext(ctx)
			mu.Lock()
			ran[got.TaskID]++
			mu.Unlock()
			return in, nil
		})
		workerStart(t, last)

		r := results(t, resCh, 1)[task.TaskID]
		if len(r) != 1 || r[0].Status != heddle.StatusFailed || r[0].Metadata[heddle.MetadataDeadLetterReason] != "max_deliveries" ||
			!strings.HasPrefix(r[0].Error, "max_deliveries: ") {
			t.Fatalf("the caller got %+v, want one failed result with dead_letter_reason max_deliveries", r)
		}
		dl, err := heddle.DecodeDeadLetter(testkit.Recv(t, dlCh, "the dead letter").Data)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(dl.Reason, "max_deliveries: ") || string(dl.Original()) != string(data) || dl.TaskID != task.TaskID {
			t.Fatalf("dead letter %+v, want reason max_deliveries: ... and the original task unchanged", dl)
		}
		sentinel := storeTasks(t, d, wt, 1)
		if next := results(t, resCh, 1); len(next[sentinel[0]]) != 1 {
			t.Fatalf("next result %v, want the sentinel's", next)
		}
		select {
		case m := <-dlCh:
			t.Fatalf("a second dead letter: %s", m.Data)
		default:
		}
		mu.Lock()
		defer mu.Unlock()
		if ran[task.TaskID] != 0 || last.DurableStats().DeadLettered != 1 {
			t.Fatalf("the last worker ran the task %d times and dead-lettered %d, want 0 and 1", ran[task.TaskID], last.DurableStats().DeadLettered)
		}
	})
}

func TestDurableWorkerThatStopsHandsBackTheTasksItHasNotStarted(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("durable_handback")
		caller := connect()
		resCh, _ := testkit.Subscribe(t, caller, heddle.SubjectResultsAll)
		d := durableStream(t, caller, wt)
		ids := storeTasks(t, d, wt, 3)
		// An ack wait far beyond the test: only a hand-back brings the
		// tasks to the second worker in time (the worker's own, or the
		// bus's for what it had fetched and not yet handed over).
		dc := worker.DurableConfig{AckWait: 10 * time.Minute}
		started, release := make(chan string, 3), make(chan struct{})
		a := workerStart(t, durableWorker(t, connect(), wt, dc, 1, func(ctx context.Context, in map[string]any) (map[string]any, error) {
			task, _ := worker.TaskFromContext(ctx)
			started <- task.TaskID
			<-release
			return map[string]any{"by": "A"}, nil
		}))
		first := <-started
		stopped := make(chan error, 1)
		go func() { stopped <- a.stop(t) }()

		workerStart(t, durableWorker(t, connect(), wt, dc, 4, func(_ context.Context, _ map[string]any) (map[string]any, error) {
			return map[string]any{"by": "B"}, nil
		}))
		got := results(t, resCh, 2)
		close(release)
		got[first] = results(t, resCh, 1)[first]
		if err := <-stopped; err != nil {
			t.Fatalf("worker A's Run: %v", err)
		}
		for _, id := range ids {
			want := "B"
			if id == first {
				want = "A"
			}
			if len(got[id]) != 1 || got[id][0].Output["by"] != want {
				t.Errorf("task %s: results %+v, want one by %s", id, got[id], want)
			}
		}
	})
}

// plainBus hides the durable capability of the bus it wraps.
type plainBus struct{ bus.Bus }

func TestDurableWorkerConfigurationErrorsNameTheField(t *testing.T) {
	b := membus.New()
	defer b.Close()
	echo := func(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil }
	for _, tc := range []struct {
		name string
		b    bus.Bus
		cfg  worker.Config
		want string
	}{
		{"a bus without the durable capability", plainBus{b}, worker.Config{Durable: &worker.DurableConfig{}}, "durable capability"},
		{"a durable worker in a core queue group would run tasks twice", b,
			worker.Config{Durable: &worker.DurableConfig{}, QueueGroup: heddle.LLMWorkerQueueGroup("x")}, "QueueGroup"},
		{"a negative AckWait", b, worker.Config{Durable: &worker.DurableConfig{AckWait: -1}}, "Durable.AckWait"},
		{"a negative MaxDeliver", b, worker.Config{Durable: &worker.DurableConfig{MaxDeliver: -1}}, "Durable.MaxDeliver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := worker.NewDynamic(tc.b, "x", echo, tc.cfg)
			if !errors.Is(err, heddle.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewDynamic: %v, want heddle.ErrConfig naming %s", err, tc.want)
			}
		})
	}
}

func TestDurableStreamNamesKeepEveryWorkerTypeApart(t *testing.T) {
	for _, tc := range []struct{ a, b string }{{"summarize", "summarise"}, {"a.b", "a_b"}, {"é", "_"}} {
		if worker.DurableStreamName(tc.a) == worker.DurableStreamName(tc.b) {
			t.Errorf("%q and %q share the stream %s", tc.a, tc.b, worker.DurableStreamName(tc.a))
		}
	}
	if got := worker.DurableStreamName("summarize"); got != "HEDDLE_TASKS_summarize" {
		t.Errorf("DurableStreamName(summarize) = %s", got)
	}
}

// A durable worker stores each result, with an acknowledgement, in the
// stream that captures its results subject, the task id in its message
// id, and the caller's core subscription still receives it; a result
// whose subject no stream captures goes out on core NATS alone.
func TestDurableWorkerStoresItsResultsWhereAStreamCapturesTheirSubject(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("durable_results")
		caller := connect()
		d := durableStream(t, caller, wt)
		storedParent, coreParent := "stored-"+wt, "core-"+wt
		storedSubject := heddle.SubjectResultsAll[:len(heddle.SubjectResultsAll)-1] + storedParent
		resCh, _ := testkit.Subscribe(t, caller, heddle.SubjectResultsAll)
		stream := "RESULTS_" + wt
		if err := d.EnsureStream(testkit.Context(t), bus.StreamConfig{Name: stream, Subjects: []string{storedSubject}, Memory: true}); err != nil {
			t.Fatal(err)
		}
		stored := make(chan *bus.Msg, 16)
		cn, err := d.Consume(testkit.Context(t), bus.ConsumerConfig{Stream: stream, Name: "reader"}, func(_ context.Context, m bus.DurableMsg) error {
			stored <- m.Msg()
			return m.Ack()
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cn.Stop(context.Background()) })

		want := map[string]string{} // task id → its results subject's parent
		for i, parent := range []string{storedParent, coreParent, storedParent, coreParent} {
			task := heddle.NewTaskMessage(wt, map[string]any{"n": i})
			task.ParentTaskID = parent
			data, err := task.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.PublishDurable(testkit.Context(t), &bus.Msg{Subject: heddle.WorkerSubject(wt, heddle.TierStandard), Data: data}, task.TaskID); err != nil {
				t.Fatal(err)
			}
			want[task.TaskID] = parent
		}
		echo := func(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil }
		workerStart(t, durableWorker(t, connect(), wt, worker.DurableConfig{}, 2, echo))

		got := results(t, resCh, len(want))
		for id := range want {
			if len(got[id]) != 1 || got[id][0].Status != heddle.StatusCompleted {
				t.Fatalf("task %s: core results %+v, want one completed result", id, got[id])
			}
		}
		for range 2 {
			m := testkit.Recv(t, stored, "a stored result")
			r, err := heddle.DecodeTaskResult(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if want[r.TaskID] != storedParent {
				t.Fatalf("stored a result of task %s (parent %q), want only results on %s", r.TaskID, want[r.TaskID], storedSubject)
			}
			if id := m.Header.Get(bus.MsgIDHeader); id != "result:"+r.TaskID {
				t.Fatalf("stored result's message id %q, want %q", id, "result:"+r.TaskID)
			}
			delete(want, r.TaskID)
		}
		select {
		case m := <-stored:
			t.Fatalf("a third result was stored: %s", m.Data)
		default:
		}
	})
}
