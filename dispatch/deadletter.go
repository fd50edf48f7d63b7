package dispatch

import (
	"errors"
	"fmt"

	"github.com/heddle-go/heddle"
)

// ErrNoRouter is wrapped by the error of a call whose task was published
// on heddle.SubjectTasksIncoming while nothing was subscribed there: no
// router is running. The call fails at once instead of timing out.
var ErrNoRouter = errors.New("heddle: no router is running")

// ErrNoWorker is wrapped by the error of a call whose task was published
// straight to a worker subject (Direct) while nothing was subscribed
// there: no worker serves that type and tier.
var ErrNoWorker = errors.New("heddle: no worker serves the task")

// DeadLetterError is the error of a call whose task the router
// dead-lettered: rate limited, an unknown tier, an invalid message. The
// router answers such a task with a failed result naming the reason, so
// the call returns at once instead of waiting out its timeout. It matches
// heddle.ErrDeadLettered (errors.Is); Reason tells which kind.
type DeadLetterError struct {
	// TaskID is the dead-lettered task.
	TaskID string
	// Reason is the reason's kind: event.ReasonRateLimited,
	// event.ReasonUnknownTier, event.ReasonInvalidTaskMessage, ...
	Reason string
	// Result is the router's failed result; its Error holds the whole
	// reason, for example "rate_limited: tier 'local' has no available
	// capacity".
	Result *heddle.TaskResult
}

func (e *DeadLetterError) Error() string {
	return fmt.Sprintf("heddle: task %s dead-lettered by the router: %s", e.TaskID, e.Result.Error)
}

// Is reports whether target is heddle.ErrDeadLettered.
func (e *DeadLetterError) Is(target error) bool { return target == heddle.ErrDeadLettered }

// deadLettered turns a router's failed result for a dead-lettered task
// into a *DeadLetterError; anything else passes unchanged.
func deadLettered(res *heddle.TaskResult, err error) (*heddle.TaskResult, error) {
	if err != nil || res == nil || res.Status != heddle.StatusFailed {
		return res, err
	}
	reason, ok := res.Metadata[heddle.MetadataDeadLetterReason].(string)
	if !ok || reason == "" {
		return res, nil
	}
	return nil, &DeadLetterError{TaskID: res.TaskID, Reason: reason, Result: res}
}
