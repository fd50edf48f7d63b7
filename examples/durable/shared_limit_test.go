package main

import (
	"context"
	"errors"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/ratelimit"
	"github.com/heddle-go/heddle/ratelimit/natslimit"
	"github.com/heddle-go/heddle/router"
)

// sharedLimitRouter is a router replica drawing its rate limits from the
// JetStream key-value bucket every replica on natsBus's NATS shares
// (docs/durable.md, "One rate limit for all router replicas").
func sharedLimitRouter(ctx context.Context, natsBus *natsbus.Bus, rules router.RulesSource) (*router.Router, error) {
	store, err := natslimit.Open(ctx, natsBus, natslimit.Config{}) // KV bucket heddle_rate_limits
	if err != nil {
		return nil, err
	}
	lim, err := ratelimit.NewShared(ratelimit.SharedConfig{Store: store, Replicas: 3})
	if err != nil {
		return nil, err
	}
	r, err := router.New(natsBus, router.Config{Rules: rules, Limiter: lim})
	return r, err
}

func TestTwoRouterReplicasShareOneBurst(t *testing.T) {
	srv := natstest.StartJetStreamServer(t, nil)
	connect := func() *natsbus.Bus {
		b, err := natsbus.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	ctx := testkit.Context(t)
	// One task per minute at tier standard, a burst of one: two replicas
	// with buckets of their own would admit two.
	rules := router.StaticRules(router.Rules{RateLimits: map[string]router.TierRateLimit{"standard": {MaxConcurrent: 1}}})
	for range 2 {
		r, err := sharedLimitRouter(ctx, connect(), rules)
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, r.Run, r.Ready())
	}
	reasons := map[string]int{}
	caller := connect()
	for range 4 {
		_, err := dispatch.Request(ctx, caller, heddle.NewTaskMessage("nobody_serves_it", nil))
		var dl *dispatch.DeadLetterError
		if !errors.As(err, &dl) {
			t.Fatalf("Request = %v, want a dead letter", err)
		}
		reasons[dl.Reason]++
	}
	// The one admitted task finds no worker; the three others find the
	// shared bucket empty, whichever replica takes them.
	if reasons[event.ReasonNoWorker] != 1 || reasons[event.ReasonRateLimited] != 3 {
		t.Errorf("dead letters by reason %v, want 1 no_worker and 3 rate_limited", reasons)
	}
}
