package heddle_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// flowBenchWindow bounds the tasks in flight, so no subscription's pending
// limit is ever reached and every task is answered.
const flowBenchWindow = 512

type flowEcho struct {
	Text string  `json:"text"`
	N    float64 `json:"n"`
}

// BenchmarkTaskPath measures tasks per second through the whole task path:
// caller → heddle.tasks.incoming → Router → heddle.tasks.echo.standard →
// Worker (echo handler, input and output contracts) → heddle.results.default
// → caller, each actor on its own connection, with up to flowBenchWindow
// tasks in flight.
//
// The baselines run in the same benchmark: raw_nats_1hop is raw nats.go
// publish → queue subscriber → publish of the same bytes back, on the same
// embedded server; raw_nats_2hop adds a second queue subscriber in between,
// the same number of hops as router + worker, with no decoding at all.
func BenchmarkTaskPath(b *testing.B) {
	for _, tr := range natstest.Transports() {
		b.Run(tr.Name+"/heddle", func(b *testing.B) {
			flowBenchHeddle(b, tr.Connector(b))
		})
		// The same path with an observer on every actor that wants no
		// event: what the seam costs a user whose observer is selective.
		b.Run(tr.Name+"/heddle_observer_wants_none", func(b *testing.B) {
			flowBenchHeddle(b, tr.Connector(b), heddle.WithObserver(event.Only(event.ObserverFunc(func(context.Context, event.Event) {}))))
		})
	}
	b.Run("natsbus/raw_nats_1hop", func(b *testing.B) { flowBenchRaw(b, 1) })
	b.Run("natsbus/raw_nats_2hop", func(b *testing.B) { flowBenchRaw(b, 2) })
}

func flowBenchHeddle(b *testing.B, connect func() bus.Bus, opts ...heddle.Option) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rt, err := router.New(connect(), router.Config{}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	wk, err := worker.New(connect(), "echo", func(_ context.Context, in flowEcho) (flowEcho, error) {
		return in, nil
	}, worker.Config{}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 2)
	for _, a := range []interface{ Run(context.Context) error }{rt, wk} {
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

	task := heddle.NewTaskMessage("echo", map[string]any{"text": "Heddle routes tasks.", "n": 42})
	data, err := task.Encode()
	if err != nil {
		b.Fatal(err)
	}
	flowBenchCaller(b, ctx, connect(), func() []byte { return data })
}

// flowBenchCaller publishes b.N tasks from next on heddle.tasks.incoming
// through caller, at most flowBenchWindow unanswered, and returns when
// every one has its result on heddle.results.default.
func flowBenchCaller(b *testing.B, ctx context.Context, caller bus.Bus, next func() []byte) {
	window := make(chan struct{}, flowBenchWindow)
	sub, err := caller.Subscribe(ctx, heddle.SubjectResultsDefault, func(context.Context, *bus.Msg) error {
		<-window
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	flowBenchLoop(b, window, func() error {
		return caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming, Data: next()})
	})
}

func flowBenchRaw(b *testing.B, hops int) {
	url := natstest.RunServer(b)
	conn := func() *nats.Conn {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}
	subjects := []string{"bench.raw.incoming", "bench.raw.worker", "bench.raw.results"}[3-hops-1:]
	for i := range hops {
		nc := conn()
		next := subjects[i+1]
		if _, err := nc.QueueSubscribe(subjects[i], "q", func(m *nats.Msg) {
			_ = nc.Publish(next, m.Data)
		}); err != nil {
			b.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	caller := conn()
	window := make(chan struct{}, flowBenchWindow)
	if _, err := caller.Subscribe(subjects[hops], func(*nats.Msg) { <-window }); err != nil {
		b.Fatal(err)
	}
	if err := caller.Flush(); err != nil {
		b.Fatal(err)
	}
	task := heddle.NewTaskMessage("echo", map[string]any{"text": "Heddle routes tasks.", "n": 42})
	data, err := task.Encode()
	if err != nil {
		b.Fatal(err)
	}
	flowBenchLoop(b, window, func() error { return caller.Publish(subjects[0], data) })
}

// flowBenchLoop publishes b.N tasks, at most flowBenchWindow unanswered,
// and returns when every one has been answered.
func flowBenchLoop(b *testing.B, window chan struct{}, publish func() error) {
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		window <- struct{}{}
		if err := publish(); err != nil {
			b.Fatal(err)
		}
	}
	for range flowBenchWindow {
		window <- struct{}{}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}
