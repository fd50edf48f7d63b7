package execrun

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testContext bounds every run, so a command that is not killed fails the
// test instead of hanging it.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestRunPutsEachOutputInExactlyOnePlace(t *testing.T) {
	tests := []struct {
		name       string
		format     Format
		script     string
		wantStdout string
		wantResult any
	}{
		{
			name:       "text output stays in Stdout and Result is nil",
			format:     FormatText,
			script:     `printf '{"a": 1}\n'`,
			wantStdout: "{\"a\": 1}\n",
		},
		{
			name:       "the zero format is text",
			format:     "",
			script:     `echo hello`,
			wantStdout: "hello\n",
		},
		{
			name:       "json output is parsed into Result and Stdout is empty",
			format:     FormatJSON,
			script:     `printf '{"a": 1, "b": [true, null, "x"], "big": 12345678901234567890}\n'`,
			wantResult: map[string]any{"a": json.Number("1"), "b": []any{true, nil, "x"}, "big": json.Number("12345678901234567890")},
		},
		{
			name:   "yaml output is parsed into JSON-compatible values and Stdout is empty",
			format: FormatYAML,
			script: `cat <<'EOF'
name: heddle
count: 3
ratio: 0.5
when: 2025-01-02
tags: [a, b]
1: one
true: yes
nested:
  base: &base {x: 1}
  merged: {<<: *base, y: 2}
EOF`,
			wantResult: map[string]any{
				"name":  "heddle",
				"count": json.Number("3"),
				"ratio": json.Number("0.5"),
				"when":  "2025-01-02",
				"tags":  []any{"a", "b"},
				"1":     "one",
				"true":  "yes",
				"nested": map[string]any{
					"base":   map[string]any{"x": json.Number("1")},
					"merged": map[string]any{"x": json.Number("1"), "y": json.Number("2")},
				},
			},
		},
		{
			name:       "jsonl output becomes an array of the non-empty lines and Stdout is empty",
			format:     FormatJSONL,
			script:     `printf '{"n": 1}\n\n  {"n": 2}  \r\n"three"\n'`,
			wantResult: []any{map[string]any{"n": json.Number("1")}, map[string]any{"n": json.Number("2")}, "three"},
		},
		{
			name:       "empty jsonl output is an empty array",
			format:     FormatJSONL,
			script:     `true`,
			wantResult: []any{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(testContext(t), Spec{Command: sh(tt.script), OutputFormat: tt.format}, nil)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.ExitCode != 0 || res.ParseError != "" {
				t.Fatalf("exit code %d, parse error %q", res.ExitCode, res.ParseError)
			}
			if res.Stdout != tt.wantStdout {
				t.Errorf("Stdout = %q, want %q", res.Stdout, tt.wantStdout)
			}
			if !reflect.DeepEqual(res.Result, tt.wantResult) {
				t.Errorf("Result = %#v\nwant %#v", res.Result, tt.wantResult)
			}
			if _, err := json.Marshal(res); err != nil {
				t.Errorf("the Result does not encode as JSON: %v", err)
			}
		})
	}
}

func TestRunKeepsStdoutAndReportsAParseErrorWhenStructuredOutputDoesNotParse(t *testing.T) {
	tests := []struct {
		name      string
		format    Format
		script    string
		wantInErr string
	}{
		{"invalid json", FormatJSON, `echo 'not json'`, "json output"},
		{"two json values", FormatJSON, `echo '{} {}'`, "after the JSON value"},
		{"empty json", FormatJSON, `true`, "empty"},
		{"a bad jsonl line names the line", FormatJSONL, `printf '{"ok": 1}\n{oops\n'`, "line 2"},
		{"invalid yaml", FormatYAML, `printf 'a: [1, 2\n'`, "yaml output"},
		{"two yaml documents", FormatYAML, `printf 'a: 1\n---\nb: 2\n'`, "more than one document"},
		{"yaml infinity", FormatYAML, `printf 'x: .inf\n'`, "$.x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(testContext(t), Spec{Command: sh(tt.script), OutputFormat: tt.format}, nil)
			if err != nil {
				t.Fatalf("Run returned an error for a command that succeeded: %v", err)
			}
			want, _ := exec.Command("/bin/sh", "-c", tt.script).Output()
			if res.Result != nil || res.Stdout != string(want) {
				t.Errorf("Result = %#v, Stdout = %q; want nil and the raw output %q", res.Result, res.Stdout, want)
			}
			if !strings.Contains(res.ParseError, tt.wantInErr) {
				t.Errorf("ParseError = %q, want it to mention %q", res.ParseError, tt.wantInErr)
			}
		})
	}
}

func TestRunReportsANonZeroExitAsExitErrorWithStderr(t *testing.T) {
	res, err := Run(testContext(t), Spec{
		Command:      sh(`echo '{"partial": true}'; echo "  disk full  " >&2; exit 3`),
		OutputFormat: FormatJSON,
	}, nil)
	var exitErr *ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("Run error = %v (%T), want *ExitError", err, err)
	}
	if exitErr.Code != 3 || res.ExitCode != 3 {
		t.Errorf("exit codes: error %d, result %d; want 3", exitErr.Code, res.ExitCode)
	}
	if exitErr.Stderr != "  disk full  \n" || res.Stderr != exitErr.Stderr {
		t.Errorf("Stderr: error %q, result %q", exitErr.Stderr, res.Stderr)
	}
	if msg := err.Error(); !strings.Contains(msg, "(exit status 3): disk full") || !strings.Contains(msg, "/bin/sh") {
		t.Errorf("error message %q does not name the command, status and trimmed stderr", msg)
	}
	if !reflect.DeepEqual(res.Result, map[string]any{"partial": true}) || res.Stdout != "" {
		t.Errorf("a failed command's output was not parsed as usual: Result %#v, Stdout %q", res.Result, res.Stdout)
	}
}

func TestRunReportsDeathBySignalAsExitError(t *testing.T) {
	_, err := Run(testContext(t), Spec{Command: sh(`echo dying >&2; kill -9 $$`)}, nil)
	var exitErr *ExitError
	if !errors.As(err, &exitErr) || exitErr.Code != -1 {
		t.Fatalf("Run error = %v, want *ExitError with code -1", err)
	}
	if !strings.Contains(err.Error(), "signal: killed") || !strings.Contains(err.Error(), "dying") {
		t.Errorf("error %q does not name the signal and quote stderr", err)
	}
}

func TestRunKillsWhatTheCommandLeavesRunning(t *testing.T) {
	ctx := testContext(t)
	res, err := Run(ctx, Spec{Command: sh(`sleep 30 >/dev/null 2>&1 & echo $!`)}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	pid, convErr := strconv.Atoi(strings.TrimSpace(res.Stdout))
	if convErr != nil {
		t.Fatalf("the script did not report its child's pid: stdout %q", res.Stdout)
	}
	waitGone(ctx, t, pid)
}

func TestRunFailedCommandWithNoOutputHasNoParseError(t *testing.T) {
	res, err := Run(testContext(t), Spec{Command: sh(`exit 1`), OutputFormat: FormatJSON}, nil)
	if !errors.As(err, new(*ExitError)) {
		t.Fatalf("Run error = %v, want *ExitError", err)
	}
	if res.ParseError != "" {
		t.Errorf("ParseError = %q on top of the exit error", res.ParseError)
	}
	if !strings.Contains(err.Error(), "no stderr output") {
		t.Errorf("error %q does not say stderr was empty", err)
	}
}

func TestExitErrorQuotesOnlyTheEndOfALongStderr(t *testing.T) {
	e := &ExitError{Code: 1, Stderr: strings.Repeat("x", 5000) + "the cause"}
	msg := e.Error()
	if len(msg) > maxErrorStderr+100 || !strings.HasSuffix(msg, "the cause") || !strings.Contains(msg, "...") {
		t.Errorf("message of %d bytes does not end with the cut stderr: %.80q", len(msg), msg)
	}
}

func TestRunKillsTheCommandOnTimeout(t *testing.T) {
	ctx := testContext(t)
	res, err := Run(ctx, Spec{Command: []string{"sleep", "30"}, Timeout: 200 * time.Millisecond}, nil)
	if ctx.Err() != nil {
		t.Fatal("Run did not return before the test's own deadline: the command was not killed")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run error = %v, want one wrapping context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "200ms") || !strings.Contains(err.Error(), "sleep") {
		t.Errorf("error %q does not name the command and its timeout", err)
	}
	if res.ExitCode != -1 {
		t.Errorf("ExitCode = %d, want -1 for a killed command", res.ExitCode)
	}
}

func TestRunKillsTheCommandsChildrenOnTimeout(t *testing.T) {
	ctx := testContext(t)
	res, err := Run(ctx, Spec{
		Command: sh(`sleep 30 & echo $!; wait`),
		Timeout: 200 * time.Millisecond,
	}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run error = %v, want a deadline error", err)
	}
	pid, convErr := strconv.Atoi(strings.TrimSpace(res.Stdout))
	if convErr != nil {
		t.Fatalf("the script did not report its child's pid: stdout %q", res.Stdout)
	}
	waitGone(ctx, t, pid)
}

// waitGone fails the test unless process pid dies before ctx ends. Run has
// sent SIGKILL to its group by the time it returns; delivery is
// asynchronous, so this polls. The process is gone once it has no /proc
// entry or is a zombie awaiting its reaper.
func waitGone(ctx context.Context, t *testing.T, pid int) {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc to observe processes")
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !processGone(pid) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("process %d started by the command is still running", pid)
		}
	}
}

func processGone(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

func TestRunStopsWhenTheContextIsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Spec{Command: sh(`echo started; exec sleep 30`)}, nil)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run error = %v, want one wrapping context.Canceled", err)
		}
	case <-testContext(t).Done():
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestRunReturnsWhenTheCommandLeavesABackgroundProcess(t *testing.T) {
	ctx := testContext(t)
	res, err := Run(ctx, Spec{Command: sh(`sleep 30 & echo done`)}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Stdout != "done\n" || res.ExitCode != 0 {
		t.Fatalf("Stdout %q, exit code %d", res.Stdout, res.ExitCode)
	}
}

func TestRunSendsThePayloadOnStdin(t *testing.T) {
	payload := []byte(`{"task_id": "t-1", "payload": {"text": "hello", "n": 2}}`)
	res, err := Run(testContext(t), Spec{Command: []string{"cat"}, OutputFormat: FormatJSON}, payload)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := map[string]any{"task_id": "t-1", "payload": map[string]any{"text": "hello", "n": json.Number("2")}}
	if !reflect.DeepEqual(res.Result, want) || res.Stdout != "" {
		t.Fatalf("Result %#v, Stdout %q; want the payload parsed back", res.Result, res.Stdout)
	}
}

func TestRunIgnoresACommandThatDoesNotReadStdin(t *testing.T) {
	big := []byte(strings.Repeat("x", 1<<20))
	res, err := Run(testContext(t), Spec{Command: []string{"true"}}, big)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run = %v, exit code %d", err, res.ExitCode)
	}
}

func TestRunReportsACommandThatCannotStart(t *testing.T) {
	ctx := testContext(t)
	tests := []struct {
		name   string
		spec   Spec
		target error
		inMsg  string
	}{
		{"a program not in PATH", Spec{Command: []string{"heddle-no-such-program"}}, exec.ErrNotFound, "heddle-no-such-program"},
		{"a missing path", Spec{Command: []string{"/nonexistent/heddle"}}, fs.ErrNotExist, "/nonexistent/heddle"},
		{"a missing directory", Spec{Command: []string{"true"}, Dir: "/nonexistent-dir"}, fs.ErrNotExist, "true"},
		{"an empty command", Spec{}, ErrNoCommand, "Command is empty"},
		{"an unknown format", Spec{Command: []string{"true"}, OutputFormat: "xml"}, nil, "text, json, jsonl, yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(ctx, tt.spec, nil)
			if err == nil {
				t.Fatal("Run succeeded")
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("error %v does not wrap %v", err, tt.target)
			}
			if !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("error %q does not mention %q", err, tt.inMsg)
			}
			if res.ExitCode != -1 {
				t.Errorf("ExitCode = %d, want -1", res.ExitCode)
			}
		})
	}
}

func TestRunBoundsCapturedOutput(t *testing.T) {
	ctx := testContext(t)
	script := `head -c 100000 /dev/zero | tr '\0' a; head -c 100000 /dev/zero | tr '\0' b >&2`

	res, err := Run(ctx, Spec{Command: sh(script), MaxOutputBytes: 100}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Stdout != strings.Repeat("a", 100) || !res.StdoutTruncated {
		t.Errorf("Stdout of %d bytes, truncated %v; want the first 100 bytes, truncated", len(res.Stdout), res.StdoutTruncated)
	}
	if res.Stderr != strings.Repeat("b", 100) || !res.StderrTruncated {
		t.Errorf("Stderr of %d bytes, truncated %v; want the first 100 bytes, truncated", len(res.Stderr), res.StderrTruncated)
	}

	res, err = Run(ctx, Spec{Command: sh(`echo '["abcdefghijklmnop"]'`), OutputFormat: FormatJSON, MaxOutputBytes: 8}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Result != nil || res.Stdout != `["abcdef` || !strings.Contains(res.ParseError, "exceeded 8 bytes") {
		t.Errorf("truncated json: Result %#v, Stdout %q, ParseError %q", res.Result, res.Stdout, res.ParseError)
	}
}

func TestRunUsesDirAndEnv(t *testing.T) {
	dir := t.TempDir()
	res, err := Run(testContext(t), Spec{
		Command: sh(`echo "$HEDDLE_TEST_VAR"; pwd -P`),
		Dir:     dir,
		Env:     []string{"HEDDLE_TEST_VAR=from-spec"},
	}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	realDir, _ := filepath.EvalSymlinks(dir)
	if want := "from-spec\n" + realDir + "\n"; res.Stdout != want {
		t.Fatalf("Stdout = %q, want %q", res.Stdout, want)
	}
}

func TestParseFormatAcceptsTheKnownFormatsAndRefusesOthers(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr bool
	}{
		{"text", FormatText, false},
		{"json", FormatJSON, false},
		{"jsonl", FormatJSONL, false},
		{"yaml", FormatYAML, false},
		{" YAML ", FormatYAML, false},
		{"", FormatText, false},
		{"xml", "", true},
		{"yml", "", true},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "text, json, jsonl, yaml") {
			t.Errorf("ParseFormat(%q) error %q does not list the allowed formats", tt.in, err)
		}
	}
}
