package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/observe"
)

// callerRecentTaskIDs bounds how many answered or abandoned task_ids a
// Caller remembers to tell a duplicate or a late result from a result for
// a task it never dispatched (which it counts as ignored).
const callerRecentTaskIDs = 4096

// Caller dispatches single tasks and waits for their results over one
// subscription to a result subject that it keeps until Close, as nats.go
// keeps one inbox subscription for all its requests. A round trip then
// costs a publish and a delivery. The Request function works the
// same way on a bus implementing bus.Keeper, with a subscription that
// ends a while after its last call; a Caller's subscription is there from
// NewCaller to Close, on any bus. It is safe for concurrent use.
//
// It keeps the promises of a Stream: subscribed before any task is
// published; a malformed result or an output violating the contract is
// logged as result_stream.parse_error and the wait goes on; results for
// task_ids it does not wait for are result_stream.ignored (debug level),
// repeats result_stream.duplicate, and results arriving after their
// caller stopped waiting (timeout or cancelled context)
// result_stream.late, each counted in Stats. A timeout is a *TimeoutError.
type Caller struct {
	b       bus.Bus
	subject string
	sub     bus.Subscription
	status  bus.Subscription // the bus's no-responders reports
	// defaultLog is the emitter of calls given no With, for the
	// slog.Default() it was made with: calls share it while that stays.
	defaultLog atomic.Pointer[defaultEmitter]
	// inbox is the status subscription's subject prefix. A task's reply
	// subject is inbox and a token of the Caller's own, never the task_id,
	// which may hold anything TaskMessage.Validate accepts (spaces, dots,
	// wildcards) and could not be a subject token.
	inbox   string
	closing chan struct{}
	busDone <-chan struct{} // closed when b has closed, if b says so
	// shared: the Caller serves Request function calls, each with
	// its own logger, and log follows the latest call's.
	shared bool

	mu sync.Mutex
	// log gets the events no waiting call owns: unknown task_ids and
	// malformed results naming no awaited task.
	log     emitter
	waiting map[string]*callerWait
	// replies holds the waits by the token of their reply subject, while
	// they are in waiting.
	replies   map[uint64]*callerWait
	lastToken uint64
	recent    map[string]callerRecent
	// order holds recent's keys as a ring once full: order[next] is the
	// oldest, replaced by the next task_id remembered.
	order  []string
	next   int
	closed bool

	counts counters
}

type callerWait struct {
	// res is the result, written once before done is sent to (capacity
	// 1, sent to once); the call returns a pointer to it, so that the
	// result is allocated with the wait.
	res      heddle.TaskResult
	done     chan struct{}
	contract *contracts.Contract
	accept   acceptFunc // a typed call's check and decode, or nil
	log      emitter    // the call's events go there
	token    uint64     // its key in Caller.replies, when the Caller has an inbox
	// noResponders is closed when the bus reports that nothing was
	// subscribed to the subject the task was published to.
	noResponders chan struct{}
	unserved     sync.Once
	// Guarded by Caller.mu: the results rejected so far, for the timeout
	// error.
	rejected     []RejectedResult
	moreRejected int
}

// acceptFunc is a typed call's last check of a completed result that
// passed the contract, given the bytes of its message: an error rejects
// the result (a parse_error; the wait goes on); otherwise commit, run
// only if the result is handed to the call, keeps what was decoded.
type acceptFunc func(res *heddle.TaskResult, raw []byte) (commit func(), err error)

// callerRecent is a task_id the Caller stopped waiting for.
type callerRecent struct {
	answered bool    // collected (true) or abandoned (false)
	log      emitter // the logger of the call that waited
}

// NewCaller subscribes to subject, a result subject such as
// SubjectResultsDefault (for tasks without parent_task_id) or
// ResultSubject(id) (for tasks whose parent_task_id is id), and returns a
// Caller for tasks whose results are published there. When it returns the
// subscription is live. ctx bounds the subscribe call only. It takes the
// option With (where the events of calls given no With go) and refuses
// the others (heddle.ErrConfig): the settings of a call are given to its
// Request.
func NewCaller(ctx context.Context, b bus.Bus, subject string, opts ...Option) (*Caller, error) {
	o, err := newOptions(opts, forNewCaller)
	if err != nil {
		return nil, err
	}
	return newCaller(ctx, b, subject, o.emitter(), false, true)
}

// newCaller is NewCaller with the logger given; shared makes a Caller
// for the Request function (see Caller.shared).
//
// unserved subscribes the status inbox through which the bus reports a
// task nothing was subscribed to receive (see handleStatus).
func newCaller(ctx context.Context, b bus.Bus, subject string, log emitter, shared, unserved bool, subOpts ...bus.SubscribeOption) (*Caller, error) {
	c := &Caller{
		b:       b,
		subject: subject,
		shared:  shared,
		log:     log,
		closing: make(chan struct{}),
		busDone: bus.Done(b),
		waiting: map[string]*callerWait{},
		recent:  map[string]callerRecent{},
	}
	sub, err := b.Subscribe(ctx, subject, c.handle, subOpts...)
	if err != nil {
		return nil, fmt.Errorf("heddle: caller subscribing to %s: %w", subject, err)
	}
	c.sub = sub
	if !unserved {
		return c, nil
	}
	// The bus's reports on the tasks this Caller publishes: a task nothing
	// was subscribed to receive fails at once.
	c.inbox = "_INBOX.heddle.caller." + strings.ReplaceAll(uuid.NewString(), "-", "") + "."
	c.replies = map[uint64]*callerWait{}
	status, err := b.Subscribe(ctx, c.inbox+"*", c.handleStatus, bus.LocalInterest())
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("heddle: caller subscribing to its status inbox: %w", err)
	}
	c.status = status
	return c, nil
}

// handleStatus ends the wait of a task the bus reports nothing was
// subscribed to receive.
func (c *Caller) handleStatus(_ context.Context, msg *bus.Msg) error {
	if !bus.NoResponders(msg) {
		return nil
	}
	token, err := strconv.ParseUint(strings.TrimPrefix(msg.Subject, c.inbox), 36, 64)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	w, ok := c.replies[token]
	c.mu.Unlock()
	if ok {
		w.unserved.Do(func() { close(w.noResponders) })
	}
	return nil
}

// Request publishes task and waits for its result, as the
// Request function does (same options, same errors, never a nil
// result with a nil error), over the Caller's subscription. The task's
// result subject must be the Caller's (ErrResultSubjectMismatch) and its
// task_id must not be one the Caller is waiting for or recently saw
// (ErrDuplicateTaskID); any other task_id TaskMessage.Validate accepts
// will do, spaces, dots and wildcards included. After Close it returns
// ErrStreamClosed, and when the bus closes while it waits an error wrapping
// bus.ErrClosed. With With the call's events go to the logger and
// observers given there instead of the Caller's.
func (c *Caller) Request(ctx context.Context, task heddle.TaskMessage, opts ...Option) (*heddle.TaskResult, error) {
	o, err := newOptions(opts, forCallerRequest)
	if err != nil {
		return nil, err
	}
	return c.request(ctx, task, &o)
}

// request is Request with its options applied: inside the interceptors
// of the call's With, or else the Caller's, as one event.OpDispatch.
func (c *Caller) request(ctx context.Context, task heddle.TaskMessage, o *options) (*heddle.TaskResult, error) {
	var e *observe.Emitter
	if len(o.actor) > 0 {
		e = o.emitter().e
	} else {
		c.mu.Lock()
		e = c.log.e
		c.mu.Unlock()
	}
	if e.Intercepted(event.OpDispatch) || e.Propagated() {
		return interceptedRequest(ctx, task, o, e, func(ctx context.Context, task heddle.TaskMessage) (*heddle.TaskResult, error) {
			return c.plainRequest(ctx, task, o)
		})
	}
	return c.plainRequest(ctx, task, o)
}

// plainRequest is request without interceptors.
func (c *Caller) plainRequest(ctx context.Context, task heddle.TaskMessage, o *options) (*heddle.TaskResult, error) {
	data, err := o.prepare(&task)
	if err != nil {
		return nil, err
	}
	if rs := task.ResultSubject(); !bus.Match(c.subject, rs) {
		return nil, fmt.Errorf("%w: task %s (parent_task_id %q) has its result published on %s, the caller listens on %s",
			ErrResultSubjectMismatch, task.TaskID, task.ParentTaskID, rs, c.subject)
	}
	return deadLettered(c.wait(ctx, &task, data, o, false))
}

// wait publishes data, the encoded task, and waits for the task's result.
// again lets it wait for a task_id the Caller recently saw: the
// Request function, whose calls share a Caller, may repeat a task.
func (c *Caller) wait(ctx context.Context, task *heddle.TaskMessage, data []byte, o *options, again bool) (*heddle.TaskResult, error) {
	subject := heddle.SubjectTasksIncoming
	if o.direct {
		subject = task.WorkerSubject()
	}
	timeout := o.timeoutOrDefault()

	w := &callerWait{done: make(chan struct{}, 1), contract: o.contract, accept: o.accept,
		noResponders: make(chan struct{})}
	if c.shared || o.actor != nil {
		w.log = c.emitterFor(o)
	}
	c.mu.Lock()
	switch {
	case c.shared:
		c.log = w.log
	case w.log.e == nil:
		w.log = c.log
	}
	_, waiting := c.waiting[task.TaskID]
	_, seen := c.recent[task.TaskID]
	switch {
	case c.closed:
		c.mu.Unlock()
		return nil, ErrStreamClosed
	case waiting || seen && !again:
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %q on %s", ErrDuplicateTaskID, task.TaskID, c.subject)
	}
	c.waiting[task.TaskID] = w
	if c.replies != nil {
		c.lastToken++
		w.token = c.lastToken
		c.replies[w.token] = w
	}
	c.mu.Unlock()

	msg := &bus.Msg{Subject: subject, Data: data}
	if c.replies != nil {
		var buf [80]byte
		msg.Reply = string(strconv.AppendUint(append(buf[:0], c.inbox...), w.token, 36))
	}
	if err := c.b.Publish(ctx, msg); err != nil {
		c.mu.Lock()
		c.forgetLocked(task.TaskID, w)
		c.mu.Unlock()
		return nil, fmt.Errorf("heddle: dispatching task %s to %s: %w", task.TaskID, subject, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var stopErr error
	deadline := false
	select {
	case <-w.done:
		return &w.res, nil
	case <-timer.C:
	case <-w.noResponders:
		if subject == heddle.SubjectTasksIncoming {
			stopErr = fmt.Errorf("%w: task %s was published to %s, where nothing is subscribed", ErrNoRouter, task.TaskID, subject)
		} else {
			stopErr = fmt.Errorf("%w: task %s was published to %s, where nothing is subscribed", ErrNoWorker, task.TaskID, subject)
		}
		w.log.countEvent(ctx, nil, slog.LevelWarn, event.Event{Name: event.ResultStreamUnserved, Subject: subject, TaskID: task.TaskID,
			WorkerType: task.WorkerType, Tier: string(task.ModelTier), Reason: event.ReasonNoWorker, Err: stopErr},
			slog.String("subject", subject), slog.String("task_id", task.TaskID), slog.String("worker_type", task.WorkerType),
			slog.String("reason", "nothing subscribed"))
	case <-ctx.Done():
		// A deadline is a timeout the caller chose: it names the task as
		// the dispatch timeout does.
		stopErr = ctx.Err()
		deadline = stopErr == context.DeadlineExceeded
	case <-c.closing:
		stopErr = fmt.Errorf("%w while waiting for task %s on %s", ErrStreamClosed, task.TaskID, c.subject)
	case <-c.busDone:
		stopErr = fmt.Errorf("heddle: waiting for task %s on %s: %w", task.TaskID, c.subject, busErr(c.b))
	}
	if !c.abandon(task.TaskID, w) {
		// The result won the race: it is in the channel.
		<-w.done
		return &w.res, nil
	}
	if stopErr != nil && !deadline {
		return nil, stopErr
	}
	te := &TimeoutError{Subject: c.subject, PendingTaskIDs: []string{task.TaskID}, ExpectedCount: 1, Timeout: timeout,
		WorkerTypes: []string{task.WorkerType}, Cause: stopErr}
	c.mu.Lock()
	// No result is handed to w any more; its rejections are complete.
	te.Rejected, te.MoreRejected = w.rejected, w.moreRejected
	c.mu.Unlock()
	if deadline {
		return nil, te
	}
	c.counts.timeouts.Add(1)
	w.log.countEvent(ctx, nil, slog.LevelWarn, event.Event{Name: event.ResultStreamTimeout, Subject: c.subject, TaskID: task.TaskID,
		WorkerType: task.WorkerType, Tier: string(task.ModelTier), Reason: event.ReasonTimeout, Err: te, Duration: timeout},
		slog.String("subject", c.subject), slog.String("task_id", task.TaskID), slog.String("worker_type", task.WorkerType),
		slog.Any("pending_task_ids", te.PendingTaskIDs), slog.Int("expected_count", 1), slog.Int("collected_count", 0),
		slog.Float64("timeout_seconds", te.TimeoutSeconds()))
	return nil, te
}

// abandon stops waiting for id, which w waited for; it reports false when
// the result was already delivered.
func (c *Caller) abandon(id string, w *callerWait) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting[id] != w {
		return false
	}
	c.forgetLocked(id, w)
	c.rememberLocked(id, callerRecent{answered: false, log: w.log})
	return true
}

// forgetLocked ends the wait w for id.
func (c *Caller) forgetLocked(id string, w *callerWait) {
	delete(c.waiting, id)
	if c.replies != nil {
		delete(c.replies, w.token)
	}
}

func (c *Caller) rememberLocked(id string, r callerRecent) {
	if _, ok := c.recent[id]; !ok {
		if len(c.order) < callerRecentTaskIDs {
			c.order = append(c.order, id)
		} else {
			delete(c.recent, c.order[c.next])
			c.order[c.next] = id
			c.next = (c.next + 1) % callerRecentTaskIDs
		}
	}
	c.recent[id] = r
}

// Stats returns the Caller's counters; Timeouts counts calls that timed
// out.
func (c *Caller) Stats() StreamStats {
	return StreamStats{
		Collected:   c.counts.collected.Load(),
		Ignored:     c.counts.ignored.Load(),
		Duplicates:  c.counts.duplicates.Load(),
		ParseErrors: c.counts.parseErrors.Load(),
		Late:        c.counts.late.Load(),
		Timeouts:    c.counts.timeouts.Load(),
	}
}

// Close unsubscribes; calls still waiting return ErrStreamClosed. It is
// idempotent.
func (c *Caller) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.closing)
	c.mu.Unlock()
	if c.status != nil {
		_ = c.status.Unsubscribe()
	}
	if err := c.sub.Unsubscribe(); err != nil && !errors.Is(err, bus.ErrClosed) {
		return fmt.Errorf("heddle: caller unsubscribing from %s: %w", c.subject, err)
	}
	return nil
}

func (c *Caller) handle(ctx context.Context, msg *bus.Msg) error {
	classify(ctx, c.subject, msg, callerTracker{c}, &c.counts)
	return nil
}

// callerTracker is the Caller's state as classify sees it.
type callerTracker struct{ c *Caller }

func (t callerTracker) expects(id []byte) (relevant, waiting bool, log emitter) {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	w, waiting := c.waiting[string(id)]
	_, seen := c.recent[string(id)]
	if waiting {
		return true, true, w.log
	}
	return seen, false, c.log
}

func (t callerTracker) take(res *heddle.TaskResult, raw []byte) outcome {
	c := t.c
	c.mu.Lock()
	w, waiting := c.waiting[res.TaskID]
	r, seen := c.recent[res.TaskID]
	log := c.log
	c.mu.Unlock()
	switch {
	case !waiting && seen && r.answered:
		return outcome{verdict: verdictDuplicate, log: r.log}
	case !waiting && seen:
		return outcome{verdict: verdictLate, log: r.log, reason: "the caller stopped waiting"}
	case !waiting:
		return outcome{verdict: verdictIgnored, log: log, reason: "unknown task_id"}
	}
	var commit func()
	if res.Status == heddle.StatusCompleted {
		if w.contract != nil {
			if err := w.contract.ValidateOutput(res.Output); err != nil {
				return outcome{verdict: verdictParseError, log: w.log, err: err}
			}
		}
		if w.accept != nil {
			var err error
			if commit, err = w.accept(res, raw); err != nil {
				return outcome{verdict: verdictParseError, log: w.log, err: err}
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting[res.TaskID] != w {
		// Abandoned meanwhile.
		return outcome{verdict: verdictLate, log: w.log, reason: "the caller stopped waiting"}
	}
	c.forgetLocked(res.TaskID, w)
	c.rememberLocked(res.TaskID, callerRecent{answered: true, log: w.log})
	if commit != nil {
		commit()
	}
	return outcome{verdict: verdictCollected, log: w.log, to: w}
}

func (t callerTracker) reject(id string, at time.Time, err error) {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.waiting[id]
	switch {
	case !ok:
	case len(w.rejected) == maxRejectedListed:
		w.moreRejected++
	default:
		w.rejected = append(w.rejected, RejectedResult{TaskID: id, Arrived: at, Err: err})
	}
}

// defaultEmitter is an emitter made for one slog.Default().
type defaultEmitter struct {
	logger  *slog.Logger
	emitter emitter
}

// emitterFor returns where a call's events go: the settings its With
// gave, or the default logger's emitter, made once per slog.Default().
func (c *Caller) emitterFor(o *options) emitter {
	if len(o.actor) > 0 {
		return o.emitter()
	}
	l := slog.Default()
	if d := c.defaultLog.Load(); d != nil && d.logger == l {
		return d.emitter
	}
	e := newEmitter(heddle.WithLogger(l))
	c.defaultLog.Store(&defaultEmitter{logger: l, emitter: e})
	return e
}
