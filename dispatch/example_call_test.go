package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// A typed call through the router to a typed worker. The input is checked
// against the worker's contract before anything is published, and a task
// the mesh cannot serve fails at once with its reason.
func ExampleCall() {
	// The greeter's contract: worker.New and dispatch.Call generate the
	// same JSON Schemas from these types.
	type GreetIn struct {
		Name string `json:"name" jsonschema:"minLength=1"`
	}
	type GreetOut struct {
		Greeting string `json:"greeting"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := membus.New() // or natsbus.Connect(url), in another process
	defer b.Close()
	rt, err := router.New(b, router.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	w, err := worker.New(b, "greeter", func(_ context.Context, in GreetIn) (GreetOut, error) {
		return GreetOut{Greeting: "Hello, " + in.Name + "!"}, nil
	}, worker.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	group, err := heddle.Start(ctx, rt, w)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer group.Stop()

	out, err := dispatch.Call[GreetIn, GreetOut](ctx, b, "greeter", GreetIn{Name: "Ada"}, dispatch.Timeout(5*time.Second))
	fmt.Println(out.Greeting, err)

	// Refused before it is sent: the worker would refuse it too.
	_, err = dispatch.Call[GreetIn, GreetOut](ctx, b, "greeter", GreetIn{})
	var invalid *contracts.ValidationError
	if errors.As(err, &invalid) {
		fmt.Println(invalid)
	}

	// Nobody serves "greeterr": the router dead-letters the task and the
	// call returns at once, not after its timeout.
	_, err = dispatch.Call[GreetIn, GreetOut](ctx, b, "greeterr", GreetIn{Name: "Ada"})
	var dead *dispatch.DeadLetterError
	if errors.As(err, &dead) {
		fmt.Println("dead-lettered:", dead.Reason)
	}
	// Output:
	// Hello, Ada! <nil>
	// contracts: input violates schema: /name: length must be >= 1, but got 0
	// dead-lettered: no_worker
}

// CallAll sends every input at once and returns the outputs in the order
// of the inputs, whatever the order the results arrive in. Here the tasks
// go straight to the worker's subject (Direct), with no router.
func ExampleCallAll() {
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
	w, err := worker.New(b, "upper", func(_ context.Context, in WordIn) (WordOut, error) {
		return WordOut{Upper: strings.ToUpper(in.Word)}, nil
	}, worker.Config{Concurrency: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	group, err := heddle.Start(ctx, w)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer group.Stop()

	ins := []WordIn{{"warp"}, {"weft"}, {"heddle"}, {"shuttle"}}
	outs, err := dispatch.CallAll[WordIn, WordOut](ctx, b, "upper", ins,
		dispatch.Direct(), dispatch.MaxInFlight(2), dispatch.Timeout(5*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, out := range outs {
		fmt.Println(ins[i].Word, "->", out.Upper)
	}
	// Output:
	// warp -> WARP
	// weft -> WEFT
	// heddle -> HEDDLE
	// shuttle -> SHUTTLE
}

// A typed call chooses its task's tier, priority and metadata through its
// options. The tier picks the worker subject (heddle.tasks.{type}.{tier})
// and the router's rate limit; here only a frontier worker runs.
func ExampleCall_tier() {
	type AskIn struct {
		Question string `json:"question"`
	}
	type AskOut struct {
		Answer string `json:"answer"`
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
	w, err := worker.New(b, "oracle", func(ctx context.Context, in AskIn) (AskOut, error) {
		task, _ := worker.TaskFromContext(ctx)
		return AskOut{Answer: fmt.Sprintf("%s, asked at %s priority by %v on the %s tier",
			in.Question, task.Priority, task.Metadata["tenant"], task.ModelTier)}, nil
	}, worker.Config{Tiers: []heddle.ModelTier{heddle.TierFrontier}})
	if err != nil {
		fmt.Println(err)
		return
	}
	group, err := heddle.Start(ctx, rt, w)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer group.Stop()

	out, err := dispatch.Call[AskIn, AskOut](ctx, b, "oracle", AskIn{Question: "42?"},
		dispatch.Tier(heddle.TierFrontier),
		dispatch.Priority(heddle.PriorityHigh),
		dispatch.Metadata(map[string]any{"tenant": "acme"}),
		dispatch.Timeout(5*time.Second))
	fmt.Println(out.Answer, err)
	// Output: 42?, asked at high priority by acme on the frontier tier <nil>
}
