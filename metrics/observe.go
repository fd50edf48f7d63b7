package metrics

import (
	"context"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
)

// Label names.
const (
	lWorkerType = "worker_type"
	lTier       = "tier"
	lReason     = "reason"
	lStatus     = "status"
	lActor      = "actor"
	lEvent      = "event"
	lSide       = "side"
	lTarget     = "target"
	lResult     = "result"
	lState      = "state"
)

// boundedLabels are the labels whose values come from the events, and so
// from peers: each is capped (see DefaultLabelLimit). The others take
// only values this package writes.
var boundedLabels = []string{lWorkerType, lTier, lReason, lStatus, lActor}

// wanted are the events Metrics counts; it is asked for no other.
var wanted = map[string]bool{
	event.WorkerReceived: true, event.WorkerCompleted: true, event.WorkerFailed: true, event.WorkerRetry: true,
	event.WorkerAbandoned: true, event.WorkerDiscarded: true, event.WorkerGoexit: true, event.WorkerPoolShrunk: true,
	event.WorkerSlowConsumer: true,

	event.RouterRouted: true, event.RouterDeadLettered: true, event.RouterThrottled: true, event.RouterPublishFailed: true,
	event.RouterReloaded: true, event.RouterReloadFailed: true, event.RouterNoWorkerUnknown: true,

	event.ResultStreamCollected: true, event.ResultStreamIgnored: true, event.ResultStreamDuplicate: true,
	event.ResultStreamParseError: true, event.ResultStreamTimeout: true, event.ResultStreamLate: true,
	event.ResultStreamUnserved: true, event.ResultStreamError: true,

	event.DeadLetterReceived: true, event.DeadLetterParseError: true, event.DeadLetterEvicted: true,
	event.DeadLetterReplayed: true, event.DeadLetterReplayFailed: true,

	event.OrchestratorGoalReceived: true, event.OrchestratorGoalCompleted: true, event.OrchestratorParseError: true,
	event.PipelineGoalReceived: true, event.PipelineGoalCompleted: true, event.PipelineParseError: true,
	event.PipelineStageStarted: true, event.PipelineStageCompleted: true, event.PipelineStageFailed: true,
	event.PipelineStageRetry: true, event.PipelineStageSkipped: true,

	event.BusClosed: true, event.BusDisconnected: true, event.BusReconnected: true, event.BusSlowConsumer: true,
	event.BusNoSubscriber: true, event.BusHandlerPanic: true, event.BusHandlerError: true, event.BusError: true,

	event.WorkerHeartbeatStale: true, event.WorkerReactivated: true, event.WorkerStopped: true,
}

// Wants reports whether m counts the events named name: an actor builds
// no event that m does not want (and that its logger does not log).
func (m *Metrics) Wants(name string) bool { return wanted[name] }

// label returns v as a value of the bounded label name.
func (m *Metrics) label(name, v string) string { return m.labels[name].value(v) }

// Observe counts e. It never blocks and does not keep e.
func (m *Metrics) Observe(_ context.Context, e event.Event) {
	n := float64(e.N())
	switch e.Name {
	case event.WorkerReceived:
		m.series(e.WorkerType, e.Tier).received.Add(n)
	case event.WorkerCompleted:
		s := m.series(e.WorkerType, e.Tier)
		s.completed.Add(n)
		if e.Duration > 0 {
			s.completedDuration.Observe(seconds(e.Duration))
		}
	case event.WorkerFailed:
		m.workerFailedEvent(e, n)
	case event.WorkerRetry:
		m.workerRetries.WithLabelValues(m.label(lWorkerType, e.WorkerType), m.label(lTier, e.Tier), m.label(lReason, e.Reason)).Add(n)
	case event.WorkerAbandoned:
		m.workerAbandoned.WithLabelValues(m.label(lWorkerType, e.WorkerType)).Add(n)
	case event.WorkerDiscarded:
		m.workerDiscarded.WithLabelValues(m.label(lWorkerType, e.WorkerType)).Add(n)
	case event.WorkerGoexit:
		m.workerGoexits.WithLabelValues(m.label(lWorkerType, e.WorkerType)).Add(n)
	case event.WorkerPoolShrunk:
		m.workerPoolShrinks.WithLabelValues(m.label(lWorkerType, e.WorkerType)).Add(n)
	case event.WorkerSlowConsumer:
		m.workerDropped.WithLabelValues(m.label(lWorkerType, e.WorkerType)).Add(n)

	case event.RouterRouted:
		m.series(e.WorkerType, e.Tier).routed.Add(n)
		if e.Duration > 0 {
			m.routeRouted.Observe(seconds(e.Duration))
		}
	case event.RouterDeadLettered:
		m.routerDeadLettered.WithLabelValues(m.label(lWorkerType, e.WorkerType), m.label(lReason, reasonKind(e))).Add(n)
		if e.Duration > 0 {
			m.routeDeadLettered.Observe(seconds(e.Duration))
		}
	case event.RouterThrottled:
		m.routerThrottled.WithLabelValues(m.label(lWorkerType, e.WorkerType), m.label(lTier, e.Tier)).Add(n)
	case event.RouterPublishFailed:
		m.routerPublishErrors.WithLabelValues(publishTarget(e.Subject)).Add(n)
	case event.RouterReloaded:
		m.routerReloads.WithLabelValues("ok").Add(n)
	case event.RouterReloadFailed:
		m.routerReloads.WithLabelValues("failed").Add(n)
	case event.RouterNoWorkerUnknown:
		m.routerNoWorkerUnknown.WithLabelValues().Add(n)

	case event.ResultStreamCollected, event.ResultStreamIgnored, event.ResultStreamDuplicate, event.ResultStreamParseError,
		event.ResultStreamTimeout, event.ResultStreamLate, event.ResultStreamUnserved, event.ResultStreamError:
		m.resultStream.WithLabelValues(strings.TrimPrefix(e.Name, "result_stream.")).Add(n)

	case event.DeadLetterReceived, event.DeadLetterParseError, event.DeadLetterEvicted, event.DeadLetterReplayed,
		event.DeadLetterReplayFailed:
		reason := ""
		if e.Name != event.DeadLetterParseError {
			reason = reasonKind(e)
		}
		m.deadLetters.WithLabelValues(strings.TrimPrefix(e.Name, "dead_letter."), m.label(lReason, reason)).Add(n)

	case event.OrchestratorGoalReceived, event.PipelineGoalReceived:
		m.goals.WithLabelValues(m.label(lActor, actorOf(e)), "received").Add(n)
	case event.OrchestratorGoalCompleted, event.PipelineGoalCompleted:
		m.goals.WithLabelValues(m.label(lActor, actorOf(e)), "completed").Add(n)
	case event.OrchestratorParseError, event.PipelineParseError:
		m.goals.WithLabelValues(m.label(lActor, actorOf(e)), "parse_error").Add(n)
	case event.PipelineStageStarted, event.PipelineStageCompleted, event.PipelineStageFailed, event.PipelineStageRetry,
		event.PipelineStageSkipped:
		m.stages.WithLabelValues(strings.TrimPrefix(e.Name, "pipeline.stage_")).Add(n)

	case event.BusSlowConsumer:
		m.busDropped.WithLabelValues(m.label(lActor, e.Actor)).Add(n)
	case event.BusClosed, event.BusDisconnected, event.BusReconnected, event.BusNoSubscriber, event.BusHandlerPanic,
		event.BusHandlerError, event.BusError:
		m.busEvents.WithLabelValues(m.label(lActor, e.Actor), strings.TrimPrefix(e.Name, "bus.")).Add(n)

	case event.WorkerHeartbeatStale, event.WorkerReactivated, event.WorkerStopped:
		m.registryTransitions.WithLabelValues(m.label(lWorkerType, e.WorkerType), strings.TrimPrefix(e.Name, "worker.")).Add(n)
	}
}

// taskSeries are the series every task on the task path touches, for
// one worker type and tier: resolved once, so that counting the events
// of a routed and completed task costs a map lookup each rather than the
// hashing of its label values into each vector.
type taskSeries struct {
	received, completed, routed prometheus.Counter
	completedDuration           prometheus.Observer
}

type seriesKey struct{ workerType, tier string }

// series returns the task-path series of workerType and tier. Only label
// values kept as they are get a cache entry, so the cache is bounded by
// the label limits.
func (m *Metrics) series(workerType, tier string) *taskSeries {
	return m.taskSeries.LoadOrCompute(seriesKey{workerType, tier}, func() (*taskSeries, bool) {
		wt, t := m.label(lWorkerType, workerType), m.label(lTier, tier)
		s := &taskSeries{
			received:          m.workerReceived.WithLabelValues(wt, t),
			completed:         m.workerCompleted.WithLabelValues(wt, t),
			routed:            m.routerRouted.WithLabelValues(wt, t),
			completedDuration: m.taskDuration.WithLabelValues(wt, string(heddle.StatusCompleted)),
		}
		return s, wt == workerType && t == tier
	})
}

// workerFailedEvent counts a worker.failed event, which stands for one of
// three outcomes (see event.WorkerFailed): a result that could not be
// published (Reason publish), a message that was not a task for the
// worker (no Status: no result of it was the worker's to publish), or a
// failed result published.
func (m *Metrics) workerFailedEvent(e event.Event, n float64) {
	wt := m.label(lWorkerType, e.WorkerType)
	switch {
	case e.Reason == event.ReasonPublish:
		m.workerPublishErrors.WithLabelValues(wt).Add(n)
	case e.Status == "":
		m.workerMalformed.WithLabelValues(wt, m.label(lReason, e.Reason)).Add(n)
	default:
		m.workerFailed.WithLabelValues(wt, m.label(lTier, e.Tier), m.label(lReason, e.Reason)).Add(n)
		switch e.Reason {
		case event.ReasonInputContract:
			m.workerContract.WithLabelValues(wt, "input").Add(n)
		case event.ReasonOutputContract:
			m.workerContract.WithLabelValues(wt, "output").Add(n)
		}
		if e.Duration > 0 {
			m.taskDuration.WithLabelValues(wt, string(heddle.StatusFailed)).Observe(seconds(e.Duration))
		}
	}
}

// reasonKind returns the bounded reason kind of a dead letter's event:
// its Reason, or else the kind of its reason text (Detail, or the
// "reason" attribute of an actor that sets no typed field).
func reasonKind(e event.Event) string {
	if e.Reason != "" {
		return e.Reason
	}
	text := e.Detail
	if text == "" {
		for _, a := range e.Attrs {
			if a.Key == "reason" {
				text = a.Value.String()
				break
			}
		}
	}
	if text == "" {
		return ""
	}
	return event.DeadLetterKind(text)
}

// actorOf returns the actor of a goal event: its Actor, or the word
// before the '.' of its name.
func actorOf(e event.Event) string {
	if e.Actor != "" {
		return e.Actor
	}
	actor, _, _ := strings.Cut(e.Name, ".")
	return actor
}

// publishTarget returns what a router's failed publish was for, from
// its subject.
func publishTarget(subject string) string {
	switch {
	case subject == heddle.SubjectDeadLetter:
		return "dead_letter"
	case bus.Match(heddle.SubjectResultsAll, subject):
		return "answer"
	}
	return "forward"
}
