package registry_test

import (
	"context"
	"fmt"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/registry"
	"github.com/heddle-go/heddle/worker"
)

// A registry beside a worker: the worker heartbeats when it starts
// serving, and any process on the bus can ask which workers are up.
func Example() {
	ctx := context.Background()
	b := membus.New()
	defer b.Close()

	// Only to know when the registry has heard of the worker.
	joined := make(chan struct{}, 1)
	onJoin := event.ObserverFunc(func(_ context.Context, e event.Event) {
		if e.Name == "worker.joined" {
			joined <- struct{}{}
		}
	})
	reg, err := registry.New(b, registry.Config{}, heddle.WithObserver(onJoin))
	if err != nil {
		fmt.Println(err)
		return
	}
	w, err := worker.NewDynamic(b, "greeter", func(_ context.Context, in map[string]any) (map[string]any, error) {
		return map[string]any{"greeting": fmt.Sprint("Hello, ", in["name"])}, nil
	}, worker.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	group, err := heddle.Start(ctx, reg, w)
	if err != nil {
		fmt.Println(err)
		return
	}
	<-joined

	// What the CLI or another process reads, over the bus.
	table, err := registry.Query(ctx, b, registry.Request{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range table.Workers {
		fmt.Println(e.WorkerType, e.Status, e.Heartbeat.Capacity, e.StaleAfter)
	}
	// A type that never heartbeated (a Python worker's) is unknown, not down.
	fmt.Println(table.TypeState("greeter"), table.TypeState("python_summarizer"))
	fmt.Println(group.Stop())
	// Output:
	// greeter active 4 1m30s
	// up unknown
	// <nil>
}
