package metrics_test

import (
	"context"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/metrics"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/registry"
	"github.com/heddle-go/heddle/worker"
)

// The registry's counts through WatchRegistry: the gauge the
// HeddleNoLiveWorkers alert reads, from a worker's first heartbeat to its
// last.
func TestTheRegistryGaugeFollowsAWorkerFromItsFirstHeartbeatToItsStop(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		s := newScript(t, connect)
		r, err := registry.New(connect(), registry.Config{}, s.opts...)
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, r.Run, r.Ready())
		if err := s.m.WatchRegistry(func() []metrics.WorkerCount {
			var out []metrics.WorkerCount
			for _, ts := range r.Types() {
				out = append(out, metrics.WorkerCount{WorkerType: ts.WorkerType, Active: ts.Active, Inactive: ts.Inactive, Stopped: ts.Stopped})
			}
			return out
		}); err != nil {
			t.Fatal(err)
		}
		w, err := worker.NewDynamic(connect(), "echo", func(_ context.Context, in map[string]any) (map[string]any, error) {
			return in, nil
		}, worker.Config{}, s.opts...)
		if err != nil {
			t.Fatal(err)
		}
		stop := testkit.StartActor(t, w.Run, w.Ready())
		s.evs.wait(t, key("worker.joined"), 1)
		state := func(st string) float64 { return s.value("heddle_registry_workers", "worker_type", "echo", "state", st) }
		if state("active") != 1 || state("stopped") != 0 {
			t.Fatalf("serving: active %v, stopped %v; want 1 and 0", state("active"), state("stopped"))
		}

		stop() // its last heartbeat says it stops
		s.evs.wait(t, key(event.WorkerStopped), 1)
		if state("active") != 0 || state("stopped") != 1 {
			t.Fatalf("stopped: active %v, stopped %v; want 0 and 1: no live worker of a known type", state("active"), state("stopped"))
		}
		same(t, "stopped transitions", s.value("heddle_registry_transitions_total", "worker_type", "echo", "event", "stopped"),
			r.Stats().MarkedStopped, s.evs.count(key(event.WorkerStopped)), 1)
	})
}

// A bus's own slow-consumer reports, for a subscription that is no
// actor's: counted as the bus reports them.
func TestABusSlowConsumerIsCountedAsTheBusReportsIt(t *testing.T) {
	for _, tr := range []struct {
		name    string
		connect func(t *testing.T, s *script) bus.Bus
	}{
		{"membus", func(t *testing.T, s *script) bus.Bus {
			b := membus.New(membus.WithObserver(s.m), membus.WithObserver(s.evs))
			t.Cleanup(func() { _ = b.Close() })
			return b
		}},
		{"natsbus", func(t *testing.T, s *script) bus.Bus {
			b, err := natsbus.Connect(natstest.RunServer(t), natsbus.WithObserver(s.m), natsbus.WithObserver(s.evs),
				natsbus.WithSubjectPrefix("t"+heddle.NewTaskMessage("x", nil).TaskID[:8]+"."))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			return b
		}},
	} {
		t.Run(tr.name, func(t *testing.T) {
			s := newScript(t, nil)
			b := tr.connect(t, s)
			started, release := make(chan struct{}, 1), make(chan struct{})
			sub, err := b.Subscribe(t.Context(), "flood", func(context.Context, *bus.Msg) error {
				select {
				case started <- struct{}{}:
				default:
				}
				<-release
				return nil
			}, bus.PendingLimits(1, 0))
			if err != nil {
				t.Fatal(err)
			}
			testkit.Publish(t, b, "flood", []byte("first"), nil)
			<-started
			for range 20 {
				testkit.Publish(t, b, "flood", []byte("more"), nil)
			}
			s.evs.wait(t, key(event.BusSlowConsumer), 1)
			close(release)
			if err := sub.Drain(testkit.Context(t)); err != nil {
				t.Fatal(err)
			}
			// natsbus reports slow consumers from nats.go's asynchronous
			// callbacks, which may still be delivering a report to the
			// observers (the metrics first, then the recorder) after the
			// drain: wait until the recorder has every report the metric
			// counted.
			metric := func() float64 { return s.value("heddle_bus_dropped_messages_total", "actor", tr.name) }
			var reports uint64
			for {
				got := metric()
				s.evs.wait(t, key(event.BusSlowConsumer), uint64(got))
				if reports = s.evs.count(key(event.BusSlowConsumer)); float64(reports) == metric() {
					break
				}
			}
			if got := metric(); got != float64(reports) || sub.Dropped() == 0 {
				t.Fatalf("heddle_bus_dropped_messages_total %v, bus.slow_consumer events %d (N summed), Dropped %d; want the metric equal to the events, and drops",
					got, reports, sub.Dropped())
			}
		})
	}
}
