package pyproc

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/worker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const header = `name: tool
worker_kind: processor
processing_backend: heddle.contrib.subprocess.SubprocessBackend
`

func parse(t *testing.T, doc string) Config {
	t.Helper()
	cfg, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

func run(t *testing.T, b Backend, payload string) (map[string]any, error) {
	t.Helper()
	var in map[string]any
	dec := json.NewDecoder(strings.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return b.Handler()(ctx, in)
}

func TestEachIOModeShapesItsOutputAsThePythonBackend(t *testing.T) {
	tests := []struct {
		name, backend, payload, want string
	}{
		{"json_stdio returns the printed object", `
  command: ["cat"]`, `{"text": "hi", "n": 2}`, `{"n":2,"text":"hi"}`},
		{"json_stdio sends only the listed fields", `
  command: ["cat"]
  input_mapping: {fields: [text]}`, `{"text": "hi", "secret": 1}`, `{"text":"hi"}`},
		{"json_stdio nests under target", `
  command: ["cat"]
  output_mapping: {target: result}`, `{"a": 1}`, `{"result":{"a":1}}`},
		{"json_stdio extracts a key", `
  command: ["cat"]
  output_mapping: {extract_key: data, target: out}`, `{"data": [1, 2]}`, `{"out":[1,2]}`},
		{"stdin_stdout pipes one field and parses an int", `
  command: ["wc", "-w"]
  io_mode: stdin_stdout
  input_mapping: {stdin_field: text}
  output_mapping: {stdout_field: words, parse: int}`, `{"text": "a b c d"}`, `{"words":4}`},
		{"stdin_stdout defaults to input and raw output", `
  command: ["cat"]
  io_mode: stdin_stdout`, `{"input": "as is\n"}`, `{"output":"as is\n"}`},
		{"stdin_stdout parses lines", `
  command: ["cat"]
  io_mode: stdin_stdout
  output_mapping: {parse: lines}`, `{"input": "a\n\nb\n"}`, `{"output":["a","b"]}`},
		{"args_stdout passes positional fields, then flags", `
  command: ["echo"]
  io_mode: args_stdout
  input_mapping:
    positional: [{field: word}]
    flags:
      - {flag: "-n", field: no_newline, is_boolean: true}
  output_mapping: {stdout_field: said}`, `{"word": "hello", "no_newline": true}`, `{"said":"hello -n\n"}`},
		{"args_stdout leaves a false boolean flag out", `
  command: ["echo"]
  io_mode: args_stdout
  input_mapping:
    flags: [{flag: "-n", field: no_newline, is_boolean: true}]
    positional: [{field: word}]
  output_mapping: {parse: strip}`, `{"word": "hello", "no_newline": false}`, `{"output":"hello"}`},
		{"file_file writes the field and reads the output file", `
  command: ["cp"]
  io_mode: file_file
  input_mapping: {content_field: md, input_extension: .md, output_extension: .html, args_template: ["{input}", "{output}"]}
  output_mapping: {output_field: html}`, `{"md": "# title"}`, `{"html":"# title"}`},
		{"file_file reads binary as base64", `
  command: ["cp"]
  io_mode: file_file
  input_mapping: {args_template: ["{input}", "{output}"]}
  output_mapping: {read_mode: binary}`, `{"content": "hi"}`, `{"content":"aGk="}`},
		{"env takes a payload field", `
  command: ["printenv", "LANG_HINT"]
  io_mode: stdin_stdout
  env: {LANG_HINT: "${payload.lang}"}
  output_mapping: {parse: strip}`, `{"lang": "fr"}`, `{"output":"fr"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(t, header+"backend_config:"+tt.backend+"\n")
			out, err := run(t, cfg.Backend, tt.payload)
			if err != nil {
				t.Fatalf("handler: %v", err)
			}
			got, _ := json.Marshal(out)
			if string(got) != tt.want {
				t.Errorf("output %s, want %s", got, tt.want)
			}
		})
	}
}

func TestFailuresReadAsThePythonBackendsAndAreNotRetried(t *testing.T) {
	tests := []struct {
		name, backend, payload, want string
	}{
		{"a non-zero exit quotes stderr", `
  command: ["ls", "/no/such/dir"]
  io_mode: stdin_stdout`, `{}`, `command "ls" exited with code 2: ls: `},
		{"a timeout names it", `
  command: ["sleep", "5"]
  io_mode: stdin_stdout
  subprocess_timeout: 0.05`, `{}`, `subprocess "sleep" timed out after 50ms`},
		{"stdout that is not JSON", `
  command: ["echo", "not json"]`, `{}`, `failed to parse stdout as JSON`},
		{"target root needs an object", `
  command: ["echo", "[1]"]`, `{}`, `json_stdio with target='root' requires stdout to be a JSON object`},
		{"a missing extract_key", `
  command: ["cat"]
  output_mapping: {extract_key: data}`, `{"x": 1}`, `extract_key "data" not found in stdout JSON`},
		{"an int that does not parse", `
  command: ["cat"]
  io_mode: stdin_stdout
  output_mapping: {parse: int}`, `{"input": "many"}`, `cannot parse stdout as int`},
		{"a program that does not exist", `
  command: ["no-such-program-heddle"]`, `{}`, `subprocess "no-such-program-heddle"`},
		{"file_file without its output file", `
  command: ["true"]
  io_mode: file_file`, `{}`, `was not created by "true"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(t, header+"backend_config:"+tt.backend+"\n")
			_, err := run(t, cfg.Backend, tt.payload)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			if !worker.IsPermanent(err) {
				t.Errorf("error %v is retryable; the Python processor never retries", err)
			}
		})
	}
}

func TestParseReadsEveryDocumentedKey(t *testing.T) {
	cfg := parse(t, header+`description: d
backend_config:
  command: ["node", "worker.js"]
  io_mode: json_stdio
  subprocess_timeout: 15
  working_dir: /opt/tools
  allowed_commands: ["node"]
  model_used: my-worker-v1
input_schema: {type: object, required: [text], properties: {text: {type: string}}}
output_schema: {type: object}
default_model_tier: frontier
reset_after_task: true
timeout_seconds: 30
max_output_tokens: 100
`)
	b := cfg.Backend
	if cfg.Name != "tool" || cfg.Tier != heddle.TierFrontier || cfg.Timeout != 30*time.Second ||
		b.Timeout != 15*time.Second || b.WorkingDir != "/opt/tools" || b.ModelUsed != "my-worker-v1" ||
		b.Target != "root" || b.Fields != nil || strings.Join(b.Command, " ") != "node worker.js" {
		t.Errorf("config %+v", cfg)
	}
	if len(cfg.Ignored) != 1 || cfg.Ignored[0] != "max_output_tokens" {
		t.Errorf("Ignored = %v, want max_output_tokens", cfg.Ignored)
	}
	c, err := cfg.Contract()
	if err != nil || c == nil {
		t.Fatalf("Contract: %v, %v", c, err)
	}
	if def := parse(t, header+"backend_config: {command: [cat]}\n"); def.Backend.Timeout != DefaultSubprocessTimeout || def.Backend.ModelUsed != "cat" {
		t.Errorf("defaults: timeout %v, model_used %q", def.Backend.Timeout, def.Backend.ModelUsed)
	}
}

func TestParseNamesEveryProblemWithItsLine(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []Problem
	}{
		{"another backend", `name: x
worker_kind: processor
processing_backend: myapp.backends.Docling
backend_config: {command: [x]}
`, []Problem{{Line: 3, Field: "processing_backend", Problem: `"myapp.backends.Docling" is not supported`}}},
		{"an LLM worker", `name: x
system_prompt: hi
`, []Problem{
			{Line: 1, Field: "worker_kind", Problem: `must be processor (got "llm")`},
			{Line: 1, Field: "processing_backend", Problem: "missing"},
			{Line: 1, Field: "backend_config", Problem: "missing"},
			{Line: 2, Field: "system_prompt", Problem: "LLM worker"},
		}},
		{"an unknown key and a bad tier", header + `backend_config: {command: [x]}
default_model_tier: gpu
knowledge_silos: []
colour: red
`, []Problem{
			{Line: 5, Field: "default_model_tier", Problem: `got "gpu"`},
			{Line: 6, Field: "knowledge_silos", Problem: "not supported"},
			{Line: 7, Field: "colour", Problem: "unknown key"},
		}},
		{"backend_config keys", header + `backend_config:
  command: ["sh", "-c", "a | b"]
  io_mode: stdin_stdout
  subprocess_timeout: -1
  input_mapping: {fields: all}
  output_mapping: {parse: yaml}
  allowed_commands: [node]
  shell: true
`, []Problem{
			{Line: 5, Field: "backend_config.command[2]", Problem: "shell metacharacter"},
			{Line: 7, Field: "backend_config.subprocess_timeout", Problem: "positive"},
			{Line: 10, Field: "backend_config.allowed_commands", Problem: `command "sh" is not in allowed_commands`},
			{Line: 9, Field: "backend_config.output_mapping.parse", Problem: `unknown parse mode "yaml"`},
			{Line: 8, Field: "backend_config.input_mapping.fields", Problem: "not read in io_mode stdin_stdout"},
			{Line: 11, Field: "backend_config.shell", Problem: "unknown key"},
		}},
		{"a schema that is not a schema", header + `backend_config: {command: [x]}
input_schema: {type: 12}
output_schema: [a]
`, []Problem{
			{Line: 5, Field: "input_schema"},
			{Line: 6, Field: "output_schema", Problem: "YAML mapping"},
		}},
		{"not YAML", "name: [\n", []Problem{{Line: 1, Problem: "invalid YAML"}}},
		{"a list", "- a\n", []Problem{{Line: 1, Problem: "is a YAML list"}}},
		{"nothing", "# only a comment\n", []Problem{{Problem: "empty"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a *Error", err)
			}
			if !errors.Is(err, heddle.ErrConfig) {
				t.Error("the error does not match heddle.ErrConfig")
			}
			if len(pe.Problems) != len(tt.want) {
				t.Fatalf("problems:\n%v\nwant %d", strings.ReplaceAll(pe.Error(), "; ", "\n"), len(tt.want))
			}
			for i, w := range tt.want {
				p := pe.Problems[i]
				if p.Line != w.Line || p.Field != w.Field || !strings.Contains(p.Problem, w.Problem) {
					t.Errorf("problem %d = %+v, want %+v", i, p, w)
				}
			}
		})
	}
}
