package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/router"
)

// defaultRulesPath is the Python Heddle's default rules file.
const defaultRulesPath = "configs/router_rules.yaml"

// reloadNoResponderWait bounds how long `router reload` waits, after its
// publish has reached the server, for the server's report that no router
// is subscribed. NATS sends that report before it answers the flush, so
// it has normally arrived when the flush returns.
const reloadNoResponderWait = 500 * time.Millisecond

func (a *app) routerCommand() *cobra.Command {
	var sf serveFlags
	var rules string
	var cfg router.Config
	cmd := &cobra.Command{
		Use:   "router",
		Short: "Run the task router (heddle.tasks.incoming → worker subjects)",
		Long: `router runs the deterministic task router until SIGINT or SIGTERM.

It subscribes to heddle.tasks.incoming (queue group "router", so replicas
share the load) and forwards each task to heddle.tasks.{worker_type}.{tier},
after applying the rules file's tier_overrides and rate_limits. A task it
cannot route is dead-lettered on heddle.tasks.dead_letter with its reason
(invalid_task_message, unknown_tier, rate_limited, no_worker). It re-reads
the rules file on every message on heddle.control.reload (see heddle router
reload); rules that do not parse are logged and the previous ones stay.

The rules file is the Python Heddle's configs/router_rules.yaml, unchanged.
Problems in it are reported with their line before anything starts
(exit 1); heddle validate checks it without NATS.

Exit codes: 0 stopped by a signal and drained, 1 invalid rules or the
router failed (its NATS connection closed for good), 3 cannot connect.`,
		Example: `  heddle router --rules configs/router_rules.yaml --nats-url nats://127.0.0.1:4222
  heddle router --rules configs/router_rules.yaml --metrics-addr :9090
  heddle router reload`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.beforeActorVerb(&sf, []string{rules}, nil); err != nil {
				return err
			}
			if _, err := router.LoadRules(rules); err != nil {
				return fail(exitFailed, err)
			}
			log := a.mustLogger()
			b, err := a.dial("router", log, 0, sf.busOptions()...)
			if err != nil {
				return err
			}
			cfg.Rules = router.RulesFile(rules)
			cfg.DrainTimeout = sf.drainTimeout
			r, err := router.New(b, cfg, sf.actorOptions(log)...)
			if err != nil {
				b.Close()
				return fail(exitFailed, err)
			}
			return a.serveActors(cmd.Context(), &sf, log, b, "router", r)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&rules, "rules", defaultRulesPath, "router rules file (the Python Heddle's router_rules.yaml)")
	cmd.Flags().StringVar(&rules, "config", defaultRulesPath, "the same as --rules, as the Python Heddle names it")
	cmd.Flags().BoolVar(&cfg.SkipWorkerCheck, "skip-worker-check", false, "forward tasks without checking that a worker serves their subject (no no_worker dead letters)")
	cmd.Flags().BoolVar(&cfg.NoDeadLetterResults, "no-dead-letter-results", false, "do not answer a dead-lettered task's caller with a failed result (the Python router's behaviour)")
	cmd.AddCommand(a.routerReloadCommand())
	return cmd
}

func (a *app) routerReloadCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Ask every running router to re-read its rules file",
		Long: `reload publishes {} on heddle.control.reload, which every router replica
(Go or Python) subscribes to: each re-reads its rules file. The Go router
logs router.reloaded, or router.reload_failed and keeps its previous rules.
It is the Go form of: nats pub heddle.control.reload '{}'

Exit codes: 0 published, 1 no router is subscribed to heddle.control.reload,
3 cannot connect.`,
		Example: `  heddle router reload --nats-url nats://127.0.0.1:4222`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := a.mustLogger()
			b, err := a.dial("router reload", log, preflightConnectTimeout)
			if err != nil {
				return err
			}
			defer b.Close()
			return a.publishControl(cmd.Context(), b, heddle.SubjectControlReload, []byte("{}"))
		},
	}
}

// publishControl publishes a control message and reports, as an error
// with exitFailed, when nothing at all is subscribed to its subject.
func (a *app) publishControl(ctx context.Context, b bus.Bus, subject string, data []byte) error {
	inbox := "_INBOX.heddle.control." + newID()
	noResponders := make(chan struct{}, 1)
	sub, err := b.Subscribe(ctx, inbox, func(_ context.Context, m *bus.Msg) error {
		if bus.NoResponders(m) {
			select {
			case noResponders <- struct{}{}:
			default:
			}
		}
		return nil
	})
	if err != nil {
		return fail(exitFailed, err)
	}
	defer sub.Unsubscribe()
	if err := b.Publish(ctx, &bus.Msg{Subject: subject, Reply: inbox, Data: data}); err != nil {
		return fail(exitFailed, err)
	}
	if err := b.Flush(ctx); err != nil {
		return fail(exitFailed, err)
	}
	t := time.NewTimer(reloadNoResponderWait)
	defer t.Stop()
	select {
	case <-noResponders:
		return failf(exitFailed, "nothing is subscribed to %s: no router is running on this NATS", subject)
	case <-t.C:
	case <-ctx.Done():
		return fail(exitFailed, ctx.Err())
	}
	if errors.Is(bus.Err(b), bus.ErrClosed) {
		return fail(exitFailed, bus.Err(b))
	}
	_, _ = a.stdout.Write([]byte("Published " + string(data) + " on " + subject + "\n"))
	return nil
}
