// Command pipeline runs a document pipeline: a router, five typed workers
// and a Pipeline that sends each goal through
//
//	extract -> (summarize, classify) -> report, plus flag_invoice when classify says "invoice"
//
// summarize and classify only read extract's output, so they run in
// parallel. Two goals are submitted (an invoice and a letter) and their
// final results printed.
//
//	go run ./examples/pipeline                                  # in one process, on membus
//	go run ./examples/pipeline -nats nats://127.0.0.1:4222      # the same, over NATS
//	go run ./examples/pipeline -nats nats://127.0.0.1:4222 -serve
//
// With -serve it only runs the router, the pipeline and the workers, until
// SIGINT or SIGTERM: run as many such processes as you like and submit
// goals from another (the command without -serve, or any caller of
// dispatch.SubmitGoal, Go or Python).
package main

import (
	"context"
	"encoding/json"
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
	"github.com/heddle-go/heddle/pipeline"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// pipelineYAML is the pipeline definition, in the Python Heddle's config
// shape. Mistakes in it (a stage name misspelt in a path, a field that
// extract's output_schema does not declare, a cycle) are errors when the
// pipeline is built, not when a goal runs.
const pipelineYAML = `
name: documents
timeout_seconds: 10
max_concurrent_goals: 4
pipeline_stages:
  - name: extract
    worker_type: extractor
    tier: local
    input_mapping:
      file_ref: goal.context.file_ref
    output_schema:
      type: object
      properties:
        text: {type: string}
        words: {type: integer}
      required: [text, words]
  - name: summarize
    worker_type: summarizer
    input_mapping:
      text: extract.output.text
  - name: classify
    worker_type: classifier
    tier: local
    input_mapping:
      text: extract.output.text
  - name: flag_invoice
    worker_type: invoice_flagger
    condition: classify.output.kind == invoice
    input_mapping:
      text: extract.output.text
  - name: report
    worker_type: reporter
    input_mapping:
      file_ref: goal.context.file_ref
      summary: summarize.output.summary
      kind: classify.output.kind
      words: extract.output.words
`

// documents stands in for a document store.
var documents = map[string]string{
	"inv-042.txt": "Invoice 42 from Acme Corp. Total due: 1200 EUR by March 31. Thank you for your business.",
	"note-7.txt":  "Dear team, the office is closed on Friday. Enjoy the long weekend.",
}

// ExtractIn and the types below are the workers' contracts; their JSON
// Schemas are generated from the types and checked at each worker.
type ExtractIn struct {
	FileRef string `json:"file_ref" jsonschema:"minLength=1"`
}

type ExtractOut struct {
	Text  string `json:"text"`
	Words int    `json:"words"`
}

type TextIn struct {
	Text string `json:"text"`
}

type SummaryOut struct {
	Summary string `json:"summary"`
}

type ClassifyOut struct {
	Kind string `json:"kind"`
}

type FlagOut struct {
	Flagged bool   `json:"flagged"`
	Reason  string `json:"reason"`
}

type ReportIn struct {
	FileRef string `json:"file_ref"`
	Summary string `json:"summary"`
	Kind    string `json:"kind"`
	Words   int    `json:"words"`
}

type ReportOut struct {
	Report string `json:"report"`
}

func main() {
	natsURL := flag.String("nats", "", "NATS server URL; empty runs every actor in this process on membus")
	serve := flag.Bool("serve", false, "only run the router, the pipeline and the workers, until SIGINT or SIGTERM (needs -nats)")
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
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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

// newActors makes the pipeline, the router and the five workers on b; the
// actors include the pipeline.
func newActors(b bus.Bus) (*pipeline.Pipeline, []heddle.Actor, error) {
	cfg, err := pipeline.ParseConfig([]byte(pipelineYAML))
	if err != nil {
		return nil, nil, err
	}
	pl, err := pipeline.New(b, cfg)
	if err != nil {
		return nil, nil, err
	}
	rt, err := router.New(b, router.Config{})
	if err != nil {
		return nil, nil, err
	}
	actors := []heddle.Actor{rt, pl}
	var errs []error
	add := func(w *worker.Worker, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		actors = append(actors, w)
	}
	add(worker.New(b, "extractor", extract, worker.Config{}))
	add(worker.New(b, "summarizer", summarize, worker.Config{}))
	add(worker.New(b, "classifier", classify, worker.Config{}))
	add(worker.New(b, "invoice_flagger", flagInvoice, worker.Config{}))
	add(worker.New(b, "reporter", report, worker.Config{}))
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return pl, actors, nil
}

// serveActors runs the actors on b until SIGINT or SIGTERM, ctx ends or
// one of them fails.
func serveActors(ctx context.Context, b bus.Bus) error {
	_, actors, err := newActors(b)
	if err != nil {
		return err
	}
	return heddle.Serve(ctx, actors...)
}

// run starts every actor on b, prints the pipeline's plan, submits two
// goals, prints their final results to out, and stops every actor before
// it returns.
func run(ctx context.Context, b bus.Bus, out io.Writer) error {
	pl, actors, err := newActors(b)
	if err != nil {
		return err
	}
	group, err := heddle.Start(ctx, actors...)
	if err != nil {
		return err
	}
	defer group.Stop()
	fmt.Fprintf(out, "plan: %v\n", pl.Levels())
	return submit(ctx, b, out)
}

// submit is the caller's side: it submits two goals and prints their
// final results to out.
func submit(ctx context.Context, b bus.Bus, out io.Writer) error {
	for _, ref := range []string{"inv-042.txt", "note-7.txt"} {
		goal := heddle.NewOrchestratorGoal("file and summarize "+ref, map[string]any{"file_ref": ref})
		// SubmitGoal subscribes to heddle.results.{goal_id} before it
		// publishes the goal, and returns the pipeline's final result.
		res, err := dispatch.SubmitGoal(ctx, b, goal, dispatch.Timeout(20*time.Second))
		if err != nil {
			return err
		}
		if err := printResult(out, ref, res); err != nil {
			return err
		}
	}
	return nil
}

// printResult writes each stage's output, in name order, and the skipped
// stages.
func printResult(out io.Writer, ref string, res *heddle.TaskResult) error {
	fmt.Fprintf(out, "%s: %s\n", ref, res.Status)
	if res.Status != heddle.StatusCompleted {
		fmt.Fprintf(out, "  error: %s\n", res.Error)
	}
	var stages []string
	for name := range res.Output {
		if !strings.HasPrefix(name, "_") {
			stages = append(stages, name)
		}
	}
	slices.Sort(stages)
	for _, name := range stages {
		data, err := json.Marshal(res.Output[name])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  %s: %s\n", name, data)
	}
	if skipped, ok := res.Output[pipeline.OutputSkipped]; ok {
		fmt.Fprintf(out, "  skipped: %v\n", skipped)
	}
	return nil
}

func extract(_ context.Context, in ExtractIn) (ExtractOut, error) {
	text, ok := documents[in.FileRef]
	if !ok {
		return ExtractOut{}, worker.Permanent(fmt.Errorf("no document %q", in.FileRef))
	}
	return ExtractOut{Text: text, Words: len(strings.Fields(text))}, nil
}

func summarize(_ context.Context, in TextIn) (SummaryOut, error) {
	first, _, _ := strings.Cut(in.Text, ".")
	return SummaryOut{Summary: first + "."}, nil
}

func classify(_ context.Context, in TextIn) (ClassifyOut, error) {
	if strings.Contains(strings.ToLower(in.Text), "invoice") {
		return ClassifyOut{Kind: "invoice"}, nil
	}
	return ClassifyOut{Kind: "letter"}, nil
}

func flagInvoice(_ context.Context, in TextIn) (FlagOut, error) {
	_, due, found := strings.Cut(in.Text, "Total due: ")
	amount, _, _ := strings.Cut(due, " by")
	return FlagOut{Flagged: found, Reason: "amount due " + amount}, nil
}

func report(_ context.Context, in ReportIn) (ReportOut, error) {
	return ReportOut{Report: fmt.Sprintf("%s (%s, %d words): %s", in.FileRef, in.Kind, in.Words, in.Summary)}, nil
}
