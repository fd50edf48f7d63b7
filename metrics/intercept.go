package metrics

import (
	"context"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/event"
)

// Intercepts reports which operations m wraps: dispatches and goals.
// Handler attempts and routing decisions are timed from the events of
// workers and routers, which cost them less than an interceptor.
func (m *Metrics) Intercepts(kind event.OpKind) bool {
	return kind == event.OpDispatch || kind == event.OpGoal
}

// Intercept times op: a dispatch and its wait for the result
// (heddle_dispatch_wait_seconds) or a goal (heddle_goal_duration_seconds).
// It passes ctx on unchanged and returns what next returns.
func (m *Metrics) Intercept(ctx context.Context, op *event.Op, next event.Next) error {
	if !m.Intercepts(op.Kind) {
		return next(ctx)
	}
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
	case event.OpDispatch:
		m.dispatchWait.WithLabelValues(m.label(lWorkerType, op.WorkerType), status).Observe(d)
	case event.OpGoal:
		m.goalDuration.WithLabelValues(m.label(lActor, op.Actor), status).Observe(d)
	}
	return err
}
