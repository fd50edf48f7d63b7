package mcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracts"
)

// Transports Run serves on (Config.Transport), named as the Python
// gateway's --transport flag names them.
const (
	// TransportStdio serves one client over the process's standard input
	// and output, as a desktop assistant starts a local MCP server.
	TransportStdio = "stdio"
	// TransportStreamableHTTP serves any number of clients over MCP's
	// streamable HTTP transport, on Config.Addr at HTTPPath.
	TransportStreamableHTTP = "streamable-http"
)

// Defaults of Config, used when a field is zero.
const (
	// DefaultVersion is the server version told to clients when
	// Config.Version is empty.
	DefaultVersion = "0.0.0"
	// DefaultWorkerTimeout bounds a worker tool's wait for its result
	// when WorkerTool.Timeout is zero: the Python gateway's default for
	// worker tools. A pipeline tool waits dispatch.DefaultTimeout.
	DefaultWorkerTimeout = 60 * time.Second
	// DefaultInstruction is the goal's instruction when a pipeline tool
	// is called without one, as the Python gateway words it.
	DefaultInstruction = "MCP tool call"
	// DefaultAddr is where Run listens for streamable HTTP when
	// Config.Addr is empty: loopback only, on the Python gateway's port.
	DefaultAddr = "127.0.0.1:8000"
	// HTTPPath is the path Run serves streamable HTTP on, as the Python
	// gateway (FastMCP) does. Handler itself answers on any path.
	HTTPPath = "/mcp"
)

// Config defines a Gateway: what the MCP server calls itself and the
// tools it offers. The zero values of the optional fields mean the
// documented defaults. LoadConfig and ParseConfig read one from YAML in
// the shape of the Python Heddle's gateway config.
type Config struct {
	// Name is the server's name, told to clients when they connect
	// (name). Required.
	Name string
	// Version is the server's version (version). Empty means
	// DefaultVersion.
	Version string
	// Description says what the server offers; clients get it as the
	// server's instructions (description).
	Description string
	// NATSURL is the NATS server the mesh runs on (nats_url). New does
	// not read it (a Gateway is given its bus); a main that connects the
	// bus itself can, as the Python gateway does.
	NATSURL string
	// Workers are the worker tools (tools.workers).
	Workers []WorkerTool
	// Pipelines are the pipeline tools (tools.pipelines).
	Pipelines []PipelineTool
	// Transport is what Run serves on (transport): TransportStdio, the
	// default when empty, or TransportStreamableHTTP.
	Transport string
	// Addr is the host:port Run listens on for TransportStreamableHTTP
	// (addr). Empty means DefaultAddr; port 0 picks a free port (see
	// Gateway.Addr).
	Addr string
	// DrainTimeout bounds Run's shutdown once its context ends: calls in
	// progress may finish until then. Zero means
	// heddle.DefaultDrainTimeout.
	DrainTimeout time.Duration
}

// WorkerTool offers one worker type as a tool: its arguments are the
// payload of one task, and its result is the worker's output.
type WorkerTool struct {
	// Name is the tool's name: letters, digits, '_', '-' and '.', at
	// most 128 of them, unique in the gateway. Empty means WorkerType.
	Name string
	// WorkerType is the worker type the tasks go to. Required.
	WorkerType string
	// Description tells the client (and the model behind it) what the
	// tool does. Empty means a sentence naming the worker type.
	Description string
	// Tier is the tasks' model_tier. Empty means heddle.DefaultModelTier
	// (the Python gateway defaults to local instead: set tier in configs
	// shared with it).
	Tier heddle.ModelTier
	// Timeout bounds the wait for the task's result. Zero means
	// DefaultWorkerTimeout.
	Timeout time.Duration
	// Direct sends the tasks straight to the worker's subject
	// (dispatch.Direct) instead of through the router.
	Direct bool
	// Contract is the worker's contract. Its input schema is the tool's
	// input schema and every call's arguments are checked against it
	// before anything is published; its output schema is the tool's
	// output schema, and a result whose output violates it is not taken
	// (dispatch.Contract). Nil, or a nil side, accepts any object.
	Contract *contracts.Contract
}

// PipelineTool offers one pipeline as a tool: a call submits a goal
// addressed to the pipeline (dispatch.To), whose instruction and context
// are the call's arguments, and its result is the pipeline's final
// output. The tool's input schema is
//
//	{"type": "object",
//	 "properties": {"instruction": {"type": "string"}, "context": <Context>},
//	 "required": ["context"], "additionalProperties": false}
//
// (context is not required when Context is nil; "$defs" of Context move
// to the root, where its local references point).
type PipelineTool struct {
	// Name is the tool's name, as for WorkerTool. Empty means Pipeline.
	Name string
	// Pipeline is the name of the pipeline (or orchestrator) the goals
	// are addressed to (heddle.GoalSubject). Required.
	Pipeline string
	// Description tells the client what the tool does. Empty means
	// "Pipeline: <Pipeline>", as the Python gateway says.
	Description string
	// Instruction is the goal's instruction when a call gives none.
	// Empty means DefaultInstruction.
	Instruction string
	// Timeout bounds the wait for the goal's final result. Zero means
	// dispatch.DefaultTimeout.
	Timeout time.Duration
	// Context is the schema of the goal's context: it is the context
	// property of the tool's input schema, and every call's context is
	// checked against it before the goal is published. Nil accepts any
	// object.
	Context *contracts.Schema
}

// maxToolName is the longest tool name MCP allows.
const maxToolName = 128

// Validate checks cfg as New does: it returns an error matching
// heddle.ErrConfig that lists every problem, each naming its field as
// in the YAML shape (tools.workers[0].worker_type, ...), or nil.
func (cfg Config) Validate() error {
	_, err := cfg.build()
	return err
}

// tool is a validated tool of a Gateway.
type tool struct {
	name        string
	description string
	kind        string // "worker" or "pipeline"
	input       json.RawMessage
	output      json.RawMessage // nil when the tool has no output schema

	// worker tools
	workerType string
	tier       heddle.ModelTier
	direct     bool
	contract   *contracts.Contract // nil when nothing is checked

	// pipeline tools
	pipeline    string
	instruction string
	context     *contracts.Schema

	timeout time.Duration
}

// Kinds of tools, as events and errors name them.
const (
	kindWorker   = "worker"
	kindPipeline = "pipeline"
)

// problems collects the problems of a Config, each naming its field.
type problems []string

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, field+": "+fmt.Sprintf(format, args...))
}

// build validates cfg and returns its tools, in the order of Workers then
// Pipelines.
func (cfg Config) build() ([]*tool, error) { return cfg.buildWith(nil) }

// buildWith is build, reporting p's problems (found reading a config
// file) before cfg's own.
func (cfg Config) buildWith(p problems) ([]*tool, error) {
	if strings.TrimSpace(cfg.Name) == "" {
		p.add("name", "required: the server's name, told to clients")
	}
	switch cfg.Transport {
	case "", TransportStdio, TransportStreamableHTTP:
	default:
		p.add("transport", "unknown transport %q (want %q or %q)", cfg.Transport, TransportStdio, TransportStreamableHTTP)
	}
	if cfg.DrainTimeout < 0 {
		p.add("drain_timeout_seconds", "must not be negative, got %v", cfg.DrainTimeout)
	}
	var tools []*tool
	seen := map[string]string{}
	named := func(field, name string) {
		if err := validToolName(name); err != nil {
			p.add(field, "%v", err)
			return
		}
		if prev, ok := seen[name]; ok {
			p.add(field, "tool name %q is also the name of %s; give one of them another name", name, prev)
			return
		}
		seen[name] = field
	}
	for i, w := range cfg.Workers {
		at := fmt.Sprintf("tools.workers[%d]", i)
		t := &tool{
			kind: kindWorker, name: w.Name, description: w.Description,
			workerType: w.WorkerType, tier: w.Tier, direct: w.Direct, timeout: w.Timeout,
		}
		if err := heddle.ValidateWorkerType(w.WorkerType); err != nil {
			p.add(at+".worker_type", "%v", err)
		}
		if t.name == "" {
			t.name = w.WorkerType
		}
		named(at+".name", t.name)
		if t.description == "" {
			t.description = fmt.Sprintf("Runs one task on the Heddle worker type %q and returns its output.", w.WorkerType)
		}
		if t.tier == "" {
			t.tier = heddle.DefaultModelTier
		} else if !t.tier.Valid() {
			_, err := heddle.ParseModelTier(string(t.tier))
			p.add(at+".tier", "%v", err)
		}
		if t.timeout == 0 {
			t.timeout = DefaultWorkerTimeout
		} else if t.timeout < 0 {
			p.add(at+".timeout_seconds", "must not be negative, got %v", t.timeout)
		}
		in, out := w.Contract.Input(), w.Contract.Output()
		if in != nil || out != nil {
			t.contract = w.Contract
		}
		var err error
		if t.input, err = objectSchema(in); err != nil {
			p.add(at+".input_schema", "%v", err)
		}
		if out != nil {
			t.output = json.RawMessage(out.Document())
		}
		tools = append(tools, t)
	}
	for i, pl := range cfg.Pipelines {
		at := fmt.Sprintf("tools.pipelines[%d]", i)
		t := &tool{
			kind: kindPipeline, name: pl.Name, description: pl.Description,
			pipeline: pl.Pipeline, instruction: pl.Instruction, timeout: pl.Timeout, context: pl.Context,
		}
		if pl.Pipeline == "" {
			p.add(at+".pipeline", "required: the name of the pipeline the goals are addressed to")
		} else if _, err := heddle.GoalSubject(pl.Pipeline); err != nil {
			p.add(at+".pipeline", "%v", err)
		}
		if t.name == "" {
			t.name = pl.Pipeline
		}
		named(at+".name", t.name)
		if t.description == "" {
			t.description = "Pipeline: " + pl.Pipeline
		}
		if t.instruction == "" {
			t.instruction = DefaultInstruction
		}
		if t.timeout < 0 {
			p.add(at+".timeout_seconds", "must not be negative, got %v", t.timeout)
		}
		var err error
		if t.input, err = pipelineSchema(pl.Context); err != nil {
			p.add(at+".context_schema", "%v", err)
		}
		tools = append(tools, t)
	}
	if len(tools) == 0 {
		p.add("tools", "no tools: name at least one worker (tools.workers) or pipeline (tools.pipelines)")
	}
	if len(p) > 0 {
		return nil, fmt.Errorf("%w: mcp gateway %q: %s", heddle.ErrConfig, cfg.Name, strings.Join(p, "; "))
	}
	return tools, nil
}

// validToolName checks a tool name as the MCP specification has it.
func validToolName(name string) error {
	if name == "" {
		return errors.New("a tool needs a name")
	}
	if len(name) > maxToolName {
		return fmt.Errorf("tool name %q is longer than %d bytes", name, maxToolName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("tool name %q holds %q: a tool name is made of letters, digits, '_', '-' and '.'", name, r)
		}
	}
	return nil
}

// objectSchema returns the tool input schema of s: its document, with
// "type": "object" added at the root when it names no type (MCP requires
// it there; a task's payload is always an object, so it adds nothing a
// worker would not check). A nil s gives {"type":"object"}. A schema
// whose root describes something other than an object cannot be a tool's
// input and is an error.
func objectSchema(s *contracts.Schema) (json.RawMessage, error) {
	if s == nil {
		return json.RawMessage(`{"type":"object"}`), nil
	}
	var root any
	if err := json.Unmarshal(s.Document(), &root); err != nil {
		return nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	switch r := root.(type) {
	case bool:
		if !r {
			return nil, errors.New("schema false accepts no input at all")
		}
		return json.RawMessage(`{"type":"object"}`), nil
	case map[string]any:
		if err := describesObject(r, r, 0); err != nil {
			return nil, err
		}
		// Absent, "object", or a list holding it (["object", "null"]):
		// the input is an object either way, and MCP wants it said so.
		r["type"] = "object"
		doc, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		return doc, nil
	}
	return nil, fmt.Errorf("schema must be a JSON object or true, got %s", s.Document())
}

// maxRefDepth bounds how many local $refs describesObject follows.
const maxRefDepth = 8

// describesObject reports an error when node's "type" (or, through a
// local "$ref" into root, the type of what it refers to) allows no
// object.
func describesObject(root, node map[string]any, depth int) error {
	switch t := node["type"].(type) {
	case nil:
	case string:
		if t != "object" {
			return fmt.Errorf("a tool's input is a JSON object, but the schema's root has type %q", t)
		}
	case []any:
		for _, v := range t {
			if v == "object" {
				return nil
			}
		}
		return fmt.Errorf("a tool's input is a JSON object, but the schema's root has type %v", t)
	}
	ref, ok := node["$ref"].(string)
	if !ok || depth >= maxRefDepth {
		return nil
	}
	target := resolveLocal(root, ref)
	if target == nil {
		return nil // not a local reference this check follows; the contract itself resolved it
	}
	return describesObject(root, target, depth+1)
}

// resolveLocal returns the object a local JSON Pointer reference
// ("#/$defs/Name") points to in root, or nil.
func resolveLocal(root map[string]any, ref string) map[string]any {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = root
	for tok := range strings.SplitSeq(ptr, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[tok]
	}
	m, _ := cur.(map[string]any)
	return m
}

// pipelineSchema returns a pipeline tool's input schema, the context
// property being ctxSchema's document (see PipelineTool).
func pipelineSchema(ctxSchema *contracts.Schema) (json.RawMessage, error) {
	props := map[string]any{
		"instruction": map[string]any{
			"type":        "string",
			"description": "The goal in words; optional.",
		},
	}
	schema := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if ctxSchema == nil {
		props["context"] = map[string]any{"type": "object", "description": "The goal's context: the data its stages read."}
		return json.Marshal(schema)
	}
	doc, err := objectSchema(ctxSchema)
	if err != nil {
		return nil, err
	}
	var sub map[string]any
	if err := json.Unmarshal(doc, &sub); err != nil {
		return nil, err
	}
	// The context schema becomes a subschema: its definitions move to the
	// root, where its local references ("#/$defs/...") now point, and
	// "$schema" may only stand at a root.
	for _, k := range []string{"$defs", "definitions"} {
		if defs, ok := sub[k]; ok {
			schema[k] = defs
			delete(sub, k)
		}
	}
	delete(sub, "$schema")
	props["context"] = sub
	schema["required"] = []string{"context"}
	return json.Marshal(schema)
}
