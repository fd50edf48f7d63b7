// Command testing is a user's worker, "summarize", and the caller's side
// that reaches it, written to be tested with Heddle's test kit: see
// main_test.go for its payload fixtures (testdata/heddle/summarize), the
// conformance suite, and a fault injected on the caller's connection.
//
//	go run ./examples/testing -nats nats://127.0.0.1:4222
//
// The worker is made by one function, newWorker, which main and the
// tests share: the tests hand it a bus of their own and the options that
// let the kit observe the worker.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/worker"
)

// SummarizeIn is the worker's input contract: a text, and optionally how
// many of its words to keep.
type SummarizeIn struct {
	Text     string `json:"text" jsonschema:"minLength=1"`
	MaxWords int    `json:"max_words,omitempty" jsonschema:"minimum=0"`
}

// SummarizeOut is its output contract.
type SummarizeOut struct {
	Summary string `json:"summary"`
	Words   int    `json:"words"`
}

// errEmpty is the handler's own refusal: a text of white space only
// passes the contract (minLength) but has nothing to summarize.
var errEmpty = errors.New("text: nothing but white space")

func summarize(_ context.Context, in SummarizeIn) (SummarizeOut, error) {
	words := strings.Fields(in.Text)
	if len(words) == 0 {
		return SummarizeOut{}, worker.Permanent(errEmpty)
	}
	if in.MaxWords > 0 && len(words) > in.MaxWords {
		words = words[:in.MaxWords]
	}
	return SummarizeOut{Summary: strings.Join(words, " "), Words: len(words)}, nil
}

// newWorker makes the summarize worker on b.
func newWorker(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error) {
	return worker.New(b, "summarize", summarize, worker.Config{}, opts...)
}

// Calls are made at most callAttempts times, each waiting callTimeout:
// delivery is at-most-once, so a caller that must get an answer sends
// again when one is lost.
const (
	callAttempts = 5
	callTimeout  = 500 * time.Millisecond
)

// call asks a summarize worker for the summary of text, sending the task
// again when no result came in time.
func call(ctx context.Context, b bus.Bus, text string) (SummarizeOut, error) {
	for attempt := 1; ; attempt++ {
		out, err := dispatch.Call[SummarizeIn, SummarizeOut](ctx, b, "summarize", SummarizeIn{Text: text},
			dispatch.Direct(), dispatch.Timeout(callTimeout))
		if !errors.Is(err, dispatch.ErrTimeout) || attempt == callAttempts || ctx.Err() != nil {
			return out, err
		}
	}
}

func main() {
	natsURL := flag.String("nats", natsbus.DefaultURL, "NATS server URL")
	flag.Parse()
	b, err := natsbus.Connect(*natsURL)
	if err != nil {
		log.Fatal(err)
	}
	w, err := newWorker(b)
	if err != nil {
		log.Fatal(err)
	}
	err = heddle.Serve(context.Background(), w) // until SIGINT or SIGTERM
	b.Close()
	if err != nil {
		log.Fatal(err)
	}
}
