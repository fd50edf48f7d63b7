package mcp_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/mcp"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// captured returns the messages published on subject, seen on b.
func captured(t *testing.T, b bus.Bus, subject string) <-chan []byte {
	t.Helper()
	seen := make(chan []byte, 16)
	if _, err := b.Subscribe(testkit.Context(t), subject, func(_ context.Context, m *bus.Msg) error {
		seen <- m.Data
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return seen
}

func next(t *testing.T, ch <-chan []byte, what string) []byte {
	t.Helper()
	select {
	case data := <-ch:
		return data
	case <-time.After(testkit.Wait):
		t.Fatalf("no %s was published", what)
		return nil
	}
}

// traceOf returns the _trace_context of a message's extensions.
func traceOf(t *testing.T, extra map[string]json.RawMessage) map[string]string {
	t.Helper()
	var tc map[string]string
	if raw, ok := extra["_trace_context"]; ok {
		if err := json.Unmarshal(raw, &tc); err != nil {
			t.Fatal(err)
		}
	}
	return tc
}

func callWithTrace(t *testing.T, cs *mcpsdk.ClientSession, tool string, args any) *mcpsdk.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(testkit.Context(t), &mcpsdk.CallToolParams{
		Name: tool, Arguments: args,
		Meta: mcpsdk.Meta{"traceparent": traceparent, "tracestate": "vendor=1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError {
		t.Fatalf("%s: %s", tool, text(res))
	}
	return res
}

func TestTheClientsTraceContextTravelsWithTheTaskAndTheGoal(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		m := startMesh(t, connect)
		watch := connect()
		tasks := captured(t, watch, heddle.SubjectTasksIncoming)
		goals, err := heddle.GoalSubject("greeting")
		if err != nil {
			t.Fatal(err)
		}
		goalMsgs := captured(t, watch, goals)
		want := map[string]string{"traceparent": traceparent, "tracestate": "vendor=1"}

		callWithTrace(t, m.client, "greet", map[string]any{"name": "Ada"})
		task, err := heddle.DecodeTaskMessage(next(t, tasks, "task"))
		if err != nil {
			t.Fatal(err)
		}
		if got := traceOf(t, task.Extra); !reflect.DeepEqual(got, want) {
			t.Errorf("the task's _trace_context is %v, want the client's %v", got, want)
		}

		callWithTrace(t, m.client, "greeting", map[string]any{"context": map[string]any{"name": "Ada"}})
		goal, err := heddle.DecodeOrchestratorGoal(next(t, goalMsgs, "goal"))
		if err != nil {
			t.Fatal(err)
		}
		if got := traceOf(t, goal.Extra); !reflect.DeepEqual(got, want) {
			t.Errorf("the goal's _trace_context is %v, want the client's %v", got, want)
		}
		// The pipeline's stage task carries it on.
		stage, err := heddle.DecodeTaskMessage(next(t, tasks, "stage task"))
		if err != nil {
			t.Fatal(err)
		}
		if got := traceOf(t, stage.Extra); got["traceparent"] != traceparent {
			t.Errorf("the pipeline's stage task has _trace_context %v, want the client's traceparent", got)
		}
	})
}

// markingPropagator reads a traceparent into the context and writes it
// back with a tracestate of its own, so that a test can tell it ran.
type markingPropagator struct{}

type traceKey struct{}

func (markingPropagator) Extract(ctx context.Context, carrier map[string]string) context.Context {
	return context.WithValue(ctx, traceKey{}, carrier["traceparent"])
}

func (markingPropagator) Inject(ctx context.Context, carrier map[string]string) {
	if tp, ok := ctx.Value(traceKey{}).(string); ok {
		carrier["traceparent"], carrier["tracestate"] = tp, "propagated=1"
	}
}

func TestAPropagatorCarriesTheClientsTraceContextIntoTheTaskAndTheGoal(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		startActors(t, connect)
		b := connect()
		g, err := mcp.New(b, meshConfig(t), heddle.WithPropagator(markingPropagator{}))
		if err != nil {
			t.Fatal(err)
		}
		cs := connectClient(t, g)
		watch := connect()
		tasks := captured(t, watch, heddle.WorkerSubject("greeter", heddle.TierStandard))
		goals := captured(t, watch, "heddle.goals.>")
		want := map[string]string{"traceparent": traceparent, "tracestate": "propagated=1"}

		callWithTrace(t, cs, "greet_direct", map[string]any{"name": "Ada"})
		task, err := heddle.DecodeTaskMessage(next(t, tasks, "task"))
		if err != nil {
			t.Fatal(err)
		}
		if got := traceOf(t, task.Extra); !reflect.DeepEqual(got, want) {
			t.Errorf("the task's _trace_context is %v, want the propagator's %v", got, want)
		}
		callWithTrace(t, cs, "greeting", map[string]any{"context": map[string]any{"name": "Ada"}})
		goal, err := heddle.DecodeOrchestratorGoal(next(t, goals, "goal"))
		if err != nil {
			t.Fatal(err)
		}
		if got := traceOf(t, goal.Extra); !reflect.DeepEqual(got, want) {
			t.Errorf("the goal's _trace_context is %v, want the propagator's %v", got, want)
		}
	})
}
