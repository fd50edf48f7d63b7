// Command worker is a whole process serving one worker type, "greeter",
// over NATS until it gets SIGINT or SIGTERM: the main of any Heddle actor
// looks like this one.
//
//	go run ./examples/worker -nats nats://127.0.0.1:4222
//
// Callers reach it through a router (router.New, in a process of its own)
// or straight on its subject with dispatch.Direct:
//
//	out, err := dispatch.Call[GreetIn, GreetOut](ctx, b, "greeter", GreetIn{Name: "Ada"}, dispatch.Direct())
//
// Start several copies to share the load: they join one queue group, so
// each task runs once. The process exits non-zero only when the bus closes
// for good or a drain is cut short, so that a supervisor restarts it; a NATS
// outage alone does not stop it (natsbus reconnects for ever).
package main

import (
	"context"
	"flag"
	"log"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/natsbus"
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

func greet(_ context.Context, in GreetIn) (GreetOut, error) {
	return GreetOut{Greeting: "Hello, " + in.Name + "!"}, nil
}

func main() {
	natsURL := flag.String("nats", natsbus.DefaultURL, "NATS server URL")
	flag.Parse()
	b, err := natsbus.Connect(*natsURL)
	if err != nil {
		log.Fatal(err)
	}
	w, err := worker.New(b, "greeter", greet, worker.Config{})
	if err != nil {
		log.Fatal(err)
	}
	err = heddle.Serve(context.Background(), w) // until SIGINT or SIGTERM
	b.Close()
	if err != nil {
		log.Fatal(err)
	}
}
