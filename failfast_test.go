package heddle_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/router"
)

// A task the router dead-letters comes back to its caller at once, as an
// error naming the reason, long before the caller's 30 s timeout.
func TestADeadLetteredTaskFailsFastWithItsReason(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rt, err := router.New(connect(), router.Config{Rules: router.StaticRules(router.Rules{
			RateLimits: map[string]router.TierRateLimit{"local": {}}, // admits nothing
		})})
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, rt.Run, rt.Ready())
		caller := connect()
		tests := []struct {
			name   string
			tier   heddle.ModelTier
			reason string
			text   string
		}{
			{"a rate-limited task", heddle.TierLocal, event.ReasonRateLimited, "rate_limited: tier 'local' has no available capacity"},
			{"a task for an unknown tier", heddle.ModelTier("gpu"), event.ReasonUnknownTier, "unknown_tier: model_tier"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				task := heddle.NewTaskMessage("summarize", map[string]any{"text": "x"})
				task.ModelTier = tt.tier
				data, err := task.MarshalJSON() // an unknown tier does not Encode
				if err != nil {
					t.Fatal(err)
				}
				results, _ := testkit.Subscribe(t, caller, task.ResultSubject())
				if tt.tier.Valid() {
					res, err := dispatch.Request(testkit.Context(t), caller, task, dispatch.Timeout(30*time.Second))
					checkDeadLettered(t, res, err, task.TaskID, tt.reason, tt.text)
					return
				}
				testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
				res, err := heddle.DecodeTaskResult(testkit.Recv(t, results, "the router's answer").Data)
				if err != nil || res.Status != heddle.StatusFailed || res.Metadata[heddle.MetadataDeadLetterReason] != tt.reason ||
					!strings.HasPrefix(res.Error, tt.text) {
					t.Errorf("answer %+v (%v), want a failed result with reason %s", res, err, tt.reason)
				}
			})
		}
	})
}

func checkDeadLettered(t *testing.T, res *heddle.TaskResult, err error, taskID, reason, text string) {
	t.Helper()
	var dl *dispatch.DeadLetterError
	if !errors.Is(err, heddle.ErrDeadLettered) || !errors.As(err, &dl) {
		t.Fatalf("Request = %+v, %v; want a *dispatch.DeadLetterError", res, err)
	}
	if dl.TaskID != taskID || dl.Reason != reason || !strings.Contains(err.Error(), text) {
		t.Errorf("error %+v (%q), want task %s, reason %s, text %q", dl, err, taskID, reason, text)
	}
}

func TestARouterCanLeaveDeadLetteredTasksUnanswered(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rt, err := router.New(connect(), router.Config{NoDeadLetterResults: true, Rules: router.StaticRules(router.Rules{
			RateLimits: map[string]router.TierRateLimit{"local": {}},
		})})
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, rt.Run, rt.Ready())
		caller := connect()
		task := heddle.NewTaskMessage("summarize", nil)
		task.ModelTier = heddle.TierLocal
		_, err = dispatch.Request(testkit.Context(t), caller, task, dispatch.Timeout(testkit.ShortTimeout))
		if !errors.Is(err, dispatch.ErrTimeout) {
			t.Errorf("Request = %v, want a timeout: the router was told not to answer", err)
		}
		if s := rt.Stats(); s.RateLimited != 1 || s.Answered != 0 {
			t.Errorf("Stats() = %+v, want 1 rate-limited and none answered", s)
		}
	})
}

// A task routed to a worker type nobody serves comes back at once as a
// no_worker dead letter, and the dead letter replays the task.
func TestATaskNobodyServesFailsFastAsNoWorker(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rt, err := router.New(connect(), router.Config{})
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, rt.Run, rt.Ready())
		watcher := connect()
		dead, _ := testkit.Subscribe(t, watcher, heddle.SubjectDeadLetter)
		task := heddle.NewTaskMessage("sumarize", map[string]any{"text": "a typo in the worker type"})
		res, err := dispatch.Request(testkit.Context(t), connect(), task, dispatch.Timeout(30*time.Second))
		checkDeadLettered(t, res, err, task.TaskID, event.ReasonNoWorker, "no_worker: no worker serves 'sumarize' at tier 'standard'")
		d, err := heddle.DecodeDeadLetter(testkit.Recv(t, dead, "the no_worker dead letter").Data)
		if err != nil || d.TaskID != task.TaskID {
			t.Fatalf("dead letter %+v, %v", d, err)
		}
		if again, err := heddle.DecodeTaskMessage(d.Original()); err != nil || again.TaskID != task.TaskID {
			t.Errorf("the dead letter's original %s does not decode as the task: %v", d.Original(), err)
		}
		if s := rt.Stats(); s.NoWorker != 1 || s.Routed != 0 || s.DeadLettered != 1 {
			t.Errorf("Stats() = %+v, want 1 no_worker dead letter and nothing routed", s)
		}
	})
}
