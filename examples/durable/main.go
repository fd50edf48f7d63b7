// Command durable serves a router and one worker type, "summarize", in
// durable mode (docs/durable.md) over NATS with JetStream, until it gets
// SIGINT or SIGTERM:
//
//	nats-server -js &
//	go run ./examples/durable -nats nats://127.0.0.1:4222
//
// Callers send tasks as in core mode, through the router, for example
// with dispatch.Call:
//
//	out, err := dispatch.Call[SummarizeIn, SummarizeOut](ctx, b, "summarize", SummarizeIn{Text: "..."})
//
// What changes is what survives. A task is stored in the intake stream
// (HEDDLE_INTAKE) when it is published, in the worker type's stream
// (HEDDLE_TASKS_summarize) when the router forwards it, and removed only
// once its result is out: a task sent while this process is down waits
// for it, and a task held by a process that is killed is served by
// another copy, or by this one when it comes back, after the ack wait.
// A handler may therefore run twice for one task; summarize is a pure
// function of its input, so that is harmless.
//
// Start several copies to share the load: they share the streams'
// durable consumers, so each task runs once. On a cluster of three or
// more servers, give -replicas 3 so that the streams survive the loss of
// a server.
package main

import (
	"context"
	"flag"
	"log"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// SummarizeIn is the summarizer's input contract.
type SummarizeIn struct {
	Text string `json:"text" jsonschema:"minLength=1"`
}

// SummarizeOut is the summarizer's output contract.
type SummarizeOut struct {
	Summary string `json:"summary"`
}

// summarize keeps the first sentence of the text: a pure function of the
// task's input, so running it twice for one task (at-least-once delivery)
// does no harm.
func summarize(_ context.Context, in SummarizeIn) (SummarizeOut, error) {
	first, _, _ := strings.Cut(in.Text, ". ")
	return SummarizeOut{Summary: strings.TrimSpace(first)}, nil
}

func main() {
	natsURL := flag.String("nats", natsbus.DefaultURL, "NATS server URL (JetStream enabled)")
	replicas := flag.Int("replicas", 1, "replicas of the streams the process creates (3 on a cluster of three or more servers)")
	flag.Parse()
	b, err := natsbus.Connect(*natsURL)
	if err != nil {
		log.Fatal(err)
	}
	actors, err := newActors(b, *replicas)
	if err == nil {
		err = heddle.Serve(context.Background(), actors...) // until SIGINT or SIGTERM
	}
	b.Close()
	if err != nil {
		log.Fatal(err)
	}
}

// newActors makes the durable worker and router on b; their streams get
// replicas replicas when the actors create them.
func newActors(b bus.Bus, replicas int) ([]heddle.Actor, error) {
	w, err := worker.New(b, "summarize", summarize, worker.Config{
		Durable: &worker.DurableConfig{AckWait: 30 * time.Second, MaxDeliver: 5, Replicas: replicas},
	})
	if err != nil {
		return nil, err
	}
	r, err := router.New(b, router.Config{
		Durable: &router.DurableConfig{WorkerTypes: []string{"summarize"}, Replicas: replicas},
	})
	if err != nil {
		return nil, err
	}
	return []heddle.Actor{w, r}, nil
}
