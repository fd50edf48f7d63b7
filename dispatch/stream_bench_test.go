package dispatch_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/orchestrator"
)

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
	return streamBenchRawResponderFor(b, url, workerType, "")
}

// streamBenchRawResponderFor is streamBenchRawResponder for tasks whose
// parent_task_id is parent: the results go to heddle.ResultSubject(parent).
func streamBenchRawResponderFor(b *testing.B, url, workerType, parent string) *nats.Conn {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	r := heddle.NewTaskResult("TASKID", workerType, heddle.StatusCompleted)
	r.ParentTaskID = parent
	subject := heddle.ResultSubject(parent)
	tmpl, err := r.Encode()
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
		_ = nc.Publish(subject, out)
	}); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	return nc
}

// streamBenchRawEcho is the responder of the raw request/reply baseline:
// a nats.go subscription on bench.raw.echo that answers each request with
// its own bytes.
func streamBenchRawEcho(b *testing.B, url string) *nats.Conn {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := nc.Subscribe("bench.raw.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
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
// function, heddle_caller a Caller. Both answer through
// streamBenchRawResponder; the raw responder echoes the request. Run one
// after the other, these sub-benchmarks drift with the machine by more
// than they differ: BenchmarkDispatchAndWaitInterleaved is the comparison.
func BenchmarkDispatchAndWait(b *testing.B) {
	url := natstest.RunServer(b)
	ctx := context.Background()

	b.Run("natsbus/heddle", func(b *testing.B) {
		caller, err := natsbus.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer caller.Close()
		defer streamBenchRawResponder(b, url, "bench_echo").Close()
		payload := map[string]any{"text": "hello"}
		lat := make(testkit.Latencies, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			start := time.Now()
			res, err := dispatch.Request(ctx, caller, heddle.NewTaskMessage("bench_echo", payload),
				dispatch.Direct(), dispatch.Timeout(10*time.Second))
			if err != nil || res.Status != heddle.StatusCompleted {
				b.Fatalf("DispatchAndWait: %v %v", res, err)
			}
			lat = append(lat, time.Since(start))
		}
		lat.Report(b)
	})

	b.Run("natsbus/heddle_caller", func(b *testing.B) {
		conn, err := natsbus.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		defer streamBenchRawResponder(b, url, "bench_echo").Close()
		caller, err := dispatch.NewCaller(ctx, conn, heddle.SubjectResultsDefault)
		if err != nil {
			b.Fatal(err)
		}
		defer caller.Close()
		payload := map[string]any{"text": "hello"}
		lat := make(testkit.Latencies, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			start := time.Now()
			res, err := caller.Request(ctx, heddle.NewTaskMessage("bench_echo", payload),
				dispatch.Direct(), dispatch.Timeout(10*time.Second))
			if err != nil || res.Status != heddle.StatusCompleted {
				b.Fatalf("DispatchAndWait: %v %v", res, err)
			}
			lat = append(lat, time.Since(start))
		}
		lat.Report(b)
	})

	b.Run("natsbus/raw_request_reply", func(b *testing.B) {
		caller, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer caller.Close()
		defer streamBenchRawEcho(b, url).Close()
		data, err := heddle.NewTaskMessage("bench_echo", map[string]any{"text": "hello"}).Encode()
		if err != nil {
			b.Fatal(err)
		}
		lat := make(testkit.Latencies, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			start := time.Now()
			if _, err := caller.Request("bench.raw.echo", data, 10*time.Second); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		lat.Report(b)
	})
}

// BenchmarkDispatchAndWaitInterleaved compares round trips within one
// run, taking the variants in turns of streamBenchBlock recorded calls,
// in an order shuffled for every iteration, so that all see the same state
// of the machine and none always follows the same other: on a small VM, round-trip latency drifts
// between consecutive sub-benchmarks by more than the differences being
// measured. Each turn starts with one unrecorded call, which absorbs what
// the previous variant left running, so every recorded call follows a
// call of its own kind, as in a loop of that variant alone.
//
// The variants: heddle, the DispatchAndWait function on a natsbus.Bus
// (one shared subscription, see bus.Keeper); heddle_caller, a Caller;
// heddle_per_call, the function on a bus that does not implement
// bus.Keeper, so subscribing and unsubscribing on every call; raw, nats.go's
// Request (one shared reply inbox); raw_old_style, nats.go's Request with
// a subscription per request (nats.UseOldRequestStyle), the counterpart of
// heddle_per_call. It reports each variant's p50 and p99 in microseconds
// and the ratios of the p50s: heddle and heddle_caller to raw,
// heddle_per_call to raw_old_style. ns/op covers every call of an
// iteration.
func BenchmarkDispatchAndWaitInterleaved(b *testing.B) {
	url := natstest.RunServer(b)
	ctx := context.Background()
	connect := func() *natsbus.Bus {
		c, err := natsbus.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		return c
	}

	// Each heddle variant's tasks report to a result subject of their own,
	// so that no variant's subscription sees another's results.
	const fnParent, perCallParent = "bench-dispatch-fn", "bench-dispatch-per-call"
	b.Cleanup(streamBenchRawResponderFor(b, url, "bench_echo_fn", fnParent).Close)
	b.Cleanup(streamBenchRawResponderFor(b, url, "bench_echo_per_call", perCallParent).Close)
	b.Cleanup(streamBenchRawResponder(b, url, "bench_echo").Close)
	fnConn := connect()
	// Embedding the interface hides natsbus.Bus's Keep method.
	perCallConn := struct{ bus.Bus }{connect()}
	caller, err := dispatch.NewCaller(ctx, connect(), heddle.SubjectResultsDefault)
	if err != nil {
		b.Fatal(err)
	}
	defer caller.Close()

	rawConn, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer rawConn.Close()
	defer streamBenchRawEcho(b, url).Close()
	rawOldConn, err := nats.Connect(url, nats.UseOldRequestStyle())
	if err != nil {
		b.Fatal(err)
	}
	defer rawOldConn.Close()
	rawData, err := heddle.NewTaskMessage("bench_echo", map[string]any{"text": "hello"}).Encode()
	if err != nil {
		b.Fatal(err)
	}

	payload := map[string]any{"text": "hello"}
	variants := []struct {
		name string
		call func() error
	}{
		{"heddle", func() error {
			task := heddle.NewTaskMessage("bench_echo_fn", payload)
			task.ParentTaskID = fnParent
			res, err := dispatch.Request(ctx, fnConn, task, dispatch.Direct(), dispatch.Timeout(10*time.Second))
			if err == nil && res.Status != heddle.StatusCompleted {
				err = fmt.Errorf("status %s: %s", res.Status, res.Error)
			}
			return err
		}},
		{"heddle_caller", func() error {
			res, err := caller.Request(ctx, heddle.NewTaskMessage("bench_echo", payload),
				dispatch.Direct(), dispatch.Timeout(10*time.Second))
			if err == nil && res.Status != heddle.StatusCompleted {
				err = fmt.Errorf("status %s: %s", res.Status, res.Error)
			}
			return err
		}},
		{"heddle_per_call", func() error {
			task := heddle.NewTaskMessage("bench_echo_per_call", payload)
			task.ParentTaskID = perCallParent
			res, err := dispatch.Request(ctx, perCallConn, task, dispatch.Direct(), dispatch.Timeout(10*time.Second))
			if err == nil && res.Status != heddle.StatusCompleted {
				err = fmt.Errorf("status %s: %s", res.Status, res.Error)
			}
			return err
		}},
		{"raw_old_style", func() error {
			_, err := rawOldConn.Request("bench.raw.echo", rawData, 10*time.Second)
			return err
		}},
		{"raw", func() error {
			_, err := rawConn.Request("bench.raw.echo", rawData, 10*time.Second)
			return err
		}},
	}
	lat := make([]testkit.Latencies, len(variants))
	for i := range lat {
		lat[i] = make(testkit.Latencies, 0, b.N*streamBenchBlock)
	}
	b.ReportAllocs()
	b.ResetTimer()
	// A fixed seed makes the sequence of turns the same in every run.
	rng := rand.New(rand.NewPCG(1, 2))
	order := make([]int, len(variants))
	for i := range order {
		order[i] = i
	}
	for b.Loop() {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			// The first call of a block is not recorded: it absorbs what
			// the previous variant left running (an unsubscription the
			// server has yet to process, a goroutine exiting).
			for j := range streamBenchBlock + 1 {
				start := time.Now()
				if err := variants[i].call(); err != nil {
					b.Fatalf("%s: %v", variants[i].name, err)
				}
				if j > 0 {
					lat[i] = append(lat[i], time.Since(start))
				}
			}
		}
	}
	b.StopTimer()
	p50 := make([]float64, len(variants))
	for i, v := range variants {
		p50[i] = lat[i].Percentile(0.50)
		b.ReportMetric(p50[i], v.name+"_p50_us")
		b.ReportMetric(lat[i].Percentile(0.99), v.name+"_p99_us")
	}
	b.ReportMetric(p50[0]/p50[4], "heddle/raw_p50")
	b.ReportMetric(p50[1]/p50[4], "caller/raw_p50")
	b.ReportMetric(p50[2]/p50[3], "per_call/raw_old_style_p50")
}

// BenchmarkDispatchAndWaitParallel measures round trips made by many
// goroutines at once (8 per GOMAXPROCS) on one connection: heddle is the
// DispatchAndWait function, whose concurrent calls share one result
// subscription, raw nats.go's Request, whose concurrent requests share one
// reply inbox. ns/op is the time per round trip over all goroutines.
func BenchmarkDispatchAndWaitParallel(b *testing.B) {
	url := natstest.RunServer(b)
	ctx := context.Background()

	b.Run("natsbus/heddle", func(b *testing.B) {
		conn, err := natsbus.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		defer streamBenchRawResponder(b, url, "bench_echo").Close()
		payload := map[string]any{"text": "hello"}
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := dispatch.Request(ctx, conn, heddle.NewTaskMessage("bench_echo", payload),
					dispatch.Direct(), dispatch.Timeout(10*time.Second))
				if err != nil || res.Status != heddle.StatusCompleted {
					b.Errorf("DispatchAndWait: %v %v", res, err)
					return
				}
			}
		})
	})

	b.Run("natsbus/raw_request_reply", func(b *testing.B) {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		defer streamBenchRawEcho(b, url).Close()
		data, err := heddle.NewTaskMessage("bench_echo", map[string]any{"text": "hello"}).Encode()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := nc.Request("bench.raw.echo", data, 10*time.Second); err != nil {
					b.Errorf("Request: %v", err)
					return
				}
			}
		})
	})
}

// streamBenchBlock is how many recorded round trips each variant of
// BenchmarkDispatchAndWaitInterleaved makes in a turn.
const streamBenchBlock = 8

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
			url := natstest.RunServer(b)
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
			o, err := orchestrator.New(connect(), orchestrator.Config{
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
				Timeout: time.Minute,
				Direct:  true,
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
				res, err := dispatch.SubmitGoal(ctx, caller, heddle.NewOrchestratorGoal("fan out", nil), dispatch.Timeout(time.Minute))
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
