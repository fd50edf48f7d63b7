package router_test

import (
	"context"
	"fmt"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/router"
)

func ExampleParseRules() {
	rules, err := router.ParseRules([]byte(`
tier_overrides:
  summarizer: local
  resizer: gpu          # not a tier: its tasks will be dead-lettered
rate_limits:
  local:
    max_concurrent: 4   # 4 at once, then 4 per minute
    tokens_per_minute: 100000
  frontier:
    max_concurrent: 3
    rate_per_second: 1  # Go extension: refill 1 per second instead
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("summarizer ->", rules.TierOverrides["summarizer"])
	for _, tier := range []string{"local", "frontier"} {
		l := rules.RateLimits[tier].Limit()
		fmt.Printf("%s: burst %d, %.3f per second\n", tier, l.Burst, l.RatePerSecond)
	}
	for _, w := range rules.Warnings() {
		fmt.Println("warning:", w)
	}

	_, err = router.ParseRules([]byte("rate_limits:\n  local:\n    max_concurrent: -1\n"))
	fmt.Println(err)
	// Output:
	// summarizer -> local
	// local: burst 4, 0.067 per second
	// frontier: burst 3, 1.000 per second
	// warning: tier_overrides.resizer: "gpu" is not a model tier (local, standard, frontier): tasks of worker_type "resizer" will be dead-lettered with unknown_tier
	// heddle: invalid router rules: rate_limits.local.max_concurrent: must be >= 0, got -1 (line 3)
}

func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := membus.New()
	defer b.Close()

	rt, err := router.New(b, router.Config{
		Rules: router.StaticRules(router.Rules{
			TierOverrides: map[string]string{"summarizer": "local"},
		}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- rt.Run(runCtx) }()
	<-rt.Ready()

	// Stand-ins for a worker and a dead-letter consumer.
	got := make(chan *bus.Msg, 2)
	collect := func(_ context.Context, m *bus.Msg) error { got <- m; return nil }
	for _, subject := range []string{heddle.WorkerSubjectAllTiers("summarizer"), heddle.SubjectDeadLetter} {
		if _, err := b.Subscribe(ctx, subject, collect); err != nil {
			fmt.Println(err)
			return
		}
	}

	task := heddle.NewTaskMessage("summarizer", map[string]any{"text": "Heddle routes tasks."})
	task.ModelTier = heddle.TierFrontier
	data, _ := task.Encode()
	_ = b.Publish(ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming, Data: data})
	fmt.Println("routed to", (<-got).Subject)

	_ = b.Publish(ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming, Data: []byte(`{"payload": {}}`)})
	d, _ := heddle.DecodeDeadLetter((<-got).Data)
	fmt.Println("dead letter:", d.Reason)
	fmt.Println("original kept:", string(d.Original()))

	stop()
	fmt.Println("Run returned", <-done)
	// Output:
	// routed to heddle.tasks.summarizer.local
	// dead letter: invalid_task_message: invalid TaskMessage: worker_type: required
	// original kept: {"payload": {}}
	// Run returned <nil>
}
