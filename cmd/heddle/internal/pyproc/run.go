package pyproc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/internal/execrun"
	"github.com/heddle-go/heddle/worker"
)

// MaxOutputFileBytes bounds the output file file_file reads back, as
// execrun bounds stdout: a larger file fails the task instead of being
// truncated silently.
const MaxOutputFileBytes = execrun.DefaultMaxOutputBytes

// Contract returns the contract of input_schema and output_schema, or nil
// when the config has neither.
func (c Config) Contract() (*contracts.Contract, error) {
	if c.InputSchema == nil && c.OutputSchema == nil {
		return nil, nil
	}
	var in, out *contracts.Schema
	var err error
	if c.InputSchema != nil {
		if in, err = contracts.NewSchema(c.InputSchema); err != nil {
			return nil, fmt.Errorf("input_schema: %w", err)
		}
	}
	if c.OutputSchema != nil {
		if out, err = contracts.NewSchema(c.OutputSchema); err != nil {
			return nil, fmt.Errorf("output_schema: %w", err)
		}
	}
	return contracts.New(in, out), nil
}

// Handler returns the worker handler that runs the backend's command for
// each task's payload and returns its output as the subprocess backend
// does: for json_stdio the JSON object the command prints (or it under
// output_mapping.target), for the other modes an object with one field.
// It reports model_used (backend_config.model_used, or the program name).
//
// The errors say what the Python backend's errors say: a non-zero exit
// ("Command 'x' exited with code N: <stderr>"), a timeout ("Subprocess 'x'
// timed out after 15s") or output that does not parse.
func (b Backend) Handler() func(ctx context.Context, payload map[string]any) (map[string]any, error) {
	return func(ctx context.Context, payload map[string]any) (map[string]any, error) {
		worker.Report(ctx, worker.Usage{Model: b.ModelUsed})
		switch b.IOMode {
		case ModeJSONStdio:
			return b.jsonStdio(ctx, payload)
		case ModeStdinStdout:
			out, err := b.run(ctx, b.Command, []byte(text(payload[b.StdinField])), payload)
			if err != nil {
				return nil, err
			}
			return b.field(out)
		case ModeArgsStdout:
			out, err := b.run(ctx, append(append([]string(nil), b.Command...), b.args(payload)...), nil, payload)
			if err != nil {
				return nil, err
			}
			return b.field(out)
		case ModeFileFile:
			return b.fileFile(ctx, payload)
		}
		return nil, worker.Permanent(fmt.Errorf("unknown io_mode %q", b.IOMode))
	}
}

func (b Backend) jsonStdio(ctx context.Context, payload map[string]any) (map[string]any, error) {
	in := payload
	if b.Fields != nil {
		in = make(map[string]any, len(b.Fields))
		for _, f := range b.Fields {
			if v, ok := payload[f]; ok {
				in[f] = v
			}
		}
	}
	stdin, err := json.Marshal(in)
	if err != nil {
		return nil, worker.Permanent(fmt.Errorf("encoding the payload for stdin: %w", err))
	}
	stdout, err := b.run(ctx, b.Command, stdin, payload)
	if err != nil {
		return nil, err
	}
	var v any
	if err := decodeJSON(stdout, &v); err != nil {
		return nil, worker.Permanent(fmt.Errorf("failed to parse stdout as JSON: %v. First 200 chars: %s", err, head(stdout, 200)))
	}
	if b.ExtractKey != "" {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, worker.Permanent(fmt.Errorf("extract_key %q not found in stdout JSON", b.ExtractKey))
		}
		if v, ok = obj[b.ExtractKey]; !ok {
			return nil, worker.Permanent(fmt.Errorf("extract_key %q not found in stdout JSON", b.ExtractKey))
		}
	}
	if b.Target == "root" {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, worker.Permanent(errors.New("json_stdio with target='root' requires stdout to be a JSON object"))
		}
		return obj, nil
	}
	return map[string]any{b.Target: v}, nil
}

// args builds args_stdout's extra arguments: the positional fields present,
// then each flag with its value (a boolean flag alone, when true).
func (b Backend) args(payload map[string]any) []string {
	var out []string
	for _, f := range b.Positional {
		if v, ok := payload[f]; ok {
			out = append(out, text(v))
		}
	}
	for _, f := range b.Flags {
		v, ok := payload[f.Field]
		switch {
		case !ok:
		case f.IsBoolean:
			if truthy(v) {
				out = append(out, f.Flag)
			}
		default:
			out = append(out, f.Flag, text(v))
		}
	}
	return out
}

func (b Backend) fileFile(ctx context.Context, payload map[string]any) (map[string]any, error) {
	dir, err := os.MkdirTemp("", "heddle-processor-")
	if err != nil {
		return nil, fmt.Errorf("creating the temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	inPath := filepath.Join(dir, "input"+b.InputExtension)
	outPath := filepath.Join(dir, "output"+b.OutputExtension)
	if err := os.WriteFile(inPath, []byte(text(payload[b.ContentField])), 0o600); err != nil {
		return nil, fmt.Errorf("writing the input file: %w", err)
	}
	cmd := append([]string(nil), b.Command...)
	for _, a := range b.ArgsTemplate {
		cmd = append(cmd, strings.ReplaceAll(strings.ReplaceAll(a, "{input}", inPath), "{output}", outPath))
	}
	if _, err := b.run(ctx, cmd, nil, payload); err != nil {
		return nil, err
	}
	f, err := os.Open(outPath)
	if err != nil {
		return nil, worker.Permanent(fmt.Errorf("expected output file %s was not created by %q", outPath, b.Command[0]))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxOutputFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the output file: %w", err)
	}
	if len(data) > MaxOutputFileBytes {
		return nil, worker.Permanent(fmt.Errorf("output file of %q is larger than %d bytes", b.Command[0], MaxOutputFileBytes))
	}
	if b.ReadMode == "binary" {
		return map[string]any{b.OutputField: base64.StdEncoding.EncodeToString(data)}, nil
	}
	return map[string]any{b.OutputField: string(data)}, nil
}

// field parses stdout by output_mapping.parse into output_mapping.stdout_field.
func (b Backend) field(stdout string) (map[string]any, error) {
	var v any
	var err error
	switch b.Parse {
	case "raw":
		v = stdout
	case "strip":
		v = strings.TrimSpace(stdout)
	case "int":
		v, err = strconv.ParseInt(strings.TrimSpace(stdout), 10, 64)
	case "float":
		v, err = strconv.ParseFloat(strings.TrimSpace(stdout), 64)
	case "lines":
		lines := []any{}
		for l := range strings.SplitSeq(strings.TrimSpace(stdout), "\n") {
			if l = strings.TrimSuffix(l, "\r"); l != "" {
				lines = append(lines, l)
			}
		}
		v = lines
	case "json":
		err = decodeJSON(stdout, &v)
	default:
		err = fmt.Errorf("unknown parse mode %q", b.Parse)
	}
	if err != nil {
		return nil, worker.Permanent(fmt.Errorf("cannot parse stdout as %s: %v. First 200 chars: %s", b.Parse, err, head(stdout, 200)))
	}
	return map[string]any{b.StdoutField: v}, nil
}

// run runs cmd with stdin and returns its stdout, turning the failures
// into the subprocess backend's messages.
func (b Backend) run(ctx context.Context, cmd []string, stdin []byte, payload map[string]any) (string, error) {
	res, err := execrun.Run(ctx, execrun.Spec{
		Command: cmd,
		Dir:     b.WorkingDir,
		Env:     b.env(payload),
		Timeout: b.Timeout,
	}, stdin)
	var exitErr *execrun.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		stderr := head(exitErr.Stderr, 500)
		if stderr == "" {
			stderr = "(no stderr)"
		}
		return "", worker.Permanent(fmt.Errorf("command %q exited with code %d: %s", cmd[0], exitErr.Code, stderr))
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return "", worker.Permanent(fmt.Errorf("subprocess %q timed out after %v", cmd[0], b.Timeout))
	default:
		return "", worker.Permanent(fmt.Errorf("subprocess %q: %w", cmd[0], err))
	}
	if res.StdoutTruncated {
		return "", worker.Permanent(fmt.Errorf("stdout of %q is larger than %d bytes", cmd[0], execrun.DefaultMaxOutputBytes))
	}
	return res.Stdout, nil
}

// env resolves backend_config.env for one task: a value holding
// ${payload.FIELD} is replaced, whole, by the field's value, as in the
// Python backend.
func (b Backend) env(payload map[string]any) []string {
	out := make([]string, 0, len(b.Env))
	for _, e := range b.Env {
		v := e.Value
		if m := payloadRef.FindStringSubmatch(v); m != nil {
			v = text(payload[m[1]])
		}
		out = append(out, e.Name+"="+v)
	}
	return out
}

// text renders a payload value for stdin, an argument or a file: a string
// as it is, nothing for a missing value, anything else as JSON.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}

func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case json.Number:
		f, err := v.Float64()
		return err != nil || f != 0
	case float64:
		return v != 0
	case []any:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	}
	return true
}

// decodeJSON decodes one JSON value, keeping numbers exact, and refuses
// anything after it.
func decodeJSON(s string, v *any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("extra data after the JSON value")
	}
	return nil
}

func head(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
