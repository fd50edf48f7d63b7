package heddle_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// The crash tests of durable mode against a real server's failures: a
// server restarted mid-run (file storage) and a node of a three-node
// cluster lost mid-run (R3 streams). A worker killed mid-task, a router
// killed between intake and forward and a task that always panics are in
// worker/durable_test.go and router/durable_test.go.

const (
	// crashAckWait is the actors' ack wait: a task whose acknowledgement
	// was lost with a server comes back after it.
	crashAckWait = 2 * time.Second
	// crashSenders is how many goroutines send tasks at once.
	crashSenders = 8
	// crashMaxWait bounds the wait for every task's result: a failure
	// bound, not a schedule (a run ends when its last result comes). A
	// cluster run takes about 15 s after the node's loss on this machine
	// alone, and twice that beside other test binaries under -race.
	crashMaxWait = 90 * time.Second
	// crashCoreQuiet is how long the core run waits for one more result
	// before it counts the tasks never answered as lost.
	crashCoreQuiet = 2 * time.Second
)

// crashResults records the results of a run by task id.
type crashResults struct {
	mu        sync.Mutex
	completed map[string]int
	failed    map[string]string // task id: error
	changed   chan struct{}     // closed and replaced at every result
}

func newCrashResults() *crashResults {
	return &crashResults{completed: map[string]int{}, failed: map[string]string{}, changed: make(chan struct{})}
}

// record takes one result message; it is a bus handler, and a durable
// one's body.
func (r *crashResults) record(data []byte) error {
	res, err := heddle.DecodeTaskResult(data)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if res.Status == heddle.StatusCompleted {
		r.completed[res.TaskID]++
	} else {
		r.failed[res.TaskID] = res.Error
	}
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// count returns how many tasks have a completed result, how many results
// were repeats, and the channel closed at the next result.
func (r *crashResults) count() (distinct, repeats int, changed <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.completed {
		repeats += n - 1
	}
	return len(r.completed), repeats, r.changed
}

// waitCount returns once n tasks have a completed result, or returns
// false when ctx ends first.
func (r *crashResults) waitCount(ctx context.Context, n int) bool {
	for {
		got, _, changed := r.count()
		if got >= n {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// missing returns the ids of the tasks without a completed result.
func (r *crashResults) missing(ids []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, id := range ids {
		if r.completed[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// crashMesh is a router and a worker of type "crash-echo", each on a bus
// of its own, in durable mode (R replicas) or core mode.
type crashMesh struct {
	workerType string
	runs       atomic.Int64 // handler runs, repeats included
	group      *heddle.Group

	mu      sync.Mutex
	ran     map[string]int // handler runs by task id
	changed chan struct{}  // closed and replaced at every run

	// Past holdAfter handler runs (0: never), handlers wait for release,
	// so that the crash comes while tasks are in flight however fast the
	// machine runs the first ones.
	holdAfter atomic.Int64
	gate      chan struct{}
	release   func()
}

// waitRan returns once every task of ids has run, or false when ctx ends
// first.
func (m *crashMesh) waitRan(ctx context.Context, ids []string) bool {
	for {
		m.mu.Lock()
		changed := m.changed
		m.mu.Unlock()
		if len(m.notRun(ids)) == 0 {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// notRun returns those of ids whose handler never ran.
func (m *crashMesh) notRun(ids []string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, id := range ids {
		if m.ran[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

func startCrashMesh(t *testing.T, routerBus, workerBus bus.Bus, durable bool, replicas int) *crashMesh {
	t.Helper()
	m := &crashMesh{workerType: "crash-echo", ran: map[string]int{}, changed: make(chan struct{}), gate: make(chan struct{})}
	m.release = sync.OnceFunc(func() { close(m.gate) })
	t.Cleanup(m.release)
	wcfg := worker.Config{NoHeartbeat: true, Concurrency: 8}
	var rcfg router.Config
	if durable {
		wcfg.Durable = &worker.DurableConfig{AckWait: crashAckWait, Replicas: replicas}
		rcfg.Durable = &router.DurableConfig{WorkerTypes: []string{m.workerType}, AckWait: crashAckWait, Replicas: replicas}
	}
	w, err := worker.NewDynamic(workerBus, m.workerType, func(ctx context.Context, in map[string]any) (map[string]any, error) {
		if n := m.runs.Add(1); n > m.holdAfter.Load() && m.holdAfter.Load() > 0 {
			select {
			case <-m.gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		task, _ := worker.TaskFromContext(ctx)
		m.mu.Lock()
		m.ran[task.TaskID]++
		close(m.changed)
		m.changed = make(chan struct{})
		m.mu.Unlock()
		return in, nil
	}, wcfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(routerBus, rcfg)
	if err != nil {
		t.Fatal(err)
	}
	// The worker first: the router's forwards need its stream.
	gw, err := heddle.Start(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Stop() })
	m.group, err = heddle.Start(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.group.Stop() })
	return m
}

// crashSend sends n tasks from crashSenders goroutines and returns their
// ids once every one was accepted. In durable mode a task is accepted
// when the intake stream acknowledged it (PublishDurable, with the task
// id as message id, sent again after each failure: a server away, a
// stream without a leader); retries counts those failures. In core mode
// a task is accepted once published: core NATS cannot say more.
func crashSend(ctx context.Context, b *natsbus.Bus, workerType string, n int, durable bool, retries *atomic.Int64) ([]string, error) {
	ids := make([]string, n)
	next := atomic.Int64{}
	errs := make(chan error, crashSenders)
	var wg sync.WaitGroup
	for range crashSenders {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				task := heddle.NewTaskMessage(workerType, map[string]any{"n": i})
				data, err := task.Encode()
				if err != nil {
					errs <- err
					return
				}
				ids[i] = task.TaskID
				msg := &bus.Msg{Subject: heddle.SubjectTasksIncoming, Data: data}
				for {
					if durable {
						pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
						_, err = b.PublishDurable(pctx, msg, task.TaskID)
						cancel()
					} else {
						err = b.Publish(ctx, msg)
					}
					if err == nil || ctx.Err() != nil {
						break
					}
					retries.Add(1)
				}
				if err != nil {
					errs <- fmt.Errorf("task %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return ids, errors.Join(func() []error {
		var all []error
		for err := range errs {
			all = append(all, err)
		}
		return all
	}()...)
}

// crashBus connects to url (a list, for a cluster) with quick, evenly
// spaced reconnect attempts, for ever, keeping the list's order.
func crashBus(t *testing.T, url string) *natsbus.Bus {
	t.Helper()
	b, err := natsbus.Connect(url,
		natsbus.WithReconnectWait(20*time.Millisecond),
		natsbus.WithMaxReconnects(-1),
		natsbus.WithConnectTimeout(time.Second),
		natsbus.WithLogger(testlog.New().Logger()),
		natsbus.WithNATSOptions(nats.DontRandomize(), nats.ReconnectJitter(0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// waitQuiet returns once every task of ids has a completed result, or no
// result came for crashCoreQuiet: a result published on core NATS can be
// lost, and nothing tells.
func (r *crashResults) waitQuiet(ids []string) {
	for len(r.missing(ids)) > 0 {
		_, _, changed := r.count()
		quiet := time.NewTimer(crashCoreQuiet)
		select {
		case <-changed:
			quiet.Stop()
		case <-quiet.C:
			return
		}
	}
}

// waitDrained returns once the streams hold no message and their
// consumers no unacknowledged one: every task stored was acknowledged.
// The server applies acknowledgements a moment after the actor sent them.
func waitDrained(t *testing.T, ctx context.Context, b *natsbus.Bus, streams ...string) {
	t.Helper()
	js, err := b.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for _, name := range streams {
		for {
			s, err := js.Stream(ctx, b.WireStreamName(name))
			if err == nil && s.CachedInfo().State.Msgs == 0 {
				break
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				state := "unknown"
				if err == nil {
					state = fmt.Sprintf("%d messages", s.CachedInfo().State.Msgs)
				}
				t.Fatalf("stream %s still holds %s (%v): a task was never acknowledged", name, state, err)
			}
		}
	}
}

// crashReport is what a crash run counted.
type crashReport struct {
	mode                         string
	tasks, atCrash               int
	accepted, ran, notRun        int
	answered, unanswered, failed int
	runs, repeats, resent        int64
	sinceCrash, total            time.Duration
}

func (r crashReport) log(t *testing.T, crash string) {
	t.Helper()
	t.Logf("%s, %s after %d of %d results: %d accepted, %d served (%d never ran), %d answered (%d results missing, %d failed); %d handler runs, %d repeated results, %d publishes sent again; %v after the %s, %v in all",
		r.mode, crash, r.atCrash, r.tasks, r.accepted, r.ran, r.notRun, r.answered, r.unanswered, r.failed,
		r.runs, r.repeats, r.resent, r.sinceCrash.Round(time.Millisecond), crash, r.total.Round(time.Millisecond))
}

// crashFinish waits for the run's end and counts it. In durable mode
// every accepted task must run, and the streams must drain, within ctx.
func crashFinish(t *testing.T, ctx context.Context, mesh *crashMesh, results *crashResults, b *natsbus.Bus, durable bool, ids []string) crashReport {
	t.Helper()
	if durable {
		if !mesh.waitRan(ctx, ids) {
			t.Errorf("%d of the %d accepted tasks never ran within %v", len(mesh.notRun(ids)), len(ids), crashMaxWait)
		} else {
			waitDrained(t, ctx, b, router.DefaultIntakeStream, worker.DurableStreamName(mesh.workerType))
		}
	}
	results.waitQuiet(ids)
	distinct, repeats, _ := results.count()
	results.mu.Lock()
	failed := len(results.failed)
	results.mu.Unlock()
	notRun := len(mesh.notRun(ids))
	return crashReport{accepted: len(ids), ran: len(ids) - notRun, notRun: notRun, answered: distinct,
		unanswered: len(results.missing(ids)), failed: failed, runs: mesh.runs.Load(), repeats: int64(repeats)}
}

// The server (one, with file storage) is stopped and started again while
// 1,000 tasks flow through a durable router and worker, each on a
// connection of its own. Every task the intake stream acknowledged runs,
// every stored task is acknowledged, and every result reaches the results
// stream the caller reads (a durable worker stores its result where a
// stream captures the subject, and acknowledges its task only then):
// nothing is lost.
func TestDurableMeshLosesNoTaskWhenTheServerRestartsMidRun(t *testing.T) {
	const tasks = 1000
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), crashMaxWait)
	defer cancel()
	srv := natstest.StartJetStreamServer(t, nil)
	caller := crashBus(t, srv.ClientURL())
	results := newCrashResults()
	if err := caller.EnsureStream(ctx, bus.StreamConfig{Name: "CRASH_RESULTS", Subjects: []string{heddle.SubjectResultsAll}}); err != nil {
		t.Fatal(err)
	}
	cn, err := caller.Consume(ctx, bus.ConsumerConfig{Stream: "CRASH_RESULTS", Name: "caller", Prefetch: 256,
		MaxAckPending: 4 * tasks, AckWait: crashAckWait},
		func(_ context.Context, m bus.DurableMsg) error {
			if err := results.record(m.Msg().Data); err != nil {
				return err
			}
			return m.Ack()
		})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cn.Stop(context.Background()) }()
	mesh := startCrashMesh(t, crashBus(t, srv.ClientURL()), crashBus(t, srv.ClientURL()), true, 0)
	mesh.holdAfter.Store(tasks / 2)

	var resent atomic.Int64
	sent := make(chan []string, 1)
	sendErr := make(chan error, 1)
	go func() {
		ids, err := crashSend(ctx, caller, mesh.workerType, tasks, true, &resent)
		sent <- ids
		sendErr <- err
	}()
	if !results.waitCount(ctx, tasks/4) {
		d, _, _ := results.count()
		t.Fatalf("only %d tasks completed before the restart, want %d", d, tasks/4)
	}
	srv.Stop()
	atStop, _, _ := results.count()
	mesh.release()
	srv.Start()
	restarted := time.Now()
	ids := <-sent
	if err := <-sendErr; err != nil {
		t.Fatalf("sending: %v", err)
	}
	if atStop >= tasks {
		t.Fatal("every task had completed when the server stopped: the restart was not mid-run")
	}
	rep := crashFinish(t, ctx, mesh, results, caller, true, ids)
	rep.mode, rep.tasks, rep.atCrash, rep.resent = "durable", tasks, atStop, resent.Load()
	rep.sinceCrash, rep.total = time.Since(restarted), time.Since(began)
	rep.log(t, "server restart (file storage)")
	if rep.notRun != 0 || rep.failed != 0 || rep.unanswered != 0 {
		t.Fatalf("%d accepted tasks lost, %d failed, %d results lost; want none", rep.notRun, rep.failed, rep.unanswered)
	}
}

// crashClusterRun runs 2,000 tasks through a router on node A and a
// worker on node B of a three-node JetStream cluster, sent from node C,
// and kills node B once a quarter of them completed.
func crashClusterRun(t *testing.T, durable bool) crashReport {
	const tasks = 2000
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), crashMaxWait)
	defer cancel()
	c := natstest.StartJetStreamCluster(t, 3)
	caller := crashBus(t, c.URL(nodeC))
	results := newCrashResults()
	if _, err := caller.Subscribe(ctx, heddle.SubjectResultsAll, func(_ context.Context, m *bus.Msg) error {
		return results.record(m.Data)
	}); err != nil {
		t.Fatal(err)
	}
	mesh := startCrashMesh(t, crashBus(t, c.URL(nodeA)), crashBus(t, c.URL(nodeB)), durable, 3)
	mesh.holdAfter.Store(tasks / 2)
	if durable {
		c.WaitForStreamLeader(router.DefaultIntakeStream)
		c.WaitForStreamLeader(worker.DurableStreamName(mesh.workerType))
	} else {
		c.WaitForInterest(nodeC, heddle.SubjectTasksIncoming)
		c.WaitForInterest(nodeA, heddle.NewTaskMessage(mesh.workerType, nil).WorkerSubject())
	}
	c.WaitForInterest(nodeB, heddle.SubjectResultsAll)

	var resent atomic.Int64
	sent := make(chan []string, 1)
	sendErr := make(chan error, 1)
	go func() {
		ids, err := crashSend(ctx, caller, mesh.workerType, tasks, durable, &resent)
		sent <- ids
		sendErr <- err
	}()
	if !results.waitCount(ctx, tasks/4) {
		d, _, _ := results.count()
		t.Fatalf("only %d tasks completed before the kill, want %d", d, tasks/4)
	}
	c.Kill(nodeB)
	atKill, _, _ := results.count()
	mesh.release()
	killed := time.Now()
	ids := <-sent
	if err := <-sendErr; err != nil {
		t.Fatalf("sending: %v", err)
	}
	if atKill >= tasks {
		t.Fatal("every task had completed when node B went: the loss was not mid-run")
	}
	rep := crashFinish(t, ctx, mesh, results, caller, durable, ids)
	rep.mode, rep.tasks, rep.atCrash, rep.resent = "core", tasks, atKill, resent.Load()
	if durable {
		rep.mode = "durable (R3 streams)"
	}
	rep.sinceCrash, rep.total = time.Since(killed), time.Since(began)
	rep.log(t, "loss of node B (the worker's)")
	return rep
}

// A node of a three-node cluster (the worker's) is lost while 2,000 tasks
// flow through a durable router and worker whose streams have three
// replicas: every task the intake stream acknowledged runs and is
// acknowledged (0 lost). The same run in core mode, logged beside it,
// shows what durable mode saves.
func TestDurableMeshOnAnR3ClusterLosesNoTaskWhenANodeIsLost(t *testing.T) {
	var core crashReport
	t.Run("core", func(t *testing.T) {
		core = crashClusterRun(t, false)
	})
	t.Run("durable", func(t *testing.T) {
		rep := crashClusterRun(t, true)
		t.Logf("lost (never ran): durable %d, core %d; unanswered: durable %d, core %d, of %d tasks each",
			rep.notRun, core.notRun, rep.unanswered, core.unanswered, rep.tasks)
		if rep.notRun != 0 || rep.failed != 0 {
			t.Fatalf("durable mode lost %d of %d accepted tasks and failed %d; want none", rep.notRun, rep.accepted, rep.failed)
		}
	})
}
