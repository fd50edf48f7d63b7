package otel_test

import (
	"context"
	"fmt"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/otel"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

type shoutIn struct {
	Text string `json:"text"`
}

type shoutOut struct {
	Text string `json:"text"`
}

// A router, a worker and a caller, traced: the caller's dispatch span is
// the parent of the router's span, which is the parent of the worker's,
// all in one trace. A real program would give WithTracerProvider an SDK
// provider exporting to its collector (or set the global one); this one
// records the spans to print them.
func Example() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	tr := otel.New(otel.WithTracerProvider(tp))

	ctx := context.Background()
	b := membus.New()
	defer b.Close()
	rt, _ := router.New(b, router.Config{}, tr.Options()...)
	w, _ := worker.New(b, "shout", func(_ context.Context, in shoutIn) (shoutOut, error) {
		return shoutOut{Text: strings.ToUpper(in.Text)}, nil
	}, worker.Config{}, tr.Options()...)
	group, _ := heddle.Start(ctx, rt, w)
	out, err := dispatch.Call[shoutIn, shoutOut](ctx, b, "shout", shoutIn{Text: "hello"}, dispatch.With(tr.Options()...))
	fmt.Println(out.Text, err)
	group.Stop() // every span has ended once the actors have stopped

	printTree(spans.Ended(), trace.SpanID{}, 0)
	// Output:
	// HELLO <nil>
	// heddle.dispatch shout (producer)
	//   heddle.route shout (consumer)
	//     heddle.handle shout (consumer)
}

// printTree prints the spans whose parent is the span parent, each above
// its children, indented by depth.
func printTree(spans []sdktrace.ReadOnlySpan, parent trace.SpanID, depth int) {
	for _, s := range spans {
		if s.Parent().SpanID() == parent {
			fmt.Printf("%s%s (%s)\n", strings.Repeat("  ", depth), s.Name(), s.SpanKind())
			printTree(spans, s.SpanContext().SpanID(), depth+1)
		}
	}
}
