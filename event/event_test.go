package event_test

import (
	"context"
	"testing"

	"github.com/heddle-go/heddle/event"
)

func TestDeadLetterKindIsTheKnownPrefixOrOther(t *testing.T) {
	for reason, want := range map[string]string{
		"no_worker: no worker serves 'alpha' at tier 'standard'": event.ReasonNoWorker,
		"rate_limited: tier 'local' has no available capacity":   event.ReasonRateLimited,
		"invalid_task_message: task_id: required":                event.ReasonInvalidTaskMessage,
		"unknown_tier":                 event.ReasonUnknownTier,
		"shutdown: the router stopped": event.ReasonShutdown,
		"no_workers: typo":             event.ReasonOther,
		"<script>alert(1)</script>":    event.ReasonOther,
		"":                             event.ReasonOther,
		"rate_limitedX: tier 'x'":      event.ReasonOther,
		"something: no_worker: nested": event.ReasonOther,
	} {
		if got := event.DeadLetterKind(reason); got != want {
			t.Errorf("DeadLetterKind(%q) = %q, want %q", reason, got, want)
		}
	}
}

func TestOnlySelectsTheNamedEvents(t *testing.T) {
	var seen []string
	o := event.Only(event.ObserverFunc(func(_ context.Context, e event.Event) { seen = append(seen, e.Name) }),
		event.WorkerCompleted, event.WorkerFailed)
	for _, name := range []string{event.WorkerReceived, event.WorkerCompleted, event.RouterRouted, event.WorkerFailed} {
		if event.Wants(o, name) {
			o.Observe(context.Background(), event.Event{Name: name})
		}
	}
	if len(seen) != 2 || seen[0] != event.WorkerCompleted || seen[1] != event.WorkerFailed {
		t.Errorf("observed %v, want worker.completed and worker.failed", seen)
	}
	plain := event.ObserverFunc(func(context.Context, event.Event) {})
	if !event.Wants(plain, event.RouterRouted) {
		t.Error("an Observer that is not a Selector wants every event")
	}
}

func TestEventNStandsForOneUnlessCounted(t *testing.T) {
	if n := (event.Event{}).N(); n != 1 {
		t.Errorf("N() of an event without Count = %d, want 1", n)
	}
	if n := (event.Event{Count: 7}).N(); n != 7 {
		t.Errorf("N() = %d, want 7", n)
	}
}
