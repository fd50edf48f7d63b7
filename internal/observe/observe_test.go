package observe_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/internal/observe"
	"github.com/heddle-go/heddle/internal/testlog"
)

// collector keeps every event it observes.
type collector struct {
	mu     sync.Mutex
	events []heddle.Event
}

func (c *collector) Observe(_ context.Context, e heddle.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

func TestEachEventReachesTheLoggerAndEveryObserverOnce(t *testing.T) {
	logs := testlog.New()
	var a, b collector
	e := observe.New(heddle.WithLogger(logs.Logger()), heddle.WithObserver(&a), heddle.WithObserver(&b)).
		With(slog.String("worker_type", "summarize"))
	e.Warn("worker.failed", "task_id", "t-1", "reason", "publish", "processing_time_ms", int64(1500), "subject", "heddle.tasks.summarize.local")

	if got := logs.All("worker.failed"); len(got) != 1 || got[0].Str("worker_type") != "summarize" || got[0].Str("task_id") != "t-1" {
		t.Errorf("logged %+v, want one worker.failed record with worker_type and task_id", got)
	}
	for _, c := range []*collector{&a, &b} {
		if len(c.events) != 1 {
			t.Fatalf("observer got %d events, want 1", len(c.events))
		}
		ev := c.events[0]
		want := heddle.Event{Name: "worker.failed", Level: slog.LevelWarn, TaskID: "t-1", WorkerType: "summarize",
			Subject: "heddle.tasks.summarize.local", Reason: "publish", Duration: 1500 * time.Millisecond}
		ev.Attrs = nil
		if ev.Name != want.Name || ev.Level != want.Level || ev.TaskID != want.TaskID || ev.WorkerType != want.WorkerType ||
			ev.Subject != want.Subject || ev.Reason != want.Reason || ev.Duration != want.Duration {
			t.Errorf("event %+v, want %+v", ev, want)
		}
		if n := len(c.events[0].Attrs); n != 5 {
			t.Errorf("event has %d attributes, want the With attribute and the four given", n)
		}
	}
}

func TestObserversSeeEventsTheLoggerLevelHides(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
	var c collector
	e := observe.New(heddle.WithLogger(quiet), heddle.WithObserver(&c))
	if !e.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("Enabled(Debug) is false although an observer listens")
	}
	e.Debug("result_stream.ignored", "task_id", "x")
	if len(c.events) != 1 || c.events[0].Name != "result_stream.ignored" {
		t.Errorf("observer got %+v, want the debug event", c.events)
	}
	if observe.New(heddle.WithLogger(quiet)).Enabled(context.Background(), slog.LevelDebug) {
		t.Error("Enabled(Debug) is true with no observer and a logger at Error")
	}
}

func TestTheDefaultLoggerIsSlogDefault(t *testing.T) {
	logs := testlog.New()
	prev := slog.Default()
	slog.SetDefault(logs.Logger())
	defer slog.SetDefault(prev)
	observe.New().Info("actor.subscribed", "subject", "heddle.tasks.incoming")
	if got := logs.All("actor.subscribed"); len(got) != 1 {
		t.Errorf("slog.Default() got %d records, want 1", len(got))
	}
}

func TestCountAddsOneAndEmitsOneEventEvenWhenTheLoggerIsSilent(t *testing.T) {
	var c collector
	quiet := slog.New(slog.DiscardHandler)
	var n atomic.Uint64
	e := observe.New(heddle.WithLogger(quiet), heddle.WithObserver(&c))
	e.Count(context.Background(), &n, slog.LevelWarn, "dead_letter.evicted", "task_id", "t-9")
	e.CountAttrs(context.Background(), &n, slog.LevelDebug, "result_stream.late", slog.String("task_id", "t-10"))
	if n.Load() != 2 || len(c.events) != 2 || c.events[0].TaskID != "t-9" || c.events[1].Name != "result_stream.late" {
		t.Errorf("count %d, events %+v; want 2 and the two events", n.Load(), c.events)
	}
	silent := observe.New(heddle.WithLogger(quiet))
	silent.Count(context.Background(), &n, slog.LevelDebug, "result_stream.ignored")
	if n.Load() != 3 {
		t.Errorf("count %d after an event nobody listens to, want 3: the count never depends on the logger", n.Load())
	}
}
