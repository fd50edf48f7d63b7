// Package pyproc reads the Python Heddle's processor worker config (a
// worker_kind: processor file whose processing_backend is the subprocess
// backend, heddle.contrib.subprocess.SubprocessBackend) and runs the
// command it describes the way that backend does, so that one file runs a
// worker under either runtime.
//
// Every key the Python Heddle documents for such a file is read. A key this
// runtime cannot honour (a Pydantic schema reference, knowledge silos, an
// LLM worker's system_prompt, a processing backend other than the
// subprocess one) is refused with a Problem naming the key and its line,
// rather than ignored, so a config never silently runs differently here.
package pyproc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracts"
)

// SubprocessBackend is the processing_backend value of the Python Heddle's
// subprocess backend, the only backend this package runs.
const SubprocessBackend = "heddle.contrib.subprocess.SubprocessBackend"

// DefaultSubprocessTimeout is the subprocess backend's subprocess_timeout
// when the file gives none, as in the Python Heddle.
const DefaultSubprocessTimeout = 30 * time.Second

// The io_mode values of the subprocess backend.
const (
	ModeJSONStdio   = "json_stdio"   // the payload as JSON on stdin, a JSON object on stdout
	ModeStdinStdout = "stdin_stdout" // one payload field on stdin, stdout in one output field
	ModeArgsStdout  = "args_stdout"  // payload fields as arguments, stdout in one output field
	ModeFileFile    = "file_file"    // one payload field in a temporary file, the output file read back
)

// ioModes lists the io_mode values, in the order error messages name them.
var ioModes = []string{ModeArgsStdout, ModeFileFile, ModeJSONStdio, ModeStdinStdout}

// parseModes lists output_mapping.parse values of stdin_stdout and
// args_stdout.
var parseModes = []string{"raw", "strip", "int", "float", "lines", "json"}

// shellMeta matches the characters the Python backend refuses in a command,
// since it never runs a shell and such a character means the author
// expected one.
var shellMeta = regexp.MustCompile("[;|&$`\\\\!#~<>{}()]")

// Config is a processor worker config in the Python Heddle's shape.
type Config struct {
	// Name is the worker type (name).
	Name string
	// Tier is default_model_tier; empty when the file gives none.
	Tier heddle.ModelTier
	// Timeout is timeout_seconds, the bound of one task; zero when the file
	// gives none.
	Timeout time.Duration
	// Backend is backend_config.
	Backend Backend
	// InputSchema and OutputSchema are the JSON forms of input_schema and
	// output_schema; nil when absent.
	InputSchema, OutputSchema []byte
	// Ignored lists keys read and deliberately unused, as the Python
	// processor does not use them either (max_input_tokens, ...).
	Ignored []string
}

// Backend is the subprocess backend's backend_config.
type Backend struct {
	// Command is the program and its arguments (command).
	Command []string
	// IOMode is io_mode; ModeJSONStdio when absent.
	IOMode string
	// Timeout is subprocess_timeout; DefaultSubprocessTimeout when absent.
	Timeout time.Duration
	// Fields is input_mapping.fields of json_stdio: the payload keys sent,
	// nil for "all".
	Fields []string
	// Target and ExtractKey are output_mapping.target ("root" when absent)
	// and output_mapping.extract_key of json_stdio.
	Target, ExtractKey string
	// StdinField is input_mapping.stdin_field of stdin_stdout ("input").
	StdinField string
	// StdoutField and Parse are output_mapping.stdout_field ("output")
	// and output_mapping.parse ("raw") of stdin_stdout and args_stdout.
	StdoutField, Parse string
	// Positional and Flags are input_mapping.positional and
	// input_mapping.flags of args_stdout.
	Positional []string
	Flags      []Flag
	// ContentField, InputExtension, OutputExtension and ArgsTemplate are
	// the input_mapping of file_file ("content", ".tmp", ".out",
	// ["{input}"]); OutputField and ReadMode its output_mapping
	// ("content", "text").
	ContentField, InputExtension, OutputExtension string
	ArgsTemplate                                  []string
	OutputField, ReadMode                         string
	// Env is env, in file order; a value "${payload.field}" takes the
	// task's field at run time.
	Env []EnvVar
	// WorkingDir is working_dir.
	WorkingDir string
	// AllowedCommands is allowed_commands; nil means any.
	AllowedCommands []string
	// ModelUsed is model_used, the result's model_used; the program name
	// when absent.
	ModelUsed string
}

// Flag is one entry of args_stdout's input_mapping.flags.
type Flag struct {
	Flag, Field string
	IsBoolean   bool
}

// EnvVar is one entry of backend_config.env.
type EnvVar struct {
	Name, Value string
}

// Problem is one problem found in a config file.
type Problem struct {
	// Line is the line of the key at fault; 0 when unknown.
	Line int
	// Field is the dotted path of the key (backend_config.io_mode);
	// empty for the whole document.
	Field string
	// Problem says what is wrong and, where it can, what would be right.
	Problem string
}

// String formats p as "line 7: backend_config.io_mode: ...".
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Problem)
	return b.String()
}

// Error lists every problem of one config file. It matches heddle.ErrConfig.
type Error struct {
	// File is the config file; empty for a config parsed from bytes.
	File     string
	Problems []Problem
}

// Error names the file and every problem, one per line after the first.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid processor config")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Is reports whether target is heddle.ErrConfig.
func (e *Error) Is(target error) bool { return target == heddle.ErrConfig }

// Load reads the config file at path; see Parse.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", heddle.ErrConfig, err)
	}
	cfg, err := Parse(data)
	var pe *Error
	if errors.As(err, &pe) {
		pe.File = path
	}
	return cfg, err
}

// Parse reads a processor worker config. Every problem found is returned
// in one *Error; a config with problems is not usable.
func Parse(data []byte) (Config, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, &Error{Problems: []Problem{{Problem: "the file is empty; a processor config is a YAML mapping"}}}
		}
		return Config{}, &Error{Problems: []Problem{yamlProblem(err)}}
	}
	p := &parser{}
	cfg := p.config(doc.Content[0])
	if len(p.problems) > 0 {
		return Config{}, &Error{Problems: p.problems}
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlProblem turns a YAML syntax error into a Problem with its line.
func yamlProblem(err error) Problem {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Problem: "invalid YAML: " + msg[len(m[0]):]}
	}
	return Problem{Problem: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

type parser struct {
	problems []Problem
}

func (p *parser) add(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.problems = append(p.problems, Problem{Line: line, Field: field, Problem: fmt.Sprintf(format, args...)})
}

// refused top-level keys: the Python Heddle knows them, this runtime does
// not do what they ask.
var refused = map[string]string{
	"input_schema_ref":  "a Pydantic model reference cannot be resolved outside Python; write the schema inline as input_schema",
	"output_schema_ref": "a Pydantic model reference cannot be resolved outside Python; write the schema inline as output_schema",
	"system_prompt":     "is an LLM worker's key; heddle processor runs processor workers only",
	"knowledge_silos":   "is not supported by heddle processor",
	"knowledge_sources": "is not supported by heddle processor",
	"resolve_file_refs": "is not supported by heddle processor",
	"workspace_dir":     "is not supported by heddle processor",
}

// ignored top-level keys: a Python processor worker reads them and does
// nothing with them, and neither do we.
var ignored = []string{"max_input_tokens", "max_output_tokens"}

func (p *parser) config(root *yaml.Node) Config {
	var cfg Config
	if root.Kind != yaml.MappingNode {
		p.add(root, "", "the document is a YAML %s; a processor config is a mapping", kindName(root))
		return cfg
	}
	keys := p.mapping(root, "")
	if n, ok := keys["name"]; ok {
		cfg.Name = p.str(n, "name")
		if cfg.Name != "" {
			if err := heddle.ValidateWorkerType(cfg.Name); err != nil {
				p.add(n, "name", "%v", err)
			}
		}
	} else {
		p.add(root, "name", "missing: the worker type this processor serves")
	}
	kind := "llm"
	if n, ok := keys["worker_kind"]; ok {
		kind = p.str(n, "worker_kind")
	}
	if kind != "processor" {
		n := keys["worker_kind"]
		if n == nil {
			n = root
		}
		p.add(n, "worker_kind", "must be processor (got %q); heddle processor runs processor workers only", kind)
	}
	if n, ok := keys["processing_backend"]; !ok {
		p.add(root, "processing_backend", "missing: give %s", SubprocessBackend)
	} else if b := p.str(n, "processing_backend"); b != "" && b != SubprocessBackend {
		p.add(n, "processing_backend", "%q is not supported: heddle processor runs %s only", b, SubprocessBackend)
	}
	if n, ok := keys["backend_config"]; ok {
		cfg.Backend = p.backend(n)
	} else {
		p.add(root, "backend_config", "missing: the subprocess backend needs at least backend_config.command")
	}
	if n, ok := keys["default_model_tier"]; ok {
		t := p.str(n, "default_model_tier")
		if tier, err := heddle.ParseModelTier(t); err != nil {
			p.add(n, "default_model_tier", "must be one of local, standard, frontier; got %q", t)
		} else {
			cfg.Tier = tier
		}
	}
	if n, ok := keys["timeout_seconds"]; ok {
		cfg.Timeout = p.seconds(n, "timeout_seconds")
	}
	if n, ok := keys["reset_after_task"]; ok {
		if b, isBool := p.boolean(n); !isBool || !b {
			p.add(n, "reset_after_task", "must be true (workers are stateless)")
		}
	}
	cfg.InputSchema = p.schema(keys, "input_schema")
	cfg.OutputSchema = p.schema(keys, "output_schema")
	for _, k := range ignored {
		if _, ok := keys[k]; ok {
			cfg.Ignored = append(cfg.Ignored, k)
		}
	}
	for _, k := range sortedKeys(root) {
		switch k.Value {
		case "name", "description", "worker_kind", "processing_backend", "backend_config",
			"default_model_tier", "timeout_seconds", "reset_after_task", "input_schema", "output_schema":
		default:
			if slices.Contains(ignored, k.Value) {
				continue
			}
			if why, ok := refused[k.Value]; ok {
				p.add(k, k.Value, "%s", why)
				continue
			}
			p.add(k, k.Value, "unknown key; known keys: name, description, worker_kind, processing_backend, backend_config, input_schema, output_schema, default_model_tier, timeout_seconds, reset_after_task")
		}
	}
	return cfg
}

func (p *parser) backend(n *yaml.Node) Backend {
	b := Backend{IOMode: ModeJSONStdio, Timeout: DefaultSubprocessTimeout}
	if n.Kind != yaml.MappingNode {
		p.add(n, "backend_config", "must be a mapping, got a YAML %s", kindName(n))
		return b
	}
	keys := p.mapping(n, "backend_config.")
	if c, ok := keys["command"]; ok {
		b.Command = p.strings(c, "backend_config.command")
		if len(b.Command) == 0 && c.Kind == yaml.SequenceNode {
			p.add(c, "backend_config.command", "must not be empty: give the program and its arguments")
		}
		for i, arg := range b.Command {
			if shellMeta.MatchString(arg) {
				p.add(c.Content[i], fmt.Sprintf("backend_config.command[%d]", i),
					"contains a shell metacharacter: %q; the subprocess backend runs no shell", arg)
			}
		}
	} else {
		p.add(n, "backend_config.command", "missing: give the program and its arguments as a list")
	}
	if m, ok := keys["io_mode"]; ok {
		b.IOMode = p.str(m, "backend_config.io_mode")
		if !slices.Contains(ioModes, b.IOMode) {
			p.add(m, "backend_config.io_mode", "unknown io_mode %q; valid: %s", b.IOMode, strings.Join(ioModes, ", "))
		}
	}
	if t, ok := keys["subprocess_timeout"]; ok {
		b.Timeout = p.seconds(t, "backend_config.subprocess_timeout")
	}
	if e, ok := keys["env"]; ok {
		b.Env = p.env(e)
	}
	if w, ok := keys["working_dir"]; ok {
		b.WorkingDir = p.str(w, "backend_config.working_dir")
	}
	if a, ok := keys["allowed_commands"]; ok {
		b.AllowedCommands = p.strings(a, "backend_config.allowed_commands")
		if b.AllowedCommands == nil {
			b.AllowedCommands = []string{}
		}
		if len(b.Command) > 0 && !slices.Contains(b.AllowedCommands, b.Command[0]) {
			p.add(a, "backend_config.allowed_commands", "command %q is not in allowed_commands %v", b.Command[0], b.AllowedCommands)
		}
	}
	if m, ok := keys["model_used"]; ok {
		b.ModelUsed = p.str(m, "backend_config.model_used")
	}
	if b.ModelUsed == "" && len(b.Command) > 0 {
		b.ModelUsed = b.Command[0]
	}
	var in, out map[string]*yaml.Node
	if m, ok := keys["input_mapping"]; ok {
		in = p.submapping(m, "backend_config.input_mapping")
	}
	if m, ok := keys["output_mapping"]; ok {
		out = p.submapping(m, "backend_config.output_mapping")
	}
	p.mappings(&b, in, out)
	for _, k := range sortedKeys(n) {
		switch k.Value {
		case "command", "io_mode", "subprocess_timeout", "input_mapping", "output_mapping",
			"env", "working_dir", "allowed_commands", "model_used":
		default:
			p.add(k, "backend_config."+k.Value, "unknown key; known keys: command, io_mode, subprocess_timeout, input_mapping, output_mapping, env, working_dir, allowed_commands, model_used")
		}
	}
	return b
}

// mappings reads input_mapping and output_mapping for b.IOMode, refusing
// keys that mode does not read.
func (p *parser) mappings(b *Backend, in, out map[string]*yaml.Node) {
	const inPath, outPath = "backend_config.input_mapping.", "backend_config.output_mapping."
	var inKeys, outKeys []string
	switch b.IOMode {
	case ModeJSONStdio:
		inKeys, outKeys = []string{"fields"}, []string{"target", "extract_key"}
		b.Target = "root"
		if f, ok := in["fields"]; ok {
			if f.Kind == yaml.ScalarNode && f.Value == "all" {
				break
			}
			b.Fields = p.strings(f, inPath+"fields")
			if b.Fields == nil {
				b.Fields = []string{}
			}
		}
	case ModeStdinStdout, ModeArgsStdout:
		outKeys = []string{"stdout_field", "parse"}
		if b.IOMode == ModeStdinStdout {
			inKeys = []string{"stdin_field"}
			b.StdinField = p.strOr(in, "stdin_field", inPath, "input")
		} else {
			inKeys = []string{"positional", "flags"}
			b.Positional = p.positional(in["positional"])
			b.Flags = p.flags(in["flags"])
		}
		b.StdoutField = p.strOr(out, "stdout_field", outPath, "output")
		b.Parse = p.strOr(out, "parse", outPath, "raw")
		if !slices.Contains(parseModes, b.Parse) {
			p.add(out["parse"], outPath+"parse", "unknown parse mode %q; valid: %s", b.Parse, strings.Join(parseModes, ", "))
		}
	case ModeFileFile:
		inKeys = []string{"content_field", "input_extension", "output_extension", "args_template"}
		outKeys = []string{"output_field", "read_mode"}
		b.ContentField = p.strOr(in, "content_field", inPath, "content")
		b.InputExtension = p.strOr(in, "input_extension", inPath, ".tmp")
		b.OutputExtension = p.strOr(in, "output_extension", inPath, ".out")
		for _, ext := range [2][2]string{{"input_extension", b.InputExtension}, {"output_extension", b.OutputExtension}} {
			if strings.ContainsAny(ext[1], `/\`) {
				p.add(in[ext[0]], inPath+ext[0], "an extension must not contain a path separator: %q", ext[1])
			}
		}
		b.ArgsTemplate = []string{"{input}"}
		if a, ok := in["args_template"]; ok {
			b.ArgsTemplate = p.strings(a, inPath+"args_template")
		}
		b.OutputField = p.strOr(out, "output_field", outPath, "content")
		b.ReadMode = p.strOr(out, "read_mode", outPath, "text")
		if b.ReadMode != "text" && b.ReadMode != "binary" {
			p.add(out["read_mode"], outPath+"read_mode", "unknown read_mode %q; valid: text, binary", b.ReadMode)
		}
	default:
		return // io_mode already reported
	}
	if b.IOMode == ModeJSONStdio {
		b.ExtractKey = p.strOr(out, "extract_key", outPath, "")
		b.Target = p.strOr(out, "target", outPath, "root")
	}
	p.unknownIn(in, inKeys, inPath, b.IOMode)
	p.unknownIn(out, outKeys, outPath, b.IOMode)
}

func (p *parser) unknownIn(m map[string]*yaml.Node, known []string, path, mode string) {
	for _, k := range sortedMapKeys(m) {
		if !slices.Contains(known, k) {
			p.add(m[k], path+k, "not read in io_mode %s; keys read there: %s", mode, strings.Join(known, ", "))
		}
	}
}

func (p *parser) positional(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	const path = "backend_config.input_mapping.positional"
	if n.Kind != yaml.SequenceNode {
		p.add(n, path, "must be a list of {field: NAME}")
		return nil
	}
	var out []string
	for i, e := range n.Content {
		at := fmt.Sprintf("%s[%d]", path, i)
		m := p.submapping(e, at)
		if m == nil {
			continue
		}
		out = append(out, p.strOr(m, "field", at+".", ""))
		if _, ok := m["field"]; !ok {
			p.add(e, at+".field", "missing")
		}
		p.unknownIn(m, []string{"field"}, at+".", ModeArgsStdout)
	}
	return out
}

func (p *parser) flags(n *yaml.Node) []Flag {
	if n == nil {
		return nil
	}
	const path = "backend_config.input_mapping.flags"
	if n.Kind != yaml.SequenceNode {
		p.add(n, path, "must be a list of {flag: --NAME, field: NAME, is_boolean: BOOL}")
		return nil
	}
	var out []Flag
	for i, e := range n.Content {
		at := fmt.Sprintf("%s[%d]", path, i)
		m := p.submapping(e, at)
		if m == nil {
			continue
		}
		f := Flag{Flag: p.strOr(m, "flag", at+".", ""), Field: p.strOr(m, "field", at+".", "")}
		for _, k := range []string{"flag", "field"} {
			if _, ok := m[k]; !ok {
				p.add(e, at+"."+k, "missing")
			}
		}
		if b, ok := m["is_boolean"]; ok {
			v, isBool := p.boolean(b)
			if !isBool {
				p.add(b, at+".is_boolean", "must be true or false")
			}
			f.IsBoolean = v
		}
		p.unknownIn(m, []string{"flag", "field", "is_boolean"}, at+".", ModeArgsStdout)
		out = append(out, f)
	}
	return out
}

func (p *parser) env(n *yaml.Node) []EnvVar {
	if n.Kind != yaml.MappingNode {
		p.add(n, "backend_config.env", "must be a mapping of variable names to values")
		return nil
	}
	var out []EnvVar
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := "backend_config.env." + k.Value
		if k.Value == "" || strings.ContainsAny(k.Value, "=\x00") {
			p.add(k, field, "is not a usable environment variable name")
			continue
		}
		if v.Kind != yaml.ScalarNode {
			p.add(v, field, "must be a string")
			continue
		}
		if strings.Contains(v.Value, "${payload.") && !payloadRef.MatchString(v.Value) {
			p.add(v, field, "a payload reference is written ${payload.FIELD}; got %q", v.Value)
		}
		out = append(out, EnvVar{Name: k.Value, Value: v.Value})
	}
	return out
}

// payloadRef matches an env value naming a payload field, as the Python
// backend reads it: the first ${payload.NAME} in the value.
var payloadRef = regexp.MustCompile(`\$\{payload\.([^}]*)\}`)

func (p *parser) schema(keys map[string]*yaml.Node, key string) []byte {
	n, ok := keys[key]
	if !ok {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.add(n, key, "must be a JSON Schema written as a YAML mapping, got a YAML %s", kindName(n))
		return nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		p.add(n, key, "%v", err)
		return nil
	}
	doc, err := json.Marshal(v)
	if err != nil {
		p.add(n, key, "cannot be written as JSON: %v", err)
		return nil
	}
	if _, err := contracts.NewSchema(doc); err != nil {
		p.add(n, key, "%v", err)
		return nil
	}
	return doc
}

// mapping indexes a mapping's values by key, reporting duplicated keys.
func (p *parser) mapping(n *yaml.Node, path string) map[string]*yaml.Node {
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if prev, dup := out[k.Value]; dup {
			p.add(k, path+k.Value, "duplicated key (first at line %d)", prev.Line)
			continue
		}
		out[k.Value] = n.Content[i+1]
	}
	return out
}

func (p *parser) submapping(n *yaml.Node, path string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.add(n, path, "must be a mapping, got a YAML %s", kindName(n))
		return nil
	}
	return p.mapping(n, path+".")
}

func (p *parser) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.add(n, field, "must be a string, got a YAML %s", kindName(n))
		return ""
	}
	return n.Value
}

func (p *parser) strOr(m map[string]*yaml.Node, key, path, def string) string {
	n, ok := m[key]
	if !ok {
		return def
	}
	return p.str(n, path+key)
}

func (p *parser) strings(n *yaml.Node, field string) []string {
	if n.Kind != yaml.SequenceNode {
		p.add(n, field, "must be a list of strings, got a YAML %s", kindName(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, e := range n.Content {
		out = append(out, p.str(e, fmt.Sprintf("%s[%d]", field, i)))
	}
	return out
}

func (p *parser) boolean(n *yaml.Node) (value, ok bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return false, false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		return false, false
	}
	return b, true
}

func (p *parser) seconds(n *yaml.Node, field string) time.Duration {
	var f float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil {
		p.add(n, field, "must be a number of seconds, got %q", n.Value)
		return 0
	}
	if f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) || f > float64(math.MaxInt64/int64(time.Second)) {
		p.add(n, field, "must be a positive number of seconds, got %v", f)
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

func sortedKeys(n *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, n.Content[i])
	}
	return out
}

func sortedMapKeys(m map[string]*yaml.Node) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b string) int { return m[a].Line - m[b].Line })
	return out
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	if n.Tag == "!!null" {
		return "null"
	}
	return "scalar"
}
