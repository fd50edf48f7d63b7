package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/pipeline"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// A pipeline of two stages: extract reads the goal's context, and count
// reads extract's output, so it runs once extract is done. Run serves
// goals until its context ends; each goal's final result holds every
// stage's output under the stage's name.
func Example() {
	type ExtractIn struct {
		FileRef string `json:"file_ref"`
	}
	type ExtractOut struct {
		Text string `json:"text"`
	}
	type CountIn struct {
		Text string `json:"text"`
	}
	type CountOut struct {
		Words int `json:"words"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := membus.New()
	defer b.Close()

	pl, err := pipeline.New(b, pipeline.Config{
		Name: "documents",
		Stages: []pipeline.Stage{
			{Name: "count", WorkerType: "counter", InputMapping: map[string]string{"text": "extract.output.text"}},
			{Name: "extract", WorkerType: "extractor", InputMapping: map[string]string{"file_ref": "goal.context.file_ref"}},
		},
		Timeout: 5 * time.Second, // for each stage's result
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("plan:", pl.Levels())

	// The router and the workers the stages' tasks go to.
	rt, err := router.New(b, router.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	extractor, err := worker.New(b, "extractor", func(_ context.Context, in ExtractIn) (ExtractOut, error) {
		return ExtractOut{Text: "the text of " + in.FileRef}, nil
	}, worker.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	counter, err := worker.New(b, "counter", func(_ context.Context, in CountIn) (CountOut, error) {
		return CountOut{Words: len(strings.Fields(in.Text))}, nil
	}, worker.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	group, err := heddle.Start(ctx, rt, extractor, counter)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer group.Stop()

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- pl.Run(runCtx) }()
	<-pl.Ready()

	goal := heddle.NewOrchestratorGoal("count the words of a file", map[string]any{"file_ref": "report.txt"})
	res, err := dispatch.SubmitGoal(ctx, b, goal, dispatch.Timeout(5*time.Second))
	if err != nil {
		stop()
		fmt.Println(err)
		return
	}
	fmt.Println(res.WorkerType, res.Status)
	fmt.Println("extract:", res.Output["extract"])
	fmt.Println("count:", res.Output["count"])

	stop() // Run drains: goals in progress finish first.
	fmt.Println("Run returned", <-done)
	// Output:
	// plan: [[extract] [count]]
	// documents completed
	// extract: map[text:the text of report.txt]
	// count: map[words:4]
	// Run returned <nil>
}

// A definition is checked whole when it is parsed: every problem is
// listed at once, naming the stage and the field.
func ExampleParseConfig() {
	_, err := pipeline.ParseConfig([]byte(`
name: documents
pipeline_stages:
  - name: extract
    worker_type: extractor
    input_mapping:
      file_ref: goal.context.file_ref
  - name: summarize
    worker_type: summarizer
    input_mapping:
      text: extrac.output.text
  - name: report
    input_mapping:
      summary: summarize.output.summary
`))
	var cerr *pipeline.ConfigError
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			fmt.Printf("%s: %s: %s\n", p.Stage, p.Field, p.Problem)
		}
	}
	// Output:
	// summarize: input_mapping.text: path "extrac.output.text": unknown stage "extrac" (paths start with goal or a stage name: extract, report, summarize)
	// report: worker_type: required
}
