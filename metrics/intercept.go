package metrics

import (
	"context"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/event"
)

// Intercept times op: a handler attempt (heddle_worker_attempt_duration_seconds),
// a routing decision (heddle_router_route_duration_seconds), a dispatch
// and its wait for the result (heddle_dispatch_wait_seconds) or a goal
// (heddle_goal_duration_seconds). It passes ctx on unchanged and returns
// what next returns.
func (m *Metrics) Intercept(ctx context.Context, op *event.Op, next event.Next) error {
	start := time.Now()
	err := next(ctx)
	d := time.Since(start).Seconds()
	status := op.Status
	if status == "" {
		status = string(heddle.StatusCompleted)
		if err != nil {
			status = string(heddle.StatusFailed)
		}
	}
	status = m.label(lStatus, status)
	switch op.Kind {
	case event.OpHandle:
		m.attemptDuration.WithLabelValues(m.label(lWorkerType, op.WorkerType), status).Observe(d)
	case event.OpRoute:
		m.routeDuration.WithLabelValues(status).Observe(d)
	case event.OpDispatch:
		m.dispatchWait.WithLabelValues(m.label(lWorkerType, op.WorkerType), status).Observe(d)
	case event.OpGoal:
		m.goalDuration.WithLabelValues(m.label(lActor, op.Actor), status).Observe(d)
	}
	return err
}
