package dispatch

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/event"
)

// DefaultTimeout is how long a Stream, Request or an
// Orchestrator waits for results when no timeout is configured (the Python
// Heddle's timeout_seconds default).
const DefaultTimeout = 300 * time.Second

// Errors of the request-reply path. Each is wrapped with %w and the task_id
// or subject at fault; test with errors.Is.
var (
	// ErrStreamClosed is returned by a Stream's or a Caller's methods
	// after its Close, and by a wait that its Close ended. (A closed bus
	// is bus.ErrClosed.)
	ErrStreamClosed = errors.New("heddle: result stream closed")
	// ErrStreamEnded is returned by Dispatch and Expect once collection has
	// ended (timeout, quorum or a stop from the progress callback): no
	// result for a new task could be collected any more.
	ErrStreamEnded = errors.New("heddle: result stream has ended")
	// ErrDuplicateTaskID reports a task_id dispatched or expected twice on
	// one stream, or an empty one.
	ErrDuplicateTaskID = errors.New("heddle: task_id already expected on this stream")
	// ErrResultSubjectMismatch reports a task whose result would be
	// published on a subject the stream does not subscribe to (its
	// parent_task_id points elsewhere), so its result could never arrive.
	ErrResultSubjectMismatch = errors.New("heddle: task's result subject is not the stream's subject")
)

// busErr is why b closed, wrapping bus.ErrClosed.
func busErr(b bus.Bus) error {
	if err := bus.Err(b); err != nil {
		return err
	}
	return bus.ErrClosed
}

// streamConfig is what a Stream keeps of its options.
type streamConfig struct {
	timeout     time.Duration
	direct      bool
	maxInFlight int
	quorum      int
	progress    func(res heddle.TaskResult, collected, expected int) bool
	contract    *contracts.Contract
}

// StreamStats counts what a Stream did with the messages it saw.
type StreamStats struct {
	// Collected counts results accepted for an expected task_id.
	Collected uint64
	// Ignored counts results for task_ids the stream does not expect.
	Ignored uint64
	// Duplicates counts repeated results for an already collected task_id.
	Duplicates uint64
	// ParseErrors counts messages rejected as malformed: bad JSON, an
	// invalid TaskResult envelope, or output violating the output schema
	// of the Contract option.
	ParseErrors uint64
	// Late counts results for expected tasks that arrived after the
	// collection ended (timeout, quorum, stop) and were dropped.
	Late uint64
	// Timeouts counts collections that ended by timeout with tasks pending.
	Timeouts uint64
}

// How a stream's collection ended.
type streamEnd int

const (
	streamOpen streamEnd = iota
	timedOut
	streamQuorum
	streamStopped
)

func (e streamEnd) String() string {
	return [...]string{"open", "timeout", "quorum reached", "stopped by progress callback"}[e]
}

// Stream collects the results of a set of tasks on one result
// subject. NewStream subscribes, and only then can tasks be
// dispatched through the stream, so a worker that answers at once cannot
// publish before the caller listens (subscribe-before-publish is built in).
//
// Each message on the subject is classified and logged once, with one
// counter (Stats): result_stream.collected (an expected task_id, first
// valid result), result_stream.ignored (a task_id the stream does not
// expect, logged at debug level because streams on a shared subject such
// as heddle.results.default see every caller's results),
// result_stream.duplicate, result_stream.parse_error (malformed JSON, an
// invalid envelope or an output contract violation; the error is logged
// and the stream keeps waiting; a malformed message whose task_id can be
// read and is not expected is ignored instead, as not for this stream),
// and result_stream.late (a result for an expected task after the
// collection ended; dropped). A timeout with tasks pending is logged once
// as result_stream.timeout.
//
// The stream stays subscribed until Close, so results that arrive after a
// timeout are seen and counted as late; Close it when done. Dispatch,
// Expect, Pending, Stats and Close are safe for concurrent use; Results
// and Collect must not run concurrently with each other.
type Stream struct {
	b       bus.Bus
	subject string
	cfg     streamConfig
	log     emitter
	sub     bus.Subscription
	busDone <-chan struct{} // closed when b has closed, if b says so
	signal  chan struct{}   // capacity 1: "state changed"

	mu        sync.Mutex
	expected  map[string]bool     // task_id -> collected
	pending   int                 // expected and not collected
	results   []heddle.TaskResult // collected, in arrival order
	delivered int                 // results yielded by Results
	queue     []streamQueued      // dispatched but held back by MaxInFlight, in order
	// queued holds the task_ids in queue not yet published; a task
	// answered while queued leaves it and is skipped when its turn comes,
	// so that collecting a result costs the same however long the queue.
	queued map[string]struct{}
	// workerTypes holds the worker type of each task Dispatch sent, for
	// the timeout error's advice.
	workerTypes map[string]string
	inFlight    int // published and not collected
	end         streamEnd
	timeout     *TimeoutError
	timer       *time.Timer
	closed      bool
	// rejected holds the results rejected for pending tasks, for the
	// timeout error; at most maxRejectedListed, the others counted in
	// moreRejected.
	rejected     []RejectedResult
	moreRejected int

	counts counters
}

type streamQueued struct {
	id, subject string
	data        []byte
}

// NewStream subscribes to subject and returns a stream ready to
// dispatch tasks whose results are published there (ResultSubject of their
// parent_task_id). When it returns, the subscription is live. ctx bounds
// the subscribe call only; the stream lives until Close.
//
// It takes the options Timeout, Direct, MaxInFlight, Quorum, Progress,
// Contract (whose output schema a completed result must satisfy, or it is
// rejected as result_stream.parse_error and the stream keeps waiting for a
// valid result for that task) and With, and refuses the others
// (heddle.ErrConfig). Without options it collects every expected result,
// through the Router, with DefaultTimeout.
func NewStream(ctx context.Context, b bus.Bus, subject string, opts ...Option) (*Stream, error) {
	o, err := newOptions(opts, forNewStream)
	if err != nil {
		return nil, err
	}
	return newStream(ctx, b, subject, &o)
}

// newStream is NewStream with its options applied.
func newStream(ctx context.Context, b bus.Bus, subject string, o *options) (*Stream, error) {
	more := o.moreOrNone()
	s := &Stream{
		b:       b,
		subject: subject,
		cfg: streamConfig{timeout: o.timeoutOrDefault(), direct: o.direct, maxInFlight: o.maxInFlight,
			quorum: more.quorum, progress: more.progress, contract: o.contract},
		log:      o.emitter(),
		busDone:  bus.Done(b),
		signal:   make(chan struct{}, 1),
		expected: map[string]bool{},
	}
	sub, err := b.Subscribe(ctx, subject, s.handle)
	if err != nil {
		return nil, fmt.Errorf("heddle: result stream subscribing to %s: %w", subject, err)
	}
	s.sub = sub
	return s, nil
}

// Subject returns the result subject the stream listens on.
func (s *Stream) Subject() string { return s.subject }

// Dispatch registers every task's task_id as expected, then publishes the
// tasks in order: to SubjectTasksIncoming (the Router), or to each task's
// worker subject with Direct. With MaxInFlight, tasks beyond the bound are
// published by Results as results come in. The first Dispatch (or Expect)
// starts the timeout.
//
// Before anything is published, every task is validated (a *ValidationError
// naming the field), its task_id must be new to the stream
// (ErrDuplicateTaskID), and its result subject must be the stream's
// (ErrResultSubjectMismatch: set parent_task_id accordingly). If a publish
// fails, that task and the ones after it are no longer expected and the
// error names the task_id and subject; the tasks published before it stay
// expected.
func (s *Stream) Dispatch(ctx context.Context, tasks ...heddle.TaskMessage) error {
	items := make([]streamQueued, len(tasks))
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		data, err := t.Encode()
		if err != nil {
			return fmt.Errorf("heddle: dispatching task %s: %w", t.TaskID, err)
		}
		if rs := t.ResultSubject(); !bus.Match(s.subject, rs) {
			return fmt.Errorf("%w: task %s (parent_task_id %q) has its result published on %s, the stream listens on %s",
				ErrResultSubjectMismatch, t.TaskID, t.ParentTaskID, rs, s.subject)
		}
		subject := heddle.SubjectTasksIncoming
		if s.cfg.direct {
			subject = t.WorkerSubject()
		}
		items[i] = streamQueued{id: t.TaskID, subject: subject, data: data}
		ids[i] = t.TaskID
	}
	s.mu.Lock()
	if err := s.expectLocked(ids); err != nil {
		s.mu.Unlock()
		return err
	}
	if s.workerTypes == nil {
		s.workerTypes = make(map[string]string, len(tasks))
	}
	for _, t := range tasks {
		s.workerTypes[t.TaskID] = t.WorkerType
	}
	n := len(items)
	if s.cfg.maxInFlight > 0 {
		n = min(n, max(0, s.cfg.maxInFlight-s.inFlight-len(s.queued)))
		s.queue = append(s.queue, items[n:]...)
		if s.queued == nil {
			s.queued = make(map[string]struct{})
		}
		for _, it := range items[n:] {
			s.queued[it.id] = struct{}{}
		}
	}
	s.inFlight += n
	s.startTimerLocked()
	s.mu.Unlock()
	return s.publish(ctx, items[:n])
}

// Expect registers task_ids whose tasks the caller dispatches by other
// means. It is safe only because the stream is already subscribed: publish
// those tasks after Expect returns. Expect does not start the timeout; the
// first Results or Collect call does, unless a Dispatch did.
func (s *Stream) Expect(taskIDs ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expectLocked(taskIDs)
}

func (s *Stream) expectLocked(ids []string) error {
	switch {
	case s.closed:
		return ErrStreamClosed
	case s.end != streamOpen:
		return fmt.Errorf("%w (%s) on %s", ErrStreamEnded, s.end, s.subject)
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if _, dup := s.expected[id]; dup || seen[id] || id == "" {
			return fmt.Errorf("%w: %q on %s", ErrDuplicateTaskID, id, s.subject)
		}
		seen[id] = true
	}
	for _, id := range ids {
		s.expected[id] = false
	}
	s.pending += len(ids)
	return nil
}

// startTimerLocked starts the timeout once, when there is something to
// wait for.
func (s *Stream) startTimerLocked() {
	if s.timer == nil && len(s.expected) > 0 && !s.closed {
		s.timer = time.AfterFunc(s.cfg.timeout, s.fireTimeout)
	}
}

// publish sends items in order. On failure it forgets the failed item and
// the ones after it, so they never count as pending.
func (s *Stream) publish(ctx context.Context, items []streamQueued) error {
	for i, it := range items {
		if err := s.b.Publish(ctx, &bus.Msg{Subject: it.subject, Data: it.data}); err != nil {
			s.mu.Lock()
			for _, rest := range items[i:] {
				if collected, ok := s.expected[rest.id]; ok && !collected {
					delete(s.expected, rest.id)
					s.pending--
					s.inFlight--
				}
			}
			s.mu.Unlock()
			s.notify()
			return fmt.Errorf("heddle: dispatching task %s to %s: %w", it.id, it.subject, err)
		}
	}
	return nil
}

// Pending returns the task_ids still without a result, sorted.
func (s *Stream) Pending() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pendingLocked()
}

func (s *Stream) pendingLocked() []string {
	ids := make([]string, 0, s.pending)
	for id, collected := range s.expected {
		if !collected {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Stats returns the stream's counters.
func (s *Stream) Stats() StreamStats {
	return StreamStats{
		Collected:   s.counts.collected.Load(),
		Ignored:     s.counts.ignored.Load(),
		Duplicates:  s.counts.duplicates.Load(),
		ParseErrors: s.counts.parseErrors.Load(),
		Late:        s.counts.late.Load(),
		Timeouts:    s.counts.timeouts.Load(),
	}
}

// Close unsubscribes and stops the timeout. Results arriving afterwards are
// not seen. A Results call waiting for results returns ErrStreamClosed.
// Close is idempotent.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	s.notify()
	if err := s.sub.Unsubscribe(); err != nil && !errors.Is(err, bus.ErrClosed) {
		return fmt.Errorf("heddle: result stream unsubscribing from %s: %w", s.subject, err)
	}
	return nil
}

// Results returns an iterator over the collected results, in arrival order.
// Each result is yielded once with a nil error. The iteration ends when
// every expected result is collected, the Quorum is reached or Progress
// returns false (no error yielded); when the timeout fires with tasks
// pending (a final zero TaskResult with a *TimeoutError); when ctx ends
// (for its deadline, a *TimeoutError naming the pending tasks that also
// matches context.DeadlineExceeded; otherwise ctx.Err()), leaving the
// stream able to continue; when the stream is closed (ErrStreamClosed);
// or when the bus closes under it (an error wrapping bus.ErrClosed,
// after the results collected before). Breaking out of the loop leaves
// the remaining results for a later call.
func (s *Stream) Results(ctx context.Context) iter.Seq2[heddle.TaskResult, error] {
	return s.resultsUntil(ctx, nil)
}

// errUnserved is yielded by resultsUntil when its stop channel is closed.
var errUnserved = errors.New("heddle: nothing serves the stream's tasks")

// resultsUntil is Results, also ending with errUnserved when stop is
// closed.
func (s *Stream) resultsUntil(ctx context.Context, stop <-chan struct{}) iter.Seq2[heddle.TaskResult, error] {
	return func(yield func(heddle.TaskResult, error) bool) {
		s.mu.Lock()
		s.startTimerLocked()
		s.mu.Unlock()
		busGone := false
		for {
			s.mu.Lock()
			var next []streamQueued
			if s.cfg.maxInFlight > 0 && len(s.queued) > 0 && s.end == streamOpen && !s.closed {
				next = s.dequeueLocked(max(0, s.cfg.maxInFlight-s.inFlight))
			}
			if len(next) > 0 {
				s.mu.Unlock()
				if err := s.publish(ctx, next); err != nil {
					yield(heddle.TaskResult{}, err)
					return
				}
				continue
			}
			if s.delivered < len(s.results) {
				r := s.results[s.delivered]
				s.delivered++
				n, expected := s.delivered, len(s.expected)
				s.mu.Unlock()
				more := s.cfg.progress == nil || s.cfg.progress(r, n, expected)
				if !more {
					s.stop()
				}
				if !yield(r, nil) || !more {
					return
				}
				continue
			}
			end, timeout, pending, closed := s.end, s.timeout, s.pending, s.closed
			s.mu.Unlock()
			switch {
			case timeout != nil:
				yield(heddle.TaskResult{}, timeout)
				return
			case end != streamOpen || pending == 0:
				return
			case closed:
				yield(heddle.TaskResult{}, fmt.Errorf("%w while waiting on %s", ErrStreamClosed, s.subject))
				return
			case busGone:
				yield(heddle.TaskResult{}, fmt.Errorf("heddle: waiting for results on %s: %w", s.subject, busErr(s.b)))
				return
			}
			select {
			case <-s.signal:
			case <-ctx.Done():
				yield(heddle.TaskResult{}, s.contextErr(ctx))
				return
			case <-stop:
				yield(heddle.TaskResult{}, errUnserved)
				return
			case <-s.busDone:
				// Once more round the loop first: a result collected just
				// before the bus closed is still yielded.
				busGone = true
			}
		}
	}
}

// contextErr is the error of a wait ctx ended: for its deadline, a
// *TimeoutError naming what is pending now (the stream goes on, so it is
// neither counted nor logged as the stream's timeout); otherwise ctx.Err().
func (s *Stream) contextErr(ctx context.Context) error {
	err := ctx.Err()
	if err != context.DeadlineExceeded {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.timeoutErrorLocked(err)
}

// Collect gathers the results as Results does and returns them in arrival
// order. On timeout it returns the partial results together with the
// *TimeoutError (whose Results holds every result collected before the
// timeout); on another error, the results gathered so far and the error.
func (s *Stream) Collect(ctx context.Context) ([]heddle.TaskResult, error) {
	var out []heddle.TaskResult
	for r, err := range s.Results(ctx) {
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *Stream) notify() {
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// stop ends the collection at the progress callback's request.
func (s *Stream) stop() {
	s.mu.Lock()
	if s.end == streamOpen {
		s.end = streamStopped
		if s.timer != nil {
			s.timer.Stop()
		}
	}
	s.mu.Unlock()
}

// fireTimeout runs on the timer's goroutine when the timeout expires.
func (s *Stream) fireTimeout() {
	s.mu.Lock()
	if s.end != streamOpen || s.closed {
		s.mu.Unlock()
		return
	}
	s.end = timedOut
	var te *TimeoutError
	if s.pending > 0 {
		te = s.timeoutErrorLocked(nil)
		s.timeout = te
	}
	s.mu.Unlock()
	// Counted and logged before the consumer is woken, so a caller that
	// has the outcome sees them; woken even if the event's emission never
	// returns.
	defer s.notify()
	if te != nil {
		s.counts.timeouts.Add(1)
		s.log.countEvent(context.Background(), nil, slog.LevelWarn, event.Event{Name: event.ResultStreamTimeout, Subject: s.subject,
			Reason: event.ReasonTimeout, Err: te},
			slog.String("subject", s.subject), slog.Any("pending_task_ids", te.PendingTaskIDs), slog.Int("expected_count", te.ExpectedCount),
			slog.Int("collected_count", te.CollectedCount), slog.Float64("timeout_seconds", te.TimeoutSeconds()))
	}
}

// timeoutErrorLocked describes the wait's state for a *TimeoutError;
// cause is what ended the wait, when not the stream's timeout.
func (s *Stream) timeoutErrorLocked(cause error) *TimeoutError {
	return &TimeoutError{
		Subject:        s.subject,
		PendingTaskIDs: s.pendingLocked(),
		ExpectedCount:  len(s.expected),
		CollectedCount: len(s.results),
		Timeout:        s.cfg.timeout,
		WorkerTypes:    s.pendingTypesLocked(),
		Results:        slices.Clone(s.results),
		Rejected:       slices.Clone(s.rejected),
		MoreRejected:   s.moreRejected,
		Cause:          cause,
	}
}

// handle classifies one message on the stream's subject; it never blocks
// on the consumer.
func (s *Stream) handle(ctx context.Context, msg *bus.Msg) error {
	classify(ctx, s.subject, msg, streamTracker{s}, &s.counts)
	return nil
}

// streamTracker is the Stream's state as classify sees it.
type streamTracker struct{ s *Stream }

func (t streamTracker) expects(id []byte) (relevant, waiting bool, log emitter) {
	s := t.s
	s.mu.Lock()
	_, known := s.expected[string(id)]
	s.mu.Unlock()
	return known, known, s.log
}

func (t streamTracker) take(res *heddle.TaskResult, _ []byte) outcome {
	s := t.s
	if s.cfg.contract != nil && res.Status == heddle.StatusCompleted && s.isPending(res.TaskID) {
		if err := s.cfg.contract.ValidateOutput(res.Output); err != nil {
			return outcome{verdict: verdictParseError, log: s.log, err: err}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	collected, known := s.expected[res.TaskID]
	switch {
	case !known:
		return outcome{verdict: verdictIgnored, log: s.log, reason: "unknown task_id"}
	case collected:
		return outcome{verdict: verdictDuplicate, log: s.log}
	case s.end != streamOpen || s.closed:
		return outcome{verdict: verdictLate, log: s.log, reason: "collection ended: " + s.end.String()}
	}
	s.expected[res.TaskID] = true
	s.pending--
	if len(s.rejected) > 0 {
		// The task has its result: its rejected ones explain no timeout.
		s.rejected = slices.DeleteFunc(s.rejected, func(r RejectedResult) bool { return r.TaskID == res.TaskID })
	}
	if _, ok := s.queued[res.TaskID]; ok {
		// Answered before the stream published it (dispatched by other
		// means too): never publish it now.
		delete(s.queued, res.TaskID)
	} else {
		s.inFlight--
	}
	s.results = append(s.results, *res)
	if s.cfg.quorum > 0 && len(s.results) >= s.cfg.quorum {
		s.end = streamQuorum
		if s.timer != nil {
			s.timer.Stop()
		}
	}
	return outcome{verdict: verdictCollected, log: s.log, stream: s}
}

func (t streamTracker) reject(id string, at time.Time, err error) {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if collected, known := s.expected[id]; !known || collected || s.end != streamOpen {
		return
	}
	if len(s.rejected) == maxRejectedListed {
		s.moreRejected++
		return
	}
	s.rejected = append(s.rejected, RejectedResult{TaskID: id, Arrived: at, Err: err})
}

func (s *Stream) isPending(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	collected, known := s.expected[id]
	return known && !collected
}

// dequeueLocked takes up to n tasks still to be published from the front
// of the queue, skipping those answered meanwhile, and counts them in
// flight.
func (s *Stream) dequeueLocked(n int) []streamQueued {
	var next []streamQueued
	for len(next) < n && len(s.queue) > 0 {
		it := s.queue[0]
		s.queue[0] = streamQueued{} // let the payload go
		s.queue = s.queue[1:]
		if _, ok := s.queued[it.id]; !ok {
			continue
		}
		delete(s.queued, it.id)
		next = append(next, it)
	}
	if len(s.queued) == 0 {
		s.queue = nil
	}
	s.inFlight += len(next)
	return next
}

// pendingTypesLocked returns the worker types of the pending tasks Dispatch
// sent, sorted and without repeats.
func (s *Stream) pendingTypesLocked() []string {
	var types []string
	for id, collected := range s.expected {
		if wt, ok := s.workerTypes[id]; ok && !collected && !slices.Contains(types, wt) {
			types = append(types, wt)
		}
	}
	slices.Sort(types)
	return types
}
