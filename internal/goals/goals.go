// Package goals is the goal-serving loop the orchestrator and pipeline
// packages share.
package goals

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/internal/wire"
)

// Server is the goal-serving loop Orchestrator and Pipeline share: queue
// subscriptions on the goal subjects (SubjectGoalsIncoming, the actor's
// addressed subject, or both), goals decoded on delivery
// and run concurrently up to a bound, and a drain when the context ends
// that lets every goal in progress publish its final result.
type Server struct {
	Bus bus.Bus
	// Subjects are the goal subjects served, each in Queue.
	Subjects      []string
	Queue         string
	MaxConcurrent int
	// drainTimeout bounds the drain; when it expires the goals' contexts
	// are cancelled with shutdown as the cause. Zero waits for every goal.
	DrainTimeout time.Duration
	Shutdown     error
	// reject handles a message that is not a valid goal.
	Reject func(ctx context.Context, data []byte, err error)
	// handle runs one goal to its final result.
	Handle func(ctx context.Context, goal heddle.OrchestratorGoal)
	// Refuse answers a goal that was received but will not be run, because
	// the server is shutting down (err wraps Shutdown) or the subscription
	// was closed under it: its caller still gets a final result.
	Refuse func(ctx context.Context, goal heddle.OrchestratorGoal, err error)
	// subscribed is called once the subscription is live.
	Subscribed func()
}

// Outcome is how a Server's Run ended.
type Outcome struct {
	// Subscribe is the subscribe error when Run could not start.
	Subscribe error
	// Drain is the subscription's drain error.
	Drain error
	// Closed wraps bus.ErrClosed when Run ended because the bus closed.
	Closed error
	// CutShort reports that the drain timeout expired and cancelled goals.
	CutShort bool
}

// Run serves goals until ctx ends or the bus closes, then drains. Goals'
// contexts carry ctx's values but are not cancelled when it ends. Every
// goal received gets one call of Handle or Refuse.
func (g Server) Run(ctx context.Context) Outcome {
	values := context.WithoutCancel(ctx)
	goalCtx, cancelGoals := context.WithCancelCause(values)
	defer cancelGoals(nil)
	slots := make(chan struct{}, g.MaxConcurrent)
	var goals sync.WaitGroup
	handle := func(hctx context.Context, msg *bus.Msg) error {
		goal, err := heddle.DecodeOrchestratorGoal(msg.Data)
		if err != nil {
			g.Reject(values, msg.Data, err)
			return nil
		}
		select {
		case slots <- struct{}{}:
		case <-hctx.Done():
			g.Refuse(values, goal, fmt.Errorf("%w: the goal subscription closed before the goal could start", g.Shutdown))
			return nil
		case <-goalCtx.Done():
			g.Refuse(values, goal, fmt.Errorf("%w: the drain timeout expired before the goal could start", g.Shutdown))
			return nil
		}
		goals.Go(func() {
			defer func() { <-slots }()
			g.Handle(goalCtx, goal)
		})
		return nil
	}
	subs := make([]bus.Subscription, 0, len(g.Subjects))
	for _, subject := range g.Subjects {
		sub, err := g.Bus.Subscribe(ctx, subject, handle, bus.Queue(g.Queue))
		if err != nil {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
			if ctx.Err() != nil {
				return Outcome{} // stopped while starting
			}
			return Outcome{Subscribe: fmt.Errorf("subscribing to %s: %w", subject, err)}
		}
		subs = append(subs, sub)
	}
	g.Subscribed()
	var out Outcome
	select {
	case <-ctx.Done():
	case <-bus.Done(g.Bus):
		out.Closed = bus.Err(g.Bus)
	}

	// Goals have DrainTimeout to finish; then they are cancelled. The
	// subscription has as long again to hand over the goals it still
	// holds, which are refused at once from then on, so that every goal
	// the bus delivered gets its final result.
	dctx, cancel := values, context.CancelFunc(func() {})
	sctx, scancel := values, context.CancelFunc(func() {})
	if g.DrainTimeout > 0 {
		dctx, cancel = context.WithTimeout(values, g.DrainTimeout)
		sctx, scancel = context.WithTimeout(values, 2*g.DrainTimeout)
	}
	defer cancel()
	defer scancel()
	stopForce := context.AfterFunc(dctx, func() { cancelGoals(g.Shutdown) })
	var drains []error
	for _, sub := range subs {
		if err := sub.Drain(sctx); err != nil && !errors.Is(err, bus.ErrClosed) {
			drains = append(drains, fmt.Errorf("draining %s: %w", sub.Subject(), err))
		}
	}
	out.Drain = errors.Join(drains...)
	goals.Wait()
	out.CutShort = !stopForce()
	return out
}

// Subjects returns the goal subjects a goal server called name serves:
// SubjectGoalsIncoming unless addressedOnly, and GoalSubject(name) when
// name is set. addressedOnly without a name is a configuration error.
func Subjects(name string, addressedOnly bool) ([]string, error) {
	var subjects []string
	if !addressedOnly {
		subjects = append(subjects, heddle.SubjectGoalsIncoming)
	}
	if name == "" {
		if addressedOnly {
			return nil, fmt.Errorf("%w: AddressedOnly needs a Name to be addressed by", heddle.ErrConfig)
		}
		return subjects, nil
	}
	subject, err := heddle.GoalSubject(name)
	if err != nil {
		return nil, err
	}
	return append(subjects, subject), nil
}

// PeekGoalID reads goal_id from a message that failed to decode as a
// goal, so its caller can still be answered; "" when it has none.
func PeekGoalID(data []byte) string {
	id, _ := wire.PeekString(data, "goal_id")
	return id
}
