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
// make a handler attempt's context, in one run:
//
//   - lazyctx: internal/lazyctx, what the worker uses;
//   - std: context.WithDeadline(context.WithValue(...)) and its cancel
//     func, the standard context lazyctx stands for;
//   - interleaved: both task paths at once, each on a broker (membus) or
//     server (natsbus) of its own, fed alternately in batches of
//     taskPathBatch tasks; it reports each variant's time and CPU time per
//     task and std_vs_lazyctx_%, what the standard context adds to the
//     time per task. Both variants see the same load, so on a shared
//     machine this is the figure to read.
//
// cpu-ns/op is the CPU time the process spent per task (where the system
// reports it), which depends less than ns/op on what else the machine
// runs. See BENCHMARKS.md, "The handler's context".
func BenchmarkTaskPath(b *testing.B) {
	transports := []struct {
		name    string
		connect func(b *testing.B) func() bus.Bus
	}{
		{"membus", taskPathMembus},
		{"natsbus", taskPathNatsbus},
	}
	for _, tr := range transports {
		b.Run(tr.name+"/lazyctx", func(b *testing.B) {
			taskPath(b, startTaskPath(b, tr.connect(b), false))
		})
		b.Run(tr.name+"/std", func(b *testing.B) {
			taskPath(b, startTaskPath(b, tr.connect(b), true))
		})
		b.Run(tr.name+"/interleaved", func(b *testing.B) {
			taskPathInterleaved(b, startTaskPath(b, tr.connect(b), false), startTaskPath(b, tr.connect(b), true))
		})
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

// taskPathRig is one task path, started: publish sends one task in, and
// window holds a token for each task not yet answered.
type taskPathRig struct {
	publish func() error
	window  chan struct{}
}

// startTaskPath starts a Router and an echo Worker on connections of their
// own, the worker making its handlers' contexts as stdTaskCtx says, and
// subscribes a caller to the results. They stop when b ends.
func startTaskPath(b *testing.B, connect func() bus.Bus, stdTaskCtx bool) *taskPathRig {
	ctx, cancel := context.WithCancel(context.Background())
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
	b.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				b.Error(err)
			}
		}
		if s := wk.Stats(); s.Failed != 0 {
			b.Errorf("worker stats %+v", s)
		}
	})
	<-rt.Ready()
	<-wk.Ready()

	caller := connect()
	r := &taskPathRig{window: make(chan struct{}, taskPathWindow)}
	if _, err := caller.Subscribe(ctx, heddle.SubjectResultsDefault, func(context.Context, *bus.Msg) error {
		<-r.window
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	data, err := heddle.NewTaskMessage("echo", map[string]any{"text": "Heddle routes tasks.", "n": 42}).Encode()
	if err != nil {
		b.Fatal(err)
	}
	r.publish = func() error {
		return caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming, Data: data})
	}
	return r
}

// send publishes one task once fewer than taskPathWindow are in flight.
func (r *taskPathRig) send(b *testing.B) {
	r.window <- struct{}{}
	if err := r.publish(); err != nil {
		b.Fatal(err)
	}
}

// drain returns once every task sent has been answered.
func (r *taskPathRig) drain() {
	for range taskPathWindow {
		r.window <- struct{}{}
	}
	for range taskPathWindow {
		<-r.window
	}
}

func taskPath(b *testing.B, r *taskPathRig) {
	b.ReportAllocs()
	cpu0, cpuOK := processCPU()
	b.ResetTimer()
	for b.Loop() {
		r.send(b)
	}
	r.drain()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
	if cpu1, ok := processCPU(); ok && cpuOK {
		// CPU time of the whole process (caller, router, worker and, on
		// natsbus, the embedded server) per task.
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

// taskPathBatch is how many tasks taskPathInterleaved sends down one task
// path before it drains it and turns to the other.
const taskPathBatch = 2048

// taskPathInterleaved sends b.N tasks down lazy's and std's task paths in
// turn, taskPathBatch at a time, and reports the time and CPU time each
// took per task.
func taskPathInterleaved(b *testing.B, lazy, std *taskPathRig) {
	var (
		rigs       = [2]*taskPathRig{lazy, std}
		n          [2]int
		wall, cpu  [2]int64
		cur, batch int
		start      = time.Now()
		cpuStart   int64
	)
	cpuStart, cpuOK := processCPU()
	turn := func() {
		rigs[cur].drain()
		now := time.Now()
		wall[cur] += now.Sub(start).Nanoseconds()
		c, ok := processCPU()
		cpuOK = cpuOK && ok
		cpu[cur] += c - cpuStart
		n[cur] += batch
		cur, batch, start, cpuStart = 1-cur, 0, now, c
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rigs[cur].send(b)
		if batch++; batch == taskPathBatch {
			turn()
		}
	}
	turn()
	b.StopTimer()
	if n[0] == 0 || n[1] == 0 {
		return // too few tasks for both; b.Loop will ask for more
	}
	perTask := func(v [2]int64, i int) float64 { return float64(v[i]) / float64(n[i]) }
	b.ReportMetric(perTask(wall, 0), "lazyctx-ns/task")
	b.ReportMetric(perTask(wall, 1), "std-ns/task")
	b.ReportMetric(100*(perTask(wall, 1)/perTask(wall, 0)-1), "std_vs_lazyctx_%")
	if cpuOK {
		b.ReportMetric(perTask(cpu, 0), "lazyctx-cpu-ns/task")
		b.ReportMetric(perTask(cpu, 1), "std-cpu-ns/task")
		b.ReportMetric(100*(perTask(cpu, 1)/perTask(cpu, 0)-1), "std_vs_lazyctx_cpu_%")
	}
}
