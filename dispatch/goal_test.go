package dispatch_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/pipeline"
)

// startAddressedPipeline runs a pipeline called name that serves only the
// goals addressed to it, with one stage answered by the echo responder.
func startAddressedPipeline(t *testing.T, b bus.Bus, name string) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.New(b, pipeline.Config{
		Name:          name,
		AddressedOnly: true,
		Direct:        true,
		Timeout:       testkit.Wait,
		Stages: []pipeline.Stage{
			{Name: "echo", WorkerType: "goal_echo", InputMapping: map[string]string{"text": "goal.instruction"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	testkit.StartActor(t, p.Run, p.Ready())
	return p
}

func TestAddressedGoalsReachOnlyTheirPipeline(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		testkit.Responder(t, connect(), "goal_echo", "", func(task heddle.TaskMessage) [][]byte {
			return [][]byte{testkit.Encode(t, testkit.Echo(task))}
		})
		pipes := map[string]*pipeline.Pipeline{
			"alpha": startAddressedPipeline(t, connect(), "alpha"),
			"beta":  startAddressedPipeline(t, connect(), "beta"),
		}
		b := connect()
		ctx := testkit.Context(t)
		// Unaddressed, these goals would split between the two at random.
		sent := map[string]int{"alpha": 3, "beta": 2}
		for name, n := range sent {
			for range n {
				goal := heddle.NewOrchestratorGoal("for "+name, nil)
				res, err := dispatch.SubmitGoal(ctx, b, goal, dispatch.To(name), dispatch.Timeout(testkit.Wait))
				if err != nil {
					t.Fatalf("SubmitGoal to %s: %v", name, err)
				}
				if res.WorkerType != name || res.Status != heddle.StatusCompleted || res.TaskID != goal.GoalID {
					t.Fatalf("the goal for %s was answered by %s (%s, task_id %s)", name, res.WorkerType, res.Status, res.TaskID)
				}
			}
		}
		for name, p := range pipes {
			if got := p.Stats().GoalsReceived; got != uint64(sent[name]) {
				t.Errorf("pipeline %s received %d goals, want %d (its own only)", name, got, sent[name])
			}
		}
	})
}

func TestAGoalNothingServesFailsAtOnceNamingItsSubject(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		// A pipeline serving only its addressed goals: the shared subject
		// and every other name are unserved.
		startAddressedPipeline(t, connect(), "alpha")
		b := connect()
		tests := []struct {
			name    string
			opts    []dispatch.Option
			subject string
		}{
			{"a goal addressed to a name nobody serves", []dispatch.Option{dispatch.To("gamma")}, "heddle.goals.to.gamma"},
			{"a shared goal while every server is addressed-only", nil, heddle.SubjectGoalsIncoming},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				// The timeout outlasts the context: only the bus's report
				// can end the call with ErrNoGoalServer.
				res, err := dispatch.SubmitGoal(testkit.Context(t), b, heddle.NewOrchestratorGoal("anyone?", nil),
					append(tt.opts, dispatch.Timeout(time.Hour))...)
				if res != nil || !errors.Is(err, dispatch.ErrNoGoalServer) || !strings.Contains(err.Error(), tt.subject) {
					t.Fatalf("SubmitGoal = %v, %v; want dispatch.ErrNoGoalServer naming %s", res, err, tt.subject)
				}
			})
		}
	})
}

func TestAGoalTimeoutSaysToCheckTheGoalServerNotTheRouter(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		// Something takes the goals addressed to "mute" and never answers.
		subject, err := heddle.GoalSubject("mute")
		if err != nil {
			t.Fatal(err)
		}
		testkit.Subscribe(t, connect(), subject)
		goal := heddle.NewOrchestratorGoal("hello?", nil)
		_, err = dispatch.SubmitGoal(testkit.Context(t), connect(), goal, dispatch.To("mute"), dispatch.Timeout(testkit.ShortTimeout))
		var te *dispatch.TimeoutError
		if !errors.As(err, &te) || len(te.PendingTaskIDs) != 1 || te.PendingTaskIDs[0] != goal.GoalID {
			t.Fatalf("SubmitGoal = %v, want a *TimeoutError naming the goal", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "pipeline or orchestrator serving "+subject) || strings.Contains(msg, "router") {
			t.Errorf("error %q, want advice about the server of %s and none about a router", msg, subject)
		}
	})
}
