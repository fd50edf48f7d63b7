package heddle

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/heddle-go/heddle/bus"
)

// goalServer is the goal-serving loop Orchestrator and Pipeline share: a
// queue subscription on SubjectGoalsIncoming, goals decoded on delivery
// and run concurrently up to a bound, and a drain when the context ends
// that lets every goal in progress publish its final result.
type goalServer struct {
	b             bus.Bus
	queue         string
	maxConcurrent int
	// drainTimeout bounds the drain; when it expires the goals' contexts
	// are cancelled with shutdown as the cause. Zero waits for every goal.
	drainTimeout time.Duration
	shutdown     error
	// reject handles a message that is not a valid goal.
	reject func(ctx context.Context, data []byte, err error)
	// handle runs one goal to its final result.
	handle func(ctx context.Context, goal OrchestratorGoal)
	// subscribed is called once the subscription is live.
	subscribed func()
}

// run serves goals until ctx ends, then drains. subErr is the subscribe
// error when it could not start; drainErr the subscription's drain error;
// cutShort reports that the drain timeout expired and cancelled goals.
// Goals' contexts carry ctx's values but are not cancelled when it ends.
func (g goalServer) run(ctx context.Context) (subErr, drainErr error, cutShort bool) {
	values := context.WithoutCancel(ctx)
	goalCtx, cancelGoals := context.WithCancelCause(values)
	defer cancelGoals(nil)
	slots := make(chan struct{}, g.maxConcurrent)
	var goals sync.WaitGroup
	sub, err := g.b.Subscribe(ctx, SubjectGoalsIncoming, func(hctx context.Context, msg *bus.Msg) error {
		goal, err := DecodeOrchestratorGoal(msg.Data)
		if err != nil {
			g.reject(values, msg.Data, err)
			return nil
		}
		select {
		case slots <- struct{}{}:
		case <-hctx.Done():
			return hctx.Err()
		}
		goals.Go(func() {
			defer func() { <-slots }()
			g.handle(goalCtx, goal)
		})
		return nil
	}, bus.Queue(g.queue))
	if err != nil {
		return err, nil, false
	}
	g.subscribed()
	<-ctx.Done()

	dctx, cancel := values, context.CancelFunc(func() {})
	if g.drainTimeout > 0 {
		dctx, cancel = context.WithTimeout(values, g.drainTimeout)
	}
	defer cancel()
	stopForce := context.AfterFunc(dctx, func() { cancelGoals(g.shutdown) })
	drainErr = sub.Drain(dctx)
	goals.Wait()
	return nil, drainErr, !stopForce()
}

// peekGoalID reads goal_id from a message that failed to decode as a
// goal, so its caller can still be answered; "" when it has none.
func peekGoalID(data []byte) string {
	var v struct {
		GoalID any `json:"goal_id"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	id, _ := v.GoalID.(string)
	return id
}
