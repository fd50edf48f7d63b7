package heddle_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/orchestrator"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

const traceparent = `{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`

// checkExtensions requires the trace context and the _tenant extension,
// and no other unknown field but those allowed.
func checkExtensions(t *testing.T, what string, extra map[string]json.RawMessage, allowed ...string) {
	t.Helper()
	if string(extra["_trace_context"]) != traceparent || string(extra["_tenant"]) != `"acme"` {
		t.Errorf("%s extensions %s, want _trace_context and _tenant", what, extra)
	}
	for k := range extra {
		if k != "_trace_context" && k != "_tenant" && k != "retry_count" {
			ok := false
			for _, a := range allowed {
				ok = ok || k == a
			}
			if !ok {
				t.Errorf("%s carries %s, which is not an extension", what, k)
			}
		}
	}
}

func TestExtensionsTravelFromTaskToResultAndFromGoalToSubtasks(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		seen := make(chan heddle.TaskMessage, 4)
		w, err := worker.NewDynamic(connect(), "traced", func(ctx context.Context, in map[string]any) (map[string]any, error) {
			task, _ := worker.TaskFromContext(ctx)
			seen <- task
			return map[string]any{"ok": true}, nil
		}, worker.Config{})
		if err != nil {
			t.Fatal(err)
		}
		rt, err := router.New(connect(), router.Config{Rules: router.StaticRules(router.Rules{
			TierOverrides: map[string]string{"traced": "local"}, // the router re-encodes the task
		})})
		if err != nil {
			t.Fatal(err)
		}
		orch, err := orchestrator.New(connect(), orchestrator.Config{
			Decompose: func(_ context.Context, g heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) {
				return []heddle.TaskMessage{heddle.NewTaskMessage("traced", nil)}, nil
			},
			Synthesize: func(_ context.Context, _ heddle.OrchestratorGoal, rs []heddle.TaskResult) (map[string]any, error) {
				for _, r := range rs {
					checkExtensions(t, "the subtask's result", r.Extra)
				}
				return map[string]any{"n": len(rs)}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, w.Run, w.Ready())
		testkit.StartActor(t, rt.Run, rt.Ready())
		testkit.StartActor(t, orch.Run, orch.Ready())
		caller := connect()
		ctx := testkit.Context(t)
		ext := map[string]json.RawMessage{"_trace_context": json.RawMessage(traceparent), "_tenant": json.RawMessage(`"acme"`)}

		// Task -> router (re-encoding) -> worker -> result.
		task := heddle.NewTaskMessage("traced", nil)
		task.Extra = map[string]json.RawMessage{"added_later": json.RawMessage(`1`)}
		task.AddExtensions(ext)
		res, err := dispatch.Request(ctx, caller, task)
		if err != nil {
			t.Fatal(err)
		}
		checkExtensions(t, "the task the worker got", (<-seen).Extra, "added_later")
		checkExtensions(t, "the result", res.Extra)

		// Goal -> subtask -> result -> final result.
		goal := heddle.NewOrchestratorGoal("trace me", nil)
		goal.Extra = ext
		final, err := dispatch.SubmitGoal(ctx, caller, goal)
		if err != nil || final.Status != heddle.StatusCompleted {
			t.Fatalf("SubmitGoal = %+v, %v", final, err)
		}
		checkExtensions(t, "the subtask", (<-seen).Extra)
		checkExtensions(t, "the goal's final result", final.Extra)
	})
}
