// Package dispatch is the caller's side of a Heddle mesh: it publishes
// tasks and goals and waits for their results.
//
//   - Request sends one task and waits for its TaskResult.
//   - Caller is many Requests on one result subscription.
//   - Stream sends many tasks (optionally at most MaxInFlight at once) and
//     yields their results as they come.
//   - SubmitGoal sends an OrchestratorGoal and waits for its final result.
//
// Every one subscribes to the result subject before it publishes, so no
// reply is ever missed. Each message on a result subject is classified
// exactly once as collected, ignored (another task's), duplicate,
// parse_error (the wait goes on) or late (after the wait ended), counted,
// and reported as one result_stream.* event. A wait that times out
// returns a *TimeoutError naming the pending task_ids and the results
// rejected for them; it never returns a silent nil. A wait also ends when
// its context ends or its bus closes (an error wrapping bus.ErrClosed),
// and no observer can keep it from returning.
package dispatch
