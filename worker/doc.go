// Package worker serves one worker type of a Heddle mesh: it takes tasks
// from heddle.WorkerSubject in the queue group of processor workers
// (heddle.WorkerQueueGroup, shared with Python processor workers and every
// Heddle SDK), checks each payload against a JSON Schema contract, runs a
// handler with bounded concurrency, retries and timeouts, checks the
// output and publishes one heddle.TaskResult per task.
//
// Three constructors share one Worker: New for a typed handler
// (func(ctx, In) (Out, error), its contract generated from In and Out),
// NewDynamic for a handler of maps with a contract given as schemas, and
// NewExec for an external command.
//
//	w, err := worker.New(b, "summarize", summarize, worker.Config{})
//	group, err := heddle.Start(ctx, w)
//
// Guarantees: every task that decodes gets exactly one result (unless the
// publish itself fails, which is reported and counted), including on
// contract violations, handler errors, panics, timeouts and Observers that
// panic or call runtime.Goexit; at most Config.Concurrency handlers run at
// once, and the pool keeps that size whatever its handlers do; Run returns
// within twice Config.DrainTimeout of its context's end and leaves no
// goroutine behind, and returns an error wrapping bus.ErrClosed when its
// bus closes under it. Every event (worker.received, worker.completed,
// worker.failed, worker.retry, ...) goes to the logger and observers
// given with heddle.WithLogger and heddle.WithObserver; the Stats
// counters only increase. Delivery is at-most-once, as in core NATS: a
// task published while no worker is subscribed is lost, and one dropped
// by a full subscription is counted in Stats.Dropped.
package worker
