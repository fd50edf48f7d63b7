package worker_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/worker"
)

// eventLog is an Observer keeping the names of the events of each task.
type eventLog struct {
	mu     sync.Mutex
	byTask map[string][]event.Event
	seen   chan struct{} // a signal per event
}

func (l *eventLog) Observe(_ context.Context, e event.Event) {
	l.mu.Lock()
	l.byTask[e.TaskID] = append(l.byTask[e.TaskID], e.Clone())
	l.mu.Unlock()
	select {
	case l.seen <- struct{}{}:
	default:
	}
}

// wait waits until the task has n events.
func (l *eventLog) wait(t *testing.T, taskID string, n int) {
	t.Helper()
	for len(l.events(taskID)) < n {
		select {
		case <-l.seen:
		case <-time.After(testkit.Wait):
			t.Fatalf("task %s has %d events, want %d", taskID, len(l.events(taskID)), n)
		}
	}
}

func (l *eventLog) events(taskID string) []event.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]event.Event(nil), l.byTask[taskID]...)
}

func TestAnObserverSeesEachTaskOfAWorkerOnce(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		obs := &eventLog{byTask: map[string][]event.Event{}, seen: make(chan struct{}, 1)}
		w, err := worker.New(connect(), "observed", func(_ context.Context, in workerEchoIn) (workerEchoOut, error) {
			return workerEchoOut{Echo: in.Text}, nil
		}, worker.Config{}, heddle.WithLogger(slog.New(slog.DiscardHandler)), heddle.WithObserver(obs))
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, w.Run, w.Ready())
		task := heddle.NewTaskMessage("observed", map[string]any{"text": "hi"})
		res, err := dispatch.Request(testkit.Context(t), connect(), task, dispatch.Direct())
		if err != nil || res.Status != heddle.StatusCompleted {
			t.Fatalf("Request = %+v, %v", res, err)
		}
		// The worker reports completion once the result is out: the caller
		// may hold the result first.
		obs.wait(t, task.TaskID, 2)
		var names []string
		for _, e := range obs.events(task.TaskID) {
			names = append(names, e.Name)
			if e.WorkerType != "observed" {
				t.Errorf("%s: WorkerType %q, want observed", e.Name, e.WorkerType)
			}
		}
		if len(names) != 2 || names[0] != "worker.received" || names[1] != "worker.completed" {
			t.Errorf("events of the task %v, want worker.received then worker.completed", names)
		}
	})
}
