package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/internal/execrun"
)

// ExecFormat says how an exec worker reads its command's stdout.
type ExecFormat string

// The output formats of an exec worker. The zero ExecFormat means
// ExecText.
const (
	// ExecText keeps stdout as it is, in the output's "stdout".
	ExecText ExecFormat = "text"
	// ExecJSON parses stdout as one JSON value, in the output's "result".
	ExecJSON ExecFormat = "json"
	// ExecJSONL parses each non-empty line of stdout as a JSON value; the
	// output's "result" is the array of them.
	ExecJSONL ExecFormat = "jsonl"
	// ExecYAML parses stdout as one YAML document, in the output's "result"
	// as JSON values (timestamps stay strings).
	ExecYAML ExecFormat = "yaml"
)

// DefaultExecMaxOutputBytes bounds each of stdout and stderr of an exec
// worker's command when ExecSpec.MaxOutputBytes is zero.
const DefaultExecMaxOutputBytes = execrun.DefaultMaxOutputBytes

// Reasons of worker.failed events specific to the exec worker.
const (
	execReasonExit  = "exit_status" // the command exited with a status other than 0
	execReasonParse = "parse_error" // stdout did not parse in the declared format
	execReasonRun   = "exec_error"  // the command could not be started or was killed
)

// ExecSpec describes the command an exec worker runs for each task.
type ExecSpec struct {
	// Command is the program and its arguments; no shell is involved (use
	// []string{"/bin/sh", "-c", script} for one). A program name without a
	// slash is looked up in PATH. Required.
	Command []string
	// Dir is the working directory; empty means the worker's own.
	Dir string
	// Env holds KEY=value entries added to the worker's environment. The
	// command also gets HEDDLE_TASK_ID, HEDDLE_PARENT_TASK_ID,
	// HEDDLE_REQUEST_ID, HEDDLE_WORKER_TYPE, HEDDLE_MODEL_TIER and
	// HEDDLE_RETRY_COUNT; an entry of Env with the same name wins.
	Env []string
	// OutputFormat says how stdout is parsed; zero means ExecText.
	OutputFormat ExecFormat
	// Timeout bounds one run of the command, after which its process group
	// is killed; zero means the worker's TaskTimeout, which bounds it in
	// any case.
	Timeout time.Duration
	// MaxOutputBytes bounds each of stdout and stderr; zero means
	// DefaultExecMaxOutputBytes. Output beyond it is discarded and the
	// output notes "stdout_truncated" or "stderr_truncated".
	MaxOutputBytes int
	// RetryFailures makes a non-zero exit status retryable, up to the
	// task's max_retries, like a handler error. By default it fails the
	// task at once. Timeouts and unparseable output are never retried.
	RetryFailures bool
}

// NewExec returns a Worker whose handler runs spec.Command for each
// task, with the task payload, as JSON (the exact bytes of the task), on
// its stdin.
//
// The output object holds "exit_code" (int), "stderr" (string) and exactly
// one of "stdout" (the raw text, for ExecText or when parsing failed) or
// "result" (the parsed value, for the structured formats) — never the same
// output twice. When stdout does not parse, "parse_error" says why and the
// task fails. A non-zero exit status fails the task with stderr in the
// error, and the failed result's output still carries exit_code, stderr and
// what was printed. A run killed on its timeout fails the task with an
// error naming the timeout.
//
// Nothing is checked against a contract unless cfg.Contract is set; its
// output side then applies to the output object of a completed run.
func NewExec(b bus.Bus, workerType string, spec ExecSpec, cfg Config, opts ...heddle.Option) (*Worker, error) {
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, fmt.Errorf("%w: worker %q: ExecSpec.Command is empty; give the program and its arguments", heddle.ErrConfig, workerType)
	}
	format, err := execrun.ParseFormat(string(spec.OutputFormat))
	if err != nil {
		return nil, fmt.Errorf("%w: worker %q: ExecSpec.OutputFormat: %w", heddle.ErrConfig, workerType, err)
	}
	if spec.Timeout < 0 || spec.MaxOutputBytes < 0 {
		return nil, fmt.Errorf("%w: worker %q: ExecSpec.Timeout and ExecSpec.MaxOutputBytes must not be negative; use zero for the default", heddle.ErrConfig, workerType)
	}
	run := execrun.Spec{
		Command:        slices.Clone(spec.Command),
		Dir:            spec.Dir,
		Timeout:        cmpOr(spec.Timeout, cmpOr(cfg.TaskTimeout, DefaultTaskTimeout)),
		OutputFormat:   format,
		MaxOutputBytes: spec.MaxOutputBytes,
	}
	env := slices.Clone(spec.Env)
	retry := spec.RetryFailures
	handle := func(ctx context.Context, task *heddle.TaskMessage, data []byte) (map[string]any, error) {
		payload, err := rawPayload(task, data)
		if err != nil {
			return nil, &handlerError{reason: reasonInputDecode, permanent: true, err: err}
		}
		r := run
		r.Env = append(execTaskEnv(task), env...)
		res, err := execrun.Run(ctx, r, payload)
		return execOutcome(format, res, err, retry)
	}
	return newWorker(b, workerType, handle, cfg, opts)
}

// execTaskEnv describes the task to the command.
func execTaskEnv(t *heddle.TaskMessage) []string {
	return []string{
		"HEDDLE_TASK_ID=" + t.TaskID,
		"HEDDLE_PARENT_TASK_ID=" + t.ParentTaskID,
		"HEDDLE_REQUEST_ID=" + t.RequestID,
		"HEDDLE_WORKER_TYPE=" + t.WorkerType,
		"HEDDLE_MODEL_TIER=" + string(t.ModelTier),
		"HEDDLE_RETRY_COUNT=" + strconv.Itoa(t.RetryCount),
	}
}

// execOutcome turns a run into the output object, or into the failure the
// worker reports with that object attached.
func execOutcome(format execrun.Format, res execrun.Result, runErr error, retry bool) (map[string]any, error) {
	out := map[string]any{"exit_code": res.ExitCode, "stderr": res.Stderr}
	switch {
	case res.Result != nil, format != execrun.FormatText && runErr == nil && res.ParseError == "":
		// Parsed (to null, for an output of "null" or an empty yaml
		// document, when Result is nil).
		out["result"] = res.Result
	default:
		out["stdout"] = res.Stdout
	}
	if res.ParseError != "" {
		out["parse_error"] = res.ParseError
	}
	if res.StdoutTruncated {
		out["stdout_truncated"] = true
	}
	if res.StderrTruncated {
		out["stderr_truncated"] = true
	}

	var exitErr *execrun.ExitError
	switch {
	case runErr == nil && res.ParseError == "":
		return out, nil
	case runErr == nil:
		return nil, &handlerError{reason: execReasonParse, output: out, permanent: true,
			err: fmt.Errorf("command output is not valid %s: %s", format, res.ParseError)}
	case errors.As(runErr, &exitErr):
		return nil, &handlerError{reason: execReasonExit, output: out, permanent: !retry, err: runErr}
	case errors.Is(runErr, context.DeadlineExceeded):
		return nil, &handlerError{reason: reasonTimeout, output: out, permanent: true, err: runErr}
	}
	return nil, &handlerError{reason: execReasonRun, output: out, permanent: true, err: runErr}
}
