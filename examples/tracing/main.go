// Command tracing runs a traced mesh: a router and a worker given the
// Options of package otel, and a caller that sends them a task carrying
// the _trace_context a traced Python Heddle caller writes. It prints the
// spans of the task's trace as a tree, and the traceparent of the result,
// which names the worker's span: a Python caller that reads it continues
// the same trace.
//
//	go run ./examples/tracing                              # in one process, on membus
//	go run ./examples/tracing -nats nats://127.0.0.1:4222  # the same, over NATS
//
// A real program gives otel.WithTracerProvider the SDK provider that
// exports to its collector (or sets the global one, which New uses by
// default); this one collects the spans in memory to print them.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/otel"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// pythonTraceparent is the trace context of the Python caller's span:
// trace 4bf92f35..., span 00f067aa....
const pythonTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// SummarizeIn is the worker's input contract.
type SummarizeIn struct {
	Text string `json:"text"`
}

// SummarizeOut is the worker's output contract.
type SummarizeOut struct {
	Summary string `json:"summary"`
}

func main() {
	natsURL := flag.String("nats", "", "NATS server URL; empty runs everything in this process on membus")
	flag.Parse()
	var b bus.Bus = membus.New()
	if *natsURL != "" {
		nb, err := natsbus.Connect(*natsURL)
		if err != nil {
			log.Fatal(err)
		}
		b = nb
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := run(ctx, b, os.Stdout)
	cancel()
	b.Close()
	if err != nil {
		log.Fatal(err)
	}
}

// run starts the traced router and worker on b, sends them one task in
// the Python caller's trace, waits for its result, stops the actors and
// prints the trace to out.
func run(ctx context.Context, b bus.Bus, out io.Writer) error {
	spans := &collector{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())
	tr := otel.New(otel.WithTracerProvider(tp))

	rt, err := router.New(b, router.Config{}, tr.Options()...)
	if err != nil {
		return err
	}
	w, err := worker.New(b, "summarize", func(_ context.Context, in SummarizeIn) (SummarizeOut, error) {
		first, _, _ := strings.Cut(in.Text, ".")
		return SummarizeOut{Summary: first + "."}, nil
	}, worker.Config{}, tr.Options()...)
	if err != nil {
		return err
	}
	group, err := heddle.Start(ctx, rt, w)
	if err != nil {
		return err
	}
	res, err := sendAsPython(ctx, b)
	if stopErr := group.Stop(); err == nil {
		err = stopErr // once the actors have stopped, every span has ended
	}
	if err != nil {
		return err
	}

	var tc struct {
		Traceparent string `json:"traceparent"`
	}
	if err := json.Unmarshal(res.Extra["_trace_context"], &tc); err != nil {
		return fmt.Errorf("the result's _trace_context: %w", err)
	}
	fmt.Fprintf(out, "result: %s %s\n", res.Status, res.Output["summary"])
	fmt.Fprintf(out, "the caller's trace: %s\n", pythonTraceparent)
	fmt.Fprintf(out, "the result's trace: %s\n", tc.Traceparent)
	ended := spans.ended()
	for _, s := range ended {
		if s.Parent().IsRemote() && s.Parent().SpanID().String() == "00f067aa0ba902b7" {
			printTree(out, ended, s, 0)
		}
	}
	return nil
}

// sendAsPython publishes a task as a traced Python caller does, with its
// _trace_context, on heddle.tasks.incoming, and returns its result.
func sendAsPython(ctx context.Context, b bus.Bus) (*heddle.TaskResult, error) {
	task := heddle.NewTaskMessage("summarize", map[string]any{"text": "Heddle routes tasks. It also traces them."})
	task.Extra = map[string]json.RawMessage{"_trace_context": json.RawMessage(`{"traceparent": "` + pythonTraceparent + `"}`)}
	data, err := task.Encode()
	if err != nil {
		return nil, err
	}
	results := make(chan *heddle.TaskResult, 1)
	sub, err := b.Subscribe(ctx, task.ResultSubject(), func(_ context.Context, m *bus.Msg) error {
		r, err := heddle.DecodeTaskResult(m.Data)
		if err != nil || r.TaskID != task.TaskID {
			return err
		}
		select {
		case results <- &r:
		default:
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := b.Publish(ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming, Data: data}); err != nil {
		return nil, err
	}
	select {
	case r := <-results:
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for task %s: %w", task.TaskID, ctx.Err())
	}
}

// printTree prints s and, below it, the spans whose parent it is.
func printTree(out io.Writer, spans []sdktrace.ReadOnlySpan, s sdktrace.ReadOnlySpan, depth int) {
	status := ""
	if v := attribute(s, "heddle.status"); v != "" {
		status = " " + v
	}
	fmt.Fprintf(out, "%s%s [%s] span %s%s\n", strings.Repeat("  ", depth), s.Name(), s.SpanKind(), s.SpanContext().SpanID(), status)
	for _, c := range spans {
		if c.Parent().SpanID() == s.SpanContext().SpanID() {
			printTree(out, spans, c, depth+1)
		}
	}
}

func attribute(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// collector is a span exporter that keeps the spans in memory.
type collector struct {
	mu    sync.Mutex
	spans []sdktrace.ReadOnlySpan
}

func (c *collector) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	c.mu.Lock()
	c.spans = append(c.spans, spans...)
	c.mu.Unlock()
	return nil
}

func (c *collector) Shutdown(context.Context) error { return nil }

func (c *collector) ended() []sdktrace.ReadOnlySpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sdktrace.ReadOnlySpan(nil), c.spans...)
}

var _ sdktrace.SpanExporter = (*collector)(nil)
