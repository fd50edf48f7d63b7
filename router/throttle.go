package router

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/ratelimit"
)

// DefaultMaxHeld is how many tasks a Router holds at once for their
// tier's capacity (see TierRateLimit.MaxWaitSeconds) unless
// Config.MaxHeld says otherwise. A tier holds about its refill rate times
// its maximum wait (a tier of 600 tasks a minute with a 60 s wait, 600
// tasks), so the bound binds only on a bursty mesh with long waits.
const DefaultMaxHeld = 10_000

// DefaultHoldBudget is how many bytes of held tasks a Router keeps unless
// Config.HoldBudget says otherwise: 8 MiB, some 25,000 tasks of 300 bytes,
// more than DefaultMaxHeld allows, or eight at NATS's 1 MiB maximum
// payload.
const DefaultHoldBudget = 8 << 20

// ReasonShutdown is the dead-letter reason kind of a task the Router held
// for its tier's capacity and did not forward before it stopped: its
// token was due after Config.DrainTimeout, the drain timeout expired
// first, or the bus closed. The full reason is "shutdown: the router
// stopped while the task waited for capacity on tier 'X'". The task was
// never forwarded, so it can be replayed as it is.
const ReasonShutdown = "shutdown"

// heldOverhead is what one held task costs beyond its bytes, its header
// and its ids: its record, and its slot in its tier's queue.
const heldOverhead = int(unsafe.Sizeof(heldTask{})) + 2*int(unsafe.Sizeof((*heldTask)(nil)))

// outgoing is a routed task, ready to forward.
type outgoing struct {
	orig       *bus.Msg // as delivered, read-only: kept until its fate is known
	out        []byte   // what the worker gets: orig.Data, or the task re-encoded
	taskID     string
	workerType string
	subject    string
	tier       heddle.ModelTier
	overridden bool      // routed to its tier_overrides tier, not its model_tier
	reencoded  bool      // out is not orig.Data
	start      time.Time // when its route began; zero when nobody times it
}

// heldTask is a task waiting for the token reserved for it.
type heldTask struct {
	outgoing
	res  ratelimit.Reservation
	cost int
}

// holder keeps the tasks held for their tier's capacity until their
// tokens come, so that the task subscription goes on routing the tasks
// behind them, of every tier. One queue per tier, in arrival order: the
// tokens of one bucket are reserved in turn, so each queue is in the
// order its tasks are due as well, and its head is the next to go. (A
// reload that gives a tier a new bucket can make a later task due
// earlier; it then waits behind the tasks held before it, so a tier's
// tasks still leave in the order they came, while there is room.)
//
// What it holds is bounded in count and in bytes: past either bound a
// task that would wait is dead-lettered as rate_limited at once, as it
// would be without a maximum wait.
type holder struct {
	maxHeld, budget int

	// n counts the tasks admitted and not yet forwarded or dropped,
	// the one being released included; route reads it without the lock,
	// to learn that nothing is held.
	n atomic.Int64

	mu        sync.Mutex
	queues    map[heddle.ModelTier][]*heldTask
	bytes     int
	releasing heddle.ModelTier // the tier of the task being forwarded, "" for none
	deadline  time.Time        // zero until the drain starts; nothing due from then is held
	closed    bool             // nothing is held any more: the releaser has stopped
	wake      chan struct{}    // tells the releaser a queue's head changed
	idle      chan struct{}    // closed when n reaches zero; nil while nobody waits
}

func newHolder(maxHeld, budget int) *holder {
	return &holder{maxHeld: maxHeld, budget: budget, queues: map[heddle.ModelTier][]*heldTask{}, wake: make(chan struct{}, 1)}
}

// holdVerdict is what admit decides for a task that would be held.
type holdVerdict int

const (
	holdOK   holdVerdict = iota
	holdFull             // past MaxHeld or HoldBudget
	holdLate             // due by the drain's end or later, or the holder closed
)

// busy reports whether tier has tasks held or one being released: a task
// of that tier that could go now waits behind them, to keep the tier's
// order.
func (h *holder) busy(tier heddle.ModelTier) bool {
	if h.n.Load() == 0 {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.queues[tier]) > 0 || h.releasing == tier
}

// admit counts a task of cost bytes, due at due, against the bounds, or
// says why it cannot be held. The caller pushes an admitted task, or
// unadmits it.
func (h *holder) admit(cost int, due time.Time) holdVerdict {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.late(due):
		return holdLate
	case h.n.Load() >= int64(h.maxHeld) || h.bytes+cost > h.budget:
		return holdFull
	}
	h.n.Add(1)
	h.bytes += cost
	return holdOK
}

// push queues an admitted task behind its tier's, unless the drain began
// since admit and the task is due after its deadline: then it reports
// false, and the caller unadmits it.
func (h *holder) push(t *heldTask) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.late(t.res.Due()) {
		return false
	}
	h.queues[t.tier] = append(h.queues[t.tier], t)
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return true
}

// late reports whether a task due at due would be held past the end: at
// or after the drain's deadline (a token due as the drain ends would race
// the end), or once the releaser has stopped. Called with h.mu held.
func (h *holder) late(due time.Time) bool {
	return h.closed || !h.deadline.IsZero() && !due.Before(h.deadline)
}

// unadmit gives back what admit counted for a task that was not pushed.
func (h *holder) unadmit(cost int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bytes -= cost
	h.finish(1)
}

// finish forgets k admitted tasks. Called with h.mu held.
func (h *holder) finish(k int) {
	if h.n.Add(-int64(k)) == 0 && h.idle != nil {
		close(h.idle)
		h.idle = nil
	}
}

// next takes the task due first among the queues' heads when it is due by
// now, marking its tier as releasing until done. Otherwise it returns how
// long until a head is due, or -1 when nothing is held.
func (h *holder) next(now time.Time) (*heldTask, time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var first *heldTask
	for _, q := range h.queues {
		// Behind a later head in the same queue, an earlier due (after a
		// reload) still waits its turn: only heads are compared.
		if len(q) > 0 && (first == nil || q[0].res.Due().Before(first.res.Due())) {
			first = q[0]
		}
	}
	if first == nil {
		return nil, -1
	}
	if wait := first.res.Due().Sub(now); wait > 0 {
		return nil, wait
	}
	q := h.queues[first.tier]
	q[0] = nil
	if q = q[1:]; len(q) == 0 {
		q = nil // lets go of the array a burst grew
	}
	h.queues[first.tier] = q
	h.bytes -= first.cost
	h.releasing = first.tier
	return first, 0
}

// done ends the release next began.
func (h *holder) done() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.releasing = ""
	h.finish(1)
}

// drain sets the deadline from which no task is held any more, and takes
// out the tasks it makes late.
func (h *holder) drain(deadline time.Time) []*heldTask {
	h.mu.Lock()
	h.deadline = deadline
	h.mu.Unlock()
	return h.take(func(t *heldTask) bool { return !t.res.Due().Before(deadline) })
}

// close makes the holder refuse every task from now on, and takes out
// those it holds.
func (h *holder) close() []*heldTask {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	return h.take(func(*heldTask) bool { return true })
}

// take removes the held tasks for which drop reports true and returns
// them, each tier's in the order they came.
func (h *holder) take(drop func(*heldTask) bool) []*heldTask {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*heldTask
	for tier, q := range h.queues {
		keep := q[:0]
		for _, t := range q {
			if drop(t) {
				out = append(out, t)
				h.bytes -= t.cost
			} else {
				keep = append(keep, t)
			}
		}
		clear(q[len(keep):])
		h.queues[tier] = keep
	}
	h.finish(len(out))
	return out
}

// waitIdle waits until every admitted task is forwarded or dropped, or
// ctx ends.
func (h *holder) waitIdle(ctx context.Context) error {
	h.mu.Lock()
	if h.n.Load() == 0 {
		h.mu.Unlock()
		return nil
	}
	if h.idle == nil {
		h.idle = make(chan struct{})
	}
	idle := h.idle
	h.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hold keeps o, whose token res is due later (or whose tier has tasks
// held before it), until the releaser forwards it. A task the holder has
// no room for is dead-lettered as rate_limited, unless its token is due
// already: then it is forwarded at once, ahead of its tier's held tasks.
func (r *Router) hold(ctx context.Context, o outgoing, res ratelimit.Reservation, now time.Time) {
	t := &heldTask{outgoing: o, res: res}
	t.cost = heldOverhead + o.orig.Size() + len(o.taskID) + len(o.workerType) + len(o.subject)
	if o.reencoded {
		t.cost += len(o.out) // a second copy beside the original
	}
	switch r.held.admit(t.cost, res.Due()) {
	case holdFull:
		if !res.Due().After(now) {
			r.forward(ctx, o)
			return
		}
		res.Cancel()
		r.deadLetter(ctx, o.orig, o.start, event.ReasonRateLimited, fmt.Sprintf("tier '%s' has no available capacity", o.tier))
		return
	case holdLate:
		res.Cancel()
		r.deadLetterHeld(ctx, t)
		return
	}
	r.log.CountEvent(ctx, &r.stats.throttled, slog.LevelInfo, event.Event{Name: event.RouterThrottled, TaskID: o.taskID,
		WorkerType: o.workerType, Tier: string(o.tier), Status: "held"},
		slog.String("task_id", o.taskID), slog.String("worker_type", o.workerType),
		slog.String("model_tier", string(o.tier)), slog.Duration("wait", max(res.Due().Sub(now), 0)))
	if !r.held.push(t) {
		r.held.unadmit(t.cost)
		res.Cancel()
		r.deadLetterHeld(ctx, t)
	}
}

// releaser forwards each held task when its token is due, until ctx
// ends. It is the only goroutine that forwards held tasks, so a tier's
// leave in their order.
func (r *Router) releaser(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		t, wait := r.held.next(time.Now())
		if t != nil {
			r.forward(ctx, t.outgoing)
			r.held.done()
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.held.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// dropHeld dead-letters the tasks taken out of the holder, handing their
// tokens back, the latest first: a reservation is handed back whole only
// while it is the latest of its bucket. Their answers and dead letters
// are published however Run's context ended: answering them is the
// point.
func (r *Router) dropHeld(ctx context.Context, tasks []*heldTask) {
	for _, t := range slices.Backward(tasks) {
		t.res.Cancel()
	}
	ctx = context.WithoutCancel(ctx)
	for _, t := range tasks {
		r.deadLetterHeld(ctx, t)
	}
}

// deadLetterHeld dead-letters a held task the router will not forward
// because it is stopping.
func (r *Router) deadLetterHeld(ctx context.Context, t *heldTask) {
	r.deadLetter(ctx, t.orig, t.start, ReasonShutdown, fmt.Sprintf("the router stopped while the task waited for capacity on tier '%s'", t.tier))
}
