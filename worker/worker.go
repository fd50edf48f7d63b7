package worker

import (
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/observe"
	"github.com/heddle-go/heddle/internal/wire"
)

// Defaults of Config, used when a field is zero.
const (
	// DefaultConcurrency is how many handlers one Worker runs at once.
	DefaultConcurrency = 4
	// DefaultTaskTimeout bounds each handler attempt.
	DefaultTaskTimeout = 5 * time.Minute
	// DefaultRetryBackoff is the wait before the first retry; each further
	// retry waits twice as long, up to DefaultMaxRetryBackoff.
	DefaultRetryBackoff = 100 * time.Millisecond
	// DefaultMaxRetryBackoff caps the wait between two attempts.
	DefaultMaxRetryBackoff = 10 * time.Second
	// DefaultDrainTimeout bounds a Worker's shutdown: the time from
	// the end of Run's context until in-flight handlers are cancelled.
	DefaultDrainTimeout = heddle.DefaultDrainTimeout

	// publishTimeout bounds the publish of one result. The pool
	// goroutines renew their publish context when less than
	// publishTimeout-publishRenew is left on it (see publishContext).
	publishTimeout = 10 * time.Second
	publishRenew   = time.Second
)

// Errors returned by the Worker constructors and Run, and matched by the
// failed results' causes. Test them with errors.Is.
var (
	// ErrOutputNotObject reports a handler output type or value whose JSON
	// form is not an object; TaskResult.output must be one.
	ErrOutputNotObject = errors.New("heddle: worker output is not a JSON object")
	// ErrTaskTimeout is the cause of a failed result whose handler did not
	// finish within Config.TaskTimeout.
	ErrTaskTimeout = errors.New("heddle: task timed out")
	// ErrShutdown is the cause of a failed result whose handler was
	// cancelled because the worker's drain timeout expired.
	ErrShutdown = errors.New("heddle: worker shut down before the task finished")
)

// Config holds a Worker's settings. The zero value is valid: every
// zero field means the documented default.
type Config struct {
	// Tiers lists the model tiers served; the worker subscribes to
	// WorkerSubject(workerType, tier) for each, in queue group
	// QueueGroup. Empty means every tier.
	Tiers []heddle.ModelTier
	// ShallowValidation checks payloads as the Python Heddle's workers
	// do: required top-level keys and top-level types only (see
	// contracts.Shallow), so that the worker accepts exactly what a Python
	// worker of its type accepts. Outputs are still checked in full.
	ShallowValidation bool
	// NoRetries publishes a failed result at a handler's first error, as
	// a Python processor worker does, instead of retrying up to the task's
	// max_retries.
	NoRetries bool
	// QueueGroup is the queue group of the worker's subscriptions. Empty
	// means heddle.WorkerQueueGroup(workerType), the group of processor
	// workers in every Heddle SDK; a worker joining a pool of Python LLM
	// workers uses heddle.LLMWorkerQueueGroup(workerType).
	QueueGroup string
	// Concurrency bounds the handlers running at once; zero means
	// DefaultConcurrency. When every slot is busy, deliveries wait
	// and the bus holds further tasks up to its pending limits.
	Concurrency int
	// TaskTimeout bounds each handler attempt: the handler's context ends
	// then. Zero means DefaultTaskTimeout.
	TaskTimeout time.Duration
	// RetryBackoff is the wait before the first retry of a failed attempt;
	// it doubles with each retry up to MaxRetryBackoff. Zero means
	// DefaultRetryBackoff.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the wait between attempts; zero means
	// DefaultMaxRetryBackoff.
	MaxRetryBackoff time.Duration
	// DrainTimeout bounds shutdown once Run's context ends: pending tasks
	// are still handled and in-flight handlers finish until then, after
	// which their contexts are cancelled, no task starts and those still
	// delivered fail at once; Run returns within twice DrainTimeout. Zero
	// means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Contract replaces the schemas New generates from In and Out; a
	// nil side of it leaves that side unchecked. NewDynamic and
	// NewExec check nothing unless it is set.
	Contract *contracts.Contract
	// PendingMsgs and PendingBytes bound the tasks each subscription holds
	// while every handler slot is busy (see bus.PendingLimits); zero means
	// the bus default. Tasks beyond them are dropped by the bus as a slow
	// consumer, counted in Stats.Dropped.
	PendingMsgs  int
	PendingBytes int
	// HeartbeatInterval is how often the worker publishes its
	// heddle.Heartbeat on heddle.HeartbeatSubject(workerType): once when it
	// starts serving, then every interval, and a last one marked stopping
	// when it drains. Zero means heddle.DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// NoHeartbeat turns the heartbeats off: a registry then never hears
	// of the worker, as of a Python one.
	NoHeartbeat bool
	// Durable, when set, takes the tasks from a stream on the bus's
	// durable capability (bus.Durable) instead of a core queue group:
	// at-least-once, with redelivery of a crashed worker's tasks; see
	// DurableConfig.
	Durable *DurableConfig
}

// Stats counts what a Worker did. Every counter only increases.
//
// Every task for this worker that decodes is Received (once a pool
// goroutine has taken it, or when it is failed without one at shutdown),
// then, once finished, counted in exactly one of Completed (a completed
// result published), Failed (a failed result published, whatever the
// cause) or PublishErrors (its result could not be published). Malformed
// counts messages dropped as not a task for this worker. Retried counts
// retries and Panics panicking attempts. Each of these has one event per
// count.
type Stats struct {
	Received      uint64
	Completed     uint64
	Failed        uint64
	Retried       uint64
	Malformed     uint64
	Panics        uint64
	PublishErrors uint64
	// Abandoned counts handlers given up on: still running a moment after
	// their context ended (TaskTimeout, or the drain timeout), their task
	// was failed for them (counted in Failed) and another goroutine took
	// their place. Discarded counts those that returned afterwards, their
	// output dropped; Abandoned minus Discarded are still running.
	Abandoned uint64
	Discarded uint64
	// Goexits counts pool goroutines ended by runtime.Goexit, in a
	// handler or in an Observer (worker.goexit). A task whose handler
	// called it failed (counted in Failed); another goroutine took the
	// ended one's place.
	Goexits uint64
	// Dropped counts the tasks the worker's subscriptions dropped as a slow
	// consumer, before the worker saw them: the exact sum of the
	// subscriptions' bus.Subscription.Dropped. The worker reports them in
	// worker.slow_consumer events (their "dropped" attributes add up to
	// it once Run has returned); it stays readable after Run returns.
	Dropped uint64
	// ObserverPanics counts the panics of the worker's Observers. Each was
	// recovered and the worker went on; they are logged as
	// observer.panicked at most once per observe.PanicLogInterval.
	ObserverPanics uint64
	// HeartbeatErrors counts the heartbeats that could not be published,
	// each reported as worker.heartbeat_failed.
	HeartbeatErrors uint64
	// Pending is how many tasks the worker's subscriptions hold, delivered
	// and not yet handed to a handler (bus.Pending; 0 on a bus that cannot
	// say): a gauge that rises before the subscriptions reach their
	// pending limits and drop.
	Pending int
	// PoolLive is how many pool goroutines serve tasks now, and PoolHung
	// how many run a handler that was given up on (their goroutines are
	// left to finish alone); gauges, not counters.
	PoolLive, PoolHung int
}

type workerCounters struct {
	received, completed, failed, retried, malformed, panics, publishErrors,
	abandoned, discarded, goexits atomic.Uint64
}

// handleFunc runs one attempt: it turns the task (and, for handlers
// that read them, the payload's bytes as they came on the wire) into the
// output object.
type handleFunc func(ctx context.Context, task *heddle.TaskMessage, payload []byte) (map[string]any, error)

// Worker serves one worker type: it takes tasks from its subjects, checks
// them against its contract, runs the handler with bounded concurrency,
// retries and timeouts, and publishes one TaskResult per task to
// ResultSubject(parent_task_id).
//
// Guarantees:
//   - every task that decodes gets exactly one result published (unless the
//     publish itself fails, which is logged and counted), including on
//     contract violations, handler errors, timeouts and panics;
//   - a panicking handler, or one calling runtime.Goexit (t.FailNow in a
//     test's handler), fails its task and the worker goes on with as many
//     goroutines as before;
//   - Observers cannot break the worker: a panic in one is recovered and
//     counted (Stats.ObserverPanics); a runtime.Goexit in one, on a pool
//     goroutine, ends that goroutine only (worker.goexit; Stats.Goexits):
//     its task still gets its one result and another goroutine takes its
//     place. A task's events come after its hand-off to the pool, so that
//     nothing done to worker.received keeps the task from running;
//   - a task fails with ErrTaskTimeout at its TaskTimeout even when its
//     handler ignores its context: a moment later (overdueGrace) the
//     worker publishes the failure, gives up on the handler and starts
//     another goroutine in its place (worker.abandoned; Stats.Abandoned).
//     The handler's goroutine is left to finish alone and what it returns
//     is dropped (worker.discarded). The pool's size is decided from its
//     counts each time a goroutine leaves it or a given-up one ends:
//     Concurrency goroutines, less those given up on beyond Concurrency
//     (worker.pool_shrunk), so that stuck handlers never hold more than
//     2 × Concurrency goroutines; it is back to Concurrency once they
//     return;
//   - at most Concurrency handlers that honour their context run at once;
//   - Run returns within 2 × DrainTimeout of its context's end, whatever
//     the backlog: no task starts once DrainTimeout has expired, and every
//     task received gets its result; it leaves no goroutine behind but
//     those of handlers that ignore their context;
//   - the tasks its subscriptions drop as a slow consumer are counted
//     exactly (Stats.Dropped) and reported (worker.slow_consumer).
//
// The result of a task that was retried carries "retry_count" as an extra
// top-level field: Go decoders keep it in TaskResult.Extra, pydantic
// ignores it.
//
// Delivery is at-most-once: a task published while no worker is
// subscribed, or dropped by a full subscription, is lost.
type Worker struct {
	bus          bus.Bus
	workerType   string
	queue        string
	noRetries    bool
	tiers        []heddle.ModelTier
	concurrency  int
	taskTimeout  time.Duration
	backoff      time.Duration
	maxBackoff   time.Duration
	drainTimeout time.Duration
	pendingMsgs  int
	pendingBytes int
	contract     *contracts.Contract
	log          *observe.Emitter
	handle       handleFunc
	heartbeat    heartbeatState
	durable      *durableState // nil in core mode

	started atomic.Bool
	ready   chan struct{}
	stats   workerCounters

	// jobs hands tasks from the deliveries to the pool's goroutines;
	// unbuffered, so a delivery waits while every one is busy. Long-lived
	// goroutines keep the stacks they grew, which a goroutine per task
	// would grow again for every task.
	jobs chan *workerJob
	// pool counts the live goroutines of the pool, for the drain.
	pool sync.WaitGroup
	// slots are the pool's live goroutines, for the watch.
	slots slots
	// force is closed when the drain timeout cancels the handlers (forced
	// is set just before); stopWatch ends the watch.
	force, stopWatch chan struct{}
	forced           atomic.Bool
	forceOnce        sync.Once
	watchDone        chan struct{}

	// subs are Run's subscriptions, for their drop counts; droppedSeen is
	// the highest sum of them read, droppedReported the part of it
	// reported in worker.slow_consumer events.
	subs            atomic.Pointer[[]bus.Subscription]
	droppedSeen     atomic.Uint64
	droppedReported atomic.Uint64

	// resultSize is the length of the last result encoded, to size the
	// next one's buffer.
	resultSize atomic.Int64

	// Set by Run before it subscribes, read by deliveries afterwards.
	values         context.Context // Run's values, never cancelled
	handlerCtx     context.Context // parent of handler contexts
	cancelHandlers context.CancelFunc

	// mu guards closed and the pool's counts, and orders tasks.Add
	// against tasks.Wait. live counts the pool's goroutines serving tasks,
	// hung those whose handler was given up on and still runs.
	mu         sync.Mutex
	closed     bool
	live, hung int
	tasks      sync.WaitGroup
}

// New returns a Worker for workerType whose handler takes In and
// returns Out. The task payload is decoded into In from the message's own
// bytes and Out is encoded as the result's output object; with the default
// contract both are checked against JSON Schemas generated from In and Out
// (see contracts.For), or against cfg.Contract when it is set.
//
// Out must encode as a JSON object (a struct, a map, or a pointer to
// either); a type that cannot is an error wrapping ErrOutputNotObject. The
// handler's context ends at TaskTimeout and when the worker is forced to
// stop; TaskFromContext gives it the task. A returned error is retried up
// to the task's max_retries unless it is Permanent. The constructor starts
// nothing; call Run.
func New[In, Out any](b bus.Bus, workerType string, handler func(ctx context.Context, in In) (Out, error), cfg Config, opts ...heddle.Option) (*Worker, error) {
	if handler == nil {
		return nil, fmt.Errorf("%w: worker %q: nil handler", heddle.ErrConfig, workerType)
	}
	if err := checkOutputType(reflect.TypeFor[Out]()); err != nil {
		return nil, fmt.Errorf("%w: worker %q: %w", heddle.ErrConfig, workerType, err)
	}
	if cfg.Contract == nil {
		c, err := contracts.For[In, Out]()
		if err != nil {
			return nil, fmt.Errorf("%w: worker %q: generating its contract from %v and %v (set Config.Contract to give the schemas explicitly): %w",
				heddle.ErrConfig, workerType, reflect.TypeFor[In](), reflect.TypeFor[Out](), err)
		}
		cfg.Contract = c
	}
	decode, encode := inputDecoder[In](), outputObject[Out]()
	keys := new(keyCheck)
	inType := reflect.TypeFor[In]()
	handle := func(ctx context.Context, task *heddle.TaskMessage, data []byte) (map[string]any, error) {
		if err := keys.check(inType, task.Payload, ""); err != nil {
			return nil, &handlerError{reason: reasonInputContract, permanent: true,
				err: fmt.Errorf("%w: input: %w", contracts.ErrViolation, err)}
		}
		in, err := decode(task, data)
		if err != nil {
			return nil, &handlerError{reason: reasonInputDecode, permanent: true,
				err: fmt.Errorf("payload cannot be decoded into %v: %w", reflect.TypeFor[In](), err)}
		}
		out, err := handler(ctx, in)
		if err != nil {
			return nil, err
		}
		return encode(out)
	}
	return newWorker(b, workerType, handle, cfg, opts)
}

// NewDynamic returns a Worker whose handler takes the payload as
// decoded JSON and returns the output object, for worker types known only
// at run time. Nothing is checked unless cfg.Contract is set. Otherwise it
// behaves as New.
func NewDynamic(b bus.Bus, workerType string, handler func(ctx context.Context, in map[string]any) (map[string]any, error), cfg Config, opts ...heddle.Option) (*Worker, error) {
	if handler == nil {
		return nil, fmt.Errorf("%w: worker %q: nil handler", heddle.ErrConfig, workerType)
	}
	handle := func(ctx context.Context, task *heddle.TaskMessage, _ []byte) (map[string]any, error) {
		return handler(ctx, task.Payload)
	}
	return newWorker(b, workerType, handle, cfg, opts)
}

func newWorker(b bus.Bus, workerType string, handle handleFunc, cfg Config, opts []heddle.Option) (*Worker, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: worker %q: nil bus", heddle.ErrConfig, workerType)
	}
	if err := heddle.ValidateWorkerType(workerType); err != nil {
		return nil, err
	}
	tiers, err := workerTiers(workerType, cfg.Tiers)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name  string
		value int64
	}{
		{"Concurrency", int64(cfg.Concurrency)},
		{"TaskTimeout", int64(cfg.TaskTimeout)},
		{"RetryBackoff", int64(cfg.RetryBackoff)},
		{"MaxRetryBackoff", int64(cfg.MaxRetryBackoff)},
		{"DrainTimeout", int64(cfg.DrainTimeout)},
		{"PendingMsgs", int64(cfg.PendingMsgs)},
		{"PendingBytes", int64(cfg.PendingBytes)},
		{"HeartbeatInterval", int64(cfg.HeartbeatInterval)},
	} {
		if f.value < 0 {
			return nil, fmt.Errorf("%w: worker %q: Config.%s is negative; use zero for the default", heddle.ErrConfig, workerType, f.name)
		}
	}
	if cfg.ShallowValidation && cfg.Contract != nil {
		in, err := contracts.Shallow(cfg.Contract.Input())
		if err != nil {
			return nil, fmt.Errorf("%w: worker %q: Config.ShallowValidation: %w", heddle.ErrConfig, workerType, err)
		}
		cfg.Contract = contracts.New(in, cfg.Contract.Output())
	}
	queue := cmpOr(cfg.QueueGroup, heddle.WorkerQueueGroup(workerType))
	if err := bus.ValidateQueue(queue); err != nil {
		return nil, fmt.Errorf("%w: worker %q: Config.QueueGroup: %w", heddle.ErrConfig, workerType, err)
	}
	o := observe.Actor("worker", opts...)
	w := &Worker{
		bus:          b,
		workerType:   workerType,
		queue:        queue,
		noRetries:    cfg.NoRetries,
		tiers:        tiers,
		concurrency:  cmpOr(cfg.Concurrency, DefaultConcurrency),
		taskTimeout:  cmpOr(cfg.TaskTimeout, DefaultTaskTimeout),
		backoff:      cmpOr(cfg.RetryBackoff, DefaultRetryBackoff),
		maxBackoff:   cmpOr(cfg.MaxRetryBackoff, DefaultMaxRetryBackoff),
		drainTimeout: cmpOr(cfg.DrainTimeout, DefaultDrainTimeout),
		pendingMsgs:  cfg.PendingMsgs,
		pendingBytes: cfg.PendingBytes,
		contract:     cfg.Contract,
		log:          o.With(slog.String("worker_type", workerType)),
		handle:       handle,
		heartbeat:    heartbeatState{interval: cmpOr(cfg.HeartbeatInterval, heddle.DefaultHeartbeatInterval), off: cfg.NoHeartbeat},
		ready:        make(chan struct{}),
	}
	w.maxBackoff = max(w.maxBackoff, w.backoff)
	if cfg.Durable != nil {
		if err := w.setupDurable(cfg); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// cmpOr returns v, or def when v is zero.
func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// workerTiers validates the configured tiers and removes repeats; none
// means every tier.
func workerTiers(workerType string, tiers []heddle.ModelTier) ([]heddle.ModelTier, error) {
	if len(tiers) == 0 {
		return heddle.ModelTiers(), nil
	}
	out := make([]heddle.ModelTier, 0, len(tiers))
	for _, t := range tiers {
		if !t.Valid() {
			return nil, fmt.Errorf("%w: worker %q: Config.Tiers: %s", heddle.ErrConfig, workerType, wire.EnumProblem(string(t), heddle.ModelTiers()))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// WorkerType returns the worker type served.
func (w *Worker) WorkerType() string { return w.workerType }

// Contract returns the contract checked at this worker; nil checks
// nothing.
func (w *Worker) Contract() *contracts.Contract { return w.contract }

// Ready returns a channel closed once Run's subscriptions are live: a task
// published after it is closed reaches this worker (or another member of
// its queue group). It is never closed if Run fails to subscribe.
func (w *Worker) Ready() <-chan struct{} { return w.ready }

// Stats returns the worker's counters.
func (w *Worker) Stats() Stats {
	s := &w.stats
	w.mu.Lock()
	live, hung := w.live, w.hung
	w.mu.Unlock()
	return Stats{
		Received:        s.received.Load(),
		Completed:       s.completed.Load(),
		Failed:          s.failed.Load(),
		Retried:         s.retried.Load(),
		Malformed:       s.malformed.Load(),
		Panics:          s.panics.Load(),
		PublishErrors:   s.publishErrors.Load(),
		Abandoned:       s.abandoned.Load(),
		Discarded:       s.discarded.Load(),
		Goexits:         s.goexits.Load(),
		Dropped:         w.dropped(),
		ObserverPanics:  w.log.ObserverPanics(),
		HeartbeatErrors: w.heartbeat.failed.Load(),
		Pending:         w.pending(),
		PoolLive:        live,
		PoolHung:        hung,
	}
}

// dropped returns how many tasks the worker's subscriptions dropped: the
// highest sum of their counts read so far, so that it never decreases
// whatever a bus reports once a subscription is gone.
// pending sums what the worker's subscriptions hold.
func (w *Worker) pending() int {
	n := 0
	if subs := w.subs.Load(); subs != nil {
		for _, sub := range *subs {
			if m, _, ok := bus.Pending(sub); ok {
				n += m
			}
		}
	}
	return n
}

func (w *Worker) dropped() uint64 {
	var n uint64
	if subs := w.subs.Load(); subs != nil {
		for _, sub := range *subs {
			n += uint64(max(sub.Dropped(), 0))
		}
	}
	for {
		seen := w.droppedSeen.Load()
		if n <= seen {
			return seen
		}
		if w.droppedSeen.CompareAndSwap(seen, n) {
			return n
		}
	}
}

// reportDropped reports the tasks dropped since the last report in one
// worker.slow_consumer event. Only the watch calls it while Run runs, and
// the drain once the watch has ended.
func (w *Worker) reportDropped() {
	total := w.dropped()
	prev := w.droppedReported.Load()
	if total <= prev {
		return
	}
	w.droppedReported.Store(total)
	w.log.Emit(w.values, slog.LevelWarn, event.Event{Name: event.WorkerSlowConsumer, WorkerType: w.workerType, Count: total - prev},
		slog.Uint64("dropped", total-prev), slog.Uint64("dropped_total", total),
		slog.Int("pending_msgs_limit", cmpOr(w.pendingMsgs, bus.DefaultPendingMsgs)),
		slog.Int("pending_bytes_limit", cmpOr(w.pendingBytes, bus.DefaultPendingBytes)),
		slog.String("reason", "the worker's subscriptions held their pending limit of tasks; the bus dropped the rest"))
}

// Run subscribes to the worker's subjects, serves tasks until ctx ends,
// then drains: it stops taking new tasks, handles those already delivered,
// waits for in-flight handlers and returns. Handlers' contexts carry ctx's
// values but are not cancelled when ctx ends; they are cancelled when
// DrainTimeout expires, and a handler still running a moment later is given
// up on: its task fails with ErrShutdown and Run does not wait for it.
// From then on no task starts: each task still delivered gets a failed
// result at once, until the drain's bound, after which the bus discards
// what it still holds (never seen by the worker, so never Received). Run
// returns within 2 × DrainTimeout of ctx's end, whatever the backlog.
//
// When the bus closes under the worker (bus.Closer: Close or Drain
// called, a reconnect budget spent, credentials revoked), Run cancels
// the handlers at once, fails the tasks it holds (their publishes fail
// and are counted in PublishErrors) and returns an error wrapping
// bus.ErrClosed that says why the bus closed, so that a supervisor can
// restart the process.
//
// Run returns nil after a complete drain, an error wrapping
// context.DeadlineExceeded when the drain timeout cut it short, and a
// subscribe error (after cleaning up) when it could not start. A Worker
// runs once; a second call returns heddle.ErrStarted.
func (w *Worker) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return heddle.ErrStarted
	}
	w.values = context.WithoutCancel(ctx)
	w.handlerCtx, w.cancelHandlers = context.WithCancel(w.values)
	defer w.cancelHandlers()
	w.jobs = make(chan *workerJob)
	w.force, w.stopWatch, w.watchDone = make(chan struct{}), make(chan struct{}), make(chan struct{})
	w.startWatch()
	w.mu.Lock()
	w.fillLocked()
	w.mu.Unlock()

	opts := []bus.SubscribeOption{bus.Queue(w.queue), bus.PendingLimits(w.pendingMsgs, w.pendingBytes)}
	subs := make([]bus.Subscription, 0, len(w.tiers))
	for _, subject := range w.subjects() {
		sub, err := w.subscribe(ctx, subject, opts)
		if err != nil {
			if ctx.Err() != nil {
				// Stopped while starting: a stop like any other, with
				// the drain of what was already subscribed.
				return w.drain(subs, false)
			}
			_ = w.drain(subs, true)
			return fmt.Errorf("heddle: worker %q: subscribe to %s: %w", w.workerType, subject, err)
		}
		subs = append(subs, sub)
		seen := slices.Clone(subs) // Stats reads it while Run appends
		w.subs.Store(&seen)
		w.log.Emit(w.values, slog.LevelInfo, event.Event{Name: event.ActorSubscribed, WorkerType: w.workerType, Subject: subject},
			slog.String("subject", subject), slog.String("queue", sub.Queue()))
	}
	close(w.ready)
	w.startHeartbeat()
	select {
	case <-ctx.Done():
		return w.drain(subs, false)
	case <-bus.Done(w.bus):
	}
	_ = w.drain(subs, true)
	cause := bus.Err(w.bus)
	if cause == nil {
		cause = bus.ErrClosed
	}
	return fmt.Errorf("heddle: worker %q: the bus closed, the worker cannot serve any more: %w", w.workerType, cause)
}

// forceStop cancels the handlers: the drain gives up on them.
func (w *Worker) forceStop() {
	w.forceOnce.Do(func() {
		w.forced.Store(true)
		w.cancelHandlers()
		close(w.force)
	})
}

// drain stops the subscriptions, lets them deliver what they hold, and
// waits for every task, cancelling handlers when the drain timeout expires
// (at once when now is set: the bus is gone, or Run could not start).
//
// Its bound: handlers run until DrainTimeout; those still running
// forcedGrace later are given up on; the subscriptions deliver what the
// bus still holds, each task failed at once, until drainBound, and the
// bus discards the rest. What remains (marking the worker closed, waiting
// for the tasks already settled, stopping the goroutines) does not wait
// on a handler.
func (w *Worker) drain(subs []bus.Subscription, now bool) error {
	w.stopHeartbeat(now)
	var stopForce func() bool
	if now {
		w.forceStop()
		stopForce = func() bool { return false }
	} else {
		stopForce = time.AfterFunc(w.drainTimeout, w.forceStop).Stop
	}
	sctx, scancel := context.WithTimeout(w.values, w.drainBound())
	defer scancel()
	// All at once, so no subscription keeps taking tasks while another
	// drains.
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, sub := range subs {
		wg.Go(func() { errs[i] = sub.Drain(sctx) })
	}
	wg.Wait()

	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.tasks.Wait()
	close(w.jobs)
	w.pool.Wait()
	close(w.stopWatch)
	<-w.watchDone
	w.reportDropped()

	if !stopForce() {
		return fmt.Errorf("heddle: worker %q: drain did not finish within %s (Config.DrainTimeout); in-flight handlers were cancelled: %w",
			w.workerType, w.drainTimeout, context.DeadlineExceeded)
	}
	var out []error
	for i, err := range errs {
		// A bus closed under the worker has nothing left to drain.
		if err != nil && !errors.Is(err, bus.ErrClosed) {
			out = append(out, fmt.Errorf("heddle: worker %q: drain %s: %w", w.workerType, subs[i].Subject(), err))
		}
	}
	return errors.Join(out...)
}

// drainBound is how long after the drain began the subscriptions may
// still deliver: 1.5 × DrainTimeout, which leaves the tasks they hold
// half a DrainTimeout to be failed once the handlers were cancelled, and
// what follows (waking the goroutines that end the drain, on a loaded
// machine too) another half, so that Run returns within 2 × DrainTimeout.
func (w *Worker) drainBound() time.Duration {
	return w.drainTimeout + w.drainTimeout/2
}

// Permanent marks err as not worth retrying: a handler returning it fails
// the task at once, whatever its max_retries. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// PermanentError is the error Permanent returns; find it with errors.As.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the marked error.
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

type taskKey struct{}

// TaskFromContext returns the task a Worker handler is running, as the
// worker decoded it, with RetryCount counting the retries made so far.
func TaskFromContext(ctx context.Context) (heddle.TaskMessage, bool) {
	a, ok := ctx.Value(taskKey{}).(*attemptValue)
	if !ok {
		return heddle.TaskMessage{}, false
	}
	return a.task, true
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// checkOutputType rejects an output type whose JSON form cannot be
// an object. Interfaces and types with their own MarshalJSON are checked
// per result instead.
func checkOutputType(t reflect.Type) error {
	for {
		if t.Kind() == reflect.Interface || t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonMarshalerType) {
			return nil
		}
		if t.Implements(textMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType) {
			return fmt.Errorf("%w: %v encodes as a JSON string (it has MarshalText); return a struct or a map", ErrOutputNotObject, t)
		}
		if t.Kind() != reflect.Pointer {
			break
		}
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		return nil
	case reflect.Map:
		k := t.Key()
		if k.Kind() == reflect.String || k.Implements(textMarshalerType) ||
			(k.Kind() >= reflect.Int && k.Kind() <= reflect.Uintptr) {
			return nil
		}
		return fmt.Errorf("%w: %v has keys of type %v, which encoding/json cannot write", ErrOutputNotObject, t, k)
	}
	return fmt.Errorf("%w: %v does not encode as a JSON object; return a struct or a map", ErrOutputNotObject, t)
}
