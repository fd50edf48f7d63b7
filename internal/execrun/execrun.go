// Package execrun runs a command for an exec worker: the task payload goes
// to the command's stdin, and its stdout becomes the result, parsed by the
// declared output format.
//
// The output appears once: a structured format (json, jsonl, yaml) that
// parses fills Result and leaves Stdout empty; the text format, or a
// structured output that fails to parse, fills Stdout and leaves Result nil.
//
// The command runs in its own process group (on Unix). On timeout, when the
// caller's context ends, and when the command exits, whatever is left of the
// group is killed, so a run leaves no process behind. A child that holds
// stdout or stderr open after the command exits delays Run by at most half
// a second. (A process that leaves the group, with setsid for example,
// escapes this.)
package execrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"
)

const (
	// DefaultTimeout applies when Spec.Timeout is zero or negative.
	DefaultTimeout = 5 * time.Minute
	// DefaultMaxOutputBytes bounds each of stdout and stderr when
	// Spec.MaxOutputBytes is zero or negative.
	DefaultMaxOutputBytes = 4 << 20
	// pipeCloseDelay is how long Run waits, after the command exits, for
	// processes it left behind to close stdout and stderr before Run closes
	// them itself.
	pipeCloseDelay = 500 * time.Millisecond
)

// ErrNoCommand is returned by Run when Spec.Command is empty.
var ErrNoCommand = errors.New("execrun: Spec.Command is empty; give the program and its arguments")

// Spec describes one command run.
type Spec struct {
	// Command is the program and its arguments; no shell is involved. A
	// program name without a slash is looked up in PATH.
	Command []string
	// Dir is the working directory; empty means the worker's own.
	Dir string
	// Env holds KEY=value entries added to the worker's environment; an
	// entry replaces a variable of the same name.
	Env []string
	// Timeout bounds the run; zero means DefaultTimeout. When it expires the
	// command's process group is killed.
	Timeout time.Duration
	// OutputFormat says how stdout is parsed; the zero value is FormatText.
	OutputFormat Format
	// MaxOutputBytes bounds each of stdout and stderr; zero means
	// DefaultMaxOutputBytes. Output beyond it is discarded (the command is
	// not blocked) and the Result notes the truncation.
	MaxOutputBytes int
}

// Result is the outcome of a run. Exactly one of Stdout and Result carries
// the command's output; see the package documentation. A Result with
// Result == nil, Stdout == "" and ParseError == "" for a structured format
// means the output parsed to null (or, for yaml, was empty).
type Result struct {
	// ExitCode is the exit status; -1 when the command did not start or was
	// ended by a signal (including the kill on timeout).
	ExitCode int `json:"exit_code"`
	// Stdout is the raw output for the text format, or when a structured
	// output could not be parsed or the run did not finish; otherwise "".
	Stdout string `json:"stdout"`
	// Stderr is the captured standard error.
	Stderr string `json:"stderr"`
	// Result is the parsed output for a structured format. Its values are
	// JSON-compatible: nil, bool, string, json.Number, []any and
	// map[string]any. Numbers are json.Number so they keep their exact
	// digits when the result is encoded again.
	Result any `json:"result"`
	// ParseError describes why a structured output could not be parsed; the
	// command itself succeeded, so this is not a Go error.
	ParseError string `json:"parse_error,omitempty"`
	// StdoutTruncated and StderrTruncated report output cut at
	// MaxOutputBytes.
	StdoutTruncated bool `json:"stdout_truncated,omitempty"`
	StderrTruncated bool `json:"stderr_truncated,omitempty"`
	// Duration is the time from start to exit.
	Duration time.Duration `json:"duration"`
}

// Run runs spec.Command with payload on its stdin and returns its output.
//
// The error is nil when the command exits with status 0, even if its output
// failed to parse (see Result.ParseError). Otherwise:
//   - exit status other than 0, or death by a signal not sent by Run: the
//     Result (output parsed as usual) and an *ExitError;
//   - Spec.Timeout expired: the group is killed, and the error wraps
//     context.DeadlineExceeded and names the timeout; Stdout holds what was
//     captured, unparsed;
//   - ctx ended: the group is killed, and the error wraps ctx.Err();
//   - the command could not start (not found, bad Dir, ...): ExitCode -1 and
//     an error wrapping the cause (exec.ErrNotFound, fs.ErrNotExist, ...).
func Run(ctx context.Context, spec Spec, payload []byte) (Result, error) {
	res := Result{ExitCode: -1}
	if len(spec.Command) == 0 {
		return res, ErrNoCommand
	}
	format := spec.OutputFormat
	if format == "" {
		format = FormatText
	}
	if !format.valid() {
		return res, fmt.Errorf("execrun: %w", unknownFormatError(string(format)))
	}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	limit := spec.MaxOutputBytes
	if limit <= 0 {
		limit = DefaultMaxOutputBytes
	}
	name := spec.Command[0]
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("execrun: %s not started: %w", name, err)
	}

	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, name, spec.Command[1:]...)
	cmd.Dir = spec.Dir
	if len(spec.Env) > 0 {
		cmd.Env = append(os.Environ(), spec.Env...)
	}
	cmd.Stdin = bytes.NewReader(payload)
	stdout := &boundedBuffer{limit: limit}
	stderr := &boundedBuffer{limit: limit}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = pipeCloseDelay
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return killProcessGroup(cmd) }

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("execrun: start %q: %w", name, err)
	}
	waitErr := cmd.Wait()
	res.Duration = time.Since(start)
	// Nothing the command started may outlive the run. The group's id
	// cannot be reused while any member is alive, and once none is, the kill
	// finds nothing.
	_ = killProcessGroup(cmd)
	res.ExitCode = cmd.ProcessState.ExitCode()
	res.Stderr = stderr.String()
	res.StdoutTruncated = stdout.truncated
	res.StderrTruncated = stderr.truncated

	if waitErr != nil && runCtx.Err() != nil {
		res.Stdout = stdout.String()
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("execrun: %s killed: %w", name, err)
		}
		return res, fmt.Errorf("execrun: %s killed after its timeout of %s: %w", name, timeout, context.DeadlineExceeded)
	}
	if errors.Is(waitErr, exec.ErrWaitDelay) {
		// The command exited with status 0 but left processes holding its
		// output open; they have been killed and the output read so far is
		// the result.
		waitErr = nil
	}

	res.Result, res.Stdout, res.ParseError = parseOutput(format, stdout, limit, waitErr != nil)

	var exitErr *exec.ExitError
	switch {
	case waitErr == nil:
		return res, nil
	case errors.As(waitErr, &exitErr):
		return res, &ExitError{
			Code:    res.ExitCode,
			Stderr:  res.Stderr,
			command: name,
			state:   exitErr.ProcessState.String(),
		}
	default:
		return res, fmt.Errorf("execrun: %s: %w", name, waitErr)
	}
}

// parseOutput applies the one-place-only rule: it returns either the parsed
// value or the raw text, never both. A failed command that printed nothing
// has nothing to parse, and gets no ParseError on top of its ExitError.
func parseOutput(format Format, stdout *boundedBuffer, limit int, failed bool) (result any, raw, parseErr string) {
	if format == FormatText {
		return nil, stdout.String(), ""
	}
	if failed && len(bytes.TrimSpace(stdout.Bytes())) == 0 {
		return nil, stdout.String(), ""
	}
	if stdout.truncated {
		return nil, stdout.String(), fmt.Sprintf("stdout exceeded %d bytes and was cut; %s output not parsed", limit, format)
	}
	v, err := format.parse(stdout.Bytes())
	if err != nil {
		return nil, stdout.String(), err.Error()
	}
	return v, "", ""
}
