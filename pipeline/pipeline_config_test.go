package pipeline_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/pipeline"
)

// pipelineExtractOut is the output type of the "extract" stage in the
// config tests; its schema is generated, so it reaches the properties
// through $ref and $defs.
type pipelineExtractOut struct {
	Text string                 `json:"text"`
	Meta pipelineExtractOutMeta `json:"meta"`
}

type pipelineExtractOutMeta struct {
	Pages int `json:"pages"`
}

func pipelineContract(t *testing.T, input, output string) *contracts.Contract {
	t.Helper()
	var in, out []byte
	if input != "" {
		in = []byte(input)
	}
	if output != "" {
		out = []byte(output)
	}
	c, err := contracts.FromJSON(in, out)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pipelineDocsConfig is a valid pipeline: extract -> (summarize,
// classify) -> report.
func pipelineDocsConfig(t *testing.T) pipeline.Config {
	t.Helper()
	extract, err := contracts.For[map[string]any, pipelineExtractOut]()
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Config{
		Name: "docs",
		Stages: []pipeline.Stage{
			{Name: "report", WorkerType: "reporter", InputMapping: map[string]string{
				"summary": "summarize.output.summary", "kind": "classify.output.kind",
			}},
			{Name: "summarize", WorkerType: "summarizer", InputMapping: map[string]string{"text": "extract.output.text"}},
			{Name: "classify", WorkerType: "classifier", InputMapping: map[string]string{
				"text": "extract.output.text", "pages": "extract.output.meta.pages",
			}},
			{Name: "extract", WorkerType: "extractor", Contract: extract, InputMapping: map[string]string{
				"file_ref": "goal.context.file_ref", "instruction": "goal.instruction",
			}},
		},
	}
}

func TestPipelineConfigErrorsNameTheStageAndField(t *testing.T) {
	tests := []struct {
		name   string
		change func(cfg *pipeline.Config)
		stage  string
		field  string
		want   string
	}{
		{
			name:   "a mapping naming a missing stage",
			change: func(cfg *pipeline.Config) { cfg.Stages[1].InputMapping["text"] = "extrat.output.text" },
			stage:  "summarize", field: "input_mapping.text",
			want: `stage "summarize": input_mapping.text: path "extrat.output.text": unknown stage "extrat" (paths start with goal or a stage name: classify, extract, report, summarize)`,
		},
		{
			name:   "a mapping reading the stage's own output",
			change: func(cfg *pipeline.Config) { cfg.Stages[1].InputMapping["text"] = "summarize.output.text" },
			stage:  "summarize", field: "input_mapping.text", want: "refers to the stage's own output",
		},
		{
			name: "a dependency cycle, named in execution order",
			change: func(cfg *pipeline.Config) {
				cfg.Stages[3].InputMapping["hint"] = "report.output.hint"
			},
			field: "pipeline_stages",
			want:  "dependency cycle: classify -> report -> extract -> classify",
		},
		{
			name:   "a field the referenced stage's output schema does not declare",
			change: func(cfg *pipeline.Config) { cfg.Stages[1].InputMapping["text"] = "extract.output.txt" },
			stage:  "summarize", field: "input_mapping.text",
			want: `stage "extract" output has no field "txt" (its output_schema declares: meta, text)`,
		},
		{
			name:   "a nested field the output schema does not declare",
			change: func(cfg *pipeline.Config) { cfg.Stages[2].InputMapping["pages"] = "extract.output.meta.page" },
			stage:  "classify", field: "input_mapping.pages",
			want: `has no field "meta.page" (its output_schema declares: pages)`,
		},
		{
			name:   "a field below a string in the output schema",
			change: func(cfg *pipeline.Config) { cfg.Stages[1].InputMapping["text"] = "extract.output.text.first" },
			stage:  "summarize", field: "input_mapping.text",
			want: `field "text" is of type string; it has no field "first"`,
		},
		{
			name:   "a condition that does not parse",
			change: func(cfg *pipeline.Config) { cfg.Stages[0].Condition = "classify.output.pages > 3" },
			stage:  "report", field: "condition", want: "write <path> == <value> or <path> != <value>",
		},
		{
			name:   "a condition naming a missing stage",
			change: func(cfg *pipeline.Config) { cfg.Stages[0].Condition = "clasify.output.kind == invoice" },
			stage:  "report", field: "condition", want: `unknown stage "clasify"`,
		},
		{
			name:   "duplicate stage names",
			change: func(cfg *pipeline.Config) { cfg.Stages[2].Name = "summarize" },
			stage:  "summarize", field: "name", want: "duplicate stage name",
		},
		{
			name:   "a stage named goal",
			change: func(cfg *pipeline.Config) { cfg.Stages[0].Name = "goal" },
			stage:  "goal", field: "name", want: "reserved",
		},
		{
			name:   "a stage name starting with an underscore",
			change: func(cfg *pipeline.Config) { cfg.Stages[0].Name = "_report" },
			stage:  "_report", field: "name", want: "not starting with '_'",
		},
		{
			name:   "a stage without a name, named by its position",
			change: func(cfg *pipeline.Config) { cfg.Stages[0].Name = "" },
			stage:  "#1", field: "name", want: "required",
		},
		{
			name:   "a stage without a worker_type",
			change: func(cfg *pipeline.Config) { cfg.Stages[0].WorkerType = "" },
			stage:  "report", field: "worker_type", want: "required",
		},
		{
			name:   "a worker_type that cannot be a subject token",
			change: func(cfg *pipeline.Config) { cfg.Stages[0].WorkerType = "my reporter" },
			stage:  "report", field: "worker_type", want: "cannot be used in a subject",
		},
		{
			name:   "an unknown tier",
			change: func(cfg *pipeline.Config) { cfg.Stages[0].Tier = "huge" },
			stage:  "report", field: "tier", want: `"huge" is not one of local, standard, frontier`,
		},
		{
			name:   "a path into the goal other than instruction or context",
			change: func(cfg *pipeline.Config) { cfg.Stages[3].InputMapping["file_ref"] = "goal.goal_id" },
			stage:  "extract", field: "input_mapping.file_ref", want: `the goal has no "goal_id"`,
		},
		{
			name:   "a path into a stage's result other than its output",
			change: func(cfg *pipeline.Config) { cfg.Stages[1].InputMapping["text"] = "extract.text" },
			stage:  "summarize", field: "input_mapping.text", want: "read as extract.output[.<field>...]",
		},
		{
			name:   "an empty mapping path",
			change: func(cfg *pipeline.Config) { cfg.Stages[1].InputMapping["text"] = "" },
			stage:  "summarize", field: "input_mapping.text", want: "empty path",
		},
		{
			name:   "depends_on an unknown stage",
			change: func(cfg *pipeline.Config) { cfg.Stages[0].DependsOn = []string{"audit"} },
			stage:  "report", field: "depends_on", want: `unknown stage "audit"`,
		},
		{
			name:   "depends_on the stage itself",
			change: func(cfg *pipeline.Config) { cfg.Stages[0].DependsOn = []string{"report"} },
			stage:  "report", field: "depends_on", want: "depends on itself",
		},
		{
			name: "an input the stage's input_schema requires and no mapping provides",
			change: func(cfg *pipeline.Config) {
				cfg.Stages[1].Contract = pipelineContract(t, `{"type":"object","required":["text","language"]}`, "")
			},
			stage: "summarize", field: "input_mapping", want: `lacks "language", which the stage's input_schema requires`,
		},
		{
			name:   "a negative stage timeout",
			change: func(cfg *pipeline.Config) { cfg.Stages[0].Timeout = -time.Second },
			stage:  "report", field: "timeout_seconds", want: "must not be negative",
		},
		{
			name:   "a pipeline without a name",
			change: func(cfg *pipeline.Config) { cfg.Name = "" },
			field:  "name", want: "required",
		},
		{
			name:   "a pipeline without stages",
			change: func(cfg *pipeline.Config) { cfg.Stages = nil },
			field:  "pipeline_stages", want: "at least one stage is required",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := pipelineDocsConfig(t)
			tt.change(&cfg)
			_, err := pipeline.New(nil, cfg)
			var pe *pipeline.ConfigError
			if !errors.As(err, &pe) || !errors.Is(err, heddle.ErrConfig) {
				t.Fatalf("New error %v, want a *ConfigError", err)
			}
			if !pe.Has(tt.stage, tt.field) {
				t.Errorf("problems %v do not concern stage %q, field %q", pe.Problems, tt.stage, tt.field)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !errors.Is(cfg.Validate(), heddle.ErrConfig) {
				t.Errorf("Validate accepts what New rejects")
			}
		})
	}
}

func TestPipelineConfigErrorListsEveryProblemAtOnce(t *testing.T) {
	cfg := pipelineDocsConfig(t)
	cfg.Stages[0].Tier = "huge"
	cfg.Stages[1].InputMapping["text"] = "extrat.output.text"
	cfg.Stages[2].WorkerType = ""
	err := cfg.Validate()
	var pe *pipeline.ConfigError
	if !errors.As(err, &pe) {
		t.Fatalf("Validate = %v, want a *ConfigError", err)
	}
	want := []pipeline.Problem{
		{Stage: "report", Field: "tier"},
		{Stage: "summarize", Field: "input_mapping.text"},
		{Stage: "classify", Field: "worker_type"},
	}
	if len(pe.Problems) != len(want) {
		t.Fatalf("problems %v, want %d", pe.Problems, len(want))
	}
	for i, w := range want {
		if pe.Problems[i].Stage != w.Stage || pe.Problems[i].Field != w.Field {
			t.Errorf("problem %d = %v, want stage %q field %q", i, pe.Problems[i], w.Stage, w.Field)
		}
	}
	if !strings.HasPrefix(err.Error(), `heddle: invalid pipeline "docs": stage "report": tier: `) {
		t.Errorf("error text %q", err)
	}
}

func TestPipelineLevelsGroupIndependentStages(t *testing.T) {
	tests := []struct {
		name   string
		stages []pipeline.Stage
		want   [][]string
	}{
		{
			name: "a diamond runs its two middle stages in one level",
			stages: []pipeline.Stage{
				{Name: "D", WorkerType: "w", InputMapping: map[string]string{"b": "B.output", "c": "C.output.x"}},
				{Name: "C", WorkerType: "w", InputMapping: map[string]string{"a": "A.output.x"}},
				{Name: "B", WorkerType: "w", InputMapping: map[string]string{"a": "A.output.x"}},
				{Name: "A", WorkerType: "w", InputMapping: map[string]string{"f": "goal.context.f"}},
			},
			want: [][]string{{"A"}, {"B", "C"}, {"D"}},
		},
		{
			name: "stages reading only the goal all run in the first level",
			stages: []pipeline.Stage{
				{Name: "z", WorkerType: "w", InputMapping: map[string]string{"i": "goal.instruction"}},
				{Name: "y", WorkerType: "w"},
				{Name: "x", WorkerType: "w", InputMapping: map[string]string{"c": "goal.context"}},
			},
			want: [][]string{{"x", "y", "z"}},
		},
		{
			name: "a condition path and depends_on add dependencies",
			stages: []pipeline.Stage{
				{Name: "a", WorkerType: "w"},
				{Name: "b", WorkerType: "w", Condition: "a.output.ok == true"},
				{Name: "c", WorkerType: "w", DependsOn: []string{"b"}},
			},
			want: [][]string{{"a"}, {"b"}, {"c"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := pipeline.New(nil, pipeline.Config{Name: "levels", Stages: tt.stages})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Levels(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Levels = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPipelineFieldsOfAStageWithoutOutputSchemaAreCheckedOnlyAtRunTime(t *testing.T) {
	cfg := pipelineDocsConfig(t)
	cfg.Stages[0].InputMapping["summary"] = "summarize.output.anything.below"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate = %v; a stage without output schema cannot be checked", err)
	}
}

const pipelineYAMLDoc = `
name: docs
description: a document pipeline
timeout_seconds: 120
max_concurrent_goals: 4
dispatch_direct: true
pipeline_stages:
  - name: extract
    worker_type: extractor
    tier: local
    input_mapping:
      file_ref: goal.context.file_ref
    output_schema:
      type: object
      properties:
        text: {type: string}
      required: [text]
  - name: summarize
    worker_type: summarizer
    tier: frontier
    input_mapping:
      text: extract.output.text
    condition: 'extract.output.text != null'
    depends_on: [extract]
    timeout_seconds: 2.5
    max_retries: 1
    continue_on_error: true
    input_schema: summarize_in.json
`

func TestParsePipelineConfigReadsThePythonShape(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "summarize_in.json"),
		[]byte(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "docs.yaml")
	if err := os.WriteFile(path, []byte(pipelineYAMLDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipeline.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "docs" || cfg.Timeout != 120*time.Second || cfg.MaxConcurrentGoals != 4 || !cfg.Direct {
		t.Errorf("pipeline fields: %+v", cfg)
	}
	if len(cfg.Stages) != 2 {
		t.Fatalf("stages: %+v", cfg.Stages)
	}
	ex, sum := cfg.Stages[0], cfg.Stages[1]
	if ex.Name != "extract" || ex.WorkerType != "extractor" || ex.Tier != heddle.TierLocal ||
		ex.InputMapping["file_ref"] != "goal.context.file_ref" || ex.Contract.Output() == nil || ex.Contract.Input() != nil {
		t.Errorf("extract stage: %+v", ex)
	}
	if sum.Tier != heddle.TierFrontier || sum.Condition != "extract.output.text != null" ||
		!reflect.DeepEqual(sum.DependsOn, []string{"extract"}) || sum.Timeout != 2500*time.Millisecond ||
		sum.MaxRetries != 1 || !sum.ContinueOnError || sum.Contract.Input() == nil {
		t.Errorf("summarize stage: %+v", sum)
	}
	if err := sum.Contract.ValidateInput(map[string]any{"text": 3}); !errors.Is(err, contracts.ErrViolation) {
		t.Errorf("input schema from the file does not check text: %v", err)
	}
	if err := ex.Contract.ValidateOutput(map[string]any{}); !errors.Is(err, contracts.ErrViolation) {
		t.Errorf("inline output schema does not require text: %v", err)
	}
}

func TestParsePipelineConfigRejectsWhatItCannotUse(t *testing.T) {
	tests := []struct {
		name, doc, want string
		stage, field    string
	}{
		{
			name: "a misspelt key, by line",
			doc:  "name: p\npipeline_stages:\n  - name: a\n    worker_type: w\n    input_maping: {x: goal.instruction}\n",
			want: "line 5: field input_maping not found",
		},
		{
			name: "a document that is not YAML",
			doc:  "name: [unclosed\n",
			want: "invalid config",
		},
		{
			name: "an inline schema that is not a valid JSON Schema",
			doc:  "name: p\npipeline_stages:\n  - name: a\n    worker_type: w\n    output_schema: {type: 3}\n",
			want: "invalid schema", stage: "a", field: "output_schema",
		},
		{
			name: "a schema file that does not exist",
			doc:  "name: p\npipeline_stages:\n  - name: a\n    worker_type: w\n    input_schema: /nonexistent/in.json\n",
			want: "in.json", stage: "a", field: "input_schema",
		},
		{
			name: "a mapping naming a missing stage",
			doc:  "name: p\npipeline_stages:\n  - name: a\n    worker_type: w\n    input_mapping: {x: b.output.y}\n",
			want: `unknown stage "b"`, stage: "a", field: "input_mapping.x",
		},
		{
			name: "a negative timeout",
			doc:  "name: p\ntimeout_seconds: -1\npipeline_stages:\n  - name: a\n    worker_type: w\n",
			want: "must not be negative", field: "timeout_seconds",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pipeline.ParseConfig([]byte(tt.doc))
			if !errors.Is(err, heddle.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want heddle.ErrConfig containing %q", err, tt.want)
			}
			if tt.field == "" {
				return
			}
			var pe *pipeline.ConfigError
			if !errors.As(err, &pe) || !pe.Has(tt.stage, tt.field) {
				t.Fatalf("error %v does not name stage %q field %q", err, tt.stage, tt.field)
			}
		})
	}
}
