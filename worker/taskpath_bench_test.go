package worker

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/router"
)

// taskPathWindow bounds the tasks in flight, as flowBenchWindow does in the
// root package's BenchmarkTaskPath.
const taskPathWindow = 512

type taskPathEcho struct {
	Text string  `json:"text"`
	N    float64 `json:"n"`
}

// BenchmarkTaskPath is the root package's BenchmarkTaskPath (caller →
// heddle.tasks.incoming → Router → Worker with a typed echo handler and its
// contracts → heddle.results.default → caller, each actor on its own
// connection, up to 512 tasks in flight) run with each way the worker can
// make a handler attempt's context, side by side in one run:
//
//   - lazyctx: internal/lazyctx, what the worker uses;
//   - std: context.WithDeadline(context.WithValue(...)) and its cancel
//     func, the standard context lazyctx stands for.
//
// cpu-ns/op is the CPU time the process spent per task (where the system
// reports it), which depends less than ns/op on the machine's load. Run
// the variants interleaved (see BENCHMARKS.md, "The handler's context").
func BenchmarkTaskPath(b *testing.B) {
	transports := []struct {
		name    string
		connect func(b *testing.B) func() bus.Bus
	}{
		{"membus", taskPathMembus},
		{"natsbus", taskPathNatsbus},
	}
	for _, tr := range transports {
		for _, v := range []struct {
			name string
			std  bool
		}{{"lazyctx", false}, {"std", true}} {
			b.Run(tr.name+"/"+v.name, func(b *testing.B) {
				taskPath(b, tr.connect(b), v.std)
			})
		}
	}
}

func taskPathMembus(b *testing.B) func() bus.Bus {
	first := membus.New()
	b.Cleanup(func() { _ = first.Close() })
	used := false
	return func() bus.Bus {
		if !used {
			used = true
			return first
		}
		c := first.Connect()
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
}

func taskPathNatsbus(b *testing.B) func() bus.Bus {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		b.Fatal("embedded NATS server not ready")
	}
	url := s.ClientURL()
	return func() bus.Bus {
		c, err := natsbus.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
}

func taskPath(b *testing.B, connect func() bus.Bus, stdTaskCtx bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rt, err := router.New(connect(), router.Config{})
	if err != nil {
		b.Fatal(err)
	}
	wk, err := New(connect(), "echo", func(_ context.Context, in taskPathEcho) (taskPathEcho, error) {
		return in, nil
	}, Config{})
	if err != nil {
		b.Fatal(err)
	}
	wk.stdTaskCtx = stdTaskCtx
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
		if s := wk.Stats(); s.Failed != 0 {
			b.Errorf("worker stats %+v", s)
		}
	}()
	<-rt.Ready()
	<-wk.Ready()

	caller := connect()
	window := make(chan struct{}, taskPathWindow)
	sub, err := caller.Subscribe(ctx, heddle.SubjectResultsDefault, func(context.Context, *bus.Msg) error {
		<-window
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	data, err := heddle.NewTaskMessage("echo", map[string]any{"text": "Heddle routes tasks.", "n": 42}).Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0, cpuOK := processCPU()
	b.ResetTimer()
	for b.Loop() {
		window <- struct{}{}
		if err := caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming, Data: data}); err != nil {
			b.Fatal(err)
		}
	}
	for range taskPathWindow {
		window <- struct{}{}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
	if cpu1, ok := processCPU(); ok && cpuOK {
		// CPU time of the whole process (caller, router, worker and, on
		// natsbus, the embedded server) per task: on a loaded machine it
		// moves less than ns/op with what else runs there.
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
}
