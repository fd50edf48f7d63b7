package router_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// durableMesh runs a durable worker of a fresh type on its own
// connection, counting its handler's runs by task id.
type durableMesh struct {
	workerType string
	mu         sync.Mutex
	runs       map[string]int
}

func startDurableWorker(t *testing.T, b bus.Bus) *durableMesh {
	t.Helper()
	m := &durableMesh{workerType: fmt.Sprintf("durable_route_%08x", rand.Uint32()), runs: map[string]int{}}
	w, err := worker.NewDynamic(b, m.workerType, func(ctx context.Context, in map[string]any) (map[string]any, error) {
		task, _ := worker.TaskFromContext(ctx)
		m.mu.Lock()
		m.runs[task.TaskID]++
		m.mu.Unlock()
		return in, nil
	}, worker.Config{Durable: &worker.DurableConfig{AckWait: 500 * time.Millisecond}, NoHeartbeat: true})
	if err != nil {
		t.Fatal(err)
	}
	testkit.StartActor(t, w.Run, w.Ready())
	return m
}

func (m *durableMesh) ran(id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runs[id]
}

// collect returns the next n results on ch by task id.
func collect(t *testing.T, ch <-chan *bus.Msg, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		r, err := heddle.DecodeTaskResult(testkit.Recv(t, ch, "a result").Data)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != heddle.StatusCompleted {
			t.Fatalf("result %+v, want completed", r)
		}
		got[r.TaskID]++
	}
	return got
}

func TestDurableRouterStoresEachForwardAndAcknowledgesItsIntakeOnce(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		mesh := startDurableWorker(t, connect())
		dc := &router.DurableConfig{WorkerTypes: []string{mesh.workerType}, AckWait: 500 * time.Millisecond}
		_, _, stop := routerStart(t, connect(), router.Config{Durable: dc})
		caller := connect()
		resCh, _ := testkit.Subscribe(t, caller, heddle.SubjectResultsAll)
		var ids []string
		for range 5 {
			task, data := testkit.Task(t, mesh.workerType, heddle.TierStandard)
			testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
			ids = append(ids, task.TaskID)
		}
		got := collect(t, resCh, len(ids))
		for _, id := range ids {
			if got[id] != 1 {
				t.Fatalf("task %s: %d results, want 1 (all: %v)", id, got[id], got)
			}
		}
		stop()
		// A second router finds nothing left in the intake: the next task
		// is the only one it routes, and for three intake ack waits after
		// its result no other result comes (an intake task left
		// unacknowledged would have been redelivered and routed again).
		routerStart(t, connect(), router.Config{Durable: dc})
		task, data := testkit.Task(t, mesh.workerType, heddle.TierStandard)
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
		if next := collect(t, resCh, 1); next[task.TaskID] != 1 {
			t.Fatalf("next result %v, want the sentinel %s's", next, task.TaskID)
		}
		select {
		case m := <-resCh:
			t.Fatalf("another result after the sentinel's: %s", m.Data)
		case <-time.After(3 * dc.AckWait):
		}
		for _, id := range ids {
			if n := mesh.ran(id); n != 1 {
				t.Errorf("task %s ran %d times, want once", id, n)
			}
		}
	})
}

// stallingBus is a durable bus whose durable publishes to worker subjects
// never complete: a router on it takes tasks from its intake and dies
// before it has forwarded them. started says a forward began.
type stallingBus struct {
	bus.Bus
	d       bus.Durable
	started chan string
}

func (b *stallingBus) EnsureStream(ctx context.Context, cfg bus.StreamConfig) error {
	return b.d.EnsureStream(ctx, cfg)
}
func (b *stallingBus) StreamOf(ctx context.Context, subject string) (string, error) {
	return b.d.StreamOf(ctx, subject)
}
func (b *stallingBus) Consume(ctx context.Context, cfg bus.ConsumerConfig, h bus.DurableHandler) (bus.Consumption, error) {
	return b.d.Consume(ctx, cfg, h)
}
func (b *stallingBus) PublishDurable(ctx context.Context, msg *bus.Msg, id string) (bus.PubAck, error) {
	if !strings.HasPrefix(msg.Subject, "heddle.tasks.durable_route_") {
		return b.d.PublishDurable(ctx, msg, id)
	}
	b.started <- id
	select {
	case <-bus.Done(b.Bus):
		return bus.PubAck{}, fmt.Errorf("stalled until the connection closed: %w", bus.ErrClosed)
	case <-ctx.Done():
		return bus.PubAck{}, ctx.Err()
	}
}
func (b *stallingBus) Done() <-chan struct{} { return bus.Done(b.Bus) }
func (b *stallingBus) Err() error            { return bus.Err(b.Bus) }

func TestDurableRouterKilledBetweenIntakeAndForwardLeavesTheTaskToAnotherReplica(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		mesh := startDurableWorker(t, connect())
		dc := &router.DurableConfig{WorkerTypes: []string{mesh.workerType}, AckWait: 500 * time.Millisecond}
		connA := connect()
		stalling := &stallingBus{Bus: connA, d: connA.(bus.Durable), started: make(chan string, 1)}
		a, err := router.New(stalling, router.Config{Durable: dc})
		if err != nil {
			t.Fatal(err)
		}
		doneA := make(chan error, 1)
		ctxA, cancelA := context.WithCancel(context.Background())
		defer cancelA()
		go func() { doneA <- a.Run(ctxA) }()
		<-a.Ready()

		caller := connect()
		resCh, _ := testkit.Subscribe(t, caller, heddle.SubjectResultsAll)
		task, data := testkit.Task(t, mesh.workerType, heddle.TierStandard)
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
		select {
		case id := <-stalling.started:
			if id != task.TaskID {
				t.Fatalf("router A forwarded %s, want %s", id, task.TaskID)
			}
		case <-time.After(testkit.Wait):
			t.Fatal("router A never began the forward")
		}
		routerStart(t, connect(), router.Config{Durable: dc})
		_ = connA.Close() // router A's process dies mid-forward
		select {
		case err := <-doneA:
			if !errors.Is(err, bus.ErrClosed) {
				t.Fatalf("router A's Run returned %v, want an error wrapping bus.ErrClosed", err)
			}
		case <-time.After(testkit.Wait):
			t.Fatal("router A's Run did not return when its bus closed")
		}
		if got := collect(t, resCh, 1); got[task.TaskID] != 1 {
			t.Fatalf("results %v, want one for %s", got, task.TaskID)
		}
		sentinel, sdata := testkit.Task(t, mesh.workerType, heddle.TierStandard)
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, sdata, nil)
		if got := collect(t, resCh, 1); got[sentinel.TaskID] != 1 {
			t.Fatalf("next result %v, want the sentinel's only: the task must not come back", got)
		}
		if n := mesh.ran(task.TaskID); n != 1 {
			t.Fatalf("the task ran %d times, want once", n)
		}
	})
}

func TestDurableRouterConfigurationErrorsNameTheField(t *testing.T) {
	b := membus.New()
	defer b.Close()
	for _, tc := range []struct {
		name string
		b    bus.Bus
		dc   router.DurableConfig
		want string
	}{
		{"a bus without the durable capability", struct{ bus.Bus }{b}, router.DurableConfig{}, "durable capability"},
		{"a negative AckWait", b, router.DurableConfig{AckWait: -1}, "Durable.AckWait"},
		{"a worker type that cannot be a subject token", b, router.DurableConfig{WorkerTypes: []string{"a b"}}, "WorkerTypes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := router.New(tc.b, router.Config{Durable: &tc.dc})
			if !errors.Is(err, heddle.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want heddle.ErrConfig naming %s", err, tc.want)
			}
		})
	}
}
