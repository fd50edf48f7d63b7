// Package meshtest starts a whole mesh for an integration test in one
// call: a router with the rules given, the user's workers, any other
// actors, and a dead-letter store, each on a connection of its own to a
// fresh bus, all stopped when the test ends. Helpers dispatch and wait,
// wait for a dead letter with a given reason, and read the counts of the
// events every actor reported:
//
//	meshtest.Each(t, meshtest.Config{Workers: []workertest.Constructor{newSummarizer}},
//		func(t *testing.T, m *meshtest.Mesh) {
//			res, err := m.Request("summarize", map[string]any{"text": "Heddle routes tasks."})
//			...
//			m.WaitDeadLetter(event.ReasonNoWorker)
//			m.WaitCount(event.WorkerCompleted, "", 1)
//		})
//
// Each runs the test on membus and on natsbus (an embedded nats-server);
// Start makes one mesh on the connections a function opens, for example
// connections wrapped by faultbus.
package meshtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/contracttest/workertest"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// DefaultWait bounds each wait of a Mesh (a Request, WaitResult,
// WaitDeadLetter, WaitCount) unless Config.Wait says otherwise, and the
// Mesh's Context. Only a mesh that misbehaves makes a test wait so long.
const DefaultWait = 30 * time.Second

// Config says what a mesh runs.
type Config struct {
	// Rules are the router's rules (tier overrides, rate limits); the
	// zero value routes every task to its own tier, unlimited.
	Rules router.Rules
	// Workers make the user's workers, each on a connection of its own;
	// they get the mesh's observer through their options.
	Workers []workertest.Constructor
	// Actors, when set, makes more actors (pipelines, orchestrators, a
	// router of the user's own) on a connection of their own.
	Actors func(b bus.Bus) ([]heddle.Actor, error)
	// NoRouter leaves the router out, for Actors that bring their own.
	NoRouter bool
	// Wait replaces DefaultWait.
	Wait time.Duration
}

// Mesh is a running mesh. Its methods fail the test when a wait ends
// without what it waited for; call them from the test's goroutine.
type Mesh struct {
	t       testing.TB
	connect func() bus.Bus
	caller  bus.Bus
	wait    time.Duration
	ctx     context.Context
	obs     *counter
	results *results

	router  *router.Router
	store   *deadletter.Consumer
	workers map[string]*worker.Worker
}

// Each runs fn on a mesh made from cfg on membus, then on natsbus, as
// subtests named after the bus.
func Each(t *testing.T, cfg Config, fn func(t *testing.T, m *Mesh)) {
	t.Helper()
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		fn(t, Start(t, connect, cfg))
	})
}

// Start makes and starts a mesh from cfg, every actor on a connection
// connect opens, and returns once every one is ready. The actors are
// stopped when the test ends, and a Run that then returns an error fails
// the test. A constructor's error fails it at once.
func Start(t testing.TB, connect func() bus.Bus, cfg Config) *Mesh {
	t.Helper()
	m := &Mesh{t: t, connect: connect, wait: cfg.Wait, obs: newCounter(), workers: map[string]*worker.Worker{}}
	if m.wait <= 0 {
		m.wait = DefaultWait
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.wait)
	t.Cleanup(cancel)
	m.ctx = ctx
	m.caller = connect()
	m.results = &results{byTask: map[string]heddle.TaskResult{}, changed: make(chan struct{})}
	if _, err := m.caller.Subscribe(ctx, heddle.SubjectResultsAll, m.results.handle); err != nil {
		t.Fatalf("meshtest: subscribe to the results: %v", err)
	}
	if err := m.caller.Flush(ctx); err != nil {
		t.Fatalf("meshtest: flush: %v", err)
	}

	observe := heddle.WithObserver(m.obs)
	var actors []heddle.Actor
	var err error
	if m.store, err = deadletter.New(connect(), deadletter.Config{}, observe); err != nil {
		t.Fatalf("meshtest: the dead-letter store: %v", err)
	}
	actors = append(actors, m.store)
	if !cfg.NoRouter {
		if m.router, err = router.New(connect(), router.Config{Rules: router.StaticRules(cfg.Rules)}, observe); err != nil {
			t.Fatalf("meshtest: the router: %v", err)
		}
		actors = append(actors, m.router)
	}
	for i, newWorker := range cfg.Workers {
		w, err := newWorker(connect(), observe)
		if err != nil {
			t.Fatalf("meshtest: Workers[%d]: %v", i, err)
		}
		if w == nil {
			t.Fatalf("meshtest: Workers[%d] returned a nil worker and no error", i)
		}
		m.workers[w.WorkerType()] = w
		actors = append(actors, w)
	}
	if cfg.Actors != nil {
		more, err := cfg.Actors(connect())
		if err != nil {
			t.Fatalf("meshtest: Actors: %v", err)
		}
		actors = append(actors, more...)
	}
	// The actors run until the test ends, not until the waits' context does.
	group, err := heddle.Start(context.WithoutCancel(ctx), actors...)
	if err != nil {
		t.Fatalf("meshtest: starting the mesh: %v", err)
	}
	t.Cleanup(func() {
		if err := group.Stop(); err != nil {
			t.Errorf("meshtest: the mesh's actors returned errors when stopped, want none: %v", err)
		}
	})
	return m
}

// Bus returns the caller's connection: publish and call through it.
func (m *Mesh) Bus() bus.Bus { return m.caller }

// Connect opens another connection to the mesh's bus, closed when the test
// ends.
func (m *Mesh) Connect() bus.Bus { return m.connect() }

// Context returns a context that ends after the mesh's wait or when the
// test ends.
func (m *Mesh) Context() context.Context { return m.ctx }

// Router returns the mesh's router; nil with NoRouter.
func (m *Mesh) Router() *router.Router { return m.router }

// DeadLetters returns the mesh's dead-letter store.
func (m *Mesh) DeadLetters() *deadletter.Consumer { return m.store }

// Worker returns the mesh's worker of workerType, nil if there is none.
func (m *Mesh) Worker(workerType string) *worker.Worker { return m.workers[workerType] }

// Request sends a task of workerType with payload through the router and
// returns its result, as dispatch.Request does (with opts, and the mesh's
// wait as its timeout unless opts give one).
func (m *Mesh) Request(workerType string, payload map[string]any, opts ...dispatch.Option) (*heddle.TaskResult, error) {
	opts = append([]dispatch.Option{dispatch.Timeout(m.wait)}, opts...)
	return dispatch.Request(m.ctx, m.caller, heddle.NewTaskMessage(workerType, payload), opts...)
}

// Publish publishes task on heddle.tasks.incoming, for the router, without
// waiting; WaitResult waits for its result.
func (m *Mesh) Publish(task heddle.TaskMessage) {
	m.t.Helper()
	data, err := task.Encode()
	if err == nil {
		err = m.caller.Publish(m.ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming, Data: data})
	}
	if err != nil {
		m.t.Fatalf("meshtest: publish task %s: %v", task.TaskID, err)
	}
}

// WaitResult waits for the result of the task taskID, on any result
// subject, and returns the first that came.
func (m *Mesh) WaitResult(taskID string) heddle.TaskResult {
	m.t.Helper()
	r, ok := m.results.wait(taskID, m.wait)
	if !ok {
		m.t.Fatalf("meshtest: no result for task %s within %s", taskID, m.wait)
	}
	return r
}

// WaitDeadLetter waits until the dead-letter store holds an entry whose
// reason is of the kind reason (event.ReasonNoWorker, ...) or starts with
// reason, and returns the newest such entry.
func (m *Mesh) WaitDeadLetter(reason string) deadletter.Entry {
	m.t.Helper()
	var found deadletter.Entry
	ok := m.obs.waitUntil(m.wait, func() bool {
		entries, _ := m.store.List(0, 0)
		for _, e := range entries {
			if deadletter.ReasonKind(e.DeadLetter.Reason) == reason || strings.HasPrefix(e.DeadLetter.Reason, reason) {
				found = e
				return true
			}
		}
		return false
	})
	if !ok {
		entries, _ := m.store.List(0, 0)
		var have []string
		for _, e := range entries {
			have = append(have, e.DeadLetter.Reason)
		}
		m.t.Fatalf("meshtest: no dead letter with reason %q within %s; the store holds %d: %q", reason, m.wait, len(have), have)
	}
	return found
}

// Count returns how many events named name (event.WorkerCompleted,
// event.RouterDeadLettered, ...) the mesh's actors reported, with the
// reason kind reason unless it is empty.
func (m *Mesh) Count(name, reason string) uint64 { return m.obs.count(name, reason) }

// WaitCount waits until Count(name, reason) is at least n.
func (m *Mesh) WaitCount(name, reason string, n uint64) {
	m.t.Helper()
	if !m.obs.waitUntil(m.wait, func() bool { return m.obs.count(name, reason) >= n }) {
		m.t.Fatalf("meshtest: %d %s events (reason %q) within %s, want %d", m.obs.count(name, reason), name, reason, m.wait, n)
	}
}

// Counts returns every count so far, by event name, then by reason kind
// ("" for all the events of the name).
func (m *Mesh) Counts() map[string]map[string]uint64 { return m.obs.all() }

// counter is the mesh's observer: it counts events by name and reason.
type counter struct {
	mu      sync.Mutex
	counts  map[string]map[string]uint64
	changed chan struct{}
}

func newCounter() *counter {
	return &counter{counts: map[string]map[string]uint64{}, changed: make(chan struct{})}
}

// Observe implements event.Observer.
func (c *counter) Observe(_ context.Context, e event.Event) {
	c.mu.Lock()
	byReason := c.counts[e.Name]
	if byReason == nil {
		byReason = map[string]uint64{}
		c.counts[e.Name] = byReason
	}
	byReason[""] += e.N()
	if e.Reason != "" {
		byReason[e.Reason] += e.N()
	}
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *counter) count(name, reason string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[name][reason]
}

func (c *counter) all() map[string]map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]map[string]uint64, len(c.counts))
	for name, byReason := range c.counts {
		out[name] = make(map[string]uint64, len(byReason))
		for r, n := range byReason {
			out[name][r] = n
		}
	}
	return out
}

// waitUntil waits up to d until done, checked after each event, says so.
func (c *counter) waitUntil(d time.Duration, done func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		changed := c.changed
		c.mu.Unlock()
		if done() {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return done()
		}
	}
}

// results keeps the first result of each task seen on the caller's
// connection.
type results struct {
	mu      sync.Mutex
	byTask  map[string]heddle.TaskResult
	changed chan struct{}
}

func (r *results) handle(_ context.Context, msg *bus.Msg) error {
	res, err := heddle.DecodeTaskResult(msg.Data)
	if err != nil {
		return fmt.Errorf("meshtest: a message on %s is not a result: %w", msg.Subject, err)
	}
	r.mu.Lock()
	if _, ok := r.byTask[res.TaskID]; !ok {
		r.byTask[res.TaskID] = res
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	return nil
}

func (r *results) wait(taskID string, d time.Duration) (heddle.TaskResult, bool) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		res, ok := r.byTask[taskID]
		changed := r.changed
		r.mu.Unlock()
		if ok {
			return res, true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return heddle.TaskResult{}, false
		}
	}
}
