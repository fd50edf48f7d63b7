package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/examples/internal/exampletest"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

func TestMain(m *testing.M) {
	exampletest.RunMain(main)
	slog.SetDefault(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}

// The durable router and worker and a caller in one process, on the
// in-memory bus, which has the streams' semantics: the same actors serve
// over NATS with JetStream unchanged.
func Example() {
	ctx := context.Background()
	b := membus.New()
	defer b.Close()
	actors, _ := newActors(b, 0)
	group, _ := heddle.Start(ctx, actors...) // returns once both consume their streams
	defer group.Stop()
	out, err := dispatch.Call[SummarizeIn, SummarizeOut](ctx, b, "summarize",
		SummarizeIn{Text: "Durable mode stores tasks. It acknowledges them once served."})
	fmt.Println(out.Summary, err)
	// Output: Durable mode stores tasks <nil>
}

func TestSummarizeKeepsTheFirstSentence(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"One. Two. Three.", "One"},
		{"  No full stop  ", "No full stop"},
		{"A.B stays whole. Then more.", "A.B stays whole"},
	} {
		got, err := summarize(context.Background(), SummarizeIn{Text: c.text})
		if err != nil || got.Summary != c.want {
			t.Errorf("summarize(%q) = %q, %v; want %q", c.text, got.Summary, err, c.want)
		}
	}
}

func TestNewActorsRefusesABusWithoutStreams(t *testing.T) {
	b := noDurable{membus.New()}
	defer b.Close()
	if _, err := newActors(b, 1); err == nil {
		t.Fatal("newActors on a bus without bus.Durable succeeded; durable mode needs streams")
	}
}

// noDurable hides the durable capability of the bus it wraps.
type noDurable struct{ bus.Bus }

// A task sent while no router runs is stored in the intake stream and
// served once the process starts; the process exits cleanly on SIGTERM,
// leaving both streams empty (every task acknowledged).
func TestTheDurableProcessServesATaskSentBeforeItStartedThenExitsCleanlyOnSIGTERM(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM cannot be sent to a process on Windows")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.StartJetStreamServer(t, nil)
	b, err := natsbus.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The intake stream as the router creates it, so that the task is
	// kept before any router runs.
	if err := b.EnsureStream(ctx, bus.StreamConfig{Name: router.DefaultIntakeStream,
		Subjects: []string{heddle.SubjectTasksIncoming}, WorkQueue: true}); err != nil {
		t.Fatal(err)
	}
	task := heddle.NewTaskMessage("summarize", map[string]any{"text": "Stored first. Served later."})
	stream, err := dispatch.NewStream(ctx, b, heddle.ResultSubject(task.ParentTaskID), dispatch.Timeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if err := stream.Dispatch(ctx, task); err != nil {
		t.Fatal(err)
	}

	proc := exampletest.Start(t, ctx, "-nats", srv.ClientURL())
	results, err := stream.Collect(ctx)
	if err != nil || len(results) != 1 || results[0].Status != heddle.StatusCompleted ||
		results[0].Output["summary"] != "Stored first" {
		t.Fatalf("Collect = %+v, %v; want the task's summary\nthe process's log:\n%s", results, err, proc.Stderr)
	}

	if err := proc.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := proc.Wait(); err != nil {
		t.Fatalf("the process ended with %v after SIGTERM, want exit status 0\nits log:\n%s", err, proc.Stderr)
	}
	for _, name := range []string{router.DefaultIntakeStream, worker.DurableStreamName("summarize")} {
		waitEmpty(t, ctx, b, name)
	}
}

// waitEmpty waits until the stream named name holds no message: the
// server applies acknowledgements asynchronously, a moment after the
// process that sent them has gone.
func waitEmpty(t *testing.T, ctx context.Context, b *natsbus.Bus, name string) {
	t.Helper()
	js, err := b.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s, err := js.Stream(ctx, b.WireStreamName(name))
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if s.CachedInfo().State.Msgs == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("stream %s still holds %d messages: a task was not acknowledged", name, s.CachedInfo().State.Msgs)
		}
	}
}
