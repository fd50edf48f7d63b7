package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
)

// ErrNoGoalServer is wrapped by the error of a SubmitGoal whose goal was
// published where nothing was subscribed: no pipeline or orchestrator
// serves heddle.SubjectGoalsIncoming, or none is named as To said. The
// error names the subject; SubmitGoal returns it at once instead of
// waiting out its timeout.
var ErrNoGoalServer = errors.New("heddle: no pipeline or orchestrator serves the goal")

// SubmitGoal publishes goal and waits, at most the Timeout option
// (DefaultTimeout without it), for its final result: the TaskResult whose
// task_id is the goal_id on ResultSubject(goal_id), subscribed before the
// goal is published. Subtask results on that subject are not it and are
// skipped.
//
// The goal goes to heddle.SubjectGoalsIncoming, which every goal server
// not configured AddressedOnly shares (one copy per kind of server, as in
// the Python Heddle), or with To(name) to heddle.GoalSubject(name), which
// only the pipeline or orchestrator called name serves. It takes the
// options Timeout, To, Priority (the goal's priority) and With, and
// refuses the others (heddle.ErrConfig).
//
// It returns the final result whatever its status, or a nil result and
// an error, never both nil: an error matching heddle.ErrConfig for an
// option that cannot work, a *ValidationError for an invalid goal, an
// error wrapping ErrNoGoalServer when nothing was subscribed where the
// goal was published (at once; on a bus that cannot tell, the wait times
// out), a *TimeoutError (which also matches context.DeadlineExceeded when
// ctx's deadline ended the wait), an error wrapping bus.ErrClosed when b
// closes, or ctx.Err().
func SubmitGoal(ctx context.Context, b bus.Bus, goal heddle.OrchestratorGoal, opts ...Option) (*heddle.TaskResult, error) {
	o, err := newOptions(opts, forSubmitGoal)
	if err != nil {
		return nil, err
	}
	more := o.moreOrNone()
	subject := heddle.SubjectGoalsIncoming
	if more.goalSubject != "" {
		subject = more.goalSubject
	}
	if more.priority != "" {
		goal.Priority = more.priority
	}
	data, err := goal.Encode()
	if err != nil {
		return nil, fmt.Errorf("heddle: submitting goal %s: %w", goal.GoalID, err)
	}
	s, err := newStream(ctx, b, goal.ResultSubject(), &o)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := s.Expect(goal.GoalID); err != nil {
		return nil, err
	}
	// The bus reports on the inbox, at once, a goal nothing was subscribed
	// to receive; a goal server never answers there.
	inbox := "_INBOX.heddle.goal." + strings.ReplaceAll(uuid.NewString(), "-", "")
	unserved := make(chan struct{})
	var once sync.Once
	status, err := b.Subscribe(ctx, inbox, func(_ context.Context, m *bus.Msg) error {
		if bus.NoResponders(m) {
			once.Do(func() { close(unserved) })
		}
		return nil
	}, bus.LocalInterest())
	if err != nil {
		return nil, fmt.Errorf("heddle: submitting goal %s, subscribing to its status inbox: %w", goal.GoalID, err)
	}
	defer func() { _ = status.Unsubscribe() }()
	if err := b.Publish(ctx, &bus.Msg{Subject: subject, Reply: inbox, Data: data}); err != nil {
		return nil, fmt.Errorf("heddle: submitting goal %s to %s: %w", goal.GoalID, subject, err)
	}
	for res, err := range s.resultsUntil(ctx, unserved) {
		var te *TimeoutError
		switch {
		case errors.Is(err, errUnserved):
			s.log.warn("result_stream.unserved", "subject", subject, "goal_id", goal.GoalID, "reason", "nothing subscribed")
			return nil, fmt.Errorf("%w: goal %s was published to %s, where nothing is subscribed; %s",
				ErrNoGoalServer, goal.GoalID, subject, goalServerAdvice(more.goalServer))
		case errors.As(err, &te):
			te.goalSubject = subject
			return nil, te
		case err != nil:
			return nil, err
		}
		return &res, nil
	}
	return nil, fmt.Errorf("%w: goal %s ended without a final result on %s", ErrStreamEnded, goal.GoalID, s.subject)
}

// goalServerAdvice says what would serve a goal to the server called name
// (empty: the shared subject).
func goalServerAdvice(name string) string {
	if name == "" {
		return "start a pipeline or orchestrator that serves the shared subject (not AddressedOnly), or address the goal with dispatch.To"
	}
	return fmt.Sprintf("start the pipeline or orchestrator whose Config.Name is %q", name)
}
