package worker_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/worker"
)

// eventLog is an Observer keeping the names of the events of each task.
type eventLog struct {
	mu     sync.Mutex
	byTask map[string][]heddle.Event
}

func (l *eventLog) Observe(_ context.Context, e heddle.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byTask[e.TaskID] = append(l.byTask[e.TaskID], e)
}

func (l *eventLog) events(taskID string) []heddle.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]heddle.Event(nil), l.byTask[taskID]...)
}

func TestAnObserverSeesEachTaskOfAWorkerOnce(t *testing.T) {
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		obs := &eventLog{byTask: map[string][]heddle.Event{}}
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
