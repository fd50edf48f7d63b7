package heddle_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// cpuBenchBlock is how many tasks one variant of BenchmarkTaskPathCPU
// runs before the next takes its turn.
const cpuBenchBlock = 2048

// BenchmarkTaskPathCPU measures what one task costs the processes that
// carry it, several task paths side by side on one NATS server, their
// blocks of cpuBenchBlock tasks interleaved (the order rotated every
// round), so that each sees the same load:
//
//   - heddle: caller → Router → typed echo worker (flowEcho, its input and
//     output contracts checked) → caller, as BenchmarkTaskPath, with the
//     caller decoding each result (heddle.DecodeTaskResult), every actor
//     logging to a logger that is off;
//   - heddle_logging: the same actors, their logger on: a slog.TextHandler
//     at INFO writing each record to os.DevNull, as slog.Default writes a
//     line per record (the worker's one worker.completed per task);
//   - hand_rolled: the same three hops written by hand on nats.go, decoding
//     and encoding the same JSON with encoding/json at the router (the task
//     with its payload as json.RawMessage, re-encoded), the worker (the
//     task with a typed payload; the result encoded) and the caller (the
//     result decoded), validating nothing;
//   - raw_nats_2hop: the bytes forwarded through two queue subscribers and
//     back, decoding nothing.
//
// Each variant keeps up to flowBenchWindow tasks in flight and is drained
// before the next runs. Per variant it reports the wall time per task
// (<v>-ns/task), the process's CPU time per task from getrusage
// (<v>-cpu-ns/task) and its heap allocations per task from runtime/metrics
// (<v>-allocs/task), and the ratios the task path's targets are stated
// in: cpu(heddle/hand_rolled), cpu(logging/heddle) and
// tasks/s(heddle/raw_2hop). The process's CPU time includes the NATS
// server's when it is embedded; with HEDDLE_TEST_NATS_URL naming a server
// of its own process (as .bench/cpu.sh runs it) it is the clients' alone.
func BenchmarkTaskPathCPU(b *testing.B) {
	url := natstest.RunServer(b)
	logOn := new(atomic.Bool)
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = devNull.Close() })
	logger := slog.New(&switchHandler{on: logOn, h: slog.NewTextHandler(devNull, nil)})

	heddlePath := cpuBenchHeddle(b, logger)
	paths := []*cpuPath{
		{name: "heddle", run: heddlePath, before: func() { logOn.Store(false) }},
		{name: "heddle_logging", run: heddlePath, before: func() { logOn.Store(true) }},
		{name: "hand_rolled", run: cpuBenchHandRolled(b, url)},
		{name: "raw_nats_2hop", run: cpuBenchRaw(b, url)},
	}
	// Warm every path up (connections, buffers, the worker's pool).
	for _, p := range paths {
		p.block(b, cpuBenchBlock/4)
		p.reset()
	}
	b.ResetTimer()
	for round := 0; round*cpuBenchBlock < b.N; round++ {
		n := min(cpuBenchBlock, b.N-round*cpuBenchBlock)
		for i := range paths {
			j := (i + round) % len(paths)
			if round%2 == 1 {
				j = (len(paths) - 1 - i + round) % len(paths)
			}
			paths[j].block(b, n)
		}
	}
	b.StopTimer()
	logOn.Store(false)
	byName := map[string]*cpuPath{}
	for _, p := range paths {
		byName[p.name] = p
		b.ReportMetric(p.wall.Seconds()*1e9/float64(p.tasks), p.name+"-ns/task")
		b.ReportMetric(p.cpu.Seconds()*1e9/float64(p.tasks), p.name+"-cpu-ns/task")
		b.ReportMetric(float64(p.allocs)/float64(p.tasks), p.name+"-allocs/task")
	}
	perTask := func(p *cpuPath) float64 { return p.cpu.Seconds() / float64(p.tasks) }
	rate := func(p *cpuPath) float64 { return float64(p.tasks) / p.wall.Seconds() }
	b.ReportMetric(perTask(byName["heddle"])/perTask(byName["hand_rolled"]), "cpu(heddle/hand_rolled)")
	b.ReportMetric(perTask(byName["heddle_logging"])/perTask(byName["heddle"]), "cpu(logging/heddle)")
	b.ReportMetric(rate(byName["heddle"])/rate(byName["raw_nats_2hop"]), "tasks/s(heddle/raw_2hop)")
}

// cpuPath is one variant of BenchmarkTaskPathCPU and what its blocks took.
type cpuPath struct {
	name   string
	run    func(n int) error // sends n tasks and returns once each was answered
	before func()

	tasks  int
	wall   time.Duration
	cpu    time.Duration
	allocs uint64
}

func (p *cpuPath) reset() { p.tasks, p.wall, p.cpu, p.allocs = 0, 0, 0, 0 }

// block runs n tasks through p, adding what they took to its sums.
func (p *cpuPath) block(b *testing.B, n int) {
	if p.before != nil {
		p.before()
	}
	cpu0, allocs0, wall0 := processCPU(b), heapAllocs(), time.Now()
	if err := p.run(n); err != nil {
		b.Fatal(err)
	}
	p.wall += time.Since(wall0)
	p.cpu += processCPU(b) - cpu0
	p.allocs += heapAllocs() - allocs0
	p.tasks += n
}

// processCPU returns the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var allocMetrics = []string{"/gc/heap/allocs:objects", "/gc/heap/tiny/allocs:objects"}

// heapAllocs returns the heap allocations made so far, tiny ones included
// (as testing's allocs/op counts them).
func heapAllocs() uint64 {
	s := make([]metrics.Sample, len(allocMetrics))
	for i, name := range allocMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	var n uint64
	for _, v := range s {
		n += v.Value.Uint64()
	}
	return n
}

// window bounds the tasks in flight: a publish takes a slot, an answer
// gives it back.
type window chan struct{}

// send publishes n tasks through w and waits until each was answered.
func (w window) send(n int, publish func() error) error {
	for range n {
		w <- struct{}{}
		if err := publish(); err != nil {
			return err
		}
	}
	for range cap(w) {
		w <- struct{}{}
	}
	for range cap(w) {
		<-w
	}
	return nil
}

// cpuBenchHeddle starts a Router and a typed echo worker, each on its own
// natsbus connection and logging to logger, and returns the run of a
// caller that publishes tasks and decodes their results.
func cpuBenchHeddle(b *testing.B, logger *slog.Logger) func(int) error {
	var connect func() bus.Bus
	for _, tr := range natstest.Transports() {
		if tr.Name == "natsbus" {
			connect = tr.Connector(b)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt, err := router.New(connect(), router.Config{}, heddle.WithLogger(logger))
	if err != nil {
		b.Fatal(err)
	}
	wk, err := worker.New(connect(), "echo", func(_ context.Context, in flowEcho) (flowEcho, error) {
		return in, nil
	}, worker.Config{NoHeartbeat: true}, heddle.WithLogger(logger))
	if err != nil {
		b.Fatal(err)
	}
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
	})
	<-rt.Ready()
	<-wk.Ready()

	caller := connect()
	w := make(window, flowBenchWindow)
	var bad atomic.Uint64
	_, err = caller.Subscribe(ctx, heddle.SubjectResultsDefault, func(_ context.Context, m *bus.Msg) error {
		if r, err := heddle.DecodeTaskResult(m.Data); err != nil || r.Status != heddle.StatusCompleted {
			bad.Add(1)
		}
		<-w
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	data := cpuBenchTask(b)
	return func(n int) error {
		err := w.send(n, func() error {
			return caller.Publish(ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming, Data: data})
		})
		if k := bad.Load(); err == nil && k > 0 {
			err = fmt.Errorf("%d results were not completed", k)
		}
		return err
	}
}

func cpuBenchTask(b *testing.B) []byte {
	task := heddle.NewTaskMessage("echo", map[string]any{"text": "Heddle routes tasks.", "n": 42})
	data, err := task.Encode()
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// handTask is a TaskMessage as an application written by hand on nats.go
// and encoding/json would declare it.
type handTask[P any] struct {
	TaskID       string         `json:"task_id"`
	ParentTaskID *string        `json:"parent_task_id"`
	WorkerType   string         `json:"worker_type"`
	Payload      P              `json:"payload"`
	ModelTier    string         `json:"model_tier"`
	Priority     string         `json:"priority"`
	MaxRetries   int            `json:"max_retries"`
	RetryCount   int            `json:"retry_count"`
	CreatedAt    time.Time      `json:"created_at"`
	RequestID    *string        `json:"request_id"`
	Metadata     map[string]any `json:"metadata"`
}

// handResult is its TaskResult.
type handResult[O any] struct {
	TaskID           string         `json:"task_id"`
	ParentTaskID     *string        `json:"parent_task_id"`
	WorkerType       string         `json:"worker_type"`
	Status           string         `json:"status"`
	Output           O              `json:"output"`
	Error            *string        `json:"error"`
	ModelUsed        *string        `json:"model_used"`
	TokenUsage       map[string]int `json:"token_usage"`
	ProcessingTimeMS int            `json:"processing_time_ms"`
	CompletedAt      time.Time      `json:"completed_at"`
}

// cpuBenchHandRolled starts the hand-written router and worker, each on a
// connection of its own, and returns the run of its caller.
func cpuBenchHandRolled(b *testing.B, url string) func(int) error {
	prefix := cpuBenchPrefix()
	incoming, tasks, results := prefix+"incoming", prefix+"tasks.echo.standard", prefix+"results"
	conn := func() *nats.Conn {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}
	var bad atomic.Uint64
	rc := conn()
	if _, err := rc.QueueSubscribe(incoming, "router", func(m *nats.Msg) {
		var t handTask[json.RawMessage]
		if err := json.Unmarshal(m.Data, &t); err != nil {
			bad.Add(1)
			return
		}
		out, err := json.Marshal(&t)
		if err != nil {
			bad.Add(1)
			return
		}
		_ = rc.Publish(tasks, out)
	}); err != nil {
		b.Fatal(err)
	}
	wc := conn()
	if _, err := wc.QueueSubscribe(tasks, "workers", func(m *nats.Msg) {
		start := time.Now()
		var t handTask[flowEcho]
		if err := json.Unmarshal(m.Data, &t); err != nil {
			bad.Add(1)
			return
		}
		now := time.Now()
		out, err := json.Marshal(&handResult[flowEcho]{TaskID: t.TaskID, ParentTaskID: t.ParentTaskID, WorkerType: t.WorkerType,
			Status: "completed", Output: t.Payload, TokenUsage: map[string]int{},
			ProcessingTimeMS: int(now.Sub(start).Milliseconds()), CompletedAt: now.UTC()})
		if err != nil {
			bad.Add(1)
			return
		}
		_ = wc.Publish(results, out)
	}); err != nil {
		b.Fatal(err)
	}
	for _, nc := range []*nats.Conn{rc, wc} {
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	caller := conn()
	w := make(window, flowBenchWindow)
	if _, err := caller.Subscribe(results, func(m *nats.Msg) {
		var r handResult[flowEcho]
		if err := json.Unmarshal(m.Data, &r); err != nil || r.Status != "completed" {
			bad.Add(1)
		}
		<-w
	}); err != nil {
		b.Fatal(err)
	}
	if err := caller.Flush(); err != nil {
		b.Fatal(err)
	}
	data := cpuBenchTask(b)
	return func(n int) error {
		err := w.send(n, func() error { return caller.Publish(incoming, data) })
		if k := bad.Load(); err == nil && k > 0 {
			err = fmt.Errorf("the hand-rolled path failed %d tasks", k)
		}
		return err
	}
}

// cpuBenchRaw starts two queue subscribers forwarding the bytes
// untouched and returns the run of a caller through them.
func cpuBenchRaw(b *testing.B, url string) func(int) error {
	prefix := cpuBenchPrefix()
	subjects := []string{prefix + "incoming", prefix + "worker", prefix + "results"}
	conn := func() *nats.Conn {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}
	for i := range 2 {
		nc := conn()
		next := subjects[i+1]
		if _, err := nc.QueueSubscribe(subjects[i], "q", func(m *nats.Msg) { _ = nc.Publish(next, m.Data) }); err != nil {
			b.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	caller := conn()
	w := make(window, flowBenchWindow)
	if _, err := caller.Subscribe(subjects[2], func(*nats.Msg) { <-w }); err != nil {
		b.Fatal(err)
	}
	if err := caller.Flush(); err != nil {
		b.Fatal(err)
	}
	data := cpuBenchTask(b)
	return func(n int) error {
		return w.send(n, func() error { return caller.Publish(subjects[0], data) })
	}
}

// cpuBenchPrefix returns subjects of their own for one path, so that paths
// on a shared server never meet.
func cpuBenchPrefix() string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return "bench.cpu." + hex.EncodeToString(r[:]) + "."
}

// switchHandler is a slog.Handler turned on and off while the actors
// using it run: off, it enables nothing, as slog.DiscardHandler; on, it
// is h.
type switchHandler struct {
	on *atomic.Bool
	h  slog.Handler
}

func (s *switchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return s.on.Load() && s.h.Enabled(ctx, l)
}

func (s *switchHandler) Handle(ctx context.Context, r slog.Record) error { return s.h.Handle(ctx, r) }

func (s *switchHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &switchHandler{on: s.on, h: s.h.WithAttrs(attrs)}
}

func (s *switchHandler) WithGroup(name string) slog.Handler {
	return &switchHandler{on: s.on, h: s.h.WithGroup(name)}
}
