package dispatch_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/orchestrator"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// SubmitGoal publishes a goal on heddle.goals.incoming and returns its
// final result: the TaskResult whose task_id is the goal_id, published on
// heddle.results.{goal_id} by whatever served the goal (here an
// orchestrator, Go or Python alike). The subtasks' results go to the same
// subject; SubmitGoal skips them.
func ExampleSubmitGoal() {
	type WordIn struct {
		Word string `json:"word"`
	}
	type WordOut struct {
		Upper string `json:"upper"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := membus.New()
	defer b.Close()

	rt, err := router.New(b, router.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	upper, err := worker.New(b, "upper", func(_ context.Context, in WordIn) (WordOut, error) {
		return WordOut{Upper: strings.ToUpper(in.Word)}, nil
	}, worker.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	// One subtask per word of the instruction; with no Synthesize the
	// output is {"results": [...]}, one entry per subtask.
	orch, err := orchestrator.New(b, orchestrator.Config{
		Decompose: func(_ context.Context, goal heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) {
			var tasks []heddle.TaskMessage
			for _, word := range strings.Fields(goal.Instruction) {
				tasks = append(tasks, heddle.NewTaskMessage("upper", map[string]any{"word": word}))
			}
			return tasks, nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	group, err := heddle.Start(ctx, rt, upper, orch)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer group.Stop()

	goal := heddle.NewOrchestratorGoal("warp weft", nil)
	res, err := dispatch.SubmitGoal(ctx, b, goal, dispatch.Timeout(5*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	results, _ := res.Output["results"].([]any)
	fmt.Println(res.TaskID == goal.GoalID, res.WorkerType, res.Status, len(results), "subtask results")
	// Output: true orchestrator completed 2 subtask results
}
