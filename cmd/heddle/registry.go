package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/metrics"
	"github.com/heddle-go/heddle/registry"
)

func (a *app) registryCommand() *cobra.Command {
	var sf serveFlags
	var cfg registry.Config
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Run the worker registry: which workers are up, from their heartbeats",
		Long: `registry runs a worker registry until SIGINT or SIGTERM. It listens to
every worker heartbeat (heddle.workers.heartbeat.>) and keeps a table of
the worker instances and their liveness:

  active    heard from within --stale-multiplier of the interval the
            worker announced (3 × 30 s = 90 s by default)
  inactive  silent for longer; found at the first sweep after that
            (--sweep-interval, 60 s by default)
  stopped   it said so in its last heartbeat, when it drained

It answers requests on heddle.workers.registry with that table, which
heddle workers prints. Every registry answers and the first answer wins,
so two registries on one NATS are redundant, not in conflict. The table
lives in memory: a restarted registry knows the workers that heartbeat
after it started (within one heartbeat interval, every live one).

Go workers (heddle processor) heartbeat; Python Heddle workers do not, so
their types are "unknown" to a registry, never "down".

Exit codes: 0 stopped by a signal and drained, 1 the registry failed (its
NATS connection closed for good), 2 a bad flag, 3 cannot connect.`,
		Example: `  heddle registry --nats-url nats://127.0.0.1:4222
  heddle registry --sweep-interval 15s --stale-multiplier 4 --metrics-addr :9092
  heddle workers`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.SweepInterval <= 0 {
				return fmt.Errorf("--sweep-interval must be positive, got %v", cfg.SweepInterval)
			}
			if cfg.StaleMultiplier <= 0 {
				return fmt.Errorf("--stale-multiplier must be positive, got %d", cfg.StaleMultiplier)
			}
			if err := a.beforeActorVerb(&sf, nil, nil); err != nil {
				return err
			}
			log := a.mustLogger()
			b, err := a.dial("registry", log, 0, sf.busOptions()...)
			if err != nil {
				return err
			}
			cfg.DrainTimeout = sf.drainTimeout
			r, err := registry.New(b, cfg, sf.actorOptions(log)...)
			if err != nil {
				b.Close()
				return fail(exitFailed, err)
			}
			if sf.metrics != nil {
				if err := sf.metrics.WatchRegistry(func() []metrics.WorkerCount { return workerCounts(r.Types()) }); err != nil {
					b.Close()
					return fail(exitFailed, err)
				}
			}
			log.Info("registry.starting", "registry_id", r.ID(), "heartbeats", heddle.SubjectHeartbeats,
				"answers", heddle.SubjectWorkerRegistry, "sweep_interval", cfg.SweepInterval, "stale_multiplier", cfg.StaleMultiplier)
			return a.serveActors(cmd.Context(), &sf, log, b, "registry", r)
		},
	}
	sf.register(cmd)
	cmd.Flags().DurationVar(&cfg.SweepInterval, "sweep-interval", heddle.DefaultSweepInterval, "how often to look for workers gone silent")
	cmd.Flags().IntVar(&cfg.StaleMultiplier, "stale-multiplier", heddle.DefaultStaleMultiplier, "a worker is inactive once silent for this many of its heartbeat intervals")
	return cmd
}

// workerCounts turns a registry's type summaries into the gauges of
// heddle_registry_workers.
func workerCounts(types []registry.TypeSummary) []metrics.WorkerCount {
	out := make([]metrics.WorkerCount, 0, len(types))
	for _, s := range types {
		out = append(out, metrics.WorkerCount{WorkerType: s.WorkerType, Active: s.Active, Inactive: s.Inactive, Stopped: s.Stopped})
	}
	return out
}
