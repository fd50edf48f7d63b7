package mcp_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/mcp"
)

func TestLoadConfigReadsThePythonGatewaysShape(t *testing.T) {
	cfg, err := mcp.LoadConfig("testdata/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "docman" || cfg.Version != "2.0.1" || cfg.NATSURL != "nats://localhost:4222" ||
		cfg.Transport != mcp.TransportStreamableHTTP || cfg.Addr != "127.0.0.1:0" || cfg.DrainTimeout != 5*time.Second {
		t.Errorf("server fields %+v", cfg)
	}
	if len(cfg.Workers) != 3 || len(cfg.Pipelines) != 2 {
		t.Fatalf("%d workers, %d pipelines; want 3 and 2", len(cfg.Workers), len(cfg.Pipelines))
	}
	sum, fast, cls := cfg.Workers[0], cfg.Workers[1], cfg.Workers[2]
	if sum.WorkerType != "summarizer" || sum.Name != "" || sum.Tier != heddle.TierLocal || sum.Timeout != 45*time.Second ||
		sum.Description != "You are a text summarizer. You compress input text into a structured summary." {
		t.Errorf("the worker read from its Python config: %+v", sum)
	}
	if fast.WorkerType != "summarizer" || fast.Name != "summarize_fast" || fast.Tier != heddle.TierFrontier ||
		fast.Timeout != 5*time.Second || fast.Description != "Summarize, on the frontier tier" {
		t.Errorf("the entry's overrides: %+v", fast)
	}
	if cls.WorkerType != "classifier" || !cls.Direct || cls.Contract.Input() == nil || cls.Contract.Output() == nil {
		t.Errorf("the worker named directly: %+v", cls)
	}
	if err := cls.Contract.ValidateOutput(map[string]any{"doc_type": "poem"}); err == nil {
		t.Error("the output schema read from its file accepts a doc_type outside its enum")
	}
	for _, in := range []map[string]any{{"text": ""}, {"max_points": 3}} {
		if err := sum.Contract.ValidateInput(in); !errors.Is(err, contracts.ErrViolation) {
			t.Errorf("the summarizer's input contract accepts %v", in)
		}
	}

	rag, greeting := cfg.Pipelines[0], cfg.Pipelines[1]
	if rag.Pipeline != "rag_pipeline" || rag.Name != "ingest_document" || rag.Timeout != 300*time.Second {
		t.Errorf("the pipeline read from its Python config: %+v", rag)
	}
	wantCtx := `{"properties":{"chunk_size":{},"options":{"type":"object"},"source_path":{"minLength":1,"type":"string"}},"required":["chunk_size","options","source_path"],"type":"object"}`
	if got := string(rag.Context.Document()); got != wantCtx {
		t.Errorf("the context schema derived from the stages' mappings\n%s\nwant\n%s", got, wantCtx)
	}
	if greeting.Pipeline != "greeting" || greeting.Instruction != "Greet someone" || greeting.Timeout != 30*time.Second ||
		greeting.Context.Validate(map[string]any{}) == nil {
		t.Errorf("the pipeline named directly: %+v", greeting)
	}
}

func TestAGatewayFromTheConfigFileListsTheSchemasOfTheFiles(t *testing.T) {
	cfg, err := mcp.LoadConfig("testdata/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := mcp.New(membusFor(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cs := connectClient(t, g)
	tools := map[string]*mcpsdk.Tool{}
	for tool, err := range cs.Tools(testkit.Context(t), nil) {
		if err != nil {
			t.Fatal(err)
		}
		tools[tool.Name] = tool
	}
	sum := tools["summarizer"]
	if sum == nil || tools["summarize_fast"] == nil || tools["classify_document"] == nil || tools["ingest_document"] == nil || tools["greeting"] == nil {
		t.Fatalf("tools %v", tools)
	}
	want := decode(t, cfg.Workers[0].Contract.Input().Document())
	if !reflect.DeepEqual(sum.InputSchema, want) {
		t.Errorf("the summarizer's input schema %v, want its worker file's %v", sum.InputSchema, want)
	}
	if got := tools["classify_document"].OutputSchema.(map[string]any)["required"]; !reflect.DeepEqual(got, []any{"doc_type"}) {
		t.Errorf("classify_document's output schema %v, want the file's", tools["classify_document"].OutputSchema)
	}
	if got := tools["ingest_document"].Description; got != "Ingest a document: parse, chunk, and store vector embeddings" {
		t.Errorf("ingest_document's description %q", got)
	}
}

func TestAPipelineContextFromAGoTypeKeepsItsDefinitionsReachable(t *testing.T) {
	type Doc struct {
		Path string `json:"path" jsonschema:"minLength=1"`
	}
	ctxSchema, err := contracts.SchemaFor[Doc]()
	if err != nil {
		t.Fatal(err)
	}
	g, err := mcp.New(membusFor(t), mcp.Config{Name: "docs", Pipelines: []mcp.PipelineTool{{Pipeline: "docs", Context: ctxSchema}}})
	if err != nil {
		t.Fatal(err)
	}
	tools, err := connectClient(t, g).ListTools(testkit.Context(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	schema := tools.Tools[0].InputSchema.(map[string]any)
	ctx := schema["properties"].(map[string]any)["context"].(map[string]any)
	ref, _ := ctx["$ref"].(string)
	defs, _ := schema["$defs"].(map[string]any)
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok || defs[name] == nil {
		t.Errorf("the context refers to %q, which the tool's schema (%v) does not define at its root", ref, schema)
	}
	if _, ok := ctx["$schema"]; ok {
		t.Errorf("the context subschema keeps $schema: %v", ctx)
	}
	// The schema as listed is a valid schema that checks what the
	// gateway checks.
	listed, err := contracts.NewSchema(mustJSON(t, schema))
	if err != nil {
		t.Fatalf("the listed schema does not compile: %v", err)
	}
	if err := listed.Validate(map[string]any{"context": map[string]any{"path": ""}}); err == nil {
		t.Error("the listed schema accepts an empty path")
	}
	if err := listed.Validate(map[string]any{"context": map[string]any{"path": "a.pdf"}}); err != nil {
		t.Errorf("the listed schema refuses a valid context: %v", err)
	}
}

func TestConfigErrorsNameTheirField(t *testing.T) {
	greeter, err := contracts.For[GreetIn, GreetOut]()
	if err != nil {
		t.Fatal(err)
	}
	scalar, err := contracts.FromJSON([]byte(`{"type":"string"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	refToScalar, err := contracts.FromJSON([]byte(`{"$ref":"#/$defs/S","$defs":{"S":{"type":"array"}}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	nothing, err := contracts.FromJSON([]byte(`false`), nil)
	if err != nil {
		t.Fatal(err)
	}
	worker := func(w mcp.WorkerTool) mcp.Config { return mcp.Config{Name: "g", Workers: []mcp.WorkerTool{w}} }
	cases := []struct {
		name string
		cfg  mcp.Config
		want []string
	}{
		{"a server without a name", mcp.Config{Workers: []mcp.WorkerTool{{WorkerType: "w"}}}, []string{"name: required"}},
		{"a config without tools", mcp.Config{Name: "g"}, []string{"tools: no tools"}},
		{"a worker without a type", worker(mcp.WorkerTool{Name: "t"}), []string{"tools.workers[0].worker_type"}},
		{"a worker type with a space", worker(mcp.WorkerTool{WorkerType: "my worker", Name: "t"}), []string{"tools.workers[0].worker_type"}},
		{"an unknown tier", worker(mcp.WorkerTool{WorkerType: "w", Tier: "gold"}), []string{"tools.workers[0].tier", "gold"}},
		{"a negative timeout", worker(mcp.WorkerTool{WorkerType: "w", Timeout: -time.Second}), []string{"tools.workers[0].timeout_seconds"}},
		{"a tool name MCP refuses", worker(mcp.WorkerTool{WorkerType: "w", Name: "say hi"}), []string{"tools.workers[0].name", "' '"}},
		{"a tool name longer than MCP allows", worker(mcp.WorkerTool{WorkerType: "w", Name: strings.Repeat("a", 129)}), []string{"tools.workers[0].name", "128"}},
		{"an input contract that is a string", worker(mcp.WorkerTool{WorkerType: "w", Contract: scalar}), []string{"tools.workers[0].input_schema", `"string"`}},
		{"an input contract referring to an array", worker(mcp.WorkerTool{WorkerType: "w", Contract: refToScalar}), []string{"tools.workers[0].input_schema", `"array"`}},
		{"an input contract accepting nothing", worker(mcp.WorkerTool{WorkerType: "w", Contract: nothing}), []string{"tools.workers[0].input_schema", "false"}},
		{"two tools of one name", mcp.Config{Name: "g",
			Workers:   []mcp.WorkerTool{{WorkerType: "greet", Contract: greeter}},
			Pipelines: []mcp.PipelineTool{{Pipeline: "greet"}}},
			[]string{"tools.pipelines[0].name", `"greet"`, "tools.workers[0]"}},
		{"a pipeline without a name", mcp.Config{Name: "g", Pipelines: []mcp.PipelineTool{{Name: "p"}}}, []string{"tools.pipelines[0].pipeline: required"}},
		{"a pipeline name unusable in a subject", mcp.Config{Name: "g", Pipelines: []mcp.PipelineTool{{Pipeline: "a.*"}}}, []string{"tools.pipelines[0].pipeline"}},
		{"a pipeline context that is a string", mcp.Config{Name: "g", Pipelines: []mcp.PipelineTool{{Pipeline: "p", Context: scalar.Input()}}}, []string{"tools.pipelines[0].context_schema"}},
		{"an unknown transport", mcp.Config{Name: "g", Transport: "carrier-pigeon", Workers: []mcp.WorkerTool{{WorkerType: "w"}}}, []string{"transport", "carrier-pigeon"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if !errors.Is(err, heddle.ErrConfig) {
				t.Fatalf("Validate = %v, want an error matching heddle.ErrConfig", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not name %q: %v", w, err)
				}
			}
			if _, nerr := mcp.New(membusFor(t), c.cfg); nerr == nil || nerr.Error() != err.Error() {
				t.Errorf("New = %v, want Validate's error", nerr)
			}
		})
	}
}

func TestParseConfigErrorsNameTheirKeyOrLine(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"a misspelt key", "name: g\ntools:\n  workers:\n    - worker_typ: w\n", []string{"line 4", "worker_typ"}},
		{"a query backend of the Python gateway", "name: g\ntools:\n  workers: [{worker_type: w}]\n  queries: [{backend: x}]\n", []string{"tools.queries", "Python"}},
		{"workspace resources of the Python gateway", "name: g\ntools:\n  workers: [{worker_type: w}]\nresources: {workspace_dir: /tmp}\n", []string{"resources", "Python"}},
		{"a worker config that is missing", "name: g\ntools:\n  workers: [{config: nowhere.yaml}]\n", []string{"tools.workers[0].config", "nowhere.yaml"}},
		{"a worker type other than its config file's", "name: g\ntools:\n  workers: [{config: testdata/workers/summarizer.yaml, worker_type: other}]\n",
			[]string{"tools.workers[0].worker_type", `"summarizer"`}},
		{"a schema file that is missing", "name: g\ntools:\n  workers: [{worker_type: w, input_schema: missing.json}]\n", []string{"tools.workers[0].input_schema", "missing.json"}},
		{"a schema that is a list", "name: g\ntools:\n  workers: [{worker_type: w, output_schema: [1]}]\n", []string{"tools.workers[0].output_schema"}},
		{"a schema that does not compile", "name: g\ntools:\n  workers: [{worker_type: w, input_schema: {type: 5}}]\n", []string{"tools.workers[0].input_schema"}},
		{"a pipeline config that is missing", "name: g\ntools:\n  pipelines: [{config: nowhere.yaml}]\n", []string{"tools.pipelines[0].config", "nowhere.yaml"}},
		{"an infinite timeout", "name: g\ntools:\n  workers: [{worker_type: w, timeout_seconds: .inf}]\n", []string{"tools.workers[0].timeout_seconds"}},
		{"a problem of the file and one of the config at once", "tools:\n  workers: [{worker_type: w, input_schema: missing.json}]\n",
			[]string{"tools.workers[0].input_schema", "name: required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := mcp.ParseConfig([]byte(c.yaml))
			if !errors.Is(err, heddle.ErrConfig) {
				t.Fatalf("ParseConfig = %v, want an error matching heddle.ErrConfig", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not name %q: %v", w, err)
				}
			}
		})
	}
}

func TestLoadConfigNamesAFileItCannotRead(t *testing.T) {
	_, err := mcp.LoadConfig("testdata/nowhere.yaml")
	if !errors.Is(err, heddle.ErrConfig) || !strings.Contains(err.Error(), "testdata/nowhere.yaml") {
		t.Errorf("LoadConfig = %v, want an error naming the file", err)
	}
}
