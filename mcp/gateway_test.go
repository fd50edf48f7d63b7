package mcp_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/mcp"
)

func TestAClientListsEveryToolWithItsContractAsInputSchema(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		m := startMesh(t, connect)
		ctx := testkit.Context(t)
		init := m.client.InitializeResult()
		if init.ServerInfo.Name != "mesh" || init.ServerInfo.Version != "1.2.3" || init.Instructions != "The test mesh" {
			t.Errorf("server info %+v, instructions %q; want mesh 1.2.3, The test mesh", init.ServerInfo, init.Instructions)
		}
		tools := map[string]*mcpsdk.Tool{}
		var names []string
		for tool, err := range m.client.Tools(ctx, nil) {
			if err != nil {
				t.Fatal(err)
			}
			tools[tool.Name] = tool
			names = append(names, tool.Name)
		}
		want := []string{"echo", "failer", "failing", "ghost", "ghost_direct", "greet", "greet_direct", "greeting", "liar", "nobody", "silent"}
		slices.Sort(names)
		if !slices.Equal(names, want) {
			t.Fatalf("tools %v, want %v", names, want)
		}

		greeter, err := contracts.For[GreetIn, GreetOut]()
		if err != nil {
			t.Fatal(err)
		}
		wantIn := decode(t, greeter.Input().Document())
		wantIn["type"] = "object" // MCP wants it at the root; the contract's root is a $ref
		for _, name := range []string{"greet", "greet_direct"} {
			if got := tools[name].InputSchema; !reflect.DeepEqual(got, wantIn) {
				t.Errorf("%s's input schema\n%v\nwant the greeter's input contract\n%v", name, got, wantIn)
			}
			if got, want := tools[name].OutputSchema, decode(t, greeter.Output().Document()); !reflect.DeepEqual(got, want) {
				t.Errorf("%s's output schema\n%v\nwant the greeter's output contract\n%v", name, got, want)
			}
		}
		if tools["greet"].Description != "Greets someone" {
			t.Errorf("greet's description %q", tools["greet"].Description)
		}
		if got := tools["ghost"].InputSchema; !reflect.DeepEqual(got, map[string]any{"type": "object"}) {
			t.Errorf("a worker tool without a contract has input schema %v, want any object", got)
		}
		if tools["ghost"].OutputSchema != nil {
			t.Errorf("a worker tool without a contract has output schema %v, want none", tools["ghost"].OutputSchema)
		}

		pipe := tools["greeting"].InputSchema.(map[string]any)
		props := pipe["properties"].(map[string]any)
		if got := props["context"]; !reflect.DeepEqual(got, decode(t, []byte(nameContext))) {
			t.Errorf("the pipeline tool's context property is %v, want its context schema %s", got, nameContext)
		}
		if got := props["instruction"].(map[string]any)["type"]; got != "string" {
			t.Errorf("the pipeline tool's instruction has type %v, want string", got)
		}
		if !reflect.DeepEqual(pipe["required"], []any{"context"}) || pipe["additionalProperties"] != false {
			t.Errorf("the pipeline tool's schema requires %v (additionalProperties %v), want context and nothing else",
				pipe["required"], pipe["additionalProperties"])
		}
		if tools["nobody"].Description != "Pipeline: nobody_runs_this" {
			t.Errorf("a pipeline tool without a description says %q", tools["nobody"].Description)
		}
	})
}

func decode(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAWorkerToolAnswersWithTheWorkersOutputThroughTheRouterAndDirect(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		m := startMesh(t, connect)
		for _, tool := range []string{"greet", "greet_direct"} {
			res := m.call(t, tool, map[string]any{"name": "Ada"})
			if got := structured(t, res); !reflect.DeepEqual(got, map[string]any{"greeting": "Hello, Ada!"}) {
				t.Errorf("%s: structured content %v, want the greeting", tool, got)
			}
			if got := text(res); got != `{"greeting":"Hello, Ada!"}` {
				t.Errorf("%s: text content %s, want the output's JSON", tool, got)
			}
		}
		if got, want := m.g.Stats(), (mcp.Stats{Completed: 2}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
		if got := m.events.names("greet_direct"); !slices.Equal(got, []string{"mcp.call_completed "}) {
			t.Errorf("greet_direct's events %v, want one mcp.call_completed", got)
		}
	})
}

func TestAPipelineToolAnswersWithThePipelinesFinalOutput(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		m := startMesh(t, connect)
		res := m.call(t, "greeting", map[string]any{"instruction": "greet Ada", "context": map[string]any{"name": "Ada"}})
		out := structured(t, res)
		if got := out["greet"]; !reflect.DeepEqual(got, map[string]any{"greeting": "Hello, Ada!"}) {
			t.Errorf("the greet stage's output is %v in %v", got, out)
		}
		if _, ok := out[heddleTimeline]; !ok {
			t.Errorf("the final output %v lacks the pipeline's %s", out, heddleTimeline)
		}
		// The instruction may be left out.
		res = m.call(t, "greeting", map[string]any{"context": map[string]any{"name": "Bo"}})
		if got := structured(t, res)["greet"]; !reflect.DeepEqual(got, map[string]any{"greeting": "Hello, Bo!"}) {
			t.Errorf("without an instruction the greet stage's output is %v", got)
		}
	})
}

const heddleTimeline = "_timeline"

func TestArgumentsBreakingTheContractAreAToolErrorNamingTheFieldAndNothingIsPublished(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		m := startMesh(t, connect)
		cases := []struct {
			name, tool string
			args       any
			reason     string
			parts      []string
			path       string
		}{
			{"a missing required field", "greet", map[string]any{}, mcp.ReasonContractViolation, []string{"/name", "required", `"greeter"`}, "/name"},
			{"a field of the wrong type", "greet_direct", map[string]any{"name": 7}, mcp.ReasonContractViolation, []string{"/name", "string"}, "/name"},
			{"a field below its bound", "greet", map[string]any{"name": ""}, mcp.ReasonContractViolation, []string{"/name"}, "/name"},
			{"a field named only by case", "greet", map[string]any{"Name": "Ada"}, mcp.ReasonContractViolation, []string{"/name", "required"}, "/name"},
			{"a goal context missing a field", "greeting", map[string]any{"context": map[string]any{}}, mcp.ReasonContractViolation, []string{"/context/name", "required", `"greeting"`}, "/context/name"},
			{"a goal without its context", "greeting", map[string]any{"instruction": "hi"}, mcp.ReasonContractViolation, []string{"/context"}, "/context"},
			{"a pipeline argument it does not take", "greeting", map[string]any{"context": map[string]any{"name": "A"}, "contxt": 1}, mcp.ReasonInvalidArguments, []string{`"contxt"`}, ""},
			{"an instruction that is not a string", "greeting", map[string]any{"instruction": 1, "context": map[string]any{"name": "A"}}, mcp.ReasonInvalidArguments, []string{"instruction", "string"}, ""},
			{"a context that is not an object", "nobody", map[string]any{"context": "x"}, mcp.ReasonInvalidArguments, []string{"context", "object"}, ""},
		}
		var published []string
		for _, c := range cases {
			published = append(published, publishedDuring(t, connect, m.b, func() {
				res := m.call(t, c.tool, c.args)
				meta := wantToolError(t, res, c.reason, c.parts...)
				if c.path != "" {
					vs, _ := meta["violations"].([]any)
					if len(vs) == 0 || vs[0].(map[string]any)["path"] != c.path {
						t.Errorf("%s: _meta violations %v, want one at %s", c.name, meta["violations"], c.path)
					}
				}
				if _, ok := meta["task_id"]; ok {
					t.Errorf("%s: _meta names a task %v although none was sent", c.name, meta["task_id"])
				}
			})...)
		}
		if len(published) > 0 {
			t.Errorf("refused calls published %v, want nothing", published)
		}
		if got, want := m.g.Stats(), (mcp.Stats{Refused: uint64(len(cases))}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
		refusal := "mcp.call_refused " + mcp.ReasonContractViolation
		if got := m.events.names("greet"); !slices.Equal(got, []string{refusal, refusal, refusal}) {
			t.Errorf("greet's events %v, want three mcp.call_refused", got)
		}
	})
}

func TestAWorkerTypeNobodyServesIsAToolErrorAtOnce(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		m := startMesh(t, connect)
		// Through the router: it dead-letters the task and says why.
		meta := wantToolError(t, m.call(t, "ghost", map[string]any{"x": 1}), mcp.ReasonDeadLettered,
			event.ReasonNoWorker+": ", "'ghost'", `"ghost"`)
		if meta["dead_letter_reason"] != event.ReasonNoWorker || meta["task_id"] == "" || meta["task_id"] == nil {
			t.Errorf("_meta %v, want dead_letter_reason %s and the task_id", meta, event.ReasonNoWorker)
		}
		// Straight to the worker's subject: the bus says nobody is there.
		wantToolError(t, m.call(t, "ghost_direct", nil), mcp.ReasonNoWorker, `"ghost"`, `"standard"`)
		// A pipeline nobody runs.
		wantToolError(t, m.call(t, "nobody", map[string]any{"context": map[string]any{}}), mcp.ReasonNoGoalServer,
			`"nobody_runs_this"`, "heddle.goals.to.nobody_runs_this")
		if got, want := m.g.Stats(), (mcp.Stats{Failed: 3}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
		if got := m.events.names("ghost"); !slices.Equal(got, []string{"mcp.call_failed dead_lettered"}) {
			t.Errorf("ghost's events %v, want one mcp.call_failed dead_lettered", got)
		}
	})
}

func TestAFailedTaskIsAToolErrorWithTheWorkersError(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		m := startMesh(t, connect)
		res := m.call(t, "failer", map[string]any{})
		meta := wantToolError(t, res, mcp.ReasonTaskFailed, "the printer is on fire", `"failer"`)
		if id, _ := meta["task_id"].(string); id == "" || !strings.Contains(text(res), id) {
			t.Errorf("_meta %v and text %q, want the failed task's id", meta, text(res))
		}
	})
}

func TestAFailedGoalIsAToolErrorWithThePipelinesError(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		m := startMesh(t, connect)
		res := m.call(t, "failing", map[string]any{"instruction": "fail"})
		meta := wantToolError(t, res, mcp.ReasonTaskFailed, `"failing"`, "fail", "the printer is on fire")
		if id, _ := meta["goal_id"].(string); id == "" || !strings.Contains(text(res), id) {
			t.Errorf("_meta %v and text %q, want the goal's id", meta, text(res))
		}
	})
}

func TestAnOutputBreakingTheOutputContractIsNotTakenAndTheTimeoutSaysWhy(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		m := startMesh(t, connect)
		// The echo worker answers {"name": "Ada"}, which lacks the
		// greeting the tool's output contract requires.
		res := m.call(t, "liar", map[string]any{"name": "Ada"})
		wantToolError(t, res, mcp.ReasonTimeout, "rejected", "/greeting", "required")
	})
}

func TestNumbersReachTheWorkerAsTheClientWroteThem(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		m := startMesh(t, connect)
		tasks := captured(t, connect(), heddle.WorkerSubject("echo", heddle.TierStandard))
		res, err := m.client.CallTool(testkit.Context(t), &mcpsdk.CallToolParams{
			Name: "echo", Arguments: json.RawMessage(`{"big":123456789012345678901234567890,"small":-0.5e-3,"nested":{"n":[1,2.5]}}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		// The task holds each number's text: an integer of any size
		// reaches the worker exactly.
		if data := next(t, tasks, "task"); !strings.Contains(string(data), `"payload":{"big":123456789012345678901234567890,`) {
			t.Errorf("the task the gateway published is %s", data)
		}
		if got := structured(t, res); !reflect.DeepEqual(got["nested"], map[string]any{"n": []any{1.0, 2.5}}) || got["small"] != -0.0005 {
			t.Errorf("the echo came back as %s", text(res))
		}
	})
}

func TestManyCallsAtOnceEachGetTheirOwnAnswer(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		m := startMesh(t, connect)
		const calls = 64
		errs := make(chan error, calls)
		for i := range calls {
			go func() {
				name := fmt.Sprintf("caller-%d", i)
				tool := []string{"greet", "greet_direct"}[i%2]
				res, err := m.client.CallTool(testkit.Context(t), &mcpsdk.CallToolParams{Name: tool, Arguments: map[string]any{"name": name}})
				switch {
				case err != nil:
					errs <- err
				case res.IsError || text(res) != `{"greeting":"Hello, `+name+`!"}`:
					errs <- fmt.Errorf("%s for %s answered %s", tool, name, text(res))
				default:
					errs <- nil
				}
			}()
		}
		for range calls {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if got := m.g.Stats(); got.Completed != calls {
			t.Errorf("Stats = %+v, want %d completed", got, calls)
		}
	})
}

func TestArgumentsTooLargeForTheBusAreAToolErrorSayingSo(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		m := startMesh(t, connect)
		res := m.call(t, "echo", map[string]any{"blob": strings.Repeat("x", bus.DefaultMaxPayload)})
		wantToolError(t, res, mcp.ReasonTooLarge, `"echo"`, "payload")
		if got := m.g.Stats(); got.Refused != 1 {
			t.Errorf("Stats = %+v, want the call refused", got)
		}
	})
}

func TestAToolThatGetsNoAnswerTimesOutNamingThePendingTask(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		m := startMesh(t, connect)
		res := m.call(t, "silent", map[string]any{})
		meta := wantToolError(t, res, mcp.ReasonTimeout, `"silent"`, "pending task_ids")
		id, _ := meta["task_id"].(string)
		pending, _ := meta["pending_task_ids"].([]any)
		if id == "" || len(pending) != 1 || pending[0] != id || !strings.Contains(text(res), id) {
			t.Errorf("_meta %v and text %q, want the pending task %q named", meta, text(res), id)
		}
		if meta["timeout_seconds"] != (testkit.ShortTimeout * 5).Seconds() {
			t.Errorf("timeout_seconds = %v, want %v", meta["timeout_seconds"], (testkit.ShortTimeout * 5).Seconds())
		}
	})
}

func TestArgumentsThatAreNotAnObjectAreRefused(t *testing.T) {
	m := &mesh{}
	b := membusFor(t)
	var err error
	m.b, m.events = b, &events{}
	if m.g, err = mcp.New(b, meshConfig(t)); err != nil {
		t.Fatal(err)
	}
	m.client = connectClient(t, m.g)
	for _, args := range []any{[]any{1}, "Ada", 3} {
		wantToolError(t, m.call(t, "greet", args), mcp.ReasonInvalidArguments, "JSON object")
	}
	if got := m.g.Stats(); got.Refused != 3 {
		t.Errorf("Stats = %+v, want 3 refused", got)
	}
}

func TestNewRefusesANilBus(t *testing.T) {
	_, err := mcp.New(nil, meshConfig(t))
	if !errors.Is(err, heddle.ErrConfig) || !strings.Contains(err.Error(), "bus") {
		t.Errorf("New(nil) = %v, want a configuration error naming the bus", err)
	}
}
