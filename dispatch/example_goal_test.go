package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/orchestrator"
	"github.com/heddle-go/heddle/pipeline"
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

// Two pipelines on one mesh, each serving only the goals addressed to
// it (heddle.goals.to.{name}): dispatch.To picks the server, where a goal
// on the shared heddle.goals.incoming would go to either. A goal nothing
// serves fails at once.
func ExampleSubmitGoal_addressed() {
	type TextIn struct {
		Text string `json:"text"`
	}
	type TextOut struct {
		Text string `json:"text"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := membus.New()
	defer b.Close()

	shout, err := worker.New(b, "shout", func(_ context.Context, in TextIn) (TextOut, error) {
		return TextOut{Text: strings.ToUpper(in.Text)}, nil
	}, worker.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	whisper, err := worker.New(b, "whisper", func(_ context.Context, in TextIn) (TextOut, error) {
		return TextOut{Text: strings.ToLower(in.Text)}, nil
	}, worker.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	actors := []heddle.Actor{shout, whisper}
	for _, name := range []string{"shout", "whisper"} {
		p, err := pipeline.New(b, pipeline.Config{
			Name:          name + "er",
			AddressedOnly: true, // heddle.goals.incoming is not served
			Direct:        true,
			Stages: []pipeline.Stage{
				{Name: "say", WorkerType: name, InputMapping: map[string]string{"text": "goal.instruction"}},
			},
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		actors = append(actors, p)
	}
	group, err := heddle.Start(ctx, actors...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer group.Stop()

	for _, to := range []string{"whisperer", "shouter"} {
		res, err := dispatch.SubmitGoal(ctx, b, heddle.NewOrchestratorGoal("Hello, Mesh", nil),
			dispatch.To(to), dispatch.Timeout(5*time.Second))
		if err != nil {
			fmt.Println(err)
			return
		}
		said, _ := res.Output["say"].(map[string]any)
		fmt.Println(res.WorkerType, res.Status, said["text"])
	}

	_, err = dispatch.SubmitGoal(ctx, b, heddle.NewOrchestratorGoal("Hello?", nil), dispatch.To("mumbler"))
	fmt.Println(errors.Is(err, dispatch.ErrNoGoalServer))
	// Output:
	// whisperer completed hello, mesh
	// shouter completed HELLO, MESH
	// true
}
