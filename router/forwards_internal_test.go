package router

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
)

// markBus holds back or drops the router's marks, so that a test sees what
// the router does while the fate of its forwards is unknown. It counts the
// forwards to worker subjects.
type markBus struct {
	bus.Bus
	forwards atomic.Int64
	dropped  atomic.Int64

	mu   sync.Mutex
	hold bool       // keep marks in held
	drop int        // drop this many marks
	held []*bus.Msg // marks held back, in order
}

func (b *markBus) Publish(ctx context.Context, msg *bus.Msg) error {
	if strings.HasPrefix(msg.Subject, "_INBOX.heddle.router.") && strings.HasSuffix(msg.Subject, ".mark") {
		b.mu.Lock()
		switch {
		case b.hold:
			b.held = append(b.held, &bus.Msg{Subject: msg.Subject, Data: bytes.Clone(msg.Data)})
			b.mu.Unlock()
			return nil
		case b.drop > 0:
			b.drop--
			b.mu.Unlock()
			b.dropped.Add(1)
			return nil
		}
		b.mu.Unlock()
	}
	if strings.HasPrefix(msg.Subject, "heddle.tasks.echo.") {
		b.forwards.Add(1)
	}
	return b.Bus.Publish(ctx, msg)
}

// release publishes the marks held back and lets the next ones through.
func (b *markBus) release(t *testing.T) {
	b.mu.Lock()
	held := b.held
	b.held, b.hold = nil, false
	b.mu.Unlock()
	for _, m := range held {
		if err := b.Bus.Publish(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
}

func startRouter(t *testing.T, r *Router) {
	t.Helper()
	testkit.StartActor(t, r.Run, r.Ready())
}

// The router keeps no more than its budget of forwarded tasks whose fate
// is unknown: the next task waits, unforwarded, until a mark confirms the
// earlier ones.
func TestRouterWaitsForRoomWhenItsForwardBudgetIsSpent(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		mb := &markBus{Bus: connect(), hold: true}
		task, data := testkit.Task(t, "echo", heddle.TierStandard)
		cost := forwardOverhead + len(data) + len(task.TaskID) + len("echo") + len(heddle.WorkerSubject("echo", heddle.TierStandard))
		logs := testlog.New()
		r, err := New(mb, Config{ForwardBudget: 3 * cost}, heddle.WithLogger(logs.Logger()))
		if err != nil {
			t.Fatal(err)
		}
		waiting := make(chan struct{}, 8)
		r.forwards.onWait = func() {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}
		startRouter(t, r)
		workers, caller := connect(), connect()
		delivered, _ := testkit.Subscribe(t, workers, heddle.WorkerSubjectAllTiers("echo"))
		if err := workers.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			// Tasks of one size: their ids are UUIDs.
			_, data := testkit.Task(t, "echo", heddle.TierStandard)
			testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
		}
		select {
		case <-waiting:
		case <-time.After(testkit.Wait):
			t.Fatalf("the router forwarded %d tasks and never waited for room", mb.forwards.Load())
		}
		r.forwards.mu.Lock()
		held, n := r.forwards.held, r.forwards.n
		r.forwards.mu.Unlock()
		if f := mb.forwards.Load(); f != 3 || held != 3*cost || n != 3 {
			t.Errorf("waiting for room after %d forwards, keeping %d tasks in %d bytes; want 3 in %d", f, n, held, 3*cost)
		}
		if s := r.Stats(); s.Routed != 0 {
			t.Errorf("Stats().Routed = %d before any mark came back, want 0", s.Routed)
		}
		mb.release(t)
		for i := range 5 {
			testkit.Recv(t, delivered, "task "+string(rune('1'+i)))
		}
		logs.Wait(t, "router.routed", 5)
		if s := r.Stats(); s.Routed != 5 || s.PublishErrors != 0 {
			t.Errorf("Stats() = %+v, want 5 routed", s)
		}
	})
}

// A mark that never comes back (a broken connection, a full status
// subscription) is sent again: the tasks before it are not kept for ever.
func TestRouterSendsAMarkAgainWhenOneIsLost(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		mb := &markBus{Bus: connect(), drop: 1}
		logs := testlog.New()
		r, err := New(mb, Config{}, heddle.WithLogger(logs.Logger()))
		if err != nil {
			t.Fatal(err)
		}
		r.markRetry = 5 * time.Millisecond
		startRouter(t, r)
		workers := connect()
		delivered, _ := testkit.Subscribe(t, workers, heddle.WorkerSubjectAllTiers("echo"))
		if err := workers.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		task, data := testkit.Task(t, "echo", heddle.TierStandard)
		testkit.Publish(t, connect(), heddle.SubjectTasksIncoming, data, nil)
		testkit.Recv(t, delivered, "the task")
		if routed := logs.Wait(t, "router.routed", 1)[0]; routed.Str("task_id") != task.TaskID {
			t.Errorf("router.routed names task %q, want %q", routed.Str("task_id"), task.TaskID)
		}
		if mb.dropped.Load() != 1 {
			t.Errorf("%d marks dropped, want 1", mb.dropped.Load())
		}
		r.forwards.mu.Lock()
		n, held := r.forwards.n, r.forwards.held
		r.forwards.mu.Unlock()
		if n != 0 || held != 0 {
			t.Errorf("the router keeps %d tasks in %d bytes after their fate is known, want none", n, held)
		}
	})
}
