package heddle_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/natsbus"
)

// streamBenchLatencies records each iteration's duration and reports the
// p50 and p99 in microseconds.
type streamBenchLatencies []time.Duration

func (l streamBenchLatencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	pct := func(p float64) float64 {
		i := int(p * float64(len(s)-1))
		return float64(s[i].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50_us")
	b.ReportMetric(pct(0.99), "p99_us")
}

// streamBenchResponder answers every task on the worker subject with a
// completed result echoing the payload, as a minimal worker would.
func streamBenchResponder(b *testing.B, conn bus.Bus, workerType string, queue string) {
	b.Helper()
	var opts []bus.SubscribeOption
	if queue != "" {
		opts = append(opts, bus.Queue(queue))
	}
	_, err := conn.Subscribe(context.Background(), heddle.WorkerSubjectAllTiers(workerType), func(ctx context.Context, m *bus.Msg) error {
		task, err := heddle.DecodeTaskMessage(m.Data)
		if err != nil {
			return err
		}
		data, err := task.Result(heddle.StatusCompleted, task.Payload, nil).Encode()
		if err != nil {
			return err
		}
		return conn.Publish(ctx, &bus.Msg{Subject: task.ResultSubject(), Data: data})
	}, opts...)
	if err != nil {
		b.Fatal(err)
	}
}

// streamBenchRawResponder is the worker of the round-trip benchmarks: a
// raw nats.go subscription doing the least a worker must, so the
// comparison measures the caller's side. It reads the task_id by scanning
// the bytes and splices it into a result encoded once; the result goes to
// heddle.results.default, where tasks without parent_task_id report.
func streamBenchRawResponder(b *testing.B, url, workerType string) *nats.Conn {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	tmpl, err := heddle.NewTaskResult("TASKID", workerType, heddle.StatusCompleted).Encode()
	if err != nil {
		b.Fatal(err)
	}
	before, after, _ := bytes.Cut(tmpl, []byte("TASKID"))
	key := []byte(`"task_id":"`)
	if _, err := nc.Subscribe(heddle.WorkerSubjectAllTiers(workerType), func(m *nats.Msg) {
		_, rest, ok := bytes.Cut(m.Data, key)
		id, _, ok2 := bytes.Cut(rest, []byte(`"`))
		if !ok || !ok2 {
			b.Errorf("no task_id in %s", m.Data)
			return
		}
		out := make([]byte, 0, len(before)+len(id)+len(after))
		out = append(append(append(out, before...), id...), after...)
		_ = nc.Publish(heddle.SubjectResultsDefault, out)
	}); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	return nc
}

// BenchmarkDispatchAndWait measures one task's round trip, published
// straight to the worker subject, against raw nats.go request/reply on the
// same embedded server in the same run: heddle is the DispatchAndWait
// function (it subscribes and unsubscribes on every call), heddle_caller a
// Caller (one subscription kept, as nats.go keeps its inbox). Both answer
// through streamBenchRawResponder; the raw responder echoes the request.
func BenchmarkDispatchAndWait(b *testing.B) {
	url := contracttest.RunServer(b)
	ctx := context.Background()

	b.Run("natsbus/heddle", func(b *testing.B) {
		caller, err := natsbus.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer caller.Close()
		defer streamBenchRawResponder(b, url, "bench_echo").Close()
		payload := map[string]any{"text": "hello"}
		lat := make(streamBenchLatencies, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			start := time.Now()
			res, err := heddle.DispatchAndWait(ctx, caller, heddle.NewTaskMessage("bench_echo", payload),
				heddle.DispatchDirect(), heddle.DispatchTimeout(10*time.Second))
			if err != nil || res.Status != heddle.StatusCompleted {
				b.Fatalf("DispatchAndWait: %v %v", res, err)
			}
			lat = append(lat, time.Since(start))
		}
		lat.report(b)
	})

	b.Run("natsbus/heddle_caller", func(b *testing.B) {
		conn, err := natsbus.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		defer streamBenchRawResponder(b, url, "bench_echo").Close()
		caller, err := heddle.NewCaller(ctx, conn, heddle.SubjectResultsDefault)
		if err != nil {
			b.Fatal(err)
		}
		defer caller.Close()
		payload := map[string]any{"text": "hello"}
		lat := make(streamBenchLatencies, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			start := time.Now()
			res, err := caller.DispatchAndWait(ctx, heddle.NewTaskMessage("bench_echo", payload),
				heddle.DispatchDirect(), heddle.DispatchTimeout(10*time.Second))
			if err != nil || res.Status != heddle.StatusCompleted {
				b.Fatalf("DispatchAndWait: %v %v", res, err)
			}
			lat = append(lat, time.Since(start))
		}
		lat.report(b)
	})

	b.Run("natsbus/raw_request_reply", func(b *testing.B) {
		caller, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer caller.Close()
		worker, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer worker.Close()
		if _, err := worker.Subscribe("bench.raw.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
			b.Fatal(err)
		}
		if err := worker.Flush(); err != nil {
			b.Fatal(err)
		}
		data, err := heddle.NewTaskMessage("bench_echo", map[string]any{"text": "hello"}).Encode()
		if err != nil {
			b.Fatal(err)
		}
		lat := make(streamBenchLatencies, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			start := time.Now()
			if _, err := caller.Request("bench.raw.echo", data, 10*time.Second); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		lat.report(b)
	})
}

// BenchmarkOrchestratorFanOut1000 measures one goal fanned out into 1,000
// subtasks over 4 echo workers, collected and synthesized, end to end from
// SubmitGoal to its final result (ns/op is per goal).
func BenchmarkOrchestratorFanOut1000(b *testing.B) {
	const subtasks = 1000
	for _, tr := range []struct {
		name    string
		connect func(b *testing.B) func() bus.Bus
	}{
		{"membus", func(b *testing.B) func() bus.Bus {
			first := membus.New()
			b.Cleanup(func() { _ = first.Close() })
			return func() bus.Bus { c := first.Connect(); b.Cleanup(func() { _ = c.Close() }); return c }
		}},
		{"natsbus", func(b *testing.B) func() bus.Bus {
			url := contracttest.RunServer(b)
			return func() bus.Bus {
				c, err := natsbus.Connect(url)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = c.Close() })
				return c
			}
		}},
	} {
		b.Run(tr.name, func(b *testing.B) {
			connect := tr.connect(b)
			for range 4 {
				streamBenchResponder(b, connect(), "bench_fan", heddle.WorkerQueueGroup("bench_fan"))
			}
			o, err := heddle.NewOrchestrator(connect(), heddle.OrchestratorConfig{
				Decompose: func(_ context.Context, g heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) {
					tasks := make([]heddle.TaskMessage, subtasks)
					for i := range tasks {
						tasks[i] = heddle.NewTaskMessage("bench_fan", map[string]any{"i": i})
					}
					return tasks, nil
				},
				Synthesize: func(_ context.Context, _ heddle.OrchestratorGoal, rs []heddle.TaskResult) (map[string]any, error) {
					return map[string]any{"count": len(rs)}, nil
				},
				Timeout:        time.Minute,
				DispatchDirect: true,
			})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- o.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					b.Error(err)
				}
			}()
			<-o.Ready()
			caller := connect()
			b.ResetTimer()
			for b.Loop() {
				res, err := heddle.SubmitGoal(ctx, caller, heddle.NewOrchestratorGoal("fan out", nil), time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				if got := res.Output["count"]; got != float64(subtasks) {
					b.Fatalf("final result counted %v subtasks, want %d: %+v", got, subtasks, res)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/goal")
		})
	}
}
