package main

import (
	"github.com/spf13/cobra"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/deadletter"
)

func (a *app) deadLetterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dead-letter",
		Short: "Watch the dead-letter queue (heddle.tasks.dead_letter)",
		Long: `dead-letter groups the verbs of the dead-letter queue, where the router
puts the tasks it cannot route, each with its reason:

  invalid_task_message: ...   the sender broke the message contract
  unknown_tier: ...           the rules or the sender name a tier that does not exist
  rate_limited: tier 'X' ...  the tier's token bucket was empty
  no_worker: ...              nothing serves the task's worker subject (Go router)

monitor logs each one as it arrives; serve also keeps them for a web view
and a JSON API, which list, show and replay use (--server, with the token
from $HEDDLE_WORKSHOP_TOKEN when the server has one). See the "Interpret
dead letters" runbook and docs/operating.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		a.deadLetterMonitorCommand(),
		a.deadLetterServeCommand(),
		a.deadLetterListCommand(),
		a.deadLetterShowCommand(),
		a.deadLetterReplayCommand(),
	)
	return cmd
}

func (a *app) deadLetterMonitorCommand() *cobra.Command {
	var sf serveFlags
	var maxSize int
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Subscribe to the dead-letter queue and log each entry",
		Long: `monitor runs a dead-letter consumer until SIGINT or SIGTERM: it subscribes
to heddle.tasks.dead_letter and logs each arriving envelope as
dead_letter.received, with its reason, task_id and worker_type, keeping the
latest --max-size in memory. Every monitor sees every dead letter (a plain
subscription), so it can run beside other consumers.

Exit codes: 0 stopped by a signal and drained, 1 the consumer failed,
3 cannot connect.`,
		Example: `  heddle dead-letter monitor --nats-url nats://127.0.0.1:4222
  heddle dead-letter monitor --log-format json | jq 'select(.msg == "dead_letter.received") | .reason'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if maxSize <= 0 {
				return errString("--max-size must be positive")
			}
			if err := a.beforeActorVerb(&sf, nil, nil); err != nil {
				return err
			}
			log := a.mustLogger()
			b, err := a.dial("dead-letter monitor", log, 0, sf.busOptions()...)
			if err != nil {
				return err
			}
			c, err := deadletter.New(b, deadletter.Config{Capacity: maxSize, DrainTimeout: sf.drainTimeout}, sf.actorOptions(log)...)
			if err != nil {
				b.Close()
				return fail(exitFailed, err)
			}
			log.Info("dead_letter.monitor_starting", "subject", heddle.SubjectDeadLetter, "max_size", maxSize)
			return a.serveActors(cmd.Context(), &sf, log, b, "dead-letter", c)
		},
	}
	sf.register(cmd)
	cmd.Flags().IntVar(&maxSize, "max-size", deadletter.DefaultCapacity, "dead letters kept in memory")
	return cmd
}
