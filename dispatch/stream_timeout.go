package dispatch

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
)

// ErrTimeout is matched by every *TimeoutError.
var ErrTimeout = errors.New("heddle: timed out waiting for results")

// TimeoutError is the outcome of a collection that timed out with tasks
// still pending: its Timeout expired, or the context's deadline came
// first (Cause is then context.DeadlineExceeded, which errors.Is finds).
// It names exactly which tasks are missing and carries the results
// collected before the timeout.
type TimeoutError struct {
	// Subject is the result subject the stream waited on.
	Subject string
	// PendingTaskIDs lists the task_ids without a result, sorted.
	PendingTaskIDs []string
	// ExpectedCount is how many task_ids were expected.
	ExpectedCount int
	// CollectedCount is how many results were collected.
	CollectedCount int
	// Timeout is the configured timeout (the Timeout option, or
	// DefaultTimeout).
	Timeout time.Duration
	// Cause is context.DeadlineExceeded when the context's deadline ended
	// the wait before Timeout did, and nil when Timeout did.
	Cause error
	// WorkerTypes lists the worker types of the pending tasks, sorted,
	// when the wait knew them (tasks it dispatched itself).
	WorkerTypes []string
	// Results holds the results collected before the timeout, in arrival
	// order.
	Results []heddle.TaskResult
	// Rejected lists results that did arrive for pending tasks and were
	// rejected (malformed, or an output the contract or the typed call's
	// output type refused), in arrival order, at most maxRejectedListed
	// (16) of them. The wait went on for a valid result, which never came.
	Rejected []RejectedResult
	// MoreRejected counts the rejected results beyond those listed (for a
	// Stream, some may be for tasks collected afterwards).
	MoreRejected int

	// goalSubject is where the goal was published, when the wait was a
	// goal's: what to check is then its server, not a router or workers.
	goalSubject string
}

// RejectedResult is a result for an awaited task that arrived and was
// rejected.
type RejectedResult struct {
	// TaskID is the task the result was for.
	TaskID string
	// Arrived is when the result arrived.
	Arrived time.Time
	// Err says why it was rejected: a *contracts.ValidationError (errors.Is
	// contracts.ErrViolation) for an output violating the contract or
	// holding a key that names a field of the typed call's output type
	// only by case, a *heddle.ValidationError for a malformed message, or
	// the error of decoding the output into that type.
	Err error
}

// maxRejectedListed bounds the rejected results a wait keeps for its
// timeout error; the others are counted.
const maxRejectedListed = 16

// timeoutErrorListedIDs bounds how many pending task_ids the error text
// lists; PendingTaskIDs always holds them all.
const timeoutErrorListedIDs = 20

func (e *TimeoutError) Error() string {
	var b strings.Builder
	if e.Cause != nil {
		fmt.Fprintf(&b, "heddle: %v (the context's, before the timeout of %v) waiting for results on %s: %d of %d collected; pending task_ids: ",
			e.Cause, e.Timeout, e.Subject, e.CollectedCount, e.ExpectedCount)
	} else {
		fmt.Fprintf(&b, "heddle: timed out after %v waiting for results on %s: %d of %d collected; pending task_ids: ",
			e.Timeout, e.Subject, e.CollectedCount, e.ExpectedCount)
	}
	ids := e.PendingTaskIDs
	if len(ids) > timeoutErrorListedIDs {
		ids = ids[:timeoutErrorListedIDs]
	}
	b.WriteString(strings.Join(ids, ", "))
	if n := len(e.PendingTaskIDs) - len(ids); n > 0 {
		fmt.Fprintf(&b, " and %d more", n)
	}
	answered := make(map[string]bool, len(e.Rejected))
	for _, r := range e.Rejected {
		answered[r.TaskID] = true
		fmt.Fprintf(&b, "; a result for task %s arrived at %s and was rejected: %v",
			r.TaskID, r.Arrived.Format("2006-01-02T15:04:05.000000Z07:00"), r.Err)
	}
	if e.MoreRejected > 0 {
		fmt.Fprintf(&b, "; %d more results were rejected", e.MoreRejected)
	}
	if len(answered) > 0 && len(answered) == len(e.PendingTaskIDs) {
		// Every pending task was answered: the router and the workers
		// work, their answers do not.
		b.WriteString("; check the workers' output against the contract")
		return b.String()
	}
	if e.goalSubject != "" {
		fmt.Fprintf(&b, "; check that a pipeline or orchestrator serving %s is running and finishes the goal within the timeout", e.goalSubject)
		return b.String()
	}
	// The likely causes, most likely first: what the runbook "Debug
	// missing worker results" checks.
	b.WriteString("; check that a router is running (subscribed on " + heddle.SubjectTasksIncoming + ")")
	if len(e.WorkerTypes) > 0 {
		fmt.Fprintf(&b, ", that a worker serves %s", strings.Join(e.WorkerTypes, ", "))
	} else {
		b.WriteString(", that a worker serves each task's worker_type")
	}
	b.WriteString(", and that the workers finish within the timeout")
	return b.String()
}

// Is reports whether target is ErrTimeout.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// Unwrap returns Cause.
func (e *TimeoutError) Unwrap() error { return e.Cause }

// TimeoutSeconds is Timeout in seconds, as timeout_seconds is on the wire.
func (e *TimeoutError) TimeoutSeconds() float64 { return e.Timeout.Seconds() }

// Metadata returns the wire form of the timeout, as the Python Heddle puts
// it in a final result's output.metadata.timeout: exactly the keys
// pending_task_ids, expected_count, collected_count and timeout_seconds.
func (e *TimeoutError) Metadata() map[string]any {
	return map[string]any{
		"pending_task_ids": append([]string{}, e.PendingTaskIDs...),
		"expected_count":   e.ExpectedCount,
		"collected_count":  e.CollectedCount,
		"timeout_seconds":  e.TimeoutSeconds(),
	}
}
