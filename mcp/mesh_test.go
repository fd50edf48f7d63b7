package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/mcp"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/pipeline"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// GreetIn is the greeter's input contract.
type GreetIn struct {
	Name string `json:"name" jsonschema:"minLength=1"`
}

// GreetOut is the greeter's output contract.
type GreetOut struct {
	Greeting string `json:"greeting"`
}

func greet(_ context.Context, in GreetIn) (GreetOut, error) {
	return GreetOut{Greeting: "Hello, " + in.Name + "!"}, nil
}

// nameContext is the greeting pipeline's context schema.
const nameContext = `{"type":"object","required":["name"],"properties":{"name":{"type":"string","minLength":1}}}`

// mesh is a router, workers and a pipeline on one connection, and a
// gateway on another, with an MCP client connected to it in process.
type mesh struct {
	b      bus.Bus // the gateway's
	g      *mcp.Gateway
	client *mcpsdk.ClientSession
	events *events
}

// meshConfig is the gateway config of the tests: the greeter through the
// router and straight, worker types nobody serves, a worker that fails,
// one that never answers, one that echoes its input (also offered with
// the greeter's contract, which its output breaks), the greeting
// pipeline, a pipeline nobody runs and one whose stage fails.
func meshConfig(t testing.TB) mcp.Config {
	t.Helper()
	greeter, err := contracts.For[GreetIn, GreetOut]()
	if err != nil {
		t.Fatal(err)
	}
	ctxSchema, err := contracts.NewSchema([]byte(nameContext))
	if err != nil {
		t.Fatal(err)
	}
	return mcp.Config{
		Name:        "mesh",
		Version:     "1.2.3",
		Description: "The test mesh",
		Workers: []mcp.WorkerTool{
			{Name: "greet", WorkerType: "greeter", Description: "Greets someone", Contract: greeter},
			{Name: "greet_direct", WorkerType: "greeter", Direct: true, Contract: greeter},
			{WorkerType: "ghost"},
			{Name: "ghost_direct", WorkerType: "ghost", Direct: true},
			{WorkerType: "failer"},
			{WorkerType: "silent", Direct: true, Timeout: testkit.ShortTimeout * 5},
			{WorkerType: "echo", Direct: true},
			{Name: "liar", WorkerType: "echo", Direct: true, Contract: greeter, Timeout: testkit.ShortTimeout * 5},
		},
		Pipelines: []mcp.PipelineTool{
			{Pipeline: "greeting", Description: "Greets through a pipeline", Context: ctxSchema},
			{Name: "nobody", Pipeline: "nobody_runs_this"},
			{Pipeline: "failing"},
		},
	}
}

// startMesh starts the mesh on connections from connect and connects a
// client to its gateway.
func startMesh(t *testing.T, connect func() bus.Bus) *mesh {
	t.Helper()
	startActors(t, connect)
	m := &mesh{b: connect(), events: &events{}}
	var err error
	m.g, err = mcp.New(m.b, meshConfig(t), heddle.WithObserver(m.events))
	if err != nil {
		t.Fatal(err)
	}
	m.client = connectClient(t, m.g)
	return m
}

// startActors starts the mesh's router, workers and pipeline on a
// connection from connect, until the test ends.
func startActors(t *testing.T, connect func() bus.Bus) {
	t.Helper()
	ctx := testkit.Context(t)
	actors := connect()
	r, err := router.New(actors, router.Config{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(actors, "greeter", greet, worker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := worker.NewDynamic(actors, "failer", func(context.Context, map[string]any) (map[string]any, error) {
		return nil, worker.Permanent(errors.New("the printer is on fire"))
	}, worker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(actors, pipeline.Config{
		Name:          "greeting",
		AddressedOnly: true,
		Stages: []pipeline.Stage{{
			Name: "greet", WorkerType: "greeter", InputMapping: map[string]string{"name": "goal.context.name"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	echo, err := worker.NewDynamic(actors, "echo", func(_ context.Context, in map[string]any) (map[string]any, error) {
		return in, nil
	}, worker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	failing, err := pipeline.New(actors, pipeline.Config{
		Name:          "failing",
		AddressedOnly: true,
		Stages:        []pipeline.Stage{{Name: "fail", WorkerType: "failer", InputMapping: map[string]string{"x": "goal.instruction"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	group, err := heddle.Start(ctx, r, w, f, p, echo, failing)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := group.Stop(); err != nil {
			t.Errorf("stopping the mesh: %v", err)
		}
	})
	testkit.Responder(t, actors, "silent", "", func(heddle.TaskMessage) [][]byte { return nil })
}

// connectClient connects an MCP client of the SDK to g in process.
func connectClient(t *testing.T, g *mcp.Gateway) *mcpsdk.ClientSession {
	t.Helper()
	ctx := testkit.Context(t)
	st, ct := mcpsdk.NewInMemoryTransports()
	ss, err := g.Server().Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcpsdk.NewClient(&mcpsdk.Implementation{Name: "mcp-test", Version: "1.0.0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.Close()
		_ = ss.Wait()
	})
	return cs
}

// call calls tool with args and fails the test on a protocol error.
func (m *mesh) call(t *testing.T, tool string, args any) *mcpsdk.CallToolResult {
	t.Helper()
	res, err := m.client.CallTool(testkit.Context(t), &mcpsdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("CallTool(%s): %v", tool, err)
	}
	return res
}

// text is the text of a result's content.
func text(res *mcpsdk.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcpsdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// errorMeta is the details of a tool error, as a client reads them.
func errorMeta(t *testing.T, res *mcpsdk.CallToolResult) map[string]any {
	t.Helper()
	m, ok := res.Meta[mcp.MetaKey].(map[string]any)
	if !ok {
		t.Fatalf("the result's _meta holds no %q: %v", mcp.MetaKey, res.Meta)
	}
	return m
}

// wantToolError checks that res is a tool error of reason whose text
// holds each of parts.
func wantToolError(t *testing.T, res *mcpsdk.CallToolResult, reason string, parts ...string) map[string]any {
	t.Helper()
	if !res.IsError {
		t.Fatalf("IsError is false, want a tool error %s; content: %s", reason, text(res))
	}
	got := text(res)
	if !strings.HasPrefix(got, reason+": ") {
		t.Errorf("the error text does not start with its reason %q: %s", reason, got)
	}
	for _, p := range parts {
		if !strings.Contains(got, p) {
			t.Errorf("the error text does not name %q: %s", p, got)
		}
	}
	meta := errorMeta(t, res)
	if meta["reason"] != reason {
		t.Errorf("_meta reason = %v, want %s", meta["reason"], reason)
	}
	return meta
}

// structured returns a result's structured content as a client decodes
// it.
func structured(t *testing.T, res *mcpsdk.CallToolResult) map[string]any {
	t.Helper()
	if res.IsError {
		t.Fatalf("tool error: %s", text(res))
	}
	data, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("structured content %s is not an object: %v", data, err)
	}
	return m
}

// events records the gateway's mcp.* events.
type events struct {
	mu   sync.Mutex
	list []event.Event
}

func (e *events) Observe(_ context.Context, ev event.Event) {
	if !strings.HasPrefix(ev.Name, "mcp.call") {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev.Clone())
}

// names returns the names of the events recorded for tool.
func (e *events) names(tool string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.list {
		for _, a := range ev.Attrs {
			if a.Key == "tool" && a.Value.String() == tool {
				out = append(out, ev.Name+" "+ev.Reason)
			}
		}
	}
	return out
}

// meshMarker is published on the gateway's bus after the calls under
// test: every task or goal the gateway published before it reaches a
// subscriber before it (publish order holds from one publisher to one
// subscription).
const meshMarker = "heddle.tasks.mcp_test_marker.standard"

// publishedDuring returns the subjects of the tasks and goals published
// on the mesh while fn ran.
func publishedDuring(t *testing.T, connect func() bus.Bus, gateway bus.Bus, fn func()) []string {
	t.Helper()
	ctx := testkit.Context(t)
	watch := connect()
	seen := make(chan string, 1024)
	sub, err := watch.Subscribe(ctx, "heddle.>", func(_ context.Context, m *bus.Msg) error {
		if strings.HasPrefix(m.Subject, "heddle.tasks.") || strings.HasPrefix(m.Subject, "heddle.goals.") {
			seen <- m.Subject
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	fn()
	if err := gateway.Publish(ctx, &bus.Msg{Subject: meshMarker, Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for {
		select {
		case s := <-seen:
			if s == meshMarker {
				return subjects
			}
			subjects = append(subjects, s)
		case <-ctx.Done():
			t.Fatal("the marker never arrived")
		}
	}
}

// membusFor returns an in-memory bus closed when the test ends.
func membusFor(t *testing.T) bus.Bus {
	t.Helper()
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// syncBuffer is a bytes.Buffer safe for a process to write while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mustJSON encodes v.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
