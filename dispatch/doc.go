// Package dispatch is the caller's side of a Heddle mesh: it publishes
// tasks and goals and waits for their results.
//
//   - Request sends one task and waits for its TaskResult.
//   - Caller is many Requests on one result subscription.
//   - Call, CallWith and CallAll are the typed side of worker.New: an In
//     in, an Out back, both checked against the contract of the types.
//   - Stream sends many tasks (optionally at most MaxInFlight at once) and
//     yields their results as they come.
//   - SubmitGoal sends an OrchestratorGoal, to every goal server's shared
//     subject or, with To, to the pipeline or orchestrator of that name,
//     and waits for its final result.
//
// Every entry point takes the one Option type: Timeout, Direct, Tier,
// Priority, Metadata, To, MaxInFlight and the rest, and With for the
// settings every actor takes (logger, observers). An option an entry
// point does not take, a negative duration or count, or an unknown tier
// is refused with an error matching heddle.ErrConfig that names it,
// before anything is published.
//
// A task or goal that nothing is subscribed to receive fails at once
// (ErrNoRouter, ErrNoWorker, ErrNoGoalServer) instead of waiting out its
// timeout.
//
// Every one subscribes to the result subject before it publishes, so no
// reply is ever missed. Each message on a result subject is classified
// exactly once as collected, ignored (another task's), duplicate,
// parse_error (the wait goes on) or late (after the wait ended), counted,
// and reported as one result_stream.* event. A wait that times out
// returns a *TimeoutError naming the pending task_ids and the results
// rejected for them; it never returns a silent nil. So does a wait that
// its context's deadline ends first, and that error also matches
// context.DeadlineExceeded. A wait also ends when its context is
// cancelled or its bus closes (an error wrapping bus.ErrClosed), and no
// observer can keep it from returning.
package dispatch
