package worker_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/worker"
)

func TestExecWorkerCarriesEachOutputExactlyOnce(t *testing.T) {
	tests := []struct {
		name       string
		format     worker.ExecFormat
		script     string
		timeout    time.Duration
		wantStatus heddle.TaskStatus
		wantKey    string // "stdout" or "result": the one that must be there
		want       string // its value, as JSON
		wantExit   int
		wantStderr string
		wantError  string // in the result's error when failed
		parseError bool
	}{
		{
			name: "text output is kept in stdout alone", format: worker.ExecText,
			script:     `cat; echo " note" >&2`,
			wantStatus: heddle.StatusCompleted, wantKey: "stdout", want: `"{\"n\":7,\"name\":\"ada\"}"`, wantStderr: " note\n",
		},
		{
			name: "the zero format is text", format: "",
			script:     `printf 'plain'`,
			wantStatus: heddle.StatusCompleted, wantKey: "stdout", want: `"plain"`,
		},
		{
			name: "json output is parsed into result alone", format: worker.ExecJSON,
			script:     `printf '{"sum": 12, "tags": ["a", "b"]}'`,
			wantStatus: heddle.StatusCompleted, wantKey: "result", want: `{"sum":12,"tags":["a","b"]}`,
		},
		{
			name: "json output can be the payload read from stdin", format: worker.ExecJSON,
			script:     `cat`,
			wantStatus: heddle.StatusCompleted, wantKey: "result", want: `{"n":7,"name":"ada"}`,
		},
		{
			name: "yaml output is parsed into result alone", format: worker.ExecYAML,
			script:     `printf 'name: ada\nlangs: [go, python]\nborn: 1815-12-10\n'`,
			wantStatus: heddle.StatusCompleted, wantKey: "result", want: `{"born":"1815-12-10","langs":["go","python"],"name":"ada"}`,
		},
		{
			name: "jsonl output is parsed into an array in result alone", format: worker.ExecJSONL,
			script:     `printf '{"i":1}\n\n{"i":2}\n'`,
			wantStatus: heddle.StatusCompleted, wantKey: "result", want: `[{"i":1},{"i":2}]`,
		},
		{
			name: "json output that does not parse is kept in stdout with the parse error", format: worker.ExecJSON,
			script:     `echo 'not json'`,
			wantStatus: heddle.StatusFailed, wantKey: "stdout", want: `"not json\n"`,
			wantError: "not valid json", parseError: true,
		},
		{
			name: "a non-zero exit fails the task with stderr in the error", format: worker.ExecJSON,
			script:     `echo 'quota exceeded' >&2; exit 3`,
			wantStatus: heddle.StatusFailed, wantKey: "stdout", want: `""`, wantExit: 3, wantStderr: "quota exceeded\n",
			wantError: "quota exceeded",
		},
		{
			name: "a command outliving its timeout is killed and fails naming the timeout", format: worker.ExecText,
			script: `printf 'started'; exec sleep 30`, timeout: 50 * time.Millisecond,
			wantStatus: heddle.StatusFailed, wantKey: "stdout", want: `"started"`, wantExit: -1,
			wantError: "timeout of 50ms",
		},
		{
			name: "the command sees the task in its environment", format: worker.ExecText,
			script:     `printf '%s/%s' "$HEDDLE_WORKER_TYPE" "$HEDDLE_MODEL_TIER"`,
			wantStatus: heddle.StatusCompleted, wantKey: "stdout", want: `"{worker_type}/standard"`,
		},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wt := workerTestType("exec")
				w, err := worker.NewExec(connect(), wt, worker.ExecSpec{
					Command:      []string{"/bin/sh", "-c", tt.script},
					OutputFormat: tt.format,
					Timeout:      tt.timeout,
				}, worker.Config{})
				if err != nil {
					t.Fatal(err)
				}
				workerStart(t, w)
				caller := connect()
				results := workerCollect(t, caller, heddle.SubjectResultsDefault)
				task := heddle.NewTaskMessage(wt, map[string]any{"name": "ada", "n": 7})
				workerPublishTask(t, caller, task)

				r := results.next(t)
				if r.Status != tt.wantStatus {
					t.Fatalf("status %s (error %q), want %s", r.Status, r.Error, tt.wantStatus)
				}
				if !strings.Contains(r.Error, tt.wantError) {
					t.Errorf("error %q does not contain %q", r.Error, tt.wantError)
				}
				out := r.Output
				other := map[string]string{"stdout": "result", "result": "stdout"}[tt.wantKey]
				if _, ok := out[other]; ok {
					t.Errorf("output has %q besides %q: the output appears twice: %v", other, tt.wantKey, out)
				}
				got, err := json.Marshal(out[tt.wantKey])
				if _, ok := out[tt.wantKey]; !ok || err != nil {
					t.Fatalf("output has no %q: %v", tt.wantKey, out)
				}
				if want := strings.ReplaceAll(tt.want, "{worker_type}", wt); string(got) != want {
					t.Errorf("output %s = %s, want %s", tt.wantKey, got, want)
				}
				if code, ok := out["exit_code"].(float64); !ok || int(code) != tt.wantExit {
					t.Errorf("exit_code = %v, want %d", out["exit_code"], tt.wantExit)
				}
				if stderr, ok := out["stderr"].(string); !ok || stderr != tt.wantStderr {
					t.Errorf("stderr = %q, want %q", out["stderr"], tt.wantStderr)
				}
				if _, ok := out["parse_error"]; ok != tt.parseError {
					t.Errorf("parse_error present = %v, want %v (output %v)", ok, tt.parseError, out)
				}
			})
		}
	})
}

func TestExecWorkerRetriesAFailingCommandOnlyWhenAsked(t *testing.T) {
	tests := []struct {
		name         string
		retry        bool
		wantAttempts string
	}{
		{"by default a non-zero exit fails at once", false, "1"},
		{"with RetryFailures a non-zero exit is retried up to max_retries", true, "3"},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wt := workerTestType("exec_retry")
				// The command reports how many attempts came before it.
				w, err := worker.NewExec(connect(), wt, worker.ExecSpec{
					Command:       []string{"/bin/sh", "-c", `echo "attempt $((HEDDLE_RETRY_COUNT + 1))" >&2; exit 1`},
					RetryFailures: tt.retry,
				}, worker.Config{RetryBackoff: time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				workerStart(t, w)
				caller := connect()
				results := workerCollect(t, caller, heddle.SubjectResultsDefault)
				workerPublishTask(t, caller, heddle.NewTaskMessage(wt, nil))

				r := results.next(t)
				if r.Status != heddle.StatusFailed {
					t.Fatalf("status %s, want failed", r.Status)
				}
				if want := "attempt " + tt.wantAttempts + "\n"; r.Output["stderr"] != want {
					t.Errorf("last stderr = %q, want %q", r.Output["stderr"], want)
				}
			})
		}
	})
}
