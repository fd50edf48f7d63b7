package observe_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/observe"
	"github.com/heddle-go/heddle/internal/testlog"
)

func TestTheOptionsReachTheEmitter(t *testing.T) {
	logs := testlog.New()
	var seen []event.Event
	var wrapped []event.OpKind
	e := observe.Actor("worker", heddle.WithLogger(logs.Logger()),
		heddle.WithObserver(event.ObserverFunc(func(_ context.Context, ev event.Event) { seen = append(seen, ev.Clone()) })),
		heddle.WithInterceptor(event.InterceptorFunc(func(ctx context.Context, op *event.Op, next event.Next) error {
			wrapped = append(wrapped, op.Kind)
			return next(ctx)
		})))
	e.Emit(context.Background(), slog.LevelInfo, event.Event{Name: event.WorkerCompleted, TaskID: "t-1"}, slog.String("task_id", "t-1"))
	if len(logs.All(event.WorkerCompleted)) != 1 {
		t.Error("the logger given with WithLogger got no record")
	}
	if len(seen) != 1 || seen[0].Actor != "worker" || seen[0].TaskID != "t-1" {
		t.Errorf("observed %+v, want one event of actor worker about t-1", seen)
	}
	if err := e.Intercept(context.Background(), &event.Op{Kind: event.OpHandle}, func(context.Context) error { return nil }); err != nil ||
		len(wrapped) != 1 || wrapped[0] != event.OpHandle {
		t.Errorf("Intercept = %v, interceptor saw %v; want it to wrap one handle", err, wrapped)
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
