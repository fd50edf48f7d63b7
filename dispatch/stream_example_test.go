package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/membus"
)

// A Stream subscribes when it is made, so the tasks dispatched
// through it cannot be answered before anyone listens. Results come back
// in arrival order; a timeout names exactly the tasks still missing.
func ExampleStream() {
	ctx := context.Background()
	b := membus.New()
	defer b.Close()

	// A worker that upper-cases text and answers at once. Tasks for
	// "slow" get no answer.
	_, err := b.Subscribe(ctx, heddle.WorkerSubjectAllTiers("upper"), func(ctx context.Context, m *bus.Msg) error {
		task, err := heddle.DecodeTaskMessage(m.Data)
		if err != nil {
			return err
		}
		text, _ := task.Payload["text"].(string)
		data, err := task.Result(heddle.StatusCompleted, map[string]any{"text": strings.ToUpper(text)}, nil).Encode()
		if err != nil {
			return err
		}
		return b.Publish(ctx, &bus.Msg{Subject: task.ResultSubject(), Data: data})
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// Results of tasks whose parent_task_id is "job-7" go to
	// heddle.results.job-7.
	stream, err := dispatch.NewStream(ctx, b, heddle.ResultSubject("job-7"),
		dispatch.Direct(), dispatch.Timeout(time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stream.Close()
	var tasks []heddle.TaskMessage
	for _, word := range []string{"warp", "weft"} {
		task := heddle.NewTaskMessage("upper", map[string]any{"text": word})
		task.ParentTaskID = "job-7"
		tasks = append(tasks, task)
	}
	slow := heddle.NewTaskMessage("slow", nil)
	slow.TaskID = "slow-1"
	slow.ParentTaskID = "job-7"
	tasks = append(tasks, slow)
	if err := stream.Dispatch(ctx, tasks...); err != nil {
		fmt.Println(err)
		return
	}

	results, err := stream.Collect(ctx)
	var words []string
	for _, r := range results {
		words = append(words, r.Output["text"].(string))
	}
	slices.Sort(words)
	fmt.Println("collected:", words)
	var timeout *dispatch.TimeoutError
	if errors.As(err, &timeout) {
		fmt.Println("pending:", timeout.PendingTaskIDs, "expected:", timeout.ExpectedCount, "collected:", timeout.CollectedCount)
	}
	// Output:
	// collected: [WARP WEFT]
	// pending: [slow-1] expected: 3 collected: 2
}
