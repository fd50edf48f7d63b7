package router_test

import (
	"context"
	"log/slog"
	"os"
	"syscall"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/router"
)

// routerBenchWindow bounds the tasks in flight, so a fast publisher never
// overflows a subscription's pending limits.
const routerBenchWindow = 1024

// BenchmarkRouterRoute measures one task from the caller through the
// Router to the worker subject, on each bus. The "forward" case is the
// baseline: a subscriber that republishes the bytes to the worker subject
// without decoding them, the same two hops with no routing work.
func BenchmarkRouterRoute(b *testing.B) {
	for _, tr := range natstest.Transports() {
		b.Run(tr.Name, func(b *testing.B) {
			cases := []struct {
				name       string
				workerType string
				start      func(b *testing.B, bs bus.Bus)
			}{
				{"forward", "echo", routerBenchForwarder},
				{"router", "echo", routerBenchRouter},
				// Without the worker check: what the forward table costs.
				{"router-nocheck", "echo", routerBenchRouterNoCheck},
				// With an interceptor and a propagator (each a no-op): the
				// route runs as an event.Op and every task is re-encoded
				// with its trace context.
				{"router-traced", "echo", routerBenchRouterTraced},
				// The override changes the tier, so the task is re-encoded.
				{"router-override", "resizer", routerBenchRouter},
			}
			for _, c := range cases {
				b.Run(c.name, func(b *testing.B) {
					routerBenchRun(b, tr.Connector(b), c.workerType, c.start)
				})
			}
		})
	}
}

func routerBenchRun(b *testing.B, connect func() bus.Bus, workerType string, start func(*testing.B, bus.Bus)) {
	caller, wk, middle := connect(), connect(), connect()
	ctx := b.Context()
	start(b, middle)
	window := make(chan struct{}, routerBenchWindow)
	sub, err := wk.Subscribe(ctx, heddle.WorkerSubjectAllTiers(workerType), func(context.Context, *bus.Msg) error {
		<-window
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	m := heddle.NewTaskMessage(workerType, map[string]any{"text": "Heddle routes tasks.", "n": 42})
	data, err := m.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := routerBenchCPU(b)
	for b.Loop() {
		window <- struct{}{}
		if err := caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming, Data: data}); err != nil {
			b.Fatal(err)
		}
	}
	for range routerBenchWindow { // wait for the last tasks
		window <- struct{}{}
	}
	b.ReportMetric(float64(routerBenchCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
}

// routerBenchCPU returns the CPU time (user and system) the process has
// used, in nanoseconds: with the NATS server in a process of its own
// (HEDDLE_TEST_NATS_URL), the CPU of the caller, the router and the
// worker alone, which a loaded machine disturbs less than their wall time.
func routerBenchCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func routerBenchRouter(b *testing.B, bs bus.Bus) { routerBenchStart(b, bs, false) }

func routerBenchRouterNoCheck(b *testing.B, bs bus.Bus) { routerBenchStart(b, bs, true) }

func routerBenchRouterTraced(b *testing.B, bs bus.Bus) {
	routerBenchStart(b, bs, false, heddle.WithInterceptor(routerBenchTracer{}), heddle.WithPropagator(routerBenchTracer{}))
}

// routerBenchTracer is an interceptor and propagator doing nothing but
// pass the operation on and keep the traceparent.
type routerBenchTracer struct{}

func (routerBenchTracer) Intercept(ctx context.Context, _ *event.Op, next event.Next) error {
	return next(ctx)
}
func (routerBenchTracer) Extract(ctx context.Context, _ map[string]string) context.Context {
	return ctx
}
func (routerBenchTracer) Inject(_ context.Context, carrier map[string]string) {
	carrier["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
}

func routerBenchStart(b *testing.B, bs bus.Bus, skipCheck bool, opts ...heddle.Option) {
	r, err := router.New(bs, router.Config{SkipWorkerCheck: skipCheck, Rules: router.StaticRules(router.Rules{
		TierOverrides: map[string]string{"resizer": "local"},
		// Limited, so the bucket is part of the measure, but never empty.
		RateLimits: map[string]router.TierRateLimit{
			"local":    {RatePerSecond: 1e12, Burst: 1 << 30},
			"standard": {RatePerSecond: 1e12, Burst: 1 << 30},
		},
	})}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	routerBenchActor(b, r.Run, r.Ready())
}

func routerBenchForwarder(b *testing.B, bs bus.Bus) {
	subject := heddle.WorkerSubject("echo", heddle.TierStandard)
	sub, err := bs.Subscribe(b.Context(), heddle.SubjectTasksIncoming, func(ctx context.Context, m *bus.Msg) error {
		return bs.Publish(ctx, &bus.Msg{Subject: subject, Data: m.Data})
	}, bus.Queue(heddle.RouterQueueGroup))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Unsubscribe() })
}

func routerBenchActor(b *testing.B, run func(context.Context) error, ready <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
}

func BenchmarkParseRouterRules(b *testing.B) {
	data, err := os.ReadFile("testdata/router_rules.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := router.ParseRules(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeadLetterConsumerReceive measures storing one envelope in a
// full store (so each one also evicts the oldest), on membus.
func BenchmarkDeadLetterConsumerReceive(b *testing.B) {
	connect := natstest.Transports()[0].Connector(b)
	rt, bs := connect(), connect()
	window := make(chan struct{}, routerBenchWindow)
	logger := slog.New(routerBenchReceived{window})
	c, err := deadletter.New(bs, deadletter.Config{Capacity: 100}, heddle.WithLogger(logger))
	if err != nil {
		b.Fatal(err)
	}
	routerBenchActor(b, c.Run, c.Ready())
	env, err := heddle.NewDeadLetter("rate_limited: tier 'local' has no available capacity",
		[]byte(`{"task_id":"t-1","worker_type":"echo","payload":{}}`)).Encode()
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		window <- struct{}{}
		if err := rt.Publish(ctx, &bus.Msg{Subject: heddle.SubjectDeadLetter, Data: env}); err != nil {
			b.Fatal(err)
		}
	}
	for range routerBenchWindow {
		window <- struct{}{}
	}
}

// routerBenchReceived frees a window slot at each dead_letter.received.
type routerBenchReceived struct{ window chan struct{} }

func (h routerBenchReceived) Enabled(context.Context, slog.Level) bool { return true }
func (h routerBenchReceived) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "dead_letter.received" {
		<-h.window
	}
	return nil
}
func (h routerBenchReceived) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h routerBenchReceived) WithGroup(string) slog.Handler      { return h }
