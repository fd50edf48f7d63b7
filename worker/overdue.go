package worker

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// overdueGrace is how long past its context's end (TaskTimeout, or the
// drain timeout's cancellation) a handler has to return before the worker
// gives up on it: it then publishes the task's failed result itself and
// carries on without that handler.
const overdueGrace = 100 * time.Millisecond

// maxWatchPeriod bounds how often the watch looks for overdue handlers;
// a task fails at most overdueGrace plus one period after its deadline.
const maxWatchPeriod = time.Second

// The states of a run.
const (
	runRunning int32 = iota
	runDone          // its pool goroutine finished it
	runClaimed       // finished for it: given up on, or ended by runtime.Goexit
)

// slot is one goroutine of the pool.
type slot struct {
	// cur is the run the goroutine is on, nil between tasks.
	cur atomic.Pointer[run]
	// detached: the pool no longer counts this goroutine (its handler was
	// given up on or called runtime.Goexit); set once, by whoever frees
	// its place in the pool.
	detached atomic.Bool
	// replaced: another goroutine took its place when it was detached.
	replaced bool
	// pub is the goroutine's context for publishing results.
	pub publishContext
}

// run is one task on a pool goroutine, shared with the watch.
type run struct {
	job   *workerJob
	slot  *slot
	start time.Time
	state atomic.Int32
	// due is when the running attempt's handler is overdue (its deadline
	// plus overdueGrace), in Unix nanoseconds; 0 between attempts.
	due atomic.Int64
}

// slots is the set of the pool's goroutines the watch looks at.
type slots struct {
	mu  sync.Mutex
	all map[*slot]struct{}
}

func (ss *slots) add(s *slot) {
	ss.mu.Lock()
	if ss.all == nil {
		ss.all = map[*slot]struct{}{}
	}
	ss.all[s] = struct{}{}
	ss.mu.Unlock()
}

func (ss *slots) remove(s *slot) {
	ss.mu.Lock()
	delete(ss.all, s)
	ss.mu.Unlock()
}

// overdue returns the runs whose attempt is overdue at now (all running
// attempts when force is set).
func (ss *slots) overdue(now int64, force bool) []*run {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var out []*run
	for s := range ss.all {
		r := s.cur.Load()
		if r == nil {
			continue
		}
		if due := r.due.Load(); due != 0 && (force || now >= due) {
			out = append(out, r)
		}
	}
	return out
}

// startSlot starts a pool goroutine.
func (w *Worker) startSlot() {
	s := new(slot)
	w.slots.add(s)
	w.pool.Add(1)
	go func() {
		defer w.freeSlot(s)
		defer s.pub.stop()
		w.serve(s)
	}()
}

// freeSlot takes s out of the pool's count, once.
func (w *Worker) freeSlot(s *slot) bool {
	if !s.detached.CompareAndSwap(false, true) {
		return false
	}
	w.slots.remove(s)
	w.pool.Done()
	return true
}

// claim finishes r for its goroutine: the task fails with f, its result
// is published and counted, and the goroutine, stuck or gone, leaves the
// pool. It reports false when the goroutine finished the task first.
func (w *Worker) claim(r *run, f *handlerError) bool {
	if !r.state.CompareAndSwap(runRunning, runClaimed) {
		return false
	}
	w.finish(&r.job.task, r.start, nil, nil, f, nil)
	w.tasks.Done()
	w.leave(r.slot)
	return true
}

// leave frees the place of a pool goroutine that will not serve again and,
// while fewer than Concurrency handlers are given up on, starts another in
// its place, so that the pool keeps its size.
func (w *Worker) leave(s *slot) {
	if !w.freeSlot(s) {
		return
	}
	hung := w.hung.Add(1)
	w.mu.Lock()
	closed := w.closed
	if !closed && hung <= int64(w.concurrency) {
		s.replaced = true
		w.startSlot()
	}
	w.mu.Unlock()
	if !closed && !s.replaced {
		w.log.LogAttrs(w.values, slog.LevelError, "worker.pool_shrunk",
			slog.Int64("handlers_given_up", hung), slog.Int("concurrency", w.concurrency),
			slog.String("reason", "more handlers ignore their context than the pool has goroutines"))
	}
}

// watch gives up, until stop is closed, on every handler still running
// overdueGrace after its context ended (TaskTimeout passed, or force was
// closed: the drain timeout cancelled the handlers), so that a handler
// ignoring its context neither delays its task's result nor keeps a place
// in the pool. It looks every quarter of TaskTimeout, at most every
// maxWatchPeriod: one goroutine for the worker, and two atomic stores per
// attempt (see attempt).
func (w *Worker) watch(force, stop <-chan struct{}) {
	period := min(max(w.taskTimeout/4, time.Millisecond), maxWatchPeriod)
	tick := time.NewTicker(period)
	defer tick.Stop()
	var forced <-chan time.Time
	for {
		select {
		case <-stop:
			return
		case <-force:
			force = nil
			t := time.NewTimer(overdueGrace)
			defer t.Stop()
			forced = t.C
			continue
		case <-forced:
			w.giveUp(w.slots.overdue(0, true), true)
			forced = nil
		case now := <-tick.C:
			w.giveUp(w.slots.overdue(now.UnixNano(), false), w.handlerCtx.Err() != nil)
		}
	}
}

// giveUp fails the tasks of overdue handlers and replaces them in the
// pool.
func (w *Worker) giveUp(runs []*run, shutdown bool) {
	for _, r := range runs {
		f := &handlerError{reason: reasonTimeout, permanent: true,
			err: fmt.Errorf("%w after %s (Config.TaskTimeout) and its handler did not return", ErrTaskTimeout, w.taskTimeout)}
		if shutdown {
			f = &handlerError{reason: reasonShutdown, permanent: true,
				err: fmt.Errorf("%w (Config.DrainTimeout %s expired) and its handler did not return", ErrWorkerShutdown, w.drainTimeout)}
		}
		if w.claim(r, f) {
			w.log.CountAttrs(w.values, &w.stats.abandoned, slog.LevelError, "worker.abandoned", taskAttrs(&r.job.task,
				slog.String("reason", f.reason), slog.String("error", "the handler ignored its context; its goroutine is left to finish alone"))...)
		}
	}
}

// goexited handles a handler that called runtime.Goexit (t.FailNow or a
// require assertion in a test's handler, say): its goroutine is ending,
// so the task fails and another goroutine takes its place in the pool.
func (w *Worker) goexited(r *run) {
	w.stats.goexits.Add(1)
	f := &handlerError{reason: reasonGoexit, permanent: true,
		err: fmt.Errorf("the handler called runtime.Goexit (t.FailNow or a require assertion in a handler?)")}
	if !w.claim(r, f) {
		// Given up on already: only its place in the pool remains.
		w.leave(r.slot)
	}
	w.hung.Add(-1) // it is not left running: it has ended
}

// discard accounts for a handler given up on that returned at last: its
// output is dropped, and its goroutine ends (another took its place) or,
// when none did, a goroutine takes its place back.
func (w *Worker) discard(r *run) {
	w.hung.Add(-1)
	w.log.CountAttrs(w.values, &w.stats.discarded, slog.LevelWarn, "worker.discarded", taskAttrs(&r.job.task,
		slog.String("reason", "the handler returned after its task had been failed for it"))...)
	w.mu.Lock()
	if !w.closed && !r.slot.replaced {
		w.startSlot()
	}
	w.mu.Unlock()
}
