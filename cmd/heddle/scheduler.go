package main

import (
	"github.com/spf13/cobra"

	"github.com/heddle-go/heddle/scheduler"
)

func (a *app) schedulerCommand() *cobra.Command {
	var sf serveFlags
	var config string
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Run the scheduler: goals and tasks on cron and interval timers",
		Long: `scheduler runs the time-driven scheduler until SIGINT or SIGTERM. Each
schedule of its config fires on a cron expression (UTC unless the config
names a timezone) or every interval_seconds, and publishes an
OrchestratorGoal on heddle.goals.incoming (or to a named pipeline) or a
TaskMessage on heddle.tasks.incoming for the router.

The config file is the Python Heddle's scheduler config:

  name: nightly
  schedules:
    - name: hourly_summarize
      cron: "0 * * * *"
      dispatch_type: goal
      goal: {instruction: Summarize the new documents, context: {source: incoming}}
    - name: heartbeat_check
      interval_seconds: 300
      dispatch_type: task
      task: {worker_type: health_checker, payload: {check: all}, model_tier: local}

Problems in it are all reported with their line before anything starts
(exit 1); heddle validate checks it without NATS.

Exit codes: 0 stopped by a signal and drained, 1 invalid config or the
scheduler failed, 3 cannot connect.`,
		Example: `  heddle scheduler --config configs/schedulers/nightly.yaml --nats-url nats://127.0.0.1:4222`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config == "" {
				return errString("--config is required: the scheduler config file")
			}
			if err := a.beforeActorVerb(&sf, []string{config}, nil); err != nil {
				return err
			}
			cfg, err := scheduler.LoadConfig(config)
			if err != nil {
				return fail(exitFailed, err)
			}
			cfg.DrainTimeout = sf.drainTimeout
			log := a.mustLogger()
			b, err := a.dial("scheduler "+cfg.Name, log, 0, sf.busOptions()...)
			if err != nil {
				return err
			}
			s, err := scheduler.New(b, cfg, sf.actorOptions(log)...)
			if err != nil {
				b.Close()
				return fail(exitFailed, err)
			}
			return a.serveActors(cmd.Context(), &sf, log, b, "scheduler/"+cfg.Name, s)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&config, "config", "", "scheduler config file (required)")
	return cmd
}
