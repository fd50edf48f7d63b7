package worker

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/heddle-go/heddle/event"
)

// overdueGrace is how long past its context's end (TaskTimeout, or the
// drain timeout's cancellation) a handler has to return before the worker
// gives up on it: it then publishes the task's failed result itself and
// carries on without that handler. At shutdown the grace is at most a
// quarter of DrainTimeout (see forcedGrace), so that Run's bound holds
// for short drain timeouts too.
const overdueGrace = 100 * time.Millisecond

// maxWatchPeriod bounds how often the watch looks for overdue handlers;
// a task fails at most overdueGrace plus one period after its deadline.
// It also paces the worker.slow_consumer events.
const maxWatchPeriod = time.Second

// forcedGrace is how long handlers have to return once the drain timeout
// cancelled them.
func (w *Worker) forcedGrace() time.Duration {
	return min(overdueGrace, w.drainTimeout/4)
}

// startWatch starts the watch goroutine. An Observer calling
// runtime.Goexit in one of the watch's events ends it; another then
// takes its place, so that overdue handlers are still given up on.
func (w *Worker) startWatch() {
	go func() {
		ended := false
		defer func() {
			if !ended {
				w.startWatch()
				return
			}
			close(w.watchDone)
		}()
		w.watch()
		ended = true
	}()
}

// watch gives up, until stopWatch is closed, on every handler still
// running overdueGrace after its context ended (TaskTimeout passed, or
// force was closed: the drain timeout cancelled the handlers), so that a
// handler ignoring its context neither delays its task's result nor keeps
// a place in the pool. It looks every quarter of TaskTimeout, at most
// every maxWatchPeriod: one goroutine for the worker, and two atomic
// stores per attempt (see attempt). On the same ticks it reports the
// tasks the worker's subscriptions dropped.
func (w *Worker) watch() {
	period := min(max(w.taskTimeout/4, time.Millisecond), maxWatchPeriod)
	tick := time.NewTicker(period)
	defer tick.Stop()
	force := w.force
	var forced <-chan time.Time
	all := false // every running attempt is overdue: the drain gave up
	for {
		select {
		case <-w.stopWatch:
			return
		case <-force:
			force = nil
			t := time.NewTimer(w.forcedGrace())
			defer t.Stop()
			forced = t.C
		case <-forced:
			forced, all = nil, true
			w.giveUp(w.slots.overdue(0, true), true)
		case now := <-tick.C:
			w.giveUp(w.slots.overdue(now.UnixNano(), all), w.forced.Load())
			w.reportDropped()
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
				err: fmt.Errorf("%w (Config.DrainTimeout %s expired) and its handler did not return", ErrShutdown, w.drainTimeout)}
		}
		w.abandon(r, f)
	}
}

// abandon finishes r for its goroutine, unless that goroutine finished it
// first: the task fails with f, its result is published and counted, and
// the goroutine, stuck in its handler, leaves the pool. The accounting
// runs deferred, so that an Observer calling runtime.Goexit in the
// events skips none of it.
func (w *Worker) abandon(r *run, f *handlerError) {
	if !r.state.CompareAndSwap(runRunning, runClaimed) {
		return
	}
	defer w.detach(r.slot)
	defer w.log.CountEvent(w.values, &w.stats.abandoned, slog.LevelError, event.Event{Name: event.WorkerAbandoned,
		TaskID: r.job.task.TaskID, WorkerType: w.workerType, Tier: string(r.job.task.ModelTier), Reason: f.reason}, taskAttrs(&r.job.task,
		slog.String("reason", f.reason), slog.String("error", "the handler ignored its context; its goroutine is left to finish alone"))...)
	defer w.tasks.Done()
	w.finish(r.job, r.start, nil, nil, f, nil)
}

// discard reports a handler given up on that returned at last: its output
// is dropped and its goroutine has ended (serve's exit refilled the pool
// before this is called).
func (w *Worker) discard(r *run) {
	w.log.CountEvent(w.values, &w.stats.discarded, slog.LevelWarn, event.Event{Name: event.WorkerDiscarded,
		TaskID: r.job.task.TaskID, WorkerType: w.workerType, Tier: string(r.job.task.ModelTier)}, taskAttrs(&r.job.task,
		slog.String("reason", "the handler returned after its task had been failed for it"))...)
}
