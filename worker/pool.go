package worker

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heddle-go/heddle/event"
)

// The states of a run.
const (
	runRunning int32 = iota
	runDone          // its pool goroutine finished it
	runClaimed       // finished for it: given up on, or ended by runtime.Goexit
)

// The states of a pool goroutine, guarded by Worker.mu. They only move
// forward: live → hung → gone, or live → gone.
const (
	slotLive = iota // counted in the pool: it serves tasks
	slotHung        // its handler was given up on and still runs; not counted
	slotGone        // its goroutine has ended
)

// slot is one goroutine of the pool.
type slot struct {
	// cur is the run the goroutine is on, nil between tasks. It stays set
	// while the run's result is published, so that a goroutine ended by
	// runtime.Goexit can tell what it leaves behind.
	cur atomic.Pointer[run]
	// state is one of slotLive, slotHung, slotGone; guarded by Worker.mu.
	state int
	// pub is the goroutine's context for publishing results.
	pub publishContext
	// late is the run whose handler returned after it was given up on:
	// the goroutine ends, and its worker.discarded is reported once the
	// pool's counts no longer hold it (Stats agrees with the event).
	late *run
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
	// Where the goroutine is, for a runtime.Goexit: announcing while
	// worker.received is emitted, inHandler while the handler runs.
	// Only the run's own goroutine reads and writes them.
	announcing, inHandler bool
}

// slots is the set of the pool's live goroutines the watch looks at.
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

// poolSizeLocked is how many goroutines the pool should have: Concurrency,
// less those given up on beyond Concurrency, so that handlers ignoring
// their context never hold more than 2 × Concurrency goroutines. w.mu is
// held.
func (w *Worker) poolSizeLocked() int {
	return max(0, min(w.concurrency, 2*w.concurrency-w.hung))
}

// startSlotLocked starts a pool goroutine, which handles first (when not
// nil) before it takes jobs. w.mu is held.
func (w *Worker) startSlotLocked(first *workerJob) {
	s := new(slot)
	w.live++
	w.pool.Add(1)
	w.slots.add(s)
	go w.serve(s, first)
}

// fillLocked starts goroutines until the pool has its size. The size is
// decided from the counts alone, each time a goroutine leaves the pool or
// a given-up one ends, so that no order of departures can leave the pool
// short. Once the worker is closed no task comes any more and nothing is
// started. w.mu is held.
func (w *Worker) fillLocked() {
	if w.closed {
		return
	}
	for w.live < w.poolSizeLocked() {
		w.startSlotLocked(nil)
	}
}

// serve is one goroutine of the pool. It ends when the jobs end, after a
// handler the worker gave up on returns (another goroutine took its
// place), or with a runtime.Goexit in its handler or in an Observer of
// one of its events.
func (w *Worker) serve(s *slot, first *workerJob) {
	ended := false
	defer func() {
		s.pub.stop()
		if !ended {
			w.goexited(s)
			return
		}
		w.exit(s, nil)
		if s.late != nil {
			w.discard(s.late)
		}
	}()
	if first == nil || w.process(first, s) {
		for job := range w.jobs {
			if !w.process(job, s) {
				break
			}
		}
	}
	ended = true
}

// detach takes a goroutine whose handler was given up on out of the pool
// and starts another in its place when the counts allow.
func (w *Worker) detach(s *slot) {
	w.mu.Lock()
	if s.state != slotLive {
		w.mu.Unlock()
		return
	}
	s.state = slotHung
	w.live--
	w.hung++
	w.slots.remove(s)
	w.pool.Done()
	w.fillLocked()
	shrunk := !w.closed && w.live < w.concurrency
	live, hung := w.live, w.hung
	w.mu.Unlock()
	if shrunk {
		w.log.Emit(w.values, slog.LevelError, event.Event{Name: event.WorkerPoolShrunk, WorkerType: w.workerType},
			slog.Int("handlers_given_up", hung), slog.Int("pool_size", live), slog.Int("concurrency", w.concurrency),
			slog.String("reason", "more handlers ignore their context than the pool has goroutines"))
	}
}

// exit accounts for a pool goroutine that ends, and fills the pool. carry,
// when not nil, is a task the goroutine took but did not start: a new
// goroutine handles it first, even once the worker is closed (the drain
// waits for it).
func (w *Worker) exit(s *slot, carry *workerJob) {
	w.mu.Lock()
	wasLive := s.state == slotLive
	switch s.state {
	case slotLive:
		w.live--
	case slotHung:
		w.hung--
	}
	s.state = slotGone
	w.slots.remove(s)
	if carry != nil {
		w.startSlotLocked(carry)
	}
	w.fillLocked()
	w.mu.Unlock()
	if wasLive {
		// After any goroutine started above, so that the count never
		// touches zero while the drain may be waiting on it.
		w.pool.Done()
	}
}

// errGoexitHandler and errGoexitObserver are the causes of a task failed
// by a runtime.Goexit.
var (
	errGoexitHandler  = errors.New("the handler called runtime.Goexit (t.FailNow or a require assertion in a handler?)")
	errGoexitObserver = errors.New("an Observer called runtime.Goexit while the worker reported the task (t.FailNow or a require assertion in an Observer?)")
)

// goexited accounts for a pool goroutine ended by runtime.Goexit, in its
// handler or in an Observer of one of its events: nothing can stop it,
// so the goroutine's task is settled here and another goroutine takes its
// place. A task not yet started (the Goexit came from an Observer of
// worker.received) is handed to that goroutine; one that was running
// fails; one whose result was being reported is finished already.
//
// Everything that keeps the worker's accounts runs deferred, so that an
// Observer calling runtime.Goexit again, in the events emitted here,
// skips none of it.
func (w *Worker) goexited(s *slot) {
	r := s.cur.Load()
	var carry *workerJob
	var f *handlerError
	attrs := []slog.Attr{slog.String("reason", "observer")}
	if r != nil {
		where := "observer"
		if r.inHandler {
			where = "handler"
		}
		attrs = taskAttrs(&r.job.task, slog.String("reason", where))
		if r.state.CompareAndSwap(runRunning, runClaimed) {
			if r.announcing {
				carry = r.job
			} else {
				cause := errGoexitObserver
				if r.inHandler {
					cause = errGoexitHandler
				}
				f = &handlerError{reason: reasonGoexit, permanent: true, err: cause}
			}
		}
	}
	defer w.exit(s, carry)
	ev := event.Event{Name: event.WorkerGoexit, WorkerType: w.workerType, Reason: reasonGoexit}
	if r != nil {
		ev.TaskID, ev.Tier = r.job.task.TaskID, string(r.job.task.ModelTier)
	}
	defer w.log.CountEvent(w.values, &w.stats.goexits, slog.LevelError, ev, attrs...)
	if f != nil {
		defer w.tasks.Done()
		w.finish(r.job, r.start, nil, nil, f, nil)
	}
}
