package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/heddle-go/heddle/cmd/heddle/internal/pyproc"
	"github.com/heddle-go/heddle/pipeline"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/scheduler"
)

// Config kinds heddle validate knows.
const (
	kindRules     = "rules"
	kindPipeline  = "pipeline"
	kindProcessor = "processor"
	kindScheduler = "scheduler"
	kindMCP       = "mcp"
)

// validateKinds lists the kinds --kind takes.
var validateKinds = []string{kindRules, kindPipeline, kindProcessor, kindScheduler, kindMCP}

// finding is one problem (or warning) in a config file.
type finding struct {
	line    int
	field   string
	problem string
	warning bool
}

func (f finding) format(path string) string {
	var b strings.Builder
	b.WriteString(path)
	if f.line > 0 {
		b.WriteString(":" + strconv.Itoa(f.line))
	}
	b.WriteString(": ")
	if f.warning {
		b.WriteString("warning: ")
	}
	if f.field != "" {
		b.WriteString(f.field + ": ")
	}
	b.WriteString(f.problem)
	return b.String()
}

func (a *app) validateCommand() *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check config files without NATS: router rules, pipelines, processors, schedulers, MCP gateways",
		Long: `validate checks config files without connecting to anything, and prints
every problem of each file as FILE:LINE: FIELD: PROBLEM.

The kind of each file is told from its keys, as the Python heddle validate
does (or forced with --kind):

  pipeline_stages                          a pipeline (heddle pipeline --config)
  worker_kind, processing_backend          a processor (heddle processor --config)
  tier_overrides, rate_limits              router rules (heddle router --rules)
  schedules                                a scheduler (heddle scheduler --config)
  tools                                    an MCP gateway (heddle mcp --config)

A file is valid when heddle would run it as it is. Warnings (a rules key
the router ignores, ...) are printed but do not make a file invalid.

Exit codes: 0 every file is valid, 1 some file has a problem, 2 no file
given or a bad --kind.`,
		Example: `  heddle validate configs/router_rules.yaml configs/orchestrators/*.yaml configs/workers/*.yaml
  heddle validate --kind rules my_rules.yml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, files []string) error {
			if kind != "" && !slices.Contains(validateKinds, kind) {
				return fmt.Errorf("--kind %q: want one of %s", kind, strings.Join(validateKinds, ", "))
			}
			invalid := 0
			for _, path := range files {
				k, findings := validateFile(path, kind)
				slices.SortStableFunc(findings, func(x, y finding) int { return x.line - y.line })
				bad := slices.ContainsFunc(findings, func(f finding) bool { return !f.warning })
				mark := "✓"
				if bad {
					mark = "✗"
					invalid++
				}
				fmt.Fprintf(a.stdout, "%s [%s] %s\n", mark, k, path)
				for _, f := range findings {
					fmt.Fprintln(a.stdout, "    "+f.format(path))
				}
			}
			if invalid > 0 {
				fmt.Fprintf(a.stdout, "%d invalid, %d valid\n", invalid, len(files)-invalid)
				return reported{code: exitFailed}
			}
			fmt.Fprintf(a.stdout, "%d config(s) valid\n", len(files))
			return nil
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "", "the kind of every file: "+strings.Join(validateKinds, ", ")+" (default: told from its keys)")
	return cmd
}

// validateFile returns the kind of the file at path and its findings.
func validateFile(path, kind string) (string, []finding) {
	data, err := os.ReadFile(path)
	if err != nil {
		return unknownKind(kind), []finding{{problem: err.Error()}}
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return unknownKind(kind), []finding{{problem: "the file is empty"}}
		}
		line, msg := yamlErrorLine(err)
		return unknownKind(kind), []finding{{line: line, problem: "invalid YAML: " + msg}}
	}
	root := doc.Content[0]
	if kind == "" {
		kind = detectKind(root)
	}
	switch kind {
	case kindRules:
		return kind, validateRules(path)
	case kindPipeline:
		return kind, validatePipeline(path, root)
	case kindProcessor:
		return kind, validateProcessor(path)
	case kindScheduler:
		return kind, validateScheduler(path)
	case kindMCP:
		return kind, validateMCP(path, root)
	}
	return "unknown", []finding{{line: root.Line, problem: "cannot tell the kind of config: no pipeline_stages (pipeline), worker_kind or processing_backend (processor), tier_overrides or rate_limits (router rules), schedules (scheduler), tools (MCP gateway); give --kind"}}
}

func unknownKind(kind string) string {
	if kind == "" {
		return "unknown"
	}
	return kind
}

// detectKind tells a config's kind from its top-level keys.
func detectKind(root *yaml.Node) string {
	if root.Kind != yaml.MappingNode {
		return ""
	}
	has := func(keys ...string) bool {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if slices.Contains(keys, root.Content[i].Value) {
				return true
			}
		}
		return false
	}
	switch {
	case has("pipeline_stages"):
		return kindPipeline
	case has("worker_kind", "processing_backend", "system_prompt", "backend_config"):
		return kindProcessor
	case has("tier_overrides", "rate_limits"):
		return kindRules
	case has("schedules"):
		return kindScheduler
	case has("tools"):
		return kindMCP
	}
	return ""
}

var lineSuffix = regexp.MustCompile(`\s*\(line (\d+)\)`)

func validateRules(path string) []finding {
	rules, err := router.LoadRules(path)
	var out []finding
	if err != nil {
		var re *router.RulesError
		if !errors.As(err, &re) {
			return []finding{{problem: err.Error()}}
		}
		for _, p := range re.Problems {
			line, msg := cutLine(p.Problem)
			out = append(out, finding{line: line, field: p.Field, problem: msg})
		}
		return out
	}
	for _, w := range rules.Warnings() {
		line, msg := cutLine(w)
		field, rest, ok := strings.Cut(msg, ": ")
		if !ok || strings.Contains(field, " ") {
			field, rest = "", msg
		}
		out = append(out, finding{line: line, field: field, problem: rest, warning: true})
	}
	return out
}

// cutLine removes a "(line N)" note from a message and returns N.
func cutLine(msg string) (int, string) {
	m := lineSuffix.FindStringSubmatchIndex(msg)
	if m == nil {
		return 0, msg
	}
	line, _ := strconv.Atoi(msg[m[2]:m[3]])
	return line, strings.TrimSpace(msg[:m[0]] + msg[m[1]:])
}

var yamlUnmarshalLine = regexp.MustCompile(`line (\d+): ([^\n]*)`)

func validatePipeline(path string, root *yaml.Node) []finding {
	_, err := pipeline.LoadConfig(path)
	if err == nil {
		return nil
	}
	var ce *pipeline.ConfigError
	if !errors.As(err, &ce) {
		// A document that does not fit the shape: yaml.v3 names each line.
		var out []finding
		for _, m := range yamlUnmarshalLine.FindAllStringSubmatch(err.Error(), -1) {
			line, _ := strconv.Atoi(m[1])
			out = append(out, finding{line: line, problem: m[2]})
		}
		if out == nil {
			out = []finding{{problem: strings.TrimPrefix(err.Error(), path+": ")}}
		}
		return out
	}
	out := make([]finding, 0, len(ce.Problems))
	for _, p := range ce.Problems {
		field := p.Field
		if p.Stage != "" {
			field = "pipeline_stages[" + p.Stage + "]." + p.Field
		}
		out = append(out, finding{line: pipelineLine(root, p.Stage, p.Field), field: field, problem: p.Problem})
	}
	return out
}

// pipelineLine finds the line of a pipeline problem: the field in its
// stage (named, or "#N" for the Nth), the stage, or the pipeline key.
func pipelineLine(root *yaml.Node, stage, field string) int {
	if root.Kind != yaml.MappingNode {
		return root.Line
	}
	path := strings.Split(field, ".")
	if stage == "" {
		if n := lookup(root, path); n != nil {
			return n.Line
		}
		return 0
	}
	stages := value(root, "pipeline_stages")
	if stages == nil || stages.Kind != yaml.SequenceNode {
		return 0
	}
	for i, s := range stages.Content {
		name := value(s, "name")
		if (name != nil && name.Value == stage) || stage == "#"+strconv.Itoa(i+1) {
			if n := lookup(s, path); n != nil {
				return n.Line
			}
			return s.Line
		}
	}
	return 0
}

// lookup follows path through mappings and returns the deepest key node
// found (its line is the field's).
func lookup(n *yaml.Node, path []string) *yaml.Node {
	var found *yaml.Node
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			break
		}
		k, v := keyValue(n, key)
		if k == nil {
			break
		}
		found, n = k, v
	}
	return found
}

func value(n *yaml.Node, key string) *yaml.Node {
	_, v := keyValue(n, key)
	return v
}

func keyValue(n *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

func validateProcessor(path string) []finding {
	cfg, err := pyproc.Load(path)
	if err == nil {
		var out []finding
		for _, k := range cfg.Ignored {
			out = append(out, finding{field: k, problem: "ignored: a processor worker does not use it", warning: true})
		}
		return out
	}
	var pe *pyproc.Error
	if !errors.As(err, &pe) {
		return []finding{{problem: err.Error()}}
	}
	out := make([]finding, 0, len(pe.Problems))
	for _, p := range pe.Problems {
		out = append(out, finding{line: p.Line, field: p.Field, problem: p.Problem})
	}
	return out
}

func validateScheduler(path string) []finding {
	_, err := scheduler.LoadConfig(path)
	if err == nil {
		return nil
	}
	var ce *scheduler.ConfigError
	if !errors.As(err, &ce) {
		return []finding{{problem: err.Error()}}
	}
	out := make([]finding, 0, len(ce.Problems))
	for _, p := range ce.Problems {
		line, msg := cutLine(p.Problem)
		out = append(out, finding{line: line, field: p.Field, problem: msg})
	}
	return out
}
