package mcp

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/pipeline"
)

// configYAML is the gateway config file: the Python gateway's shape,
// with the keys a Go gateway adds.
type configYAML struct {
	Name                string    `yaml:"name"`
	Version             string    `yaml:"version"`
	Description         string    `yaml:"description"`
	NATSURL             string    `yaml:"nats_url"`
	Transport           string    `yaml:"transport"`
	Addr                string    `yaml:"addr"`
	DrainTimeoutSeconds float64   `yaml:"drain_timeout_seconds"`
	Tools               toolsYAML `yaml:"tools"`
	// Resources (workspace files) are a feature of the Python gateway
	// alone; the key is known so that the error can say so.
	Resources any `yaml:"resources"`
}

type toolsYAML struct {
	Workers   []workerYAML   `yaml:"workers"`
	Pipelines []pipelineYAML `yaml:"pipelines"`
	// Python-only tool sources, known so that the error can say so.
	Queries  any `yaml:"queries"`
	Workshop any `yaml:"workshop"`
	Session  any `yaml:"session"`
	Council  any `yaml:"council"`
}

type workerYAML struct {
	Config         string  `yaml:"config"`
	WorkerType     string  `yaml:"worker_type"`
	Name           string  `yaml:"name"`
	Description    string  `yaml:"description"`
	Tier           string  `yaml:"tier"`
	TimeoutSeconds float64 `yaml:"timeout_seconds"`
	Direct         bool    `yaml:"direct"`
	InputSchema    any     `yaml:"input_schema"`
	OutputSchema   any     `yaml:"output_schema"`
}

type pipelineYAML struct {
	Config         string  `yaml:"config"`
	Pipeline       string  `yaml:"pipeline"`
	Name           string  `yaml:"name"`
	Description    string  `yaml:"description"`
	Instruction    string  `yaml:"instruction"`
	TimeoutSeconds float64 `yaml:"timeout_seconds"`
	ContextSchema  any     `yaml:"context_schema"`
}

// workerFileYAML is what the gateway reads of a Python worker config
// file; its other keys (prompts, token limits, ...) configure the worker
// itself and are not the gateway's concern.
type workerFileYAML struct {
	Name             string  `yaml:"name"`
	Description      string  `yaml:"description"`
	SystemPrompt     string  `yaml:"system_prompt"`
	InputSchema      any     `yaml:"input_schema"`
	OutputSchema     any     `yaml:"output_schema"`
	DefaultModelTier string  `yaml:"default_model_tier"`
	TimeoutSeconds   float64 `yaml:"timeout_seconds"`
}

// ParseConfig reads a gateway config in the Python Heddle's YAML shape,
// with the keys a Go gateway adds, and validates it as New does:
//
//	name: docman                      # the server's name (required)
//	version: 1.0.0
//	description: Classify and summarize documents
//	nats_url: nats://localhost:4222   # read by mains, not by New
//	transport: streamable-http        # what Run serves: stdio (default) or streamable-http
//	addr: 127.0.0.1:8000
//	drain_timeout_seconds: 30
//	tools:
//	  workers:
//	    - worker_type: summarizer
//	      name: summarize              # the tool's name; default the worker type
//	      description: Summarize a text
//	      tier: local
//	      timeout_seconds: 60
//	      direct: false                # true: straight to the worker, not through the router
//	      input_schema: {type: object, required: [text], properties: {text: {type: string}}}
//	      output_schema: schemas/summary.json
//	    - config: configs/workers/classifier.yaml   # a Python worker config
//	      name: classify_document
//	  pipelines:
//	    - pipeline: rag_pipeline
//	      name: ingest_document
//	      description: Ingest a document
//	      instruction: Ingest the document
//	      timeout_seconds: 300
//	      context_schema: {type: object, required: [source_path], properties: {source_path: {type: string}}}
//	    - config: configs/orchestrators/doc_pipeline.yaml   # a Python pipeline config
//
// A schema is inline (JSON Schema written as YAML) or the path of a JSON
// Schema file. A worker's config key names a Python worker config file,
// from which the gateway takes the worker type (name), description (or
// the first line of system_prompt), input_schema, output_schema,
// default_model_tier and timeout_seconds, unless the entry gives them. A
// pipeline's config key names a Python pipeline config file (see
// pipeline.LoadConfig), from which it takes the pipeline's name and
// timeout_seconds, and the context schema: every key of goal.context a
// stage maps is required, described as that stage's input schema
// describes the field it feeds.
//
// An unknown key is an error naming its line, so that a misspelt key
// does not silently change the gateway; so are the Python gateway's query,
// workshop, session and council tools and its resources, which a Go
// gateway does not serve. Every error matches heddle.ErrConfig.
func ParseConfig(data []byte) (Config, error) {
	return parseConfig(data, "")
}

// LoadConfig reads the file at path with ParseConfig. A relative path in
// it (a schema, a worker or pipeline config) is looked for in the file's
// directory, then in the working directory, where the Python gateway
// looks for it.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", heddle.ErrConfig, err)
	}
	cfg, err := parseConfig(data, filepath.Dir(path))
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func parseConfig(data []byte, dir string) (Config, error) {
	var doc configYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%w: mcp gateway config: %w", heddle.ErrConfig, err)
	}
	var p problems
	cfg := Config{
		Name:         doc.Name,
		Version:      doc.Version,
		Description:  doc.Description,
		NATSURL:      doc.NATSURL,
		Transport:    doc.Transport,
		Addr:         doc.Addr,
		DrainTimeout: seconds(&p, "drain_timeout_seconds", doc.DrainTimeoutSeconds),
	}
	for _, only := range []struct {
		field string
		v     any
	}{
		{"tools.queries", doc.Tools.Queries}, {"tools.workshop", doc.Tools.Workshop},
		{"tools.session", doc.Tools.Session}, {"tools.council", doc.Tools.Council}, {"resources", doc.Resources},
	} {
		if only.v != nil {
			p.add(only.field, "served by the Python gateway only; a Go gateway offers worker and pipeline tools: remove the section")
		}
	}
	for i, w := range doc.Tools.Workers {
		cfg.Workers = append(cfg.Workers, workerTool(&p, fmt.Sprintf("tools.workers[%d]", i), w, dir))
	}
	for i, pl := range doc.Tools.Pipelines {
		cfg.Pipelines = append(cfg.Pipelines, pipelineTool(&p, fmt.Sprintf("tools.pipelines[%d]", i), pl, dir))
	}
	_, err := cfg.buildWith(p)
	return cfg, err
}

// workerTool reads one tools.workers entry.
func workerTool(p *problems, at string, w workerYAML, dir string) WorkerTool {
	t := WorkerTool{
		Name:        w.Name,
		WorkerType:  w.WorkerType,
		Description: w.Description,
		Tier:        heddle.ModelTier(w.Tier),
		Timeout:     seconds(p, at+".timeout_seconds", w.TimeoutSeconds),
		Direct:      w.Direct,
	}
	inDoc, outDoc, inDir, outDir := w.InputSchema, w.OutputSchema, dir, dir
	if w.Config != "" {
		path := resolve(dir, w.Config)
		f, err := readWorkerFile(path)
		if err != nil {
			p.add(at+".config", "%v", err)
			return t
		}
		switch {
		case t.WorkerType == "":
			t.WorkerType = f.Name
		case f.Name != "" && f.Name != t.WorkerType:
			p.add(at+".worker_type", "%q differs from the name %q in %s; give one of them", t.WorkerType, f.Name, w.Config)
		}
		t.Description = cmp.Or(t.Description, f.Description, firstLine(f.SystemPrompt))
		if t.Tier == "" {
			t.Tier = heddle.ModelTier(f.DefaultModelTier)
		}
		if t.Timeout == 0 {
			t.Timeout = seconds(p, at+".config: timeout_seconds", f.TimeoutSeconds)
		}
		fileDir := filepath.Dir(path)
		if inDoc == nil {
			inDoc, inDir = f.InputSchema, fileDir
		}
		if outDoc == nil {
			outDoc, outDir = f.OutputSchema, fileDir
		}
	}
	in, err := schema(inDoc, inDir)
	if err != nil {
		p.add(at+".input_schema", "%v", err)
	}
	out, err := schema(outDoc, outDir)
	if err != nil {
		p.add(at+".output_schema", "%v", err)
	}
	if in != nil || out != nil {
		t.Contract = contracts.New(in, out)
	}
	return t
}

// pipelineTool reads one tools.pipelines entry.
func pipelineTool(p *problems, at string, pl pipelineYAML, dir string) PipelineTool {
	t := PipelineTool{
		Name:        pl.Name,
		Pipeline:    pl.Pipeline,
		Description: pl.Description,
		Instruction: pl.Instruction,
		Timeout:     seconds(p, at+".timeout_seconds", pl.TimeoutSeconds),
	}
	ctxSchema, err := schema(pl.ContextSchema, dir)
	if err != nil {
		p.add(at+".context_schema", "%v", err)
	}
	t.Context = ctxSchema
	if pl.Config == "" {
		return t
	}
	pc, err := pipeline.LoadConfig(resolve(dir, pl.Config))
	if err != nil {
		p.add(at+".config", "%v", err)
		return t
	}
	switch {
	case t.Pipeline == "":
		t.Pipeline = pc.Name
	case t.Pipeline != pc.Name:
		p.add(at+".pipeline", "%q differs from the name %q in %s; give one of them", t.Pipeline, pc.Name, pl.Config)
	}
	if t.Timeout == 0 {
		t.Timeout = pc.Timeout
	}
	if pl.ContextSchema == nil {
		if t.Context, err = contextSchema(pc); err != nil {
			p.add(at+".config", "deriving the context schema from %s: %v", pl.Config, err)
		}
	}
	return t
}

// contextSchema derives the schema of a pipeline's goal context from its
// stages' input mappings: each key of goal.context a stage reads is
// required, with the schema the stage's input schema gives the field it
// feeds, or any value. Nil when no stage reads a key of the context.
func contextSchema(pc pipeline.Config) (*contracts.Schema, error) {
	const prefix = pipeline.GoalRoot + ".context."
	props := map[string]any{}
	for _, st := range pc.Stages {
		var stageProps map[string]any
		if in := st.Contract.Input(); in != nil {
			var doc map[string]any
			if json.Unmarshal(in.Document(), &doc) == nil {
				stageProps, _ = doc["properties"].(map[string]any)
			}
		}
		for field, path := range st.InputMapping {
			rest, ok := strings.CutPrefix(path, prefix)
			if !ok {
				continue
			}
			key, deeper := rest, false
			if i := strings.IndexByte(rest, '.'); i >= 0 {
				key, deeper = rest[:i], true
			}
			prop := map[string]any{}
			if deeper {
				prop = map[string]any{"type": "object"}
			} else if sp, ok := stageProps[field].(map[string]any); ok && !holdsRef(sp) {
				prop = sp
			}
			if prev, ok := props[key].(map[string]any); !ok || len(prev) == 0 {
				props[key] = prop
			}
		}
	}
	if len(props) == 0 {
		return nil, nil
	}
	required := make([]string, 0, len(props))
	for k := range props {
		required = append(required, k)
	}
	slices.Sort(required)
	doc, err := json.Marshal(map[string]any{"type": "object", "required": required, "properties": props})
	if err != nil {
		return nil, err
	}
	return contracts.NewSchema(doc)
}

// holdsRef reports whether a schema fragment refers elsewhere ($ref),
// which would not resolve once lifted out of its document.
func holdsRef(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "$ref" || k == "$dynamicRef" || holdsRef(e) {
				return true
			}
		}
	case []any:
		return slices.ContainsFunc(x, holdsRef)
	}
	return false
}

// readWorkerFile reads what the gateway needs of a Python worker config.
func readWorkerFile(path string) (workerFileYAML, error) {
	var f workerFileYAML
	data, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// resolve finds a relative path of a config in dir, the config file's
// directory, or else in the working directory.
func resolve(dir, path string) string {
	if dir == "" || filepath.IsAbs(path) {
		return path
	}
	in := filepath.Join(dir, path)
	if _, err := os.Stat(in); err == nil {
		return in
	}
	if _, err := os.Stat(path); err == nil {
		return path
	}
	return in
}

// schema compiles an inline schema (a mapping or a boolean) or the schema
// file at a path.
func schema(v any, dir string) (*contracts.Schema, error) {
	switch s := v.(type) {
	case nil:
		return nil, nil
	case string:
		if s == "" {
			return nil, nil
		}
		return contracts.SchemaFromFile(resolve(dir, s))
	case map[string]any, bool:
		doc, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("cannot be written as JSON Schema: %w", err)
		}
		return contracts.NewSchema(doc)
	}
	return nil, fmt.Errorf("must be a JSON Schema (a mapping) or the path of a schema file, got %T", v)
}

// seconds converts a *_seconds value; a value that is not a usable
// duration is reported and read as 0.
func seconds(p *problems, field string, s float64) time.Duration {
	if math.IsNaN(s) || math.IsInf(s, 0) || math.Abs(s) > math.MaxInt64/float64(time.Second) {
		p.add(field, "%v is not a usable number of seconds", s)
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// firstLine returns the first non-blank line of text, trimmed.
func firstLine(text string) string {
	for line := range strings.Lines(text) {
		if l := strings.TrimSpace(line); l != "" {
			return l
		}
	}
	return ""
}
