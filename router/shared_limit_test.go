package router_test

import (
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/ratelimit"
	"github.com/heddle-go/heddle/ratelimit/natslimit"
	"github.com/heddle-go/heddle/router"
)

// sharedClock is a clock the test moves by hand, read by every replica's
// limiter.
type sharedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *sharedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *sharedClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Three router replicas in the router queue group, each with a
// SharedLimiter on one store (a MemoryStore on membus, a JetStream
// key-value bucket on natsbus), admit the configured rate in all: the
// burst at one instant, then rate x window, where three replicas with
// buckets of their own would admit three times as much.
func TestSharedLimitThreeReplicasAdmitTheConfiguredRate(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		const workerType = "summarizer"
		clock := &sharedClock{now: time.Unix(1_700_000_000, 0)}
		// max_concurrent 6: a burst of 6, refilled at 6 per minute.
		rules := router.Rules{RateLimits: map[string]router.TierRateLimit{"standard": {MaxConcurrent: 6}}}

		first := connect()
		var newStore func(bus.Bus) ratelimit.Store
		if _, ok := first.(*natsbus.Bus); ok {
			// A store per replica, each on its replica's connection: one
			// bucket on the server.
			newStore = func(b bus.Bus) ratelimit.Store {
				s, err := natslimit.Open(testkit.Context(t), b.(*natsbus.Bus), natslimit.Config{})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		} else {
			// One store for the replicas of this process.
			mem := ratelimit.NewMemoryStore()
			newStore = func(bus.Bus) ratelimit.Store { return mem }
		}

		forwarded, _ := testkit.Subscribe(t, first, heddle.WorkerSubject(workerType, heddle.TierStandard))
		dead, _ := testkit.Subscribe(t, first, heddle.SubjectDeadLetter)
		var routers []*router.Router
		for range 3 {
			b := connect()
			lim, err := ratelimit.NewShared(ratelimit.SharedConfig{Store: newStore(b), Replicas: 3, Now: clock.Now,
				MaxAttempts: 1000, StoreTimeout: testkit.Wait})
			if err != nil {
				t.Fatal(err)
			}
			r, err := router.New(b, router.Config{Rules: router.StaticRules(rules), SkipWorkerCheck: true, Limiter: lim})
			if err != nil {
				t.Fatal(err)
			}
			testkit.StartActor(t, r.Run, r.Ready())
			routers = append(routers, r)
		}

		pub := connect()
		// offer publishes n tasks and returns how many were forwarded,
		// once every one of them was forwarded or dead-lettered.
		offer := func(n int) int {
			for range n {
				_, data := testkit.Task(t, workerType, heddle.TierStandard)
				testkit.Publish(t, pub, heddle.SubjectTasksIncoming, data, nil)
			}
			got := 0
			for range n {
				select {
				case <-forwarded:
					got++
				case <-dead:
				case <-time.After(testkit.Wait):
					t.Fatalf("only %d of %d tasks were forwarded or dead-lettered", got, n)
				}
			}
			return got
		}

		if got := offer(30); got != 6 {
			t.Fatalf("three replicas forwarded %d of 30 tasks at one instant, want the burst of 6 in all", got)
		}
		clock.Add(time.Minute)
		if got := offer(30); got != 6 {
			t.Fatalf("three replicas forwarded %d of 30 tasks a minute later, want 6 (6 per minute) in all", got)
		}
		var routed, limited uint64
		busy := 0
		for _, r := range routers {
			s := r.Stats()
			routed += s.Routed
			limited += s.RateLimited
			if s.Routed+s.DeadLettered > 0 {
				busy++
			}
		}
		if routed != 12 || limited != 48 {
			t.Fatalf("the replicas routed %d and rate-limited %d, want 12 and 48", routed, limited)
		}
		// Sharing is what kept the total down only if the work was shared.
		if busy < 2 {
			t.Fatalf("%d of 3 replicas handled tasks, want the queue group to spread them", busy)
		}
	})
}
