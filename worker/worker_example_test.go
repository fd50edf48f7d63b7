package worker_test

import (
	"context"
	"fmt"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/worker"
)

func ExampleNew() {
	type Greeting struct {
		Name string `json:"name" jsonschema:"minLength=1"`
	}
	type Reply struct {
		Message string `json:"message"`
	}

	b := membus.New()
	defer b.Close()

	// Input and output are checked against schemas generated from
	// Greeting and Reply.
	w, err := worker.New(b, "greeter", func(ctx context.Context, in Greeting) (Reply, error) {
		return Reply{Message: "hello, " + in.Name}, nil
	}, worker.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-w.Ready()

	// Subscribe to the result subject before publishing the tasks.
	results := make(chan heddle.TaskResult, 2)
	sub, err := b.Subscribe(ctx, heddle.SubjectResultsDefault, func(_ context.Context, m *bus.Msg) error {
		r, err := heddle.DecodeTaskResult(m.Data)
		results <- r
		return err
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Unsubscribe()

	for _, name := range []string{"Ada", ""} {
		task := heddle.NewTaskMessage("greeter", map[string]any{"name": name})
		data, _ := task.Encode()
		_ = b.Publish(ctx, &bus.Msg{Subject: task.WorkerSubject(), Data: data})
		if r := <-results; r.Status == heddle.StatusCompleted {
			fmt.Println(r.Status, r.Output["message"])
		} else {
			fmt.Println(r.Status, r.Error)
		}
	}

	stop()
	fmt.Println("run:", <-done)
	// Output:
	// completed hello, Ada
	// failed contracts: input violates schema: /name: length must be >= 1, but got 0
	// run: <nil>
}
