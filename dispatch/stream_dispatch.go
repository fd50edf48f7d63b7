package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/observe"
)

// prepare applies the task options to task, checks it, and its payload
// against the input contract when there is one, and encodes it; nothing
// is published when it fails.
func (o *options) prepare(task *heddle.TaskMessage) ([]byte, error) {
	o.applyTask(task)
	data, err := task.Encode()
	if err != nil {
		return nil, fmt.Errorf("heddle: dispatching task %s: %w", task.TaskID, err)
	}
	if o.contract != nil {
		if err := o.contract.ValidateInput(task.Payload); err != nil {
			return nil, fmt.Errorf("heddle: task %s payload for worker %q, nothing dispatched: %w", task.TaskID, task.WorkerType, err)
		}
	}
	return data, nil
}

// Request publishes one task and waits for its result, on a
// subscription to task.ResultSubject() made before the task is published.
// The task goes to SubjectTasksIncoming (the Router) unless Direct
// is given. It takes the options Timeout, Direct, Contract, With, Tier,
// Priority and Metadata, and refuses the others (heddle.ErrConfig).
//
// It returns the result whatever its status (check Status and Error), or
// a nil result and an error, never both nil: an error matching
// heddle.ErrConfig for an option that cannot work, a *ValidationError for
// an invalid task, a *contracts.ValidationError for a payload violating
// the input contract (nothing is published then), a *DeadLetterError
// (errors.Is heddle.ErrDeadLettered) when the router dead-lettered the
// task and said so, an error wrapping ErrNoRouter or ErrNoWorker when
// nothing was subscribed where the task was published, a *TimeoutError
// (errors.Is ErrTimeout) naming the task when the timeout or the
// context's deadline ends the wait (for the deadline it also matches
// context.DeadlineExceeded), ErrDuplicateTaskID when another call on b is
// waiting for the same task_id, an error wrapping bus.ErrClosed when b
// closes while the call waits, or ctx.Err() when ctx is cancelled.
//
// The result_stream.* events of Caller go where With says (the
// logger and observers), with the same meanings.
//
// On a bus implementing bus.Keeper (membus and natsbus do), the calls on b
// share one subscription per result subject, as nats.go's Request shares
// one reply inbox per connection: the first call makes it, it lives while
// calls use it, and it ends a second after the last one returned, or
// when b closes; at most four of them wait unused. A result
// arriving after its call stopped waiting is then reported as
// result_stream.late, to that call's logger; events that belong to no
// call (a result for an unknown task_id, a malformed result naming none)
// go to the logger of the latest call. The subscription's delivery
// goroutine is the bus's, so a test checking for leaked goroutines
// (goleak) should close b before the check, as for any subscription.
//
// On any other bus each call subscribes and unsubscribes, a result
// arriving after the call returned is not seen, and a task nothing serves
// is not reported at once (the call times out).
func Request(ctx context.Context, b bus.Bus, task heddle.TaskMessage, opts ...Option) (*heddle.TaskResult, error) {
	o, err := newOptions(opts, forRequest)
	if err != nil {
		return nil, err
	}
	return request(ctx, b, task, &o)
}

// request is Request with its options applied. With interceptors (from
// With), the dispatch runs inside them as one event.OpDispatch; with a
// propagator, the task carries the trace context of the context they
// pass on.
func request(ctx context.Context, b bus.Bus, task heddle.TaskMessage, o *options) (*heddle.TaskResult, error) {
	if len(o.actor) > 0 {
		if e := o.emitter().e; e.Intercepted(event.OpDispatch) || e.Propagated() {
			return interceptedRequest(ctx, task, o, e, func(ctx context.Context, task heddle.TaskMessage) (*heddle.TaskResult, error) {
				return plainRequest(ctx, b, task, o)
			})
		}
	}
	return plainRequest(ctx, b, task, o)
}

// interceptedRequest runs request, a dispatch of task, inside e's
// interceptors as one event.OpDispatch; task carries the trace context
// of the context they pass on.
func interceptedRequest(ctx context.Context, task heddle.TaskMessage, o *options, e *observe.Emitter,
	request func(context.Context, heddle.TaskMessage) (*heddle.TaskResult, error)) (res *heddle.TaskResult, err error) {
	o.applyTask(&task)
	subject := heddle.SubjectTasksIncoming
	if o.direct {
		subject = heddle.WorkerSubject(task.WorkerType, task.ModelTier)
	}
	op := &event.Op{Kind: event.OpDispatch, TaskID: task.TaskID, ParentTaskID: task.ParentTaskID, WorkerType: task.WorkerType,
		Tier: string(task.ModelTier), Subject: subject, RetryCount: task.RetryCount}
	ran := false
	ierr := e.Intercept(ctx, op, func(ctx context.Context) error {
		ran = true
		t := task
		t.Extra = e.Inject(ctx, task.Extra)
		res, err = request(ctx, t)
		switch {
		case err != nil:
			op.Status, op.Err = string(heddle.StatusFailed), err
			var dl *DeadLetterError
			if errors.As(err, &dl) {
				op.Reason = event.DeadLetterKind(dl.Reason)
			}
		case res.Status == heddle.StatusFailed:
			op.Status, op.Err = string(res.Status), errors.New(res.Error)
		default:
			op.Status = string(res.Status)
		}
		return err
	})
	if !ran {
		return nil, ierr
	}
	return res, err
}

// plainRequest is request without interceptors.
func plainRequest(ctx context.Context, b bus.Bus, task heddle.TaskMessage, o *options) (*heddle.TaskResult, error) {
	data, err := o.prepare(&task)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	subject := task.ResultSubject()
	k, ok := b.(bus.Keeper)
	if !ok {
		c, err := newCaller(ctx, b, subject, o.emitter(), false, false, bus.LocalInterest())
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return deadLettered(c.wait(ctx, &task, data, o, true))
	}
	shared := k.Keep(dispatchKeeperKey{}, func() any {
		return &dispatchShared{b: b, entries: map[string]*dispatchEntry{}}
	}).(*dispatchShared)
	e, err := shared.acquire(ctx, subject)
	if err != nil {
		return nil, err
	}
	defer shared.release(e)
	return deadLettered(e.c.wait(ctx, &task, data, o, true))
}

// linger is how long Request keeps a shared result subscription after
// the last call using it returned, so that calls made one after another
// reuse it.
const linger = time.Second

// maxIdle bounds how many shared result subscriptions no call is using
// Request keeps per bus; beyond it the one idle longest ends at once.
// Results for a goal's subtasks go to a subject of the goal's own, so a
// run of goals would otherwise leave a subscription per goal for linger.
const maxIdle = 4

// emitter is where the call's events go: the settings With gave, or the
// defaults (slog.Default()).
func (o *options) emitter() emitter { return newEmitter(o.actor...) }

// dispatchKeeperKey is the bus.Keeper key of a bus's dispatchShared.
type dispatchKeeperKey struct{}

// dispatchShared is what Request keeps on a bus: a Caller per
// result subject, shared by the calls in flight and kept a while after.
type dispatchShared struct {
	b       bus.Bus
	mu      sync.Mutex
	entries map[string]*dispatchEntry // by result subject
	idle    []*dispatchEntry          // entries no call uses, oldest first
}

type dispatchEntry struct {
	subject string
	c       *Caller
	// Guarded by dispatchShared.mu.
	refs      int       // calls using c
	idleSince time.Time // when refs last fell to 0
	timer     *time.Timer
	armed     bool // timer will fire
}

// acquire returns the entry for subject, subscribing when there is none.
func (s *dispatchShared) acquire(ctx context.Context, subject string) (*dispatchEntry, error) {
	s.mu.Lock()
	if e := s.entries[subject]; e != nil {
		s.useLocked(e)
		s.mu.Unlock()
		return e, nil
	}
	s.mu.Unlock()
	// The task is published on the same bus after this, so the interest
	// only has to precede the bus's own publishes: on NATS that spares a
	// round trip to the server.
	c, err := newCaller(ctx, s.b, subject, newEmitter(), true, true, bus.LocalInterest())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if e := s.entries[subject]; e != nil {
		// Another call subscribed meanwhile: share its subscription.
		s.useLocked(e)
		s.mu.Unlock()
		_ = c.Close()
		return e, nil
	}
	e := &dispatchEntry{subject: subject, c: c, refs: 1}
	s.entries[subject] = e
	s.mu.Unlock()
	return e, nil
}

// useLocked counts one more call using e, which is no longer idle.
func (s *dispatchShared) useLocked(e *dispatchEntry) {
	if e.refs == 0 {
		s.removeIdleLocked(e)
	}
	e.refs++
}

func (s *dispatchShared) removeIdleLocked(e *dispatchEntry) {
	if i := slices.Index(s.idle, e); i >= 0 {
		s.idle = slices.Delete(s.idle, i, i+1)
	}
}

// release ends a call's use of e. The last one makes it idle and arms its
// expiry; with more than maxIdle idle entries, the oldest ends.
func (s *dispatchShared) release(e *dispatchEntry) {
	s.mu.Lock()
	if e.refs--; e.refs > 0 {
		s.mu.Unlock()
		return
	}
	e.idleSince = time.Now()
	s.idle = append(s.idle, e)
	var evicted *dispatchEntry
	if len(s.idle) > maxIdle {
		evicted = s.idle[0]
		s.idle = slices.Delete(s.idle, 0, 1)
		delete(s.entries, evicted.subject)
		if evicted.timer != nil {
			evicted.timer.Stop()
		}
	}
	if !e.armed {
		e.armed = true
		if e.timer == nil {
			e.timer = time.AfterFunc(linger, func() { s.expire(e) })
		} else {
			e.timer.Reset(linger)
		}
	}
	s.mu.Unlock()
	if evicted != nil {
		s.close(evicted)
	}
}

// expire ends e once it has been idle for linger.
func (s *dispatchShared) expire(e *dispatchEntry) {
	s.mu.Lock()
	switch {
	case s.entries[e.subject] != e:
		// Already ended.
		s.mu.Unlock()
		return
	case e.refs > 0:
		// In use again: the last release re-arms the timer.
		e.armed = false
		s.mu.Unlock()
		return
	}
	if left := linger - time.Since(e.idleSince); left > 0 {
		e.timer.Reset(left)
		s.mu.Unlock()
		return
	}
	delete(s.entries, e.subject)
	s.removeIdleLocked(e)
	s.mu.Unlock()
	s.close(e)
}

// close unsubscribes an entry that has left s.
func (s *dispatchShared) close(e *dispatchEntry) {
	if err := e.c.Close(); err != nil {
		e.c.mu.Lock()
		log := e.c.log
		e.c.mu.Unlock()
		log.warn("result_stream.error", "subject", e.subject, "error", err.Error())
	}
}
