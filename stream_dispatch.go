package heddle

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
)

// DispatchOption configures DispatchAndWait.
type DispatchOption func(*dispatchOptions)

type dispatchOptions struct {
	cfg      StreamConfig
	contract *contracts.Contract
	logger   *slog.Logger
}

// DispatchTimeout bounds the wait for the result; zero or less means
// DefaultResultTimeout.
func DispatchTimeout(d time.Duration) DispatchOption {
	return func(o *dispatchOptions) { o.cfg.Timeout = d }
}

// DispatchDirect publishes the task straight to its worker's subject,
// TaskMessage.WorkerSubject(), instead of through the Router.
func DispatchDirect() DispatchOption {
	return func(o *dispatchOptions) { o.cfg.DispatchDirect = true }
}

// DispatchContract gives the worker's contract: the payload is checked
// against its input schema before anything is published, and a completed
// result whose output violates its output schema is rejected as
// result_stream.parse_error while the wait goes on.
func DispatchContract(c *contracts.Contract) DispatchOption {
	return func(o *dispatchOptions) { o.contract = c; o.cfg.OutputContract = c }
}

// DispatchLogger sets the logger for the result_stream.* events.
func DispatchLogger(l *slog.Logger) DispatchOption {
	return func(o *dispatchOptions) { o.logger = l }
}

// DispatchAndWait publishes one task and waits for its result, on a
// ResultStream subscribed to task.ResultSubject() before the task is
// published. The task goes to SubjectTasksIncoming (the Router) unless
// DispatchDirect is given.
//
// It returns the result whatever its status (check Status and Error), or
// a nil result and an error, never both nil: a *ValidationError for an
// invalid task, a *contracts.ValidationError for a payload violating the
// input contract (nothing is published then), a *TimeoutError (errors.Is
// ErrTimeout) naming the task, or ctx.Err(). The subscription ends when it
// returns, so a result arriving after the timeout is not seen (a Caller
// keeps its subscription and reports such results as late). Each call
// subscribes and unsubscribes; for many calls from one place a Caller
// keeps one subscription.
func DispatchAndWait(ctx context.Context, b bus.Bus, task TaskMessage, opts ...DispatchOption) (*TaskResult, error) {
	var o dispatchOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := task.Validate(); err != nil {
		return nil, fmt.Errorf("heddle: dispatching task %s: %w", task.TaskID, err)
	}
	if o.contract != nil {
		if err := o.contract.ValidateInput(task.Payload); err != nil {
			return nil, fmt.Errorf("heddle: task %s payload for worker %q, nothing dispatched: %w", task.TaskID, task.WorkerType, err)
		}
	}
	// The task is published on b after the subscription, so the interest
	// only has to precede b's own publishes: on NATS that spares a round
	// trip to the server.
	s, err := newResultStream(ctx, b, task.ResultSubject(), o.cfg, []bus.SubscribeOption{bus.LocalInterest()}, []Option{WithLogger(o.logger)})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := s.Dispatch(ctx, task); err != nil {
		return nil, err
	}
	for res, err := range s.Results(ctx) {
		if err != nil {
			return nil, err
		}
		return &res, nil
	}
	// Results ends without a result only on an error it yields; this is
	// a guard against a silent nil, nil.
	return nil, fmt.Errorf("%w: task %s ended without a result on %s", ErrStreamClosed, task.TaskID, s.subject)
}
