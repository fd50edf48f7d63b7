package emit_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/emit"
)

// BenchmarkEmit measures one worker.completed event, with its five
// attributes, as a worker emits it: to no observer (none), and to an
// observer that does nothing with it (observer). The logger is off.
func BenchmarkEmit(b *testing.B) {
	for _, mode := range []string{"none", "observer"} {
		b.Run(mode, func(b *testing.B) {
			var obs []event.Observer
			if mode == "observer" {
				obs = append(obs, event.ObserverFunc(func(context.Context, event.Event) {}))
			}
			e := emit.New(emit.Config{Logger: slog.New(slog.DiscardHandler), Actor: "worker", Observers: obs})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if e.Enabled(ctx, slog.LevelInfo, event.WorkerCompleted) {
					var buf [8]slog.Attr
					attrs := append(buf[:0], slog.String("task_id", "48f15f83"), slog.String("parent_task_id", ""),
						slog.String("model_tier", "standard"), slog.Int("processing_time_ms", 3), slog.Int("retry_count", 0))
					e.Emit(ctx, slog.LevelInfo, event.Event{Name: event.WorkerCompleted, TaskID: "48f15f83", WorkerType: "echo",
						Tier: "standard", Status: "completed", Attempt: 1, Duration: time.Millisecond}, attrs...)
				}
			}
		})
	}
}
