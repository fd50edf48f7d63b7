// Command quickstart runs a whole Heddle mesh: a router, two typed
// workers and a caller that dispatches three tasks through the router and
// prints their results, then makes a typed call and shows a task nobody
// serves failing at once with its reason.
//
//	go run ./examples/quickstart                              # in one process, on membus
//	go run ./examples/quickstart -nats nats://127.0.0.1:4222  # the same, over NATS
//
// With -serve it only runs the router and the workers, until SIGINT or
// SIGTERM: start it so in one or more terminals, then run the caller
// without -serve in another, and the tasks spread over every copy.
//
//	go run ./examples/quickstart -nats nats://127.0.0.1:4222 -serve
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// GreetIn is the greeter's input contract; its JSON Schema is generated
// from the type, so a task without "name" fails at the worker.
type GreetIn struct {
	Name string `json:"name" jsonschema:"minLength=1"`
}

// GreetOut is the greeter's output contract.
type GreetOut struct {
	Greeting string `json:"greeting"`
}

// AddIn is the adder's input contract.
type AddIn struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

// AddOut is the adder's output contract.
type AddOut struct {
	Sum float64 `json:"sum"`
}

func main() {
	natsURL := flag.String("nats", "", "NATS server URL; empty runs every actor in this process on membus")
	serve := flag.Bool("serve", false, "only run the router and the workers, until SIGINT or SIGTERM (needs -nats)")
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

// newActors makes the mesh's router and workers on b.
func newActors(b bus.Bus) ([]heddle.Actor, error) {
	greeter, err := worker.New(b, "greeter", func(ctx context.Context, in GreetIn) (GreetOut, error) {
		return GreetOut{Greeting: "Hello, " + in.Name + "!"}, nil
	}, worker.Config{})
	if err != nil {
		return nil, err
	}
	adder, err := worker.New(b, "adder", func(ctx context.Context, in AddIn) (AddOut, error) {
		return AddOut{Sum: in.A + in.B}, nil
	}, worker.Config{})
	if err != nil {
		return nil, err
	}
	// The adder is cheap: the router sends all its tasks to the local tier.
	rt, err := router.New(b, router.Config{
		Rules: router.StaticRules(router.Rules{
			TierOverrides: map[string]string{"adder": "local"},
		}),
	})
	if err != nil {
		return nil, err
	}
	return []heddle.Actor{greeter, adder, rt}, nil
}

// serveActors runs the mesh's actors on b until SIGINT or SIGTERM, ctx
// ends or one of them fails.
func serveActors(ctx context.Context, b bus.Bus) error {
	actors, err := newActors(b)
	if err != nil {
		return err
	}
	return heddle.Serve(ctx, actors...)
}

// run starts the mesh on b, dispatches the tasks, prints the results to
// out, and stops every actor before it returns.
func run(ctx context.Context, b bus.Bus, out io.Writer) error {
	actors, err := newActors(b)
	if err != nil {
		return err
	}
	// Start returns once every actor is subscribed; Stop drains them.
	group, err := heddle.Start(ctx, actors...)
	if err != nil {
		return err
	}
	defer group.Stop()
	return call(ctx, b, out)
}

// call is the caller's side: it dispatches the tasks through the router,
// prints the results to out, and makes the typed calls.
func call(ctx context.Context, b bus.Bus, out io.Writer) error {
	// The stream subscribes to the results subject before anything is
	// dispatched, so no result can be missed.
	goal := heddle.NewOrchestratorGoal("quickstart", nil)
	stream, err := dispatch.NewStream(ctx, b, heddle.ResultSubject(goal.GoalID), dispatch.Timeout(10*time.Second))
	if err != nil {
		return err
	}
	defer stream.Close()

	tasks := []heddle.TaskMessage{
		heddle.NewTaskMessage("greeter", map[string]any{"name": "Ada"}),
		heddle.NewTaskMessage("adder", map[string]any{"a": 2, "b": 40}),
		heddle.NewTaskMessage("greeter", map[string]any{}), // violates the contract
	}
	for i := range tasks {
		tasks[i].ParentTaskID = goal.GoalID
	}
	if err := stream.Dispatch(ctx, tasks...); err != nil {
		return err
	}
	results, err := stream.Collect(ctx)
	if err != nil {
		return err
	}

	lines := make([]string, 0, len(results))
	for _, r := range results {
		switch r.Status {
		case heddle.StatusCompleted:
			lines = append(lines, fmt.Sprintf("%s completed: %v", r.WorkerType, r.Output))
		default:
			lines = append(lines, fmt.Sprintf("%s %s: %s", r.WorkerType, r.Status, firstLine(r.Error)))
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}

	// A typed call: the input is checked against the greeter's contract
	// before it is sent, and the output comes back as a GreetOut.
	greeting, err := dispatch.Call[GreetIn, GreetOut](ctx, b, "greeter", GreetIn{Name: "Grace"}, dispatch.Timeout(10*time.Second))
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "typed call:", greeting.Greeting)

	// A task the mesh cannot serve fails at once with its reason instead
	// of waiting out its 30 s: here a worker type with a typo, which the
	// router dead-letters as no_worker.
	_, err = dispatch.Call[GreetIn, GreetOut](ctx, b, "greeterr", GreetIn{Name: "Typo"}, dispatch.Timeout(30*time.Second))
	var dead *dispatch.DeadLetterError
	if !errors.As(err, &dead) {
		return fmt.Errorf("a task for a worker type nobody serves: %v, want a dead letter", err)
	}
	fmt.Fprintln(out, "dead-lettered at once:", dead.Result.Error)
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
