package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/worker"
)

// The README's observer, as code: each completed task's id on a channel.
func TestAnObserverGetsEachCompletedTask(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		logger := slog.New(slog.DiscardHandler)
		completed := make(chan string, 1)

		w, err := worker.New(b, "greeter", greet, worker.Config{},
			heddle.WithLogger(logger),
			heddle.WithObserver(event.ObserverFunc(func(ctx context.Context, e event.Event) {
				if e.Name == event.WorkerCompleted {
					completed <- e.TaskID
				}
			})))
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, w.Run, w.Ready())
		task := heddle.NewTaskMessage("greeter", map[string]any{"name": "Ada"})
		if _, err := dispatch.Request(testkit.Context(t), connect(), task, dispatch.Direct()); err != nil {
			t.Fatal(err)
		}
		if id := <-completed; id != task.TaskID {
			t.Errorf("the observer got %s, want the task's id %s", id, task.TaskID)
		}
	})
}
