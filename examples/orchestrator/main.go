// Command orchestrator fans a goal out into subtasks and synthesizes their
// results: an Orchestrator splits a text into sentences, dispatches one
// word-count subtask per sentence through the Router to three replicas of
// a typed worker, collects every result on heddle.results.{goal_id}, and
// publishes the goal's final result there, which SubmitGoal returns.
//
//	go run ./examples/orchestrator                      # in-process membus
//	go run ./examples/orchestrator -nats nats://127.0.0.1:4222
//
// With -nats every actor talks through that NATS server; run the same
// actors in separate processes to scale past one machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/orchestrator"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// text is what the goal asks to analyse.
const text = "Heddle routes tasks to workers. Workers answer on a result subject. " +
	"The orchestrator subscribes before it publishes, so no answer is lost. " +
	"Then it synthesizes."

// CountIn and CountOut are the word counter's contract; their JSON Schemas
// are generated from the types and checked at the worker.
type CountIn struct {
	Index    int    `json:"index" jsonschema:"minimum=0"`
	Sentence string `json:"sentence" jsonschema:"minLength=1"`
}

type CountOut struct {
	Index int `json:"index"`
	Words int `json:"words"`
}

func main() {
	natsURL := flag.String("nats", "", "NATS server URL; empty runs everything in process on membus")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	var b bus.Bus
	if *natsURL == "" {
		b = membus.New()
	} else {
		nb, err := natsbus.Connect(*natsURL)
		if err != nil {
			log.Fatal(err)
		}
		b = nb
	}
	defer b.Close()
	if err := run(ctx, b, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run starts the router, three word counters and the orchestrator on b,
// submits one goal, prints its final result to out, and stops every actor
// before it returns.
func run(ctx context.Context, b bus.Bus, out io.Writer) error {
	rt, err := router.New(b, router.Config{})
	if err != nil {
		return err
	}
	orch, err := orchestrator.New(b, orchestrator.Config{
		Decompose:  decompose,
		Synthesize: synthesize,
		// A goal's subtasks are collected for at most this long; after it
		// the final result still goes out, with the partial results and
		// output.metadata.timeout naming the missing subtasks.
		Timeout:               10 * time.Second,
		MaxConcurrentSubtasks: 8,
	})
	if err != nil {
		return err
	}
	actors := []heddle.Actor{rt, orch}
	for range 3 {
		w, err := worker.New(b, "word_counter", countWords, worker.Config{})
		if err != nil {
			return err
		}
		actors = append(actors, w)
	}

	group, err := heddle.Start(ctx, actors...)
	if err != nil {
		return err
	}
	defer group.Stop()

	goal := heddle.NewOrchestratorGoal("count the words of each sentence", map[string]any{"text": text})
	// SubmitGoal subscribes to heddle.results.{goal_id} before it publishes
	// the goal, and returns the result whose task_id is the goal_id.
	res, err := dispatch.SubmitGoal(ctx, b, goal, dispatch.Timeout(20*time.Second))
	if err != nil {
		return err
	}
	return printResult(out, res)
}

// decompose makes one word_counter subtask per sentence. The orchestrator
// sets their parent_task_id to the goal_id.
func decompose(_ context.Context, goal heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) {
	s, _ := goal.Context["text"].(string)
	var tasks []heddle.TaskMessage
	for i, sentence := range splitSentences(s) {
		tasks = append(tasks, heddle.NewTaskMessage("word_counter", map[string]any{"index": i, "sentence": sentence}))
	}
	if len(tasks) == 0 {
		return nil, errors.New("the goal's context.text holds no sentence")
	}
	return tasks, nil
}

// synthesize puts the counts back in sentence order (results arrive in
// any order) and totals them.
func synthesize(_ context.Context, _ heddle.OrchestratorGoal, results []heddle.TaskResult) (map[string]any, error) {
	type count struct{ index, words int }
	var counts []count
	total := 0
	for _, r := range results {
		if r.Status != heddle.StatusCompleted {
			return nil, fmt.Errorf("subtask %s failed: %s", r.TaskID, r.Error)
		}
		index, _ := r.Output["index"].(float64)
		words, _ := r.Output["words"].(float64)
		counts = append(counts, count{int(index), int(words)})
		total += int(words)
	}
	slices.SortFunc(counts, func(a, b count) int { return a.index - b.index })
	perSentence := make([]any, len(counts))
	for i, c := range counts {
		perSentence[i] = c.words
	}
	return map[string]any{"words_per_sentence": perSentence, "total_words": total}, nil
}

func countWords(_ context.Context, in CountIn) (CountOut, error) {
	return CountOut{Index: in.Index, Words: len(strings.Fields(in.Sentence))}, nil
}

func splitSentences(s string) []string {
	var out []string
	for part := range strings.SplitAfterSeq(s, ".") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func printResult(out io.Writer, res *heddle.TaskResult) error {
	fmt.Fprintf(out, "goal %s\n", res.Status)
	if res.Status != heddle.StatusCompleted {
		return fmt.Errorf("goal failed: %s", res.Error)
	}
	if meta, ok := res.Output["metadata"].(map[string]any); ok {
		fmt.Fprintf(out, "timed out: %v\n", meta["timeout"])
	}
	fmt.Fprintf(out, "words per sentence: %v\n", res.Output["words_per_sentence"])
	fmt.Fprintf(out, "total words: %v\n", res.Output["total_words"])
	return nil
}
