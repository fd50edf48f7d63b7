package membus_test

import (
	"context"
	"fmt"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/membus"
)

// A broker with two connections: one subscribes, the other publishes.
func Example() {
	ctx := context.Background()
	b := membus.New()
	defer b.Close()
	pub := b.Connect()
	defer pub.Close()

	got := make(chan string, 1)
	if _, err := b.Subscribe(ctx, "greetings.*", func(_ context.Context, m *bus.Msg) error {
		got <- m.Subject + ": " + string(m.Data)
		return nil
	}); err != nil {
		fmt.Println(err)
		return
	}
	if err := pub.Publish(ctx, &bus.Msg{Subject: "greetings.ada", Data: []byte("hello")}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-got)
	// Output: greetings.ada: hello
}

// A connection made with WithZeroCopyPublish hands each payload over
// instead of copying it: the publisher gives up the buffer, here by
// encoding every message into a fresh one.
func ExampleWithZeroCopyPublish() {
	ctx := context.Background()
	b := membus.New(membus.WithZeroCopyPublish())
	defer b.Close()

	got := make(chan []byte, 3)
	if _, err := b.Subscribe(ctx, "numbers", func(_ context.Context, m *bus.Msg) error {
		got <- m.Data // kept after the handler returns: nobody changes it
		return nil
	}); err != nil {
		fmt.Println(err)
		return
	}
	for i := range 3 {
		data := fmt.Appendf(nil, "n=%d", i) // a fresh buffer per message
		if err := b.Publish(ctx, &bus.Msg{Subject: "numbers", Data: data}); err != nil {
			fmt.Println(err)
			return
		}
	}
	for range 3 {
		fmt.Println(string(<-got))
	}
	// Output:
	// n=0
	// n=1
	// n=2
}
