package scheduler_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/scheduler"
)

// A scheduler that sends a health check task every 50 ms; a subscriber on
// heddle.tasks.incoming stands in for the router.
func Example() {
	cfg, err := scheduler.ParseConfig([]byte(`
name: example
schedules:
  - name: healthcheck
    interval_seconds: 0.05
    dispatch_type: task
    task:
      worker_type: health_checker
      payload: {check: system_status}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	b := membus.New()
	defer b.Close()
	tasks := make(chan heddle.TaskMessage, 16)
	_, _ = b.Subscribe(context.Background(), heddle.SubjectTasksIncoming, func(_ context.Context, m *bus.Msg) error {
		task, err := heddle.DecodeTaskMessage(m.Data)
		if err == nil {
			tasks <- task
		}
		return err
	})

	s, err := scheduler.New(b, cfg, heddle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	group, _ := heddle.Start(context.Background(), s)
	task := <-tasks
	_ = group.Stop()
	fmt.Println(task.WorkerType, task.Payload["check"], task.ModelTier, task.Metadata[scheduler.MetadataScheduledBy])
	// Output: health_checker system_status local healthcheck
}

// Every problem of a config is reported at once, each by its path and
// line.
func ExampleParseConfig() {
	_, err := scheduler.ParseConfig([]byte(`
name: nightly
schedules:
  - name: report
    cron: "0 25 * * *"
    interval_seconds: 3600
    dispatch_type: task
    task: {worker_type: reporter, model_tier: large}
`))
	fmt.Println(err)
	// Output: heddle: invalid scheduler config: schedules[0]: cannot specify both 'cron' and 'interval_seconds' (line 4); schedules[0].cron: invalid cron expression '0 25 * * *': end of range (25) above maximum (23): 25 (line 5); schedules[0].task.model_tier: 'model_tier' must be one of local, standard, frontier, got 'large' (line 8)
}
