package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracts"
)

// yAML is the Python Heddle's pipeline config file shape.
type yAML struct {
	Name               string      `yaml:"name"`
	Description        string      `yaml:"description"`
	TimeoutSeconds     float64     `yaml:"timeout_seconds"`
	MaxConcurrentGoals int         `yaml:"max_concurrent_goals"`
	QueueGroup         string      `yaml:"queue_group"`
	DispatchDirect     bool        `yaml:"dispatch_direct"`
	Stages             []stageYAML `yaml:"pipeline_stages"`
}

type stageYAML struct {
	Name            string            `yaml:"name"`
	Description     string            `yaml:"description"`
	WorkerType      string            `yaml:"worker_type"`
	Tier            string            `yaml:"tier"`
	InputMapping    map[string]string `yaml:"input_mapping"`
	Condition       string            `yaml:"condition"`
	DependsOn       []string          `yaml:"depends_on"`
	TimeoutSeconds  float64           `yaml:"timeout_seconds"`
	MaxRetries      int               `yaml:"max_retries"`
	InputSchema     any               `yaml:"input_schema"`
	OutputSchema    any               `yaml:"output_schema"`
	ContinueOnError bool              `yaml:"continue_on_error"`
}

// ParseConfig reads a pipeline definition in the Python Heddle's
// YAML shape and validates it as New does:
//
//	name: docs
//	timeout_seconds: 120          # a stage's default timeout
//	max_concurrent_goals: 4
//	pipeline_stages:
//	  - name: extract
//	    worker_type: extractor
//	    tier: local
//	    input_mapping: {file_ref: goal.context.file_ref}
//	    output_schema: {type: object, properties: {text: {type: string}}}
//	  - name: summarize
//	    worker_type: summarizer
//	    input_mapping: {text: extract.output.text}
//	    condition: extract.output.text != null
//	    timeout_seconds: 30
//
// Stage keys: name, worker_type, tier, input_mapping, condition,
// depends_on, timeout_seconds, max_retries, input_schema, output_schema,
// continue_on_error, description. Pipeline keys: name, timeout_seconds,
// max_concurrent_goals, pipeline_stages, queue_group, dispatch_direct,
// description. An unknown key is an error naming its line, so a misspelt
// key does not silently change the pipeline. A schema is either inline (a
// JSON Schema written as YAML) or the path of a JSON Schema file, relative
// to the working directory (LoadConfig resolves it relative to
// the config file).
//
// A document that is not valid YAML of that shape returns an error
// wrapping heddle.ErrConfig; a definition that does not validate returns
// a *ConfigError listing every problem.
func ParseConfig(data []byte) (Config, error) {
	return parseYAML(data, "")
}

// LoadConfig reads the file at path with ParseConfig;
// schema file paths in it are relative to the file's directory.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", heddle.ErrConfig, err)
	}
	cfg, err := parseYAML(data, filepath.Dir(path))
	if err != nil {
		var pe *ConfigError
		if !errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", path, err)
		}
	}
	return cfg, err
}

func parseYAML(data []byte, dir string) (Config, error) {
	var doc yAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%w: %w", heddle.ErrConfig, err)
	}
	c := checker{}
	cfg := Config{
		Name:               doc.Name,
		Timeout:            pipelineSeconds(&c, "", doc.TimeoutSeconds),
		MaxConcurrentGoals: doc.MaxConcurrentGoals,
		QueueGroup:         doc.QueueGroup,
		Direct:             doc.DispatchDirect,
	}
	for i, sy := range doc.Stages {
		label := sy.Name
		if label == "" {
			label = fmt.Sprintf("#%d", i+1)
		}
		s := Stage{
			Name:            sy.Name,
			WorkerType:      sy.WorkerType,
			Tier:            heddle.ModelTier(sy.Tier),
			InputMapping:    sy.InputMapping,
			Condition:       sy.Condition,
			DependsOn:       sy.DependsOn,
			Timeout:         pipelineSeconds(&c, label, sy.TimeoutSeconds),
			MaxRetries:      sy.MaxRetries,
			ContinueOnError: sy.ContinueOnError,
		}
		in, inErr := yAMLSchema(sy.InputSchema, dir)
		if inErr != nil {
			c.add(label, "input_schema", "%v", inErr)
		}
		out, outErr := yAMLSchema(sy.OutputSchema, dir)
		if outErr != nil {
			c.add(label, "output_schema", "%v", outErr)
		}
		if in != nil || out != nil {
			s.Contract = contracts.New(in, out)
		}
		cfg.Stages = append(cfg.Stages, s)
	}
	if err := cfg.Validate(); err != nil {
		var pe *ConfigError
		if errors.As(err, &pe) {
			c.problems = append(c.problems, pe.Problems...)
		}
	}
	if len(c.problems) > 0 {
		return cfg, &ConfigError{Pipeline: cfg.Name, Problems: c.problems}
	}
	return cfg, nil
}

// pipelineSeconds converts timeout_seconds; a negative or non-finite value
// is reported and kept negative so Validate reports nothing more.
func pipelineSeconds(c *checker, stage string, s float64) time.Duration {
	if math.IsNaN(s) || math.Abs(s) > math.MaxInt64/float64(time.Second) {
		c.add(stage, "timeout_seconds", "%v is not a usable number of seconds", s)
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// yAMLSchema compiles an input_schema or output_schema value: an
// inline schema (a mapping or a boolean) or a file path.
func yAMLSchema(v any, dir string) (*contracts.Schema, error) {
	switch s := v.(type) {
	case nil:
		return nil, nil
	case string:
		if s == "" {
			return nil, nil
		}
		if dir != "" && !filepath.IsAbs(s) {
			s = filepath.Join(dir, s)
		}
		return contracts.SchemaFromFile(s)
	case map[string]any, bool:
		doc, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("cannot be written as JSON Schema: %w", err)
		}
		return contracts.NewSchema(doc)
	}
	return nil, fmt.Errorf("must be a JSON Schema (a mapping) or the path of a schema file, got %T", v)
}
