package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/natsbus"
)

// Connect dials NATS and returns a bus.Bus that owns the connection: every
// actor takes it as it takes membus.New(). It reconnects for ever unless
// WithMaxReconnects sets a budget; once it has closed for good, Done is
// closed, Err says why, and every actor on it returns from Run with that
// error. This example needs a NATS server, so it only compiles.
func ExampleConnect() {
	b, err := natsbus.Connect("nats://127.0.0.1:4222",
		natsbus.WithName("greeter-1"), // how the server's monitoring names the connection
		natsbus.WithNATSOptions(nats.UserCredentials("app.creds")))
	if err != nil {
		// "cannot connect to NATS at nats://127.0.0.1:4222: ... Is NATS
		// running? Try: nats-server -p 4222"
		log.Fatal(err)
	}
	defer b.Close()

	ctx := context.Background()
	// When Subscribe returns, the server has the interest: a message
	// published afterwards is delivered.
	got := make(chan string, 1)
	if _, err := b.Subscribe(ctx, "greetings.*", func(_ context.Context, m *bus.Msg) error {
		got <- m.Subject + ": " + string(m.Data)
		return nil
	}); err != nil {
		log.Fatal(err)
	}
	if err := b.Publish(ctx, &bus.Msg{Subject: "greetings.ada", Data: []byte("hello")}); err != nil {
		log.Fatal(err)
	}
	select {
	case s := <-got:
		fmt.Println(s)
	case <-b.Done():
		fmt.Println(b.Err(), errors.Is(b.Err(), bus.ErrClosed)) // ... true
	}
}
