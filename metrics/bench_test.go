package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/metrics"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// benchWindow bounds the tasks in flight, as the root package's
// BenchmarkTaskPath does.
const benchWindow = 512

type benchEcho struct {
	Text string  `json:"text"`
	N    float64 `json:"n"`
}

// BenchmarkTaskPath is the root package's BenchmarkTaskPath (caller →
// router → typed echo worker with its contracts → caller, each on its own
// connection, up to benchWindow tasks in flight) with the metrics off and
// on, in one run: off has no observer; observer gives the router and the
// worker Metrics as an observer only (heddle.WithObserver); on gives it
// as observer and interceptor (Metrics.Option), which times each handler
// attempt and routing decision as well.
func BenchmarkTaskPath(b *testing.B) {
	for _, tr := range natstest.Transports() {
		for _, mode := range []string{"off", "observer", "on"} {
			b.Run(tr.Name+"/"+mode, func(b *testing.B) {
				var opts []heddle.Option
				if mode != "off" {
					m, err := metrics.New(prometheus.NewRegistry())
					if err != nil {
						b.Fatal(err)
					}
					opts = append(opts, heddle.WithObserver(m))
					if mode == "on" {
						opts = append(opts, heddle.WithInterceptor(m))
					}
				}
				benchTaskPath(b, tr.Connector(b), opts)
			})
		}
	}
}

func benchTaskPath(b *testing.B, connect func() bus.Bus, opts []heddle.Option) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rt, err := router.New(connect(), router.Config{}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	wk, err := worker.New(connect(), "echo", func(_ context.Context, in benchEcho) (benchEcho, error) {
		return in, nil
	}, worker.Config{NoHeartbeat: true}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 2)
	for _, a := range []heddle.Actor{rt, wk} {
		go func() { done <- a.Run(ctx) }()
	}
	defer func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				b.Error(err)
			}
		}
	}()
	<-rt.Ready()
	<-wk.Ready()

	caller := connect()
	window := make(chan struct{}, benchWindow)
	sub, err := caller.Subscribe(ctx, heddle.SubjectResultsDefault, func(context.Context, *bus.Msg) error {
		<-window
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	task := heddle.NewTaskMessage("echo", map[string]any{"text": "Heddle routes tasks.", "n": 42})
	data, err := task.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		window <- struct{}{}
		if err := caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming, Data: data}); err != nil {
			b.Fatal(err)
		}
	}
	for range benchWindow {
		window <- struct{}{}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkObserveOneTask measures what Metrics adds to each task on the
// task path, alone: the three events of a routed and completed task
// (router.routed, worker.received, worker.completed with its duration)
// counted, per op. The actors build those events only for an observer
// that wants them; that cost is in BenchmarkTaskPath's observer mode.
func BenchmarkObserveOneTask(b *testing.B) {
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	routed := event.Event{Name: event.RouterRouted, Actor: "router", TaskID: "t", WorkerType: "echo", Tier: "standard", Status: "routed"}
	received := event.Event{Name: event.WorkerReceived, Actor: "worker", TaskID: "t", WorkerType: "echo", Tier: "standard"}
	completed := event.Event{Name: event.WorkerCompleted, Actor: "worker", TaskID: "t", WorkerType: "echo", Tier: "standard",
		Status: "completed", Attempt: 1, Duration: 3 * time.Millisecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Observe(ctx, routed)
			m.Observe(ctx, received)
			m.Observe(ctx, completed)
		}
	})
}
