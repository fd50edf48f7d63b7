package workertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/worker"
)

// Constructor makes the worker under test on b. It must pass opts on to
// the worker's constructor (worker.New, NewDynamic or NewExec): they carry
// the kit's observer, through which it learns why a task failed.
type Constructor func(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error)

// DefaultWait bounds each wait of the kit for a result or an event, unless
// the Wait option says otherwise. Only a worker that breaks a rule makes a
// test wait that long.
const DefaultWait = 30 * time.Second

// readyWait bounds the wait for a worker's Run to be ready, and stopWait
// the wait for Run to return after its context ended: twice the default
// drain timeout, which bounds a worker's Run, and a margin.
const (
	readyWait = 30 * time.Second
	stopWait  = 2*heddle.DefaultDrainTimeout + 10*time.Second
)

// traceparent is the W3C trace context the kit's tasks carry.
const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// harness is one worker under test on one bus, with a client connection
// that publishes its tasks and collects every result.
type harness struct {
	tb      testing.TB
	wait    time.Duration
	client  bus.Bus
	tap     *tap
	obs     *observer
	results *collector
	w       *worker.Worker
	parent  string
	tier    heddle.ModelTier

	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	runErr error
}

// prepare opens the harness's connections and makes the worker; start
// runs it. They are apart so that the drain rule can take its goroutine
// snapshot in between.
func prepare(tb testing.TB, connect func() bus.Bus, wait time.Duration) *harness {
	tb.Helper()
	h := &harness{tb: tb, wait: wait, obs: newObserver(), results: newCollector(), parent: uuid.NewString()}
	h.client = connect()
	h.tap = &tap{Bus: connect()}
	if _, err := h.client.Subscribe(context.Background(), ">", h.results.handle); err != nil {
		tb.Fatalf("workertest: subscribe to the results: %v", err)
	}
	if err := h.client.Flush(context.Background()); err != nil {
		tb.Fatalf("workertest: flush: %v", err)
	}
	return h
}

// construct calls the user's Constructor.
func (h *harness) construct(newWorker Constructor) {
	h.tb.Helper()
	w, err := newWorker(h.tap, heddle.WithObserver(h.obs))
	if err != nil {
		h.tb.Fatalf("workertest: the Constructor failed: %v", err)
	}
	if w == nil {
		h.tb.Fatalf("workertest: the Constructor returned a nil worker and no error")
	}
	h.w = w
}

// start runs the worker until the test ends and waits until it is ready.
func (h *harness) start() {
	h.tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.w.Run(ctx) }()
	h.tb.Cleanup(func() {
		if err := h.stop(stopWait); err != nil && !errors.Is(err, errStopTimeout) {
			h.tb.Errorf("workertest: the worker's Run returned %v after its context ended, want nil", err)
		}
	})
	select {
	case <-h.w.Ready():
	case err := <-h.done:
		h.done <- err
		h.tb.Fatalf("workertest: the worker's Run returned before it was ready: %v", err)
	case <-time.After(readyWait):
		h.tb.Fatalf("workertest: the worker was not ready %s after Run started", readyWait)
	}
	if h.obs.count(event.ActorSubscribed, "") == 0 {
		h.tb.Fatalf("workertest: the worker reported no %s event: its Constructor must pass the options it is given on to worker.New (..., opts...)", event.ActorSubscribed)
	}
	h.tier = h.servedTier()
}

var errStopTimeout = errors.New("workertest: Run did not return")

// stop cancels Run and waits up to bound for it to return, once.
func (h *harness) stop(bound time.Duration) error {
	h.once.Do(func() {
		h.cancel()
		select {
		case h.runErr = <-h.done:
		case <-time.After(bound):
			h.runErr = fmt.Errorf("%w %s after its context ended", errStopTimeout, bound)
		}
	})
	return h.runErr
}

// newHarness prepares, constructs and starts a worker.
func newHarness(tb testing.TB, connect func() bus.Bus, newWorker Constructor, wait time.Duration) *harness {
	tb.Helper()
	h := prepare(tb, connect, wait)
	h.construct(newWorker)
	h.start()
	return h
}

// servedTier is the tier the kit's tasks use: the default tier when the
// worker serves it, otherwise the first it serves.
func (h *harness) servedTier() heddle.ModelTier {
	tiers := h.tiers()
	if len(tiers) == 0 || slices.Contains(tiers, heddle.DefaultModelTier) {
		return heddle.DefaultModelTier
	}
	return tiers[0]
}

// tiers lists the tiers whose worker subject the worker subscribed to.
func (h *harness) tiers() []heddle.ModelTier {
	var out []heddle.ModelTier
	for _, s := range h.tap.subscriptions() {
		for _, tier := range heddle.ModelTiers() {
			if s.subject == heddle.WorkerSubject(h.w.WorkerType(), tier) && !slices.Contains(out, tier) {
				out = append(out, tier)
			}
		}
	}
	return out
}

// task returns a task for the worker with payload, its results going to
// the harness's result subject.
func (h *harness) task(payload map[string]any) heddle.TaskMessage {
	m := heddle.NewTaskMessage(h.w.WorkerType(), clonePayload(payload))
	m.ParentTaskID = h.parent
	m.ModelTier = h.tier
	return m
}

// send publishes task on its worker subject.
func (h *harness) send(task heddle.TaskMessage) {
	h.tb.Helper()
	data, err := task.Encode()
	if err != nil {
		h.tb.Fatalf("workertest: encode a task: %v", err)
	}
	h.publish(task.WorkerSubject(), data)
}

func (h *harness) publish(subject string, data []byte) {
	h.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.wait)
	defer cancel()
	if err := h.client.Publish(ctx, &bus.Msg{Subject: subject, Data: data}); err != nil {
		h.tb.Fatalf("workertest: publish on %s: %v", subject, err)
	}
}

// do sends task and returns its outcome; ok is false when no result came
// within the wait.
func (h *harness) do(task heddle.TaskMessage) (outcome, bool) {
	h.tb.Helper()
	h.send(task)
	return h.outcome(task.TaskID)
}

// outcome waits for the result of the task and, when it failed, for the
// worker's worker.failed event saying why.
func (h *harness) outcome(taskID string) (outcome, bool) {
	r, ok := h.results.wait(taskID, h.wait)
	if !ok {
		return outcome{}, false
	}
	o := outcome{received: r}
	if r.result.Status == heddle.StatusFailed {
		if e, ok := h.obs.wait(taskID, event.WorkerFailed, h.wait); ok {
			o.side = e.Reason
			var ve *contracts.ValidationError
			if errors.As(e.Err, &ve) {
				o.violations = []string{}
				for _, v := range ve.Violations {
					if !slices.Contains(o.violations, v.Path) {
						o.violations = append(o.violations, v.Path)
					}
				}
			}
		}
	}
	return o, true
}

// outcome is what became of one task.
type outcome struct {
	received
	// side is the reason of the worker.failed event; empty when the task
	// completed or no event came.
	side string
	// violations are the JSON Pointers of the contract violations that
	// failed the task, nil when it did not fail on a contract.
	violations []string
}

// summary describes the outcome in one line.
func (o outcome) summary() string {
	if o.result.Status == heddle.StatusCompleted {
		return "completed with output " + compact(o.output)
	}
	s := fmt.Sprintf("%s (side %s", o.result.Status, cmpOr(o.side, "unknown"))
	if o.violations != nil {
		s += ", fields " + strings.Join(o.violations, " ")
	}
	return s + "): " + o.result.Error
}

// key is what must not change when a task is sent again: its status and
// output, or the side and fields of its failure.
func (o outcome) key() string {
	if o.result.Status == heddle.StatusCompleted {
		return "completed " + canonical(o.output)
	}
	return fmt.Sprintf("%s %s %v", o.result.Status, o.side, o.violations)
}

// received is one result as it came off the bus.
type received struct {
	subject string
	data    []byte
	result  heddle.TaskResult
	// output is the result's output as it was on the wire.
	output json.RawMessage
}

// collector keeps the results seen on the client connection, by task_id.
type collector struct {
	mu      sync.Mutex
	byTask  map[string][]received
	changed chan struct{}
}

func newCollector() *collector {
	return &collector{byTask: map[string][]received{}, changed: make(chan struct{})}
}

func (c *collector) handle(_ context.Context, m *bus.Msg) error {
	if strings.HasPrefix(m.Subject, "heddle.tasks.") || !bytes.Contains(m.Data, []byte(`"status"`)) {
		return nil
	}
	r, err := heddle.DecodeTaskResult(m.Data)
	if err != nil || r.TaskID == "" {
		return nil
	}
	var raw struct {
		Output json.RawMessage `json:"output"`
	}
	_ = json.Unmarshal(m.Data, &raw)
	c.mu.Lock()
	c.byTask[r.TaskID] = append(c.byTask[r.TaskID], received{subject: m.Subject, data: bytes.Clone(m.Data), result: r, output: raw.Output})
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// wait returns the first result of taskID, waiting up to d for it.
func (c *collector) wait(taskID string, d time.Duration) (received, bool) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		rs, changed := c.byTask[taskID], c.changed
		c.mu.Unlock()
		if len(rs) > 0 {
			return rs[0], true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return received{}, false
		}
	}
}

// all returns every result of taskID seen so far.
func (c *collector) all(taskID string) []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.byTask[taskID])
}

// observer keeps the worker's events by task and counts them by name and
// reason.
type observer struct {
	mu      sync.Mutex
	byTask  map[string][]event.Event
	counts  map[[2]string]uint64
	changed chan struct{}
}

func newObserver() *observer {
	return &observer{byTask: map[string][]event.Event{}, counts: map[[2]string]uint64{}, changed: make(chan struct{})}
}

// Observe implements event.Observer.
func (o *observer) Observe(_ context.Context, e event.Event) {
	e.Attrs = nil // the caller's, for the call only
	o.mu.Lock()
	if e.TaskID != "" {
		o.byTask[e.TaskID] = append(o.byTask[e.TaskID], e)
	}
	o.counts[[2]string{e.Name, ""}] += e.N()
	if e.Reason != "" {
		o.counts[[2]string{e.Name, e.Reason}] += e.N()
	}
	close(o.changed)
	o.changed = make(chan struct{})
	o.mu.Unlock()
}

// count returns how many events named name (with reason, unless empty)
// were seen.
func (o *observer) count(name, reason string) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[[2]string{name, reason}]
}

// tasks returns the ids of the tasks that had an event named name.
func (o *observer) tasks(name string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ids []string
	for id, evs := range o.byTask {
		if slices.ContainsFunc(evs, func(e event.Event) bool { return e.Name == name }) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// wait returns the first event named name of taskID, waiting up to d.
func (o *observer) wait(taskID, name string, d time.Duration) (event.Event, bool) {
	return o.waitFor(func() (event.Event, bool) {
		for _, e := range o.byTask[taskID] {
			if e.Name == name {
				return e, true
			}
		}
		return event.Event{}, false
	}, d)
}

// waitFor waits up to d until found, called with the lock held, finds
// something.
func (o *observer) waitFor(found func() (event.Event, bool), d time.Duration) (event.Event, bool) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		e, ok := found()
		changed := o.changed
		o.mu.Unlock()
		if ok {
			return e, true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return event.Event{}, false
		}
	}
}

// tap is the worker's connection: it records the subscriptions the
// worker makes and forwards everything to the bus.
type tap struct {
	bus.Bus
	mu   sync.Mutex
	subs []subscribed
	kept bus.Values
}

type subscribed struct{ subject, queue string }

// Subscribe records the subscription and makes it.
func (t *tap) Subscribe(ctx context.Context, subject string, h bus.Handler, opts ...bus.SubscribeOption) (bus.Subscription, error) {
	sub, err := t.Bus.Subscribe(ctx, subject, h, opts...)
	if err == nil {
		t.mu.Lock()
		t.subs = append(t.subs, subscribed{subject: sub.Subject(), queue: sub.Queue()})
		t.mu.Unlock()
	}
	return sub, err
}

func (t *tap) subscriptions() []subscribed {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.subs)
}

// Done and Err forward to the bus (bus.Closer), so that the worker sees it
// close.
func (t *tap) Done() <-chan struct{} { return bus.Done(t.Bus) }

// Err forwards to the bus (bus.Closer).
func (t *tap) Err() error { return bus.Err(t.Bus) }

// Keep forwards to the bus when it is a bus.Keeper.
func (t *tap) Keep(key any, create func() any) any {
	if k, ok := t.Bus.(bus.Keeper); ok {
		return k.Keep(key, create)
	}
	return t.kept.Keep(key, create)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
