package orchestrator_test

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
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// An orchestrator that counts the words of each line of a text: Decompose
// makes one subtask per line, the router sends them to a typed worker, and
// Synthesize turns the results, which arrive in any order, into the
// goal's output. A goal Decompose refuses still gets its final result,
// failed with the reason.
func Example() {
	type CountIn struct {
		Line int    `json:"line"`
		Text string `json:"text"`
	}
	type CountOut struct {
		Line  int `json:"line"`
		Words int `json:"words"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := membus.New()
	defer b.Close()

	orch, err := orchestrator.New(b, orchestrator.Config{
		Decompose: func(_ context.Context, goal heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) {
			text, _ := goal.Context["text"].(string)
			if text == "" {
				return nil, errors.New("context.text is empty")
			}
			var tasks []heddle.TaskMessage
			for i, line := range strings.Split(text, "\n") {
				tasks = append(tasks, heddle.NewTaskMessage("word_counter", map[string]any{"line": i, "text": line}))
			}
			return tasks, nil
		},
		Synthesize: func(_ context.Context, _ heddle.OrchestratorGoal, results []heddle.TaskResult) (map[string]any, error) {
			counts := make([]int, len(results))
			for _, r := range results {
				if r.Status != heddle.StatusCompleted {
					return nil, fmt.Errorf("subtask %s: %s", r.TaskID, r.Error)
				}
				line, _ := r.Output["line"].(float64)
				words, _ := r.Output["words"].(float64)
				counts[int(line)] = int(words)
			}
			return map[string]any{"words_per_line": counts}, nil
		},
		// The subtasks' results are awaited this long at most; after it
		// Synthesize gets those that came, and the output names the rest.
		Timeout: 5 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rt, err := router.New(b, router.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	counter, err := worker.New(b, "word_counter", func(_ context.Context, in CountIn) (CountOut, error) {
		return CountOut{Line: in.Line, Words: len(strings.Fields(in.Text))}, nil
	}, worker.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	group, err := heddle.Start(ctx, orch, rt, counter)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer group.Stop()

	for _, text := range []string{"the warp is held taut\nthe weft goes across\nheddles lift", ""} {
		goal := heddle.NewOrchestratorGoal("count words per line", map[string]any{"text": text})
		res, err := dispatch.SubmitGoal(ctx, b, goal, dispatch.Timeout(5*time.Second))
		if err != nil {
			fmt.Println(err)
			return
		}
		if res.Status == heddle.StatusCompleted {
			fmt.Println(res.Status, res.Output["words_per_line"])
		} else {
			fmt.Println(res.Status, res.Error)
		}
	}
	// Output:
	// completed [5 4 2]
	// failed decompose: context.text is empty
}
