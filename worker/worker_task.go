package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/codec"
	"github.com/heddle-go/heddle/internal/wire"
)

// The root's codec entry points for the worker (see internal/codec).
var (
	decodeTaskPayload = codec.DecodeTaskPayload.(func([]byte) (heddle.TaskMessage, []byte, error))
	appendTaskResult  = codec.AppendTaskResult.(func(*heddle.TaskResult, []byte) ([]byte, error))
)

// Reasons of worker.failed events: why a task failed or a message was
// dropped. They are the "reason" attribute of the log record.
const (
	reasonDecode         = event.ReasonDecode         // not a valid TaskMessage
	reasonWrongType      = event.ReasonWrongType      // a task for another worker type
	reasonInputContract  = event.ReasonInputContract  // payload violates the input schema
	reasonInputDecode    = event.ReasonInputDecode    // payload does not decode into In
	reasonOutputContract = event.ReasonOutputContract // output violates the output schema
	reasonOutputEncode   = event.ReasonOutputEncode   // output is not a JSON object
	reasonHandler        = event.ReasonHandler        // retryable error, retries exhausted
	reasonPermanent      = event.ReasonPermanent      // Permanent error from the handler
	reasonPanic          = event.ReasonPanic          // the handler panicked
	reasonTimeout        = event.ReasonTimeout        // TaskTimeout expired
	reasonShutdown       = event.ReasonShutdown       // drain timeout cancelled the task
	reasonGoexit         = event.ReasonGoexit         // the handler called runtime.Goexit
	reasonPublish        = event.ReasonPublish        // the result could not be published
	reasonOutputTooLarge = event.ReasonOutputTooLarge // the result exceeds the bus's max payload
)

// handlerError is how a failed attempt is reported: why, the error
// text of the failed result, an output the failed result still carries
// (the exec worker's exit code and stderr), and whether to retry.
type handlerError struct {
	reason    string
	err       error
	output    map[string]any
	permanent bool
	stack     []byte // of a panic, for the log
}

func (e *handlerError) Error() string { return e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

// deliver runs on a subscription's delivery goroutine: it decodes the task
// and hands it to the pool, waiting while every pool goroutine is busy, so
// the bus's pending limits apply beyond Concurrency. Once the drain has
// given up (or the bus is closing the subscription) a task is failed here
// at once and never reaches a handler.
//
// Each call is counted in tasks from its start, so that the drain waits
// for it. A call that starts once the drain has ended (a bus may hand over
// one last message as a drain cut short by its bound returns) takes
// nothing: that message is discarded unseen, like the rest the bus held,
// and neither the counts nor the results change after Run returned.
func (w *Worker) deliver(ctx context.Context, msg *bus.Msg) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.tasks.Add(1)
	w.mu.Unlock()
	job := new(workerJob)
	decoded, payload, err := decodeTaskPayload(msg.Data)
	job.task = decoded
	task := &job.task
	if err != nil {
		defer w.tasks.Done()
		w.reject(msg.Data, reasonDecode, err)
		return nil
	}
	job.payload = payload
	if task.WorkerType != w.workerType {
		defer w.tasks.Done()
		w.reject(msg.Data, reasonWrongType, fmt.Errorf("task for worker_type %q was delivered on %s to worker %q",
			task.WorkerType, msg.Subject, w.workerType))
		return nil
	}
	if !w.forced.Load() {
		select {
		case w.jobs <- job:
			return nil
		case <-ctx.Done():
		case <-w.handlerCtx.Done():
		}
	}
	defer w.tasks.Done()
	w.refuse(job)
	return nil
}

// workerJob is one task handed to the pool, with its payload's bytes as
// they came on the wire.
type workerJob struct {
	task    heddle.TaskMessage
	payload []byte
	// trace holds the context whose trace context the result carries
	// (with a propagator): the last attempt's, as its interceptors made it.
	trace atomic.Pointer[traceContext]
	// announced: worker.received was emitted (and counted) for it.
	announced bool
	// run is the task's run on a pool goroutine (see process), attempt
	// the context of its first attempt, result and resultMsg what finish
	// publishes: each task is run and finished at most once, so they are
	// allocated with the job rather than one by one.
	run       run
	attempt   attemptContext
	result    heddle.TaskResult
	resultMsg bus.Msg
	// attempted: job.attempt was handed to a handler. Only the goroutine
	// running the task reads and writes it.
	attempted bool
}

// announce counts the task received and reports it. It runs once the task
// is in a pool goroutine's hands (or is being failed without one), so that
// nothing an Observer does to worker.received can keep the task from its
// result.
func (w *Worker) announce(job *workerJob) {
	job.announced = true
	w.stats.received.Add(1)
	w.emitTask(slog.LevelDebug, event.Event{Name: event.WorkerReceived}, &job.task)
}

// refuse fails a task without running it: the worker is stopping.
func (w *Worker) refuse(job *workerJob) {
	start := time.Now()
	w.announce(job)
	w.finish(job, start, nil, nil, w.abandoned(), nil)
}

func (w *Worker) abandoned() *handlerError {
	return &handlerError{reason: reasonShutdown, permanent: true,
		err: fmt.Errorf("%w: it was still waiting for a free handler when the worker was stopped (drain timeout expired or bus closed)", ErrShutdown)}
}

// process runs one task on a pool goroutine and publishes its result. It
// reports false when the task was finished for it (its handler was given
// up on): the goroutine then leaves the pool.
func (w *Worker) process(job *workerJob, s *slot) bool {
	r := &job.run
	if r.job != nil {
		// Carried over from a goroutine that exited while announcing it
		// (see goexited): that run is claimed, this one is new.
		r = new(run)
	}
	r.job, r.slot, r.start = job, s, time.Now()
	s.cur.Store(r)
	if !job.announced {
		r.announcing = true
		w.announce(job)
		r.announcing = false
	}
	var (
		out     map[string]any
		rep     *report
		failure *handlerError
	)
	if w.forced.Load() {
		// The drain gave up: no task starts any more.
		failure = w.abandoned()
	} else {
		out, rep, failure = w.execute(r)
	}
	if !r.state.CompareAndSwap(runRunning, runDone) {
		s.late = r // reported by serve, once the goroutine is out of the pool
		return false
	}
	defer w.tasks.Done()
	w.finish(job, r.start, out, rep, failure, &s.pub)
	s.cur.Store(nil)
	return true
}

// execute checks the input, runs the handler with retries and checks the
// output. It returns the output object or why the task failed.
func (w *Worker) execute(r *run) (map[string]any, *report, *handlerError) {
	task, payload := &r.job.task, r.job.payload
	base := w.handlerCtx
	if w.log.Propagated() {
		base = w.log.Extract(base, task.Extra)
		r.job.trace.Store(&traceContext{base})
	}
	if err := w.contract.ValidateInput(task.Payload); err != nil {
		return nil, nil, &handlerError{reason: reasonInputContract, err: err, permanent: true}
	}
	first := task.RetryCount
	for {
		out, rep, f := w.attempt(r, base, task, payload, task.RetryCount-first+1)
		if r.state.Load() != runRunning {
			return nil, rep, f // finished for it: nothing more to try
		}
		if f == nil {
			if err := w.contract.ValidateOutput(out); err != nil {
				return nil, rep, &handlerError{reason: reasonOutputContract, err: err, permanent: true}
			}
			return out, rep, nil
		}
		if f.permanent {
			return nil, rep, f
		}
		retries := task.RetryCount - first
		if task.RetryCount >= task.MaxRetries || w.noRetries {
			if !w.noRetries {
				f.err = fmt.Errorf("failed after %d attempt(s) (max_retries %d, retry_count %d): %w",
					retries+1, task.MaxRetries, task.RetryCount, f.err)
			}
			return nil, rep, f
		}
		task.RetryCount++
		w.stats.retried.Add(1)
		delay := w.retryDelay(retries)
		if w.log.Enabled(w.values, slog.LevelInfo, event.WorkerRetry) {
			w.emitTask(slog.LevelInfo, event.Event{Name: event.WorkerRetry, Reason: f.reason, Err: f.err, Attempt: retries + 1}, task,
				slog.Int("retry_count", task.RetryCount), slog.Int("max_retries", task.MaxRetries),
				slog.Int("attempt", retries+1), slog.Duration("backoff", delay), slog.String("error", f.err.Error()))
		}
		if !w.wait(delay) {
			return nil, rep, &handlerError{reason: reasonShutdown, permanent: true,
				err: fmt.Errorf("%w: waiting to retry after: %w", ErrShutdown, f.err)}
		}
	}
}

// retryDelay is the backoff before retry n+1: RetryBackoff doubled n
// times, capped at MaxRetryBackoff.
func (w *Worker) retryDelay(n int) time.Duration {
	d := w.backoff
	for ; n > 0 && d < w.maxBackoff; n-- {
		d *= 2
	}
	return min(d, w.maxBackoff)
}

// wait waits d, or reports false when handlers are cancelled first.
func (w *Worker) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.handlerCtx.Done():
		return false
	}
}

// attempt runs the handler once, under TaskTimeout, turning a panic into a
// failure. The handler's context carries Run's values and the task as it
// was when the attempt began (a copy, so a retry's count never changes
// what an earlier attempt's context returns); it ends when the attempt
// returns, when TaskTimeout passes and when the worker cancels its
// handlers.
func (w *Worker) attempt(r *run, base context.Context, task *heddle.TaskMessage, payload []byte, n int) (out map[string]any, rep *report, f *handlerError) {
	// The standard context, timer included. A lazy one that made its timer
	// only when waited on (internal/lazyctx, removed) saved 3-5 % per task
	// on BenchmarkTaskPath: under the 15 % that hand-written code must
	// save (BENCHMARKS.md, "The handler's context").
	now := time.Now()
	dctx, cancel := context.WithDeadline(base, now.Add(w.taskTimeout))
	defer cancel()
	// A context a handler keeps must not change under it: only the first
	// attempt uses the one allocated with the job, a retry a new one.
	ctx := &r.job.attempt
	if r.job.attempted {
		ctx = new(attemptContext)
	}
	r.job.attempted = true
	ctx.Context, ctx.value.task = dctx, *task
	rep = &ctx.value.report
	// The watch gives up on the handler once it is overdue.
	r.due.Store(now.Add(w.taskTimeout + overdueGrace).UnixNano())
	defer func() {
		r.due.Store(0)
		if rec := recover(); rec != nil {
			r.inHandler = false
			w.stats.panics.Add(1)
			out, f = nil, &handlerError{reason: reasonPanic, permanent: true,
				err: fmt.Errorf("handler panicked: %v", rec), stack: debug.Stack()}
		}
		// A runtime.Goexit goes on past here with inHandler still set:
		// serve's guard settles the task (see goexited).
	}()
	r.inHandler = true
	var err error
	if w.log.Intercepted(event.OpHandle) {
		out, err = w.intercepted(ctx, r, task, payload, n)
	} else {
		out, err = w.handle(ctx, task, payload)
	}
	r.inHandler = false
	if err != nil {
		return nil, rep, w.classify(ctx, err)
	}
	return out, rep, nil
}

// attemptContext is a handler attempt's context: the attempt's deadline
// context, carrying the attemptValue (see TaskFromContext and Report)
// in the same allocation, where context.WithValue would add one.
type attemptContext struct {
	context.Context
	value attemptValue
}

// Value returns the attempt's value for taskKey, else what the deadline
// context holds.
func (c *attemptContext) Value(key any) any {
	if _, ok := key.(taskKey); ok {
		return &c.value
	}
	return c.Context.Value(key)
}

// traceContext is a context kept for its trace context.
type traceContext struct{ ctx context.Context }

// intercepted runs the handler inside the interceptors, as attempt n of
// the task: the context they pass on is the handler's, and the one whose
// trace context the result carries.
func (w *Worker) intercepted(ctx context.Context, r *run, task *heddle.TaskMessage, payload []byte, n int) (map[string]any, error) {
	c := &handleCall{w: w, r: r, task: task, payload: payload, op: event.Op{Kind: event.OpHandle, TaskID: task.TaskID,
		ParentTaskID: task.ParentTaskID, WorkerType: w.workerType, Tier: string(task.ModelTier), Attempt: n, RetryCount: task.RetryCount}}
	if err := w.log.Intercept(ctx, &c.op, c.handle); err != nil {
		return nil, err
	}
	return c.out, nil
}

// handleCall is one handler attempt run inside the interceptors: its
// operation, its arguments and its output in one allocation.
type handleCall struct {
	w       *Worker
	r       *run
	task    *heddle.TaskMessage
	payload []byte
	op      event.Op
	out     map[string]any
}

func (c *handleCall) handle(ictx context.Context) error {
	w := c.w
	if w.log.Propagated() {
		c.r.job.trace.Store(&traceContext{ictx})
	}
	o, herr := w.handle(ictx, c.task, c.payload)
	c.out = o
	if herr != nil {
		c.op.Status, c.op.Reason, c.op.Err = string(heddle.StatusFailed), w.classify(ictx, herr).reason, herr
	} else {
		c.op.Status = string(heddle.StatusCompleted)
	}
	return herr
}

// classify decides how a handler error is reported and whether it is
// retried.
func (w *Worker) classify(ctx context.Context, err error) *handlerError {
	var he *handlerError
	errors.As(err, &he)
	var output map[string]any
	if he != nil {
		output = he.output
	}
	switch {
	case w.handlerCtx.Err() != nil:
		return &handlerError{reason: reasonShutdown, output: output, permanent: true,
			err: fmt.Errorf("%w (Config.DrainTimeout %s expired): %w", ErrShutdown, w.drainTimeout, err)}
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &handlerError{reason: reasonTimeout, output: output, permanent: true,
			err: fmt.Errorf("%w after %s (Config.TaskTimeout): %w", ErrTaskTimeout, w.taskTimeout, err)}
	case he != nil:
		c := *he
		if c.reason == "" {
			c.reason = reasonHandler
		}
		c.permanent = c.permanent || IsPermanent(he.err)
		return &c
	case IsPermanent(err):
		return &handlerError{reason: reasonPermanent, err: err, permanent: true}
	}
	return &handlerError{reason: reasonHandler, err: err}
}

// finish publishes the task's result and records the outcome: one event
// and one counter per task.
func (w *Worker) finish(job *workerJob, start time.Time, out map[string]any, rep *report, f *handlerError, pub *publishContext) {
	task := &job.task
	now := time.Now()
	// As task.Result makes it; token_usage is {} on the wire whether the
	// map is empty or nil.
	r := &job.result
	*r = heddle.TaskResult{
		TaskID:           task.TaskID,
		ParentTaskID:     task.ParentTaskID,
		WorkerType:       task.WorkerType,
		Status:           heddle.StatusCompleted,
		Output:           out,
		ProcessingTimeMS: int(now.Sub(start).Milliseconds()),
		CompletedAt:      now.UTC().Truncate(time.Microsecond),
	}
	if f != nil {
		r.Status, r.Output = heddle.StatusFailed, f.output
		if f.err != nil {
			r.Error = f.err.Error()
		}
	}
	if rep != nil {
		rep.apply(r)
	} else {
		r.TokenUsage = pythonTokenUsage
	}
	// The task's extensions (_trace_context, ...) go onto its result.
	r.Extra = task.Extensions()
	if w.log.Propagated() {
		if t := job.trace.Load(); t != nil {
			r.Extra = w.log.Inject(t.ctx, r.Extra)
		}
	}
	if task.RetryCount > 0 {
		// Not a TaskResult field: carried as an extra one, which Go decoders
		// keep and pydantic ignores.
		if r.Extra == nil {
			r.Extra = map[string]json.RawMessage{}
		}
		r.Extra["retry_count"] = strconv.AppendInt(nil, int64(task.RetryCount), 10)
	}
	data, err := w.encodeResult(r)
	if err != nil && f == nil {
		f = &handlerError{reason: reasonOutputEncode, err: fmt.Errorf("output cannot be encoded as JSON: %w", err)}
		r.Status, r.Output, r.Error = heddle.StatusFailed, nil, f.err.Error()
		data, err = w.encodeResult(r)
	}
	if err == nil {
		// The job's own message: a bus may keep it, and the job is never
		// reused.
		job.resultMsg = bus.Msg{Subject: r.Subject(), Data: data}
		err = w.publishMsg(&job.resultMsg, pub, now)
	}
	if errors.Is(err, bus.ErrMaxPayload) {
		// Too large for the bus: the caller gets a small failed result
		// saying why, in its place.
		f = &handlerError{reason: reasonOutputTooLarge, permanent: true,
			err: fmt.Errorf("the result (%d bytes) is too large to publish: %w", len(data), err)}
		r.Status, r.Output, r.Metadata, r.Error = heddle.StatusFailed, nil, nil, f.err.Error()
		if data, err = w.encodeResult(r); err == nil {
			err = w.publishMsg(&bus.Msg{Subject: r.Subject(), Data: data}, pub, now)
		}
	}
	// Counted once the outcome is final, with its event, so that every
	// counter only increases and equals its event count. A caller holding
	// the result may read Stats a moment before the count.
	if err != nil {
		attrs := taskAttrs(task, slog.String("reason", reasonPublish), slog.String("subject", r.Subject()),
			slog.String("status", string(r.Status)), slog.String("error", err.Error()))
		if f != nil {
			attrs = append(attrs, slog.String("cause", f.reason))
		}
		w.log.CountEvent(w.values, &w.stats.publishErrors, slog.LevelError, event.Event{Name: event.WorkerFailed,
			TaskID: task.TaskID, WorkerType: w.workerType, Tier: string(task.ModelTier), Subject: r.Subject(),
			Status: string(r.Status), Reason: reasonPublish, Err: err, Duration: now.Sub(start)}, attrs...)
		return
	}
	if f == nil {
		w.stats.completed.Add(1)
		if w.log.Enabled(w.values, slog.LevelInfo, event.WorkerCompleted) {
			w.emitTask(slog.LevelInfo, event.Event{Name: event.WorkerCompleted, Status: string(heddle.StatusCompleted),
				Attempt: task.RetryCount + 1, Duration: now.Sub(start)}, task,
				slog.Int("processing_time_ms", r.ProcessingTimeMS), slog.Int("retry_count", task.RetryCount))
		}
		return
	}
	w.stats.failed.Add(1)
	level := slog.LevelWarn
	attrs := []slog.Attr{slog.String("reason", f.reason), slog.String("error", f.err.Error()),
		slog.Int("processing_time_ms", r.ProcessingTimeMS), slog.Int("retry_count", task.RetryCount)}
	if f.stack != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("stack", string(f.stack)))
	}
	w.emitTask(level, event.Event{Name: event.WorkerFailed, Status: string(heddle.StatusFailed), Reason: f.reason,
		Err: f.err, Attempt: task.RetryCount + 1, Duration: now.Sub(start)}, task, attrs...)
}

// publish publishes a result, bounded by publishTimeout: with pub, a
// pool goroutine's publish context (nil: a context for this publish).
func (w *Worker) publish(subject string, data []byte, pub *publishContext) error {
	return w.publishMsg(&bus.Msg{Subject: subject, Data: data}, pub, time.Now())
}

// publishMsg publishes a result finished at now, which dates the publish
// context, so that a task reads the clock once to finish.
func (w *Worker) publishMsg(msg *bus.Msg, pub *publishContext, now time.Time) error {
	if pub == nil {
		ctx, cancel := context.WithTimeout(w.values, publishTimeout)
		defer cancel()
		return w.bus.Publish(ctx, msg)
	}
	return w.bus.Publish(pub.get(w.values, now), msg)
}

// publishContext is a pool goroutine's context for publishing results:
// Run's values with a deadline publishTimeout after it was made, renewed
// once less than publishTimeout-publishRenew is left. Results published
// within about a second so share one context and timer, and each publish
// is still bounded, by at least publishTimeout-publishRenew and at most
// publishTimeout. A context made per publish costs 8.7–11% on
// BenchmarkTaskPath (see BENCHMARKS.md); the pattern reuses a standard
// context rather than re-implementing one.
type publishContext struct {
	ctx      context.Context
	cancel   context.CancelFunc
	deadline time.Time
}

// get returns the context for a publish starting at now.
func (p *publishContext) get(values context.Context, now time.Time) context.Context {
	if p.ctx == nil || p.deadline.Sub(now) < publishTimeout-publishRenew {
		p.stop()
		p.deadline = now.Add(publishTimeout)
		p.ctx, p.cancel = context.WithDeadline(values, p.deadline)
	}
	return p.ctx
}

// stop releases the context's timer.
func (p *publishContext) stop() {
	if p.cancel != nil {
		p.cancel()
		p.ctx, p.cancel = nil, nil
	}
}

// encodeResult validates r and returns its wire form, in a buffer sized
// from the results encoded before, so that it is allocated once.
func (w *Worker) encodeResult(r *heddle.TaskResult) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	hint := max(int(w.resultSize.Load())+64, 256)
	data, err := appendTaskResult(r, make([]byte, 0, hint))
	if err == nil {
		w.resultSize.Store(int64(len(data)))
	}
	return data, err
}

// reject drops a message that is not a task for this worker. When its
// task_id (and parent_task_id) can be read, a failed result is published
// so the caller does not wait for an answer that will never come.
func (w *Worker) reject(data []byte, reason string, cause error) {
	taskID, _ := wire.PeekString(data, "task_id")
	parentID, _ := wire.PeekString(data, "parent_task_id")
	published := false
	if taskID != "" {
		r := heddle.NewTaskResult(taskID, w.workerType, heddle.StatusFailed)
		r.ParentTaskID = parentID
		r.Error = fmt.Sprintf("task rejected by worker %q: %v", w.workerType, cause)
		if b, err := r.Encode(); err == nil {
			published = w.publish(r.Subject(), b, nil) == nil
		}
	}
	w.log.CountEvent(w.values, &w.stats.malformed, slog.LevelWarn, event.Event{Name: event.WorkerFailed,
		TaskID: taskID, WorkerType: w.workerType, Reason: reason, Err: cause},
		slog.String("task_id", taskID), slog.String("parent_task_id", parentID),
		slog.String("reason", reason), slog.String("error", cause.Error()),
		slog.Bool("result_published", published), slog.Int("bytes", len(data)))
}

// taskAttrs returns the attributes naming task, then attrs.
func taskAttrs(task *heddle.TaskMessage, attrs ...slog.Attr) []slog.Attr {
	all := make([]slog.Attr, 0, 3+len(attrs))
	all = append(all, slog.String("task_id", task.TaskID), slog.String("parent_task_id", task.ParentTaskID),
		slog.String("model_tier", string(task.ModelTier)))
	return append(all, attrs...)
}

// emitTask emits ev about task, its typed fields naming the task. The
// attributes are built on the stack: Emit keeps none of them.
func (w *Worker) emitTask(level slog.Level, ev event.Event, task *heddle.TaskMessage, attrs ...slog.Attr) {
	if !w.log.Enabled(w.values, level, ev.Name) {
		return
	}
	ev.TaskID, ev.WorkerType, ev.Tier = task.TaskID, w.workerType, string(task.ModelTier)
	var buf [8]slog.Attr
	all := append(buf[:0], slog.String("task_id", task.TaskID), slog.String("parent_task_id", task.ParentTaskID),
		slog.String("model_tier", string(task.ModelTier)))
	w.log.Emit(w.values, level, ev, append(all, attrs...)...)
}

// inputDecoder returns how a typed worker reads its In: the decoded
// payload itself for map[string]any; otherwise In filled from the decoded
// payload, the value the input contract was checked on, when wire.Fill is
// sure to fill it as encoding/json would (so that each task's bytes are
// decoded once); otherwise In decoded by encoding/json from the payload's
// bytes on the wire (which avoids re-encoding the payload map, keeps
// numbers exact and gives encoding/json's own errors).
//
// Fill needs an addressable In: it fills one from a pool and the handler
// gets a copy, so the pooled value is never seen outside this function.
func inputDecoder[In any]() func(task *heddle.TaskMessage, data []byte) (In, error) {
	if _, ok := any((*In)(nil)).(*map[string]any); ok {
		return func(task *heddle.TaskMessage, _ []byte) (In, error) {
			return any(task.Payload).(In), nil
		}
	}
	pool := &sync.Pool{New: func() any { return new(In) }}
	return func(task *heddle.TaskMessage, data []byte) (In, error) {
		if data != nil && task.Payload != nil {
			p := pool.Get().(*In)
			filled := wire.Fill(reflect.ValueOf(p).Elem(), task.Payload, data)
			in := *p
			var zero In
			*p = zero // Fill may have left it half filled
			pool.Put(p)
			if filled {
				return in, nil
			}
		}
		var in In
		raw, err := rawPayload(task, data)
		if err != nil {
			return in, err
		}
		err = json.Unmarshal(raw, &in)
		return in, err
	}
}

// outputObject returns how a typed worker turns its handler's output
// into the result's output object: the value json.Marshal then
// wire.DecodeExact give. Numbers become float64, as in every decoded
// payload (see DecodeTaskMessage), which also keeps the contract check on
// its fast path.
//
// wire.Tree reads the output through an addressable copy taken from a
// pool; Tree's value shares no memory with that copy, which is cleared
// before it goes back.
func outputObject[Out any]() func(out Out) (map[string]any, error) {
	if _, ok := any((*Out)(nil)).(*map[string]any); ok {
		return func(out Out) (map[string]any, error) { return any(out).(map[string]any), nil }
	}
	iface := reflect.TypeFor[Out]().Kind() == reflect.Interface
	pool := &sync.Pool{New: func() any { return new(Out) }}
	return func(out Out) (map[string]any, error) {
		if iface {
			if m, ok := any(out).(map[string]any); ok {
				return m, nil
			}
		}
		// Built without JSON when wire.Tree is sure of the value; the
		// result's encoding then writes it once.
		p := pool.Get().(*Out)
		*p = out
		v, ok := wire.Tree(reflect.ValueOf(p).Elem())
		var zero Out
		*p = zero
		pool.Put(p)
		if ok {
			switch v := v.(type) {
			case map[string]any:
				return v, nil
			case nil:
				return nil, nil
			}
		}
		return marshalOutput(out)
	}
}

// marshalOutput is outputObject through encoding/json.
func marshalOutput[Out any](out Out) (map[string]any, error) {
	b, err := json.Marshal(out)
	if err != nil {
		return nil, &handlerError{reason: reasonOutputEncode, permanent: true,
			err: fmt.Errorf("output cannot be encoded as JSON: %w", err)}
	}
	v, err := wire.DecodeExact(b)
	if err != nil {
		return nil, &handlerError{reason: reasonOutputEncode, permanent: true,
			err: fmt.Errorf("output cannot be encoded as JSON: %w", err)}
	}
	switch v := v.(type) {
	case map[string]any:
		return v, nil
	case nil:
		return nil, nil
	}
	return nil, &handlerError{reason: reasonOutputEncode, permanent: true,
		err: fmt.Errorf("%w: the handler returned a JSON %s", ErrOutputNotObject, wire.KindName(b))}
}
