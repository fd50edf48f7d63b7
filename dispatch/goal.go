package dispatch

import (
	"context"
	"fmt"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
)

// SubmitGoal publishes goal on SubjectGoalsIncoming and waits, at most
// the Timeout option (DefaultTimeout without it), for its final result: the
// TaskResult whose task_id is the goal_id on ResultSubject(goal_id),
// subscribed before the goal is published. Subtask results on that subject
// are not it and are skipped. It returns the final result whatever its
// status, or a nil result and an error (a *ValidationError for an invalid
// goal, a *TimeoutError, ctx.Err()), never both nil.
func SubmitGoal(ctx context.Context, b bus.Bus, goal heddle.OrchestratorGoal, opts ...Option) (*heddle.TaskResult, error) {
	o := newDispatchOptions(opts)
	data, err := goal.Encode()
	if err != nil {
		return nil, fmt.Errorf("heddle: submitting goal %s: %w", goal.GoalID, err)
	}
	s, err := NewStream(ctx, b, goal.ResultSubject(), StreamConfig{Timeout: o.cfg.Timeout}, o.actor...)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := s.Expect(goal.GoalID); err != nil {
		return nil, err
	}
	if err := b.Publish(ctx, &bus.Msg{Subject: heddle.SubjectGoalsIncoming, Data: data}); err != nil {
		return nil, fmt.Errorf("heddle: submitting goal %s to %s: %w", goal.GoalID, heddle.SubjectGoalsIncoming, err)
	}
	for res, err := range s.Results(ctx) {
		if err != nil {
			return nil, err
		}
		return &res, nil
	}
	return nil, fmt.Errorf("%w: goal %s ended without a final result on %s", ErrClosed, goal.GoalID, s.subject)
}
