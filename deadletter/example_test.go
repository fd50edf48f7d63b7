package deadletter_test

import (
	"context"
	"fmt"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/membus"
)

func ExampleConsumer_Replay() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := membus.New()
	defer b.Close()

	consumer, err := deadletter.New(b, deadletter.Config{Capacity: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- consumer.Run(runCtx) }()
	<-consumer.Ready()

	replayed := make(chan []byte, 1)
	if _, err := b.Subscribe(ctx, heddle.SubjectTasksIncoming, func(_ context.Context, m *bus.Msg) error {
		replayed <- m.Data
		return nil
	}); err != nil {
		fmt.Println(err)
		return
	}

	// What a Router publishes for a task beyond its tier's capacity.
	original := []byte(`{"task_id": "t-1", "worker_type": "summarizer", "payload": {}, "model_tier": "frontier"}`)
	env, _ := heddle.NewDeadLetter("rate_limited: tier 'frontier' has no available capacity", original).Encode()
	_ = b.Publish(ctx, &bus.Msg{Subject: heddle.SubjectDeadLetter, Data: env})
	_ = b.Flush(ctx)
	stop() // Run drains: the envelope is stored before it returns.
	fmt.Println("Run returned", <-done)

	entries, total := consumer.List(0, 10)
	fmt.Println(total, "entry:", entries[0].DeadLetter.TaskID, entries[0].DeadLetter.Reason)
	if err := consumer.Replay(ctx, entries[0].ID); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("replayed:", string(<-replayed))
	fmt.Println("replay count:", consumer.Stats().Replayed, "left:", consumer.Len())
	// Output:
	// Run returned <nil>
	// 1 entry: t-1 rate_limited: tier 'frontier' has no available capacity
	// replayed: {"task_id": "t-1", "worker_type": "summarizer", "payload": {}, "model_tier": "frontier"}
	// replay count: 1 left: 0
}
