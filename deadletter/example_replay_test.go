package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// A task sent while its worker is down is dead-lettered by the router as
// no_worker and kept by the consumer; once the worker is up, Replay sends
// the very same task through the router again, and it runs.
func ExampleConsumer_Replay_onceTheWorkerIsUp() {
	type TextIn struct {
		Text string `json:"text"`
	}
	type TextOut struct {
		Upper string `json:"upper"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := membus.New()
	defer b.Close()

	// The observer tells when the consumer has stored a dead letter.
	stored := make(chan struct{}, 1)
	consumer, err := deadletter.New(b, deadletter.Config{},
		heddle.WithObserver(event.ObserverFunc(func(_ context.Context, e event.Event) {
			if e.Name == "dead_letter.received" {
				stored <- struct{}{}
			}
		})))
	if err != nil {
		fmt.Println(err)
		return
	}
	rt, err := router.New(b, router.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	mesh, err := heddle.Start(ctx, consumer, rt)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mesh.Stop()

	// No "upper" worker runs yet: the call fails at once.
	task := heddle.NewTaskMessage("upper", map[string]any{"text": "warp"})
	task.ParentTaskID = "job-1"
	_, err = dispatch.Request(ctx, b, task, dispatch.Timeout(5*time.Second))
	var dead *dispatch.DeadLetterError
	if errors.As(err, &dead) {
		fmt.Println("call: dead-lettered,", dead.Reason)
	}
	select {
	case <-stored:
	case <-ctx.Done():
		fmt.Println("nothing stored")
		return
	}
	entries, _ := consumer.List(0, 10)
	fmt.Println("stored:", entries[0].DeadLetter.WorkerType, entries[0].DeadLetter.TaskID == task.TaskID)

	// The worker comes up.
	upper, err := worker.New(b, "upper", func(_ context.Context, in TextIn) (TextOut, error) {
		return TextOut{Upper: strings.ToUpper(in.Text)}, nil
	}, worker.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	workers, err := heddle.Start(ctx, upper)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer workers.Stop()

	// The replayed task keeps its task_id and parent_task_id, so its
	// result goes to heddle.results.job-1: listen there first.
	results := make(chan heddle.TaskResult, 1)
	sub, err := b.Subscribe(ctx, heddle.ResultSubject("job-1"), func(_ context.Context, m *bus.Msg) error {
		r, err := heddle.DecodeTaskResult(m.Data)
		if err == nil && r.TaskID == task.TaskID && r.Status == heddle.StatusCompleted {
			results <- r
		}
		return err
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Unsubscribe()
	if err := consumer.Replay(ctx, entries[0].ID); err != nil {
		fmt.Println(err)
		return
	}
	select {
	case r := <-results:
		fmt.Println("replayed:", r.Status, r.Output["upper"], "left in the store:", consumer.Len())
	case <-ctx.Done():
		fmt.Println("no result")
	}
	// Output:
	// call: dead-lettered, no_worker
	// stored: upper true
	// replayed: completed WARP left in the store: 0
}
