// Package goals is the goal-serving loop the orchestrator and pipeline
// packages share.
package goals

import (
	"context"
	"sync"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/internal/wire"
)

// Server is the goal-serving loop Orchestrator and Pipeline share: a
// queue subscription on SubjectGoalsIncoming, goals decoded on delivery
// and run concurrently up to a bound, and a drain when the context ends
// that lets every goal in progress publish its final result.
type Server struct {
	Bus           bus.Bus
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
	// subscribed is called once the subscription is live.
	Subscribed func()
}

// Run serves goals until ctx ends, then drains. subErr is the subscribe
// error when it could not start; drainErr the subscription's drain error;
// cutShort reports that the drain timeout expired and cancelled goals.
// Goals' contexts carry ctx's values but are not cancelled when it ends.
func (g Server) Run(ctx context.Context) (subErr, drainErr error, cutShort bool) {
	values := context.WithoutCancel(ctx)
	goalCtx, cancelGoals := context.WithCancelCause(values)
	defer cancelGoals(nil)
	slots := make(chan struct{}, g.MaxConcurrent)
	var goals sync.WaitGroup
	sub, err := g.Bus.Subscribe(ctx, heddle.SubjectGoalsIncoming, func(hctx context.Context, msg *bus.Msg) error {
		goal, err := heddle.DecodeOrchestratorGoal(msg.Data)
		if err != nil {
			g.Reject(values, msg.Data, err)
			return nil
		}
		select {
		case slots <- struct{}{}:
		case <-hctx.Done():
			return hctx.Err()
		}
		goals.Go(func() {
			defer func() { <-slots }()
			g.Handle(goalCtx, goal)
		})
		return nil
	}, bus.Queue(g.Queue))
	if err != nil {
		return err, nil, false
	}
	g.Subscribed()
	<-ctx.Done()

	dctx, cancel := values, context.CancelFunc(func() {})
	if g.DrainTimeout > 0 {
		dctx, cancel = context.WithTimeout(values, g.DrainTimeout)
	}
	defer cancel()
	stopForce := context.AfterFunc(dctx, func() { cancelGoals(g.Shutdown) })
	drainErr = sub.Drain(dctx)
	goals.Wait()
	return nil, drainErr, !stopForce()
}

// PeekGoalID reads goal_id from a message that failed to decode as a
// goal, so its caller can still be answered; "" when it has none.
func PeekGoalID(data []byte) string {
	id, _ := wire.PeekString(data, "goal_id")
	return id
}
