package heddle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// BenchmarkDurableTaskPath measures tasks per second through the task path
// in durable mode, on one embedded server with JetStream (file storage):
// the caller's task stored in the intake stream (a core publish the stream
// captures) → durable Router (consumer, forward stored with an
// acknowledgement and the task id as message id, intake acknowledged) →
// durable Worker (consumer, input and output contracts, result published,
// task acknowledged) → heddle.results.default → caller, up to
// flowBenchWindow tasks in flight, each actor on its own connection.
//
// In the same benchmark:
//   - jetstream: the same stores and acknowledgements written by hand on
//     nats.go's jetstream package (a consumer that stores each task in a
//     second stream with a message id and acknowledges it; a consumer
//     that decodes the task and encodes its result with encoding/json,
//     publishes the result and acknowledges the task), validating
//     nothing: the baseline the durable path is held to (≥ 0.5×);
//   - core: the same router and worker in core mode on the same server
//     (BenchmarkTaskPath's natsbus/heddle), the at-most-once path.
func BenchmarkDurableTaskPath(b *testing.B) {
	srv := natstest.StartJetStreamServer(b, nil)
	connect := func() bus.Bus {
		nb, err := natsbus.Connect(srv.ClientURL())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = nb.Close() })
		return nb
	}
	b.Run("heddle", func(b *testing.B) { durableBenchHeddle(b, connect) })
	b.Run("jetstream", func(b *testing.B) { durableBenchJetStream(b, srv.ClientURL()) })
	b.Run("core", func(b *testing.B) { flowBenchHeddle(b, connect) })
}

func durableBenchHeddle(b *testing.B, connect func() bus.Bus) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wk, err := worker.New(connect(), "echo", func(_ context.Context, in flowEcho) (flowEcho, error) {
		return in, nil
	}, worker.Config{Durable: &worker.DurableConfig{}, NoHeartbeat: true})
	if err != nil {
		b.Fatal(err)
	}
	rt, err := router.New(connect(), router.Config{Durable: &router.DurableConfig{WorkerTypes: []string{"echo"}}})
	if err != nil {
		b.Fatal(err)
	}
	// The worker first: the router's forwards need its stream.
	gw, err := heddle.Start(ctx, wk)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = gw.Stop() }()
	gr, err := heddle.Start(ctx, rt)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = gr.Stop() }()

	flowBenchCaller(b, ctx, connect(), durableBenchTasks(b))
}

// durableBenchTasks returns a function giving one echo task after
// another, each with a task id of its own (the stores drop a task whose
// id they have seen within their duplicate window): the encoded task with
// the last 12 digits of its id replaced by a counter shared by every run.
func durableBenchTasks(b *testing.B) func() []byte {
	task := heddle.NewTaskMessage("echo", map[string]any{"text": "Heddle routes tasks.", "n": 42})
	data, err := task.Encode()
	if err != nil {
		b.Fatal(err)
	}
	at := bytes.Index(data, []byte(task.TaskID))
	if at < 0 || len(task.TaskID) != 36 {
		b.Fatalf("task id %q not found in %s", task.TaskID, data)
	}
	at += 36 - 12
	return func() []byte {
		durableBenchSeq++
		out := bytes.Clone(data)
		copy(out[at:at+12], fmt.Sprintf("%012x", durableBenchSeq))
		return out
	}
}

// durableBenchSeq numbers the tasks of every run of the benchmark, so
// that no two share an id.
var durableBenchSeq uint64

// durableBenchRun numbers the baseline's streams, one pair per run.
var durableBenchRun int

func durableBenchJetStream(b *testing.B, url string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := func() (*nats.Conn, jetstream.JetStream) {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		return nc, js
	}
	durableBenchRun++
	suffix := string(rune('A' + durableBenchRun%26))
	intake, tasks := "BENCH_INTAKE_"+suffix, "BENCH_TASKS_"+suffix
	intakeSubject, taskSubject, resultSubject := "bench.js."+suffix+".incoming", "bench.js."+suffix+".tasks.echo", "bench.js."+suffix+".results"

	_, js := conn()
	for name, subject := range map[string]string{intake: intakeSubject, tasks: taskSubject} {
		_ = js.DeleteStream(ctx, name)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
			b.Fatal(err)
		}
	}
	consume := func(js jetstream.JetStream, stream string, h func(jetstream.Msg)) {
		c, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 4 * flowBenchWindow})
		if err != nil {
			b.Fatal(err)
		}
		cc, err := c.Consume(h, jetstream.PullMaxMessages(flowBenchWindow))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(cc.Stop)
	}

	// The router: read the envelope, store the task for its worker type
	// with the task id as message id, acknowledge the intake.
	_, rjs := conn()
	consume(rjs, intake, func(m jetstream.Msg) {
		var env struct {
			TaskID     string `json:"task_id"`
			WorkerType string `json:"worker_type"`
		}
		if json.Unmarshal(m.Data(), &env) != nil {
			_ = m.Term()
			return
		}
		if _, err := rjs.Publish(ctx, taskSubject, m.Data(), jetstream.WithMsgID(env.TaskID)); err != nil {
			_ = m.Nak()
			return
		}
		_ = m.Ack()
	})
	// The worker: decode the task, encode its result, publish it,
	// acknowledge the task.
	wnc, wjs := conn()
	consume(wjs, tasks, func(m jetstream.Msg) {
		var task map[string]any
		if json.Unmarshal(m.Data(), &task) != nil {
			_ = m.Term()
			return
		}
		out, err := json.Marshal(map[string]any{"task_id": task["task_id"], "worker_type": task["worker_type"],
			"status": "completed", "output": task["payload"], "error": nil, "model_used": nil, "token_usage": map[string]any{},
			"processing_time_ms": 0, "completed_at": time.Now().UTC().Format(time.RFC3339Nano)})
		if err != nil {
			_ = m.Term()
			return
		}
		if wnc.Publish(resultSubject, out) != nil {
			_ = m.Nak()
			return
		}
		_ = m.Ack()
	})

	caller, _ := conn()
	window := make(chan struct{}, flowBenchWindow)
	if _, err := caller.Subscribe(resultSubject, func(*nats.Msg) { <-window }); err != nil {
		b.Fatal(err)
	}
	if err := caller.Flush(); err != nil {
		b.Fatal(err)
	}
	next := durableBenchTasks(b)
	flowBenchLoop(b, window, func() error { return caller.Publish(intakeSubject, next()) })
}
