// Command orchestrator fans a goal out into subtasks and synthesizes their
// results: an Orchestrator splits a text into sentences, dispatches one
// word-count subtask per sentence through the Router to three replicas of
// a typed worker, collects every result on heddle.results.{goal_id}, and
// publishes the goal's final result there, which SubmitGoal returns.
//
//	go run ./examples/orchestrator                                  # in one process, on membus
//	go run ./examples/orchestrator -nats nats://127.0.0.1:4222      # the same, over NATS
//	go run ./examples/orchestrator -nats nats://127.0.0.1:4222 -serve
//
// With -serve it only runs the router, the orchestrator and the word
// counters, until SIGINT or SIGTERM: run as many such processes as you
// like and submit goals from another (the command without -serve, or any
// caller of dispatch.SubmitGoal, Go or Python).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
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
	natsURL := flag.String("nats", "", "NATS server URL; empty runs every actor in this process on membus")
	serve := flag.Bool("serve", false, "only run the router, the orchestrator and the workers, until SIGINT or SIGTERM (needs -nats)")
	flag.Parse()
	if *serve && *natsURL == "" {
		log.Fatal("-serve needs -nats: on the in-process bus no other process can reach the actors")
	}
	b, err := connect(*natsURL)
	if err != nil {
		log.Fatal(err)
	}
	if *serve {
		err = serveActors(context.Background(), b)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = run(ctx, b, os.Stdout)
		cancel()
	}
	b.Close()
	if err != nil {
		log.Fatal(err)
	}
}

// connect returns the in-process bus when natsURL is empty and a
// connection to that NATS server otherwise.
func connect(natsURL string) (bus.Bus, error) {
	if natsURL == "" {
		return membus.New(), nil
	}
	nb, err := natsbus.Connect(natsURL)
	if err != nil {
		return nil, err
	}
	return nb, nil
}

// newActors makes the router, the orchestrator and three word counters
// on b.
func newActors(b bus.Bus) ([]heddle.Actor, error) {
	rt, err := router.New(b, router.Config{})
	if err != nil {
		return nil, err
	}
	orch, err := orchestrator.New(b, orchestrator.Config{
		Decompose:  decompose,
		Synthesize: synthesize,
		// A goal's subtasks are collected for at most this long; after it
		// the final result still goes out, with the partial results and
		// output.metadata.timeout naming the missing subtasks.
		Timeout:     10 * time.Second,
		MaxInFlight: 8,
	})
	if err != nil {
		return nil, err
	}
	actors := []heddle.Actor{rt, orch}
	for range 3 {
		w, err := worker.New(b, "word_counter", countWords, worker.Config{})
		if err != nil {
			return nil, err
		}
		actors = append(actors, w)
	}
	return actors, nil
}

// serveActors runs the actors on b until SIGINT or SIGTERM, ctx ends or
// one of them fails.
func serveActors(ctx context.Context, b bus.Bus) error {
	actors, err := newActors(b)
	if err != nil {
		return err
	}
	return heddle.Serve(ctx, actors...)
}

// run starts every actor on b, submits one goal, prints its final result
// to out, and stops every actor before it returns.
func run(ctx context.Context, b bus.Bus, out io.Writer) error {
	actors, err := newActors(b)
	if err != nil {
		return err
	}
	group, err := heddle.Start(ctx, actors...)
	if err != nil {
		return err
	}
	defer group.Stop()
	return submit(ctx, b, out)
}

// submit is the caller's side: it submits one goal and prints its final
// result to out.
func submit(ctx context.Context, b bus.Bus, out io.Writer) error {
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
