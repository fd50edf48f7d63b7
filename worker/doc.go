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
// contract violations, handler errors, panics and timeouts; at most
// Config.Concurrency handlers run at once; Run returns after a drain
// bounded by Config.DrainTimeout and leaves no goroutine behind. Every
// event (worker.received, worker.completed, worker.failed, worker.retry)
// goes to the logger and observers given with heddle.WithLogger and
// heddle.WithObserver. Delivery is at-most-once, as in core NATS: a task
// published while no worker is subscribed is lost.
package worker
