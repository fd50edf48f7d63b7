package registry_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/internal/version"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/registry"
)

// The liveness tests run each scenario twice, with the same expectations
// (see eachClock):
//
//   - on membus inside a testing/synctest bubble: the registry's own
//     ticker sweeps on the bubble's fake clock, which moves only when
//     every goroutine in the bubble waits, so a sweep due at 120 s runs
//     at exactly 120 s;
//   - on natsbus, which does real I/O and cannot run in a bubble: each
//     registry gets a fake clock (registry.NewWithClock), and the harness
//     moves it and calls Sweep at every multiple of the sweep interval it
//     passes, as the ticker would.

// fakeClock is the natsbus runs' clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// harness drives registries through time on one bus.
type harness struct {
	t     *testing.T
	regs  []*registry.Registry
	logs  *testlog.Recorder
	pub   bus.Bus // the workers' connection
	sweep time.Duration

	// elapsed is the time since the registries started.
	elapsed time.Duration
	// advanceTo moves time to d after the start, sweeping on the way.
	advanceTo func(d time.Duration)
	// settle returns once the registries handled every heartbeat
	// published so far.
	settle    func()
	published int
}

// at moves time to d after the start.
func (h *harness) at(d time.Duration) {
	h.t.Helper()
	if d < h.elapsed {
		h.t.Fatalf("at(%v): time is at %v already", d, h.elapsed)
	}
	h.advanceTo(d)
	h.elapsed = d
}

// beat publishes a heartbeat of instance (of workerType, every interval)
// and waits until every registry has handled it.
func (h *harness) beat(instance, workerType string, interval time.Duration, stopping bool) {
	h.t.Helper()
	hb := heartbeat(instance, workerType, interval)
	hb.Stopping = stopping
	data, err := hb.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	testkit.Publish(h.t, h.pub, hb.Subject(), data, nil)
	h.published++
	h.settle()
}

// reg is the first registry.
func (h *harness) reg() *registry.Registry { return h.regs[0] }

// status returns instance's status in the first registry ("" when absent).
func (h *harness) status(instance string) registry.Status {
	e, ok := h.reg().Worker(instance)
	if !ok {
		return ""
	}
	return e.Status
}

func heartbeat(instance, workerType string, interval time.Duration) heddle.Heartbeat {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return heddle.Heartbeat{
		InstanceID: instance, WorkerType: workerType, Tiers: []heddle.ModelTier{heddle.TierStandard},
		QueueGroup: heddle.WorkerQueueGroup(workerType), Language: "go", SDKVersion: version.SDK,
		StartedAt: now, SentAt: now, Interval: interval, Capacity: 4,
	}
}

// eachClock runs fn on membus in a synctest bubble and on natsbus with a
// fake clock, with n registries configured by cfg (its SweepInterval is
// the default when zero) fed by the same heartbeats.
func eachClock(t *testing.T, cfg registry.Config, n int, fn func(t *testing.T, h *harness)) {
	t.Helper()
	sweep := cfg.SweepInterval
	if sweep == 0 {
		sweep = heddle.DefaultSweepInterval
	}
	t.Run("membus_synctest", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			first := membus.New()
			defer first.Close()
			h := &harness{t: t, logs: testlog.New(), pub: first, sweep: sweep, settle: synctest.Wait}
			var stops []func() error
			for range n {
				conn := first.Connect()
				defer conn.Close()
				r, err := registry.New(conn, cfg, heddle.WithLogger(h.logs.Logger()))
				if err != nil {
					t.Fatal(err)
				}
				stops = append(stops, run(t, r))
				h.regs = append(h.regs, r)
			}
			start := time.Now()
			h.advanceTo = func(d time.Duration) {
				time.Sleep(time.Until(start.Add(d))) // sleep-ok: moves the bubble's clock; the registries' tickers sweep on the way
				synctest.Wait()
			}
			fn(t, h)
			for _, stop := range stops {
				if err := stop(); err != nil {
					t.Errorf("Run = %v", err)
				}
			}
		})
	})
	t.Run("natsbus_clock", func(t *testing.T) {
		var connect func() bus.Bus
		for _, tr := range natstest.Transports() {
			if tr.Name == "natsbus" {
				connect = tr.Connector(t)
			}
		}
		start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		clock := &fakeClock{now: start}
		h := &harness{t: t, logs: testlog.New(), pub: connect(), sweep: sweep}
		var stops []func() error
		for range n {
			r, err := registry.NewWithClock(connect(), cfg, clock.Now, heddle.WithLogger(h.logs.Logger()))
			if err != nil {
				t.Fatal(err)
			}
			stops = append(stops, run(t, r))
			h.regs = append(h.regs, r)
		}
		h.advanceTo = func(d time.Duration) {
			for tick := (h.elapsed/sweep + 1) * sweep; tick <= d; tick += sweep {
				clock.set(start.Add(tick))
				for _, r := range h.regs {
					r.Sweep()
				}
			}
			clock.set(start.Add(d))
		}
		h.settle = func() {
			h.logs.Wait(t, "registry.heartbeat", h.published*len(h.regs))
		}
		fn(t, h)
		for _, stop := range stops {
			if err := stop(); err != nil {
				t.Errorf("Run = %v", err)
			}
		}
	})
}

// run starts r and returns once it is ready; the function returned stops
// it and returns Run's error.
func run(t *testing.T, r *registry.Registry) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("Run returned before it was ready: %v", err)
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// events returns the attribute key of each record named name, as text.
func events(logs *testlog.Recorder, name, key string) []string {
	var out []string
	for _, rec := range logs.All(name) {
		out = append(out, fmt.Sprintf("%s %s", rec.Str("instance_id"), rec.Str(key)))
	}
	return out
}
