package heddle_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// The nodes of the three-node cluster: the router's home, the worker's,
// the callers'.
const (
	nodeA = 0
	nodeB = 1
	nodeC = 2
)

const (
	// meshCallers is how many goroutines send tasks at once, each
	// waiting for one result before sending the next.
	meshCallers = 8
	// meshMinTasks is how many tasks the callers send at least; they go
	// on until the test's scenario is over.
	meshMinTasks = 2000
	// meshTaskTimeout is each call's wait for its result: a task lost
	// with a node costs its caller that long.
	meshTaskTimeout = 2 * time.Second
	// meshProgress is how many calls made after an event must complete
	// to show that the mesh works again.
	meshProgress = 100
	// meshReconnectWait is the buses' pause between attempts on one
	// server; failing over to another server is immediate.
	meshReconnectWait = 50 * time.Millisecond
)

type meshEchoIn struct {
	N int `json:"n"`
}

type meshEchoOut struct {
	N int `json:"n"`
}

// meshBus connects to every node of c, node first: nats.go keeps the
// order (DontRandomize), so the bus starts on node and fails over to the
// others in turn. It reconnects quickly and forever, logs to rec, and is
// closed when the test ends.
func meshBus(t *testing.T, c *natstest.Cluster, node int, rec *testlog.Recorder) *natsbus.Bus {
	t.Helper()
	b, err := natsbus.Connect(c.URL(node),
		natsbus.WithName(fmt.Sprintf("mesh-node-%d", node)),
		natsbus.WithReconnectWait(meshReconnectWait),
		natsbus.WithMaxReconnects(-1),
		natsbus.WithConnectTimeout(time.Second),
		natsbus.WithLogger(rec.Logger()),
		natsbus.WithNATSOptions(nats.DontRandomize(), nats.ReconnectJitter(10*time.Millisecond, 10*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if got := b.Conn().ConnectedUrl(); !sameServer(got, c.ClientURL(node)) {
		t.Fatalf("bus for node %d connected to %s, want %s", node, got, c.ClientURL(node))
	}
	return b
}

// sameServer reports whether two client URLs name the same host and port.
func sameServer(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	return errA == nil && errB == nil && ua.Host == ub.Host
}

// meshFixture is a router on node A, a worker on node B and a caller's bus
// on node C of a three-node cluster, each bus given the full server list.
type meshFixture struct {
	cluster    *natstest.Cluster
	workerType string
	caller     *natsbus.Bus
	// calls sends the tasks and waits for their results, over one
	// subscription to SubjectResultsDefault on the caller's bus.
	calls  *dispatch.Caller
	router *router.Router
	worker *worker.Worker
	// Each bus's events, bus.reconnected among them.
	routerLog, workerLog, callerLog *testlog.Recorder
	stop                            func() error
}

// startMesh starts the cluster and the actors, and returns once a first
// task has gone from the caller through the router and the worker and
// back, across the three nodes.
func startMesh(t *testing.T) *meshFixture {
	t.Helper()
	m := &meshFixture{
		cluster:    natstest.StartCluster(t, 3),
		workerType: "cluster-echo",
		routerLog:  testlog.New(),
		workerLog:  testlog.New(),
		callerLog:  testlog.New(),
	}
	var err error
	m.router, err = router.New(meshBus(t, m.cluster, nodeA, m.routerLog), router.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m.worker, err = worker.New(meshBus(t, m.cluster, nodeB, m.workerLog), m.workerType,
		func(_ context.Context, in meshEchoIn) (meshEchoOut, error) { return meshEchoOut(in), nil },
		worker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m.caller = meshBus(t, m.cluster, nodeC, m.callerLog)

	g, err := heddle.Start(t.Context(), m.router, m.worker)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	m.stop = func() error {
		var err error
		once.Do(func() { err = g.Stop() })
		return err
	}
	t.Cleanup(func() { _ = m.stop() })

	m.calls, err = dispatch.NewCaller(testkit.Context(t), m.caller, heddle.SubjectResultsDefault)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.calls.Close() })

	// Each subscription is live on its own node; the nodes that publish
	// to it learn of it over the routes.
	m.cluster.WaitForInterest(nodeC, heddle.SubjectTasksIncoming)
	m.cluster.WaitForInterest(nodeA, heddle.NewTaskMessage(m.workerType, nil).WorkerSubject())
	m.cluster.WaitForInterest(nodeB, heddle.SubjectResultsDefault)
	first := heddle.NewTaskMessage(m.workerType, map[string]any{"n": -1})
	res, err := m.calls.Request(testkit.Context(t), first, dispatch.Timeout(testkit.Wait))
	if err != nil {
		t.Fatalf("the first task across the cluster: %v", err)
	}
	if res.Status != heddle.StatusCompleted {
		t.Fatalf("the first task across the cluster: status %s (%s)", res.Status, res.Error)
	}
	return m
}

// meshLoad is meshCallers goroutines sending tasks through a mesh on one
// dispatch.Caller until the test is done with them, counting each call's
// outcome. A task is completed (its result, echoing its payload) or lost,
// and a lost task is reported by a typed error: a *dispatch.TimeoutError
// naming it (it vanished with a node), a *dispatch.DeadLetterError with
// reason no_worker (the router found nothing serving the worker subject,
// the worker being between nodes) or dispatch.ErrNoRouter (nothing served
// SubjectTasksIncoming, the router being between nodes). Anything else is
// a failure.
type meshLoad struct {
	t          *testing.T
	calls      *dispatch.Caller
	workerType string
	ctx        context.Context
	cancel     context.CancelFunc
	enough     chan struct{} // closed by finish: stop once meshMinTasks are sent
	wg         sync.WaitGroup

	sent, completed atomic.Int64
	// The lost tasks, by the error that reported them.
	timedOut, noWorker, noRouter atomic.Int64

	mu sync.Mutex
	// phase numbers the events of the test; calls are counted by the
	// phase in which they began.
	phase   int
	byPhase map[int]int
	changed chan struct{} // closed and replaced at every completion
	others  []error
	slowest time.Duration
}

func startLoad(t *testing.T, calls *dispatch.Caller, workerType string) *meshLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &meshLoad{
		t: t, calls: calls, workerType: workerType, ctx: ctx, cancel: cancel,
		enough:  make(chan struct{}),
		byPhase: map[int]int{},
		changed: make(chan struct{}),
	}
	// On a failed test the calls end at once; on a passing one finish has
	// already waited for them.
	t.Cleanup(func() {
		cancel()
		l.wg.Wait()
	})
	for range meshCallers {
		l.wg.Go(l.call)
	}
	return l
}

// call sends tasks one after another until finish says enough and
// meshMinTasks have been sent.
func (l *meshLoad) call() {
	for l.ctx.Err() == nil {
		select {
		case <-l.enough:
			if l.sent.Load() >= meshMinTasks {
				return
			}
		default:
		}
		n := int(l.sent.Add(1))
		l.mu.Lock()
		phase := l.phase
		l.mu.Unlock()
		task := heddle.NewTaskMessage(l.workerType, map[string]any{"n": n})
		began := time.Now()
		res, err := l.calls.Request(l.ctx, task, dispatch.Timeout(meshTaskTimeout))
		took := time.Since(began)

		var te *dispatch.TimeoutError
		var dl *dispatch.DeadLetterError
		l.mu.Lock()
		l.slowest = max(l.slowest, took)
		switch {
		case err == nil && res.Status == heddle.StatusCompleted && res.TaskID == task.TaskID && fmt.Sprint(res.Output["n"]) == strconv.Itoa(n):
			l.completed.Add(1)
			l.byPhase[phase]++
			close(l.changed)
			l.changed = make(chan struct{})
		case err == nil:
			l.others = append(l.others, fmt.Errorf("task %s (n=%d): result for %s, status %s, output %v, error %q",
				task.TaskID, n, res.TaskID, res.Status, res.Output, res.Error))
		case errors.Is(err, dispatch.ErrTimeout) && errors.As(err, &te) && slices.Equal(te.PendingTaskIDs, []string{task.TaskID}):
			l.timedOut.Add(1)
		case errors.Is(err, heddle.ErrDeadLettered) && errors.As(err, &dl) && dl.TaskID == task.TaskID && dl.Reason == event.ReasonNoWorker:
			l.noWorker.Add(1)
		case errors.Is(err, dispatch.ErrNoRouter):
			l.noRouter.Add(1)
		default:
			l.others = append(l.others, fmt.Errorf("task %s (n=%d): %w", task.TaskID, n, err))
		}
		l.mu.Unlock()
	}
}

// lost is how many tasks were lost, whatever reported them.
func (l *meshLoad) lost() int64 {
	return l.timedOut.Load() + l.noWorker.Load() + l.noRouter.Load()
}

// nextPhase begins a phase: calls begun from now on count in it.
func (l *meshLoad) nextPhase() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phase++
	return l.phase
}

// waitCompleted returns once n calls begun in phase have completed,
// failing the test after testkit.Wait.
func (l *meshLoad) waitCompleted(phase, n int, what string) {
	l.t.Helper()
	deadline := time.NewTimer(testkit.Wait)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		got, changed := l.byPhase[phase], l.changed
		l.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			l.t.Fatalf("%s: %d of the calls made since completed within %v, want %d (sent %d, completed %d, lost %d)",
				what, got, testkit.Wait, n, l.sent.Load(), l.completed.Load(), l.lost())
		}
	}
}

// finish lets the callers stop once meshMinTasks are sent, waits for every
// call to return, and checks the accounting: every call sent either
// completed or timed out with a *dispatch.TimeoutError naming its task.
func (l *meshLoad) finish() {
	l.t.Helper()
	close(l.enough)
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	// Each call returns within meshTaskTimeout; the bound is for the
	// tasks still to send, on a slow machine.
	select {
	case <-done:
	case <-time.After(4 * testkit.Wait):
		l.t.Fatalf("calls still running %v after the callers were told to stop: a call hangs (sent %d, completed %d, lost %d)",
			4*testkit.Wait, l.sent.Load(), l.completed.Load(), l.lost())
	}
	sent, completed, lost := l.sent.Load(), l.completed.Load(), l.lost()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("tasks sent %d, completed %d, lost %d (timed out after %v: %d, dead-lettered no_worker: %d, no router: %d), other outcomes %d; slowest call %v",
		sent, completed, lost, meshTaskTimeout, l.timedOut.Load(), l.noWorker.Load(), l.noRouter.Load(),
		len(l.others), l.slowest.Round(time.Millisecond))
	for i, err := range l.others {
		if i == 10 {
			l.t.Errorf("... and %d more", len(l.others)-i)
			break
		}
		l.t.Errorf("neither a completed result nor a typed loss: %v", err)
	}
	// The Caller's own count of typed timeouts agrees, and no task was
	// answered twice: core NATS delivers at most once, reconnects
	// included.
	st := l.calls.Stats()
	l.t.Logf("caller: %d timeouts, %d results after their call timed out, %d duplicates", st.Timeouts, st.Late, st.Duplicates)
	if st.Timeouts != uint64(l.timedOut.Load()) {
		l.t.Errorf("the caller counted %d timeouts, the calls %d", st.Timeouts, l.timedOut.Load())
	}
	if st.Duplicates != 0 {
		l.t.Errorf("%d duplicate results", st.Duplicates)
	}
	if completed+lost != sent {
		l.t.Errorf("completed %d + lost %d = %d, want every one of the %d tasks sent accounted for", completed, lost, completed+lost, sent)
	}
	if sent < meshMinTasks {
		l.t.Errorf("sent %d tasks, want at least %d", sent, meshMinTasks)
	}
}

// While tasks flow from node C through the router on node A to the worker
// on node B, node B goes for good: the worker fails over to another node,
// tasks complete again, and every task sent either completed or was lost
// with a typed error saying so.
func TestMeshSurvivesTheLossOfAWorkersNode(t *testing.T) {
	began := time.Now()
	m := startMesh(t)
	load := startLoad(t, m.calls, m.workerType)
	load.waitCompleted(0, meshProgress, "before node B goes")

	m.cluster.Kill(nodeB)
	killed := load.nextPhase()
	rec := m.workerLog.Wait(t, "bus.reconnected", 1)[0]
	if url := rec.Str("url"); !sameServer(url, m.cluster.ClientURL(nodeA)) && !sameServer(url, m.cluster.ClientURL(nodeC)) {
		t.Fatalf("the worker reconnected to %q, want node A (%s) or node C (%s)", url, m.cluster.ClientURL(nodeA), m.cluster.ClientURL(nodeC))
	}
	reconnected := load.nextPhase()
	load.waitCompleted(reconnected, meshProgress, "after the worker reconnected")
	load.finish()

	if err := m.stop(); err != nil {
		t.Errorf("stopping the router and the worker: %v", err)
	}
	load.mu.Lock()
	before, during, after := load.byPhase[0], load.byPhase[killed], load.byPhase[reconnected]
	load.mu.Unlock()
	t.Logf("worker reconnected to %s; completed: %d before node B went, %d begun between the kill and the reconnect event, %d begun after it; worker completed %d, router routed %d; %v",
		rec.Str("url"), before, during, after, m.worker.Stats().Completed, m.router.Stats().Routed, time.Since(began).Round(time.Millisecond))
	if after == 0 {
		t.Error("no task sent after the worker reconnected completed")
	}
}

// While tasks flow, the three nodes restart one after another, each taking
// one actor's or the caller's connection with it: every bus reconnects,
// tasks complete after each restart, every task sent either completed or
// was lost with a typed error saying so, and a last task completes at the
// end.
func TestMeshSurvivesARollingRestartOfTheCluster(t *testing.T) {
	began := time.Now()
	m := startMesh(t)
	load := startLoad(t, m.calls, m.workerType)
	load.waitCompleted(0, meshProgress, "before the restarts")

	// Each node is the home of one bus, which must have reconnected once
	// its node went.
	homes := []struct {
		node int
		bus  string
		log  *testlog.Recorder
	}{
		{nodeA, "router", m.routerLog},
		{nodeB, "worker", m.workerLog},
		{nodeC, "caller", m.callerLog},
	}
	for _, h := range homes {
		m.cluster.Restart(h.node)
		h.log.Wait(t, "bus.reconnected", 1)
		phase := load.nextPhase()
		load.waitCompleted(phase, meshProgress, fmt.Sprintf("after node %d (the %s's) restarted", h.node, h.bus))
	}
	load.finish()

	// The mesh works at the end: one more task goes through, given all
	// the time it needs.
	last := heddle.NewTaskMessage(m.workerType, map[string]any{"n": 0})
	res, err := m.calls.Request(testkit.Context(t), last, dispatch.Timeout(testkit.Wait))
	switch {
	case err != nil:
		t.Errorf("the final task after the rolling restart: %v", err)
	case res.Status != heddle.StatusCompleted:
		t.Errorf("the final task after the rolling restart: status %s (%s)", res.Status, res.Error)
	}
	if err := m.stop(); err != nil {
		t.Errorf("stopping the router and the worker: %v", err)
	}
	var reconnects []string
	for _, h := range homes {
		for _, r := range h.log.All("bus.reconnected") {
			reconnects = append(reconnects, h.bus+"→"+r.Str("url"))
		}
	}
	t.Logf("reconnects %v; worker completed %d, router routed %d; %v",
		reconnects, m.worker.Stats().Completed, m.router.Stats().Routed, time.Since(began).Round(time.Millisecond))
}
