package router_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/wire"
	"github.com/heddle-go/heddle/router"
)

// tally counts, per task of a burst (task_id "burst-<i>"), what the mesh
// did with it: each slice is indexed by i.
type tally struct {
	delivered, deadLetters, answers, routedEvents, deadEvents []atomic.Int32
	// reached is signalled (without blocking) whenever a count goes up, so
	// that a test can wait for totals without polling on a clock.
	reached chan struct{}
	total   atomic.Int64
}

func newTally(n int) *tally {
	return &tally{
		delivered: make([]atomic.Int32, n), deadLetters: make([]atomic.Int32, n), answers: make([]atomic.Int32, n),
		routedEvents: make([]atomic.Int32, n), deadEvents: make([]atomic.Int32, n),
		reached: make(chan struct{}, 1),
	}
}

// add counts one for the task named by id in counts; ids of other tasks
// are a test failure.
func (ta *tally) add(t *testing.T, counts []atomic.Int32, id string) {
	i, err := strconv.Atoi(strings.TrimPrefix(id, "burst-"))
	if err != nil || i < 0 || i >= len(counts) || !strings.HasPrefix(id, "burst-") {
		t.Errorf("a message or event for task %q, which the test never sent", id)
		return
	}
	counts[i].Add(1)
	ta.total.Add(1)
	select {
	case ta.reached <- struct{}{}:
	default:
	}
}

// waitTotal waits until the counts add up to want, failing the test when
// none goes up for testkit.Wait.
func (ta *tally) waitTotal(t *testing.T, want int64, what string) {
	t.Helper()
	stalled := time.NewTimer(testkit.Wait)
	defer stalled.Stop()
	for ta.total.Load() < want {
		select {
		case <-ta.reached:
			stalled.Reset(testkit.Wait)
		case <-stalled.C:
			t.Fatalf("%s: %d of %d messages and events arrived, then nothing for %v", what, ta.total.Load(), want, testkit.Wait)
		}
	}
}

// observer counts the router's routed and dead_lettered events per task.
func (ta *tally) observer(t *testing.T) heddle.Option {
	return heddle.WithObserver(event.ObserverFunc(func(_ context.Context, e event.Event) {
		switch e.Name {
		case "router.routed":
			ta.add(t, ta.routedEvents, e.TaskID)
		case "router.dead_lettered":
			ta.add(t, ta.deadEvents, e.TaskID)
		}
	}))
}

// count subscribes to subject on b and counts each message's task_id in
// counts.
func (ta *tally) count(t *testing.T, b bus.Bus, subject string, counts []atomic.Int32) bus.Subscription {
	t.Helper()
	sub, err := b.Subscribe(t.Context(), subject, func(_ context.Context, m *bus.Msg) error {
		id, _ := wire.PeekString(m.Data, "task_id")
		ta.add(t, counts, id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func burstTask(t *testing.T, i int, workerType string) []byte {
	t.Helper()
	m := heddle.NewTaskMessage(workerType, map[string]any{"n": i})
	m.TaskID = "burst-" + strconv.Itoa(i)
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A burst of tasks published at full speed, half of them for a worker type
// nobody serves: every unserved task is dead-lettered and answered exactly
// once, every served one delivered and counted routed exactly once, and
// each count equals its events. The router used to remember only the last
// 4,096 forwarded tasks, so that about half of a 10,000-task burst got no
// dead letter and no answer, and it reported a no_worker task both routed
// and dead-lettered.
//
// Under the race detector, which slows the mesh about tenfold, the burst
// is 10,000 tasks, as in the report of the defect.
func TestRouterDeadLettersAndAnswersEveryUnservedTaskOfABurst(t *testing.T) {
	n := 100_000
	if raceEnabled || testing.Short() {
		n = 10_000
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ta := newTally(n)
		rt, err := router.New(connect(), router.Config{}, ta.observer(t))
		if err != nil {
			t.Fatal(err)
		}
		stop := testkit.StartActor(t, rt.Run, rt.Ready())
		workers, watcher, caller := connect(), connect(), connect()
		subs := []bus.Subscription{
			ta.count(t, workers, heddle.WorkerSubjectAllTiers("echo"), ta.delivered),
			ta.count(t, watcher, heddle.SubjectDeadLetter, ta.deadLetters),
			ta.count(t, watcher, heddle.SubjectResultsDefault, ta.answers),
		}
		if err := workers.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		tasks := make([][]byte, n)
		for i := range tasks {
			tasks[i] = burstTask(t, i, []string{"echo", "ehco"}[i%2])
		}
		for _, data := range tasks {
			testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
		}
		// Served: one delivery and one routed event each; unserved: a dead
		// letter, an answer and a dead_lettered event each.
		ta.waitTotal(t, int64(n/2*2+n/2*3), "the burst")
		stop()
		for _, sub := range subs {
			if err := sub.Drain(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		s := rt.Stats()
		half := uint64(n / 2)
		if s.Routed != half || s.NoWorker != half || s.DeadLettered != half || s.Answered != half ||
			s.NoWorkerUnknown != 0 || s.PublishErrors != 0 || s.DeadLetterErrors != 0 {
			t.Errorf("Stats() = %+v, want %d routed and %d dead-lettered no_worker and answered, nothing else", s, half, half)
		}
		bad := 0
		for i := range n {
			want := [5]int32{1, 0, 0, 1, 0} // delivered, dead letters, answers, routed events, dead_lettered events
			if i%2 == 1 {
				want = [5]int32{0, 1, 1, 0, 1}
			}
			got := [5]int32{ta.delivered[i].Load(), ta.deadLetters[i].Load(), ta.answers[i].Load(), ta.routedEvents[i].Load(), ta.deadEvents[i].Load()}
			if got != want && bad < 5 {
				bad++
				t.Errorf("task burst-%d: delivered, dead letters, answers, routed and dead_lettered events %v, want %v", i, got, want)
			}
		}
	})
}

// What the router keeps of a forwarded task is let go once its fate is
// known: after 4,096 tasks of 64 KiB, all delivered, it holds less than
// 16 MiB. It used to keep the last 4,096 tasks' bytes for ever (289 MiB
// here). Under the race detector, which scans each task's bytes some
// thirty times slower, 384 tasks are sent: the old router kept 24 MiB of
// them.
func TestRouterKeepsNoTaskOnceItsFateIsKnown(t *testing.T) {
	const size = 64 << 10
	n := int64(4096)
	if raceEnabled || testing.Short() {
		n = 384
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		var routed atomic.Int64
		allRouted := make(chan struct{})
		rt, err := router.New(connect(), router.Config{}, heddle.WithObserver(event.ObserverFunc(func(_ context.Context, e event.Event) {
			if e.Name == "router.routed" && routed.Add(1) == n {
				close(allRouted)
			}
		})))
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, rt.Run, rt.Ready())
		workers, caller := connect(), connect()
		var delivered atomic.Int64
		// The tasks in flight are bounded, so that the router's task
		// subscription never reaches its pending limit (64 MiB) and drops.
		window := make(chan struct{}, 128)
		sub, err := workers.Subscribe(t.Context(), heddle.WorkerSubjectAllTiers("echo"), func(context.Context, *bus.Msg) error {
			delivered.Add(1)
			<-window
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		m := heddle.NewTaskMessage("echo", map[string]any{"text": strings.Repeat("x", size)})
		data, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		before := heapInUse()
		for range n {
			select {
			case window <- struct{}{}:
			case <-time.After(testkit.Wait):
				t.Fatalf("%d tasks delivered, then none for %v", delivered.Load(), testkit.Wait)
			}
			testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
		}
		select {
		case <-allRouted:
		case <-time.After(testkit.Wait):
			t.Fatalf("%d of %d tasks routed, %d delivered", routed.Load(), n, delivered.Load())
		}
		after := heapInUse()
		if grown := int64(after) - int64(before); grown >= 16<<20 {
			t.Errorf("the heap grew by %d MiB over %d tasks of %d KiB, all delivered; want less than 16 MiB", grown>>20, n, size>>10)
		}
		if s := rt.Stats(); s.Routed != uint64(n) {
			t.Errorf("Stats() = %+v, want %d routed", s, n)
		}
	})
}

// heapInUse returns the bytes of live objects after a full collection
// (twice, so that sync.Pool's victim caches are let go too).
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Tasks still being routed when Run's context ends are accounted for
// once each: the router drains its task subscription, then waits for the
// bus's reports on everything it forwarded, before it stops listening for
// them. None is counted routed or lost uncounted. (5,000 tasks under the
// race detector: the old router, which remembered 4,096, lost some of
// those too.)
func TestRouterAccountsForEveryTaskForwardedWhileDraining(t *testing.T) {
	n := 10_000
	if raceEnabled || testing.Short() {
		n = 5_000
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rt, err := router.New(connect(), router.Config{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		<-rt.Ready()
		caller := connect()
		for i := range n {
			testkit.Publish(t, caller, heddle.SubjectTasksIncoming, burstTask(t, i, "ehco"), nil)
		}
		// Every task has reached the router's connection before it
		// drains.
		if err := caller.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run = %v, want nil after a drain in time", err)
			}
		case <-time.After(testkit.Wait):
			t.Fatal("Run did not return after its context ended")
		}
		if s := rt.Stats(); s.NoWorker != uint64(n) || s.DeadLettered != uint64(n) || s.Routed != 0 || s.NoWorkerUnknown != 0 || s.PublishErrors != 0 {
			t.Errorf("Stats() = %+v, want all %d tasks dead-lettered no_worker and none routed", s, n)
		}
	})
}

// A dead-lettered task's answer is published before its dead letter: a
// dead letter can be replayed as soon as it is out, and the replay's
// result stream must not collect the stale answer. (The router used to
// publish the dead letter first; a replay test failed 3 times in 82 runs.)
func TestRouterAnswersADeadLetteredTaskBeforeItPublishesTheDeadLetter(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		routerStart(t, connect(), router.Config{Rules: router.StaticRules(router.Rules{
			RateLimits: map[string]router.TierRateLimit{"local": {}},
		})})
		// One subscription sees both subjects, in the order the router
		// published them.
		seen, _ := testkit.Subscribe(t, connect(), "heddle.>")
		caller := connect()
		limited, data := testkit.Task(t, "echo", heddle.TierLocal)
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, []byte(`{"task_id":"t-invalid","worker_type":"echo","payload":[1]}`), nil)
		var order []string
		for len(order) < 4 {
			m := testkit.Recv(t, seen, "the answers and the dead letters")
			if m.Subject == heddle.SubjectTasksIncoming {
				continue
			}
			id, _ := wire.PeekString(m.Data, "task_id")
			order = append(order, m.Subject+" "+id)
		}
		want := []string{
			heddle.SubjectResultsDefault + " " + limited.TaskID, heddle.SubjectDeadLetter + " " + limited.TaskID,
			heddle.SubjectResultsDefault + " t-invalid", heddle.SubjectDeadLetter + " t-invalid",
		}
		if strings.Join(order, "\n") != strings.Join(want, "\n") {
			t.Errorf("published in the order\n%s\nwant each task's answer before its dead letter:\n%s",
				strings.Join(order, "\n"), strings.Join(want, "\n"))
		}
	})
}

// closerBus is a bus that says when it has closed (bus.Closer), for the
// buses that do not say it themselves.
type closerBus struct {
	bus.Bus
	done chan struct{}
	once sync.Once
}

func (b *closerBus) Done() <-chan struct{} { return b.done }

func (b *closerBus) Err() error {
	select {
	case <-b.done:
		return fmt.Errorf("test bus: credentials revoked: %w", bus.ErrClosed)
	default:
		return nil
	}
}

func (b *closerBus) Close() error {
	err := b.Bus.Close()
	b.once.Do(func() { close(b.done) })
	return err
}

// A router whose bus closes under it returns from Run with an error
// wrapping bus.ErrClosed, saying why, so that its process can exit and be
// restarted; it used to wait for its context for ever.
func TestRouterRunReturnsWhenItsBusCloses(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		buses := map[string]func() bus.Bus{
			"a bus that says why it closed": func() bus.Bus { return &closerBus{Bus: connect(), done: make(chan struct{})} },
		}
		if _, ok := connect().(bus.Closer); ok {
			buses["the bus itself"] = connect
		}
		for name, open := range buses {
			t.Run(name, func(t *testing.T) {
				b := open()
				rt, err := router.New(b, router.Config{})
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- rt.Run(context.Background()) }()
				<-rt.Ready()
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-done:
					if !errors.Is(err, bus.ErrClosed) {
						t.Errorf("Run = %v, want an error wrapping bus.ErrClosed", err)
					}
					if want := bus.Err(b); want != nil && !strings.Contains(err.Error(), want.Error()) {
						t.Errorf("Run = %v, want it to say why the bus closed: %v", err, want)
					}
				case <-time.After(testkit.Wait):
					t.Fatal("Run did not return after its bus closed")
				}
			})
		}
	})
}
