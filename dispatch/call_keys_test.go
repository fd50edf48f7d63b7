package dispatch_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
)

type cappedIn struct {
	Text string `json:"text"`
}

type cappedOut struct {
	N int `json:"n" jsonschema:"maximum=10"`
}

type nestedOut struct {
	A struct {
		X int `json:"x,omitempty" jsonschema:"maximum=10"`
		Y int `json:"y"`
	} `json:"a"`
}

// withOutput is the completed result of task whose output is written as
// output, as a foreign worker may write it.
func withOutput(t *testing.T, task heddle.TaskMessage, output string) []byte {
	t.Helper()
	data := testkit.Encode(t, task.Result(heddle.StatusCompleted, nil, nil))
	if !bytes.Contains(data, []byte(`"output":null`)) {
		t.Fatalf("no null output in %s", data)
	}
	return bytes.Replace(data, []byte(`"output":null`), []byte(`"output":`+output), 1)
}

// foreignWorker answers every task of workerType with the outputs given,
// in order.
func foreignWorker(t *testing.T, b bus.Bus, workerType string, outputs ...string) {
	t.Helper()
	testkit.Responder(t, b, workerType, "", func(task heddle.TaskMessage) [][]byte {
		var out [][]byte
		for _, o := range outputs {
			out = append(out, withOutput(t, task, o))
		}
		return out
	})
}

func TestATypedCallDecodesOnlyTheKeysItsContractChecked(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wk, b := connect(), connect()
		ctx := testkit.Context(t)

		t.Run("a key naming a field only by case is refused, and a later valid result wins", func(t *testing.T) {
			// The contract says n <= 10; encoding/json would fill N from "N".
			foreignWorker(t, wk, "capped_case", `{"n":1,"N":999}`, `{"n":3}`)
			out, err := dispatch.Call[cappedIn, cappedOut](ctx, b, "capped_case", cappedIn{"x"}, dispatch.Direct(), dispatch.Timeout(testkit.Wait))
			if err != nil || out.N != 3 {
				t.Errorf("Call = %+v, %v; want the valid result, N 3", out, err)
			}
			c, err := dispatch.NewCaller(ctx, b, heddle.SubjectResultsDefault)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			out, err = dispatch.CallWith[cappedIn, cappedOut](ctx, c, "capped_case", cappedIn{"x"}, dispatch.Direct(), dispatch.Timeout(testkit.Wait))
			if err != nil || out.N != 3 {
				t.Errorf("CallWith = %+v, %v; want the valid result, N 3", out, err)
			}
			if st := c.Stats(); st.ParseErrors != 1 || st.Collected != 1 {
				t.Errorf("stats %+v, want the first result a parse_error and the second collected", st)
			}
		})

		t.Run("a repeated key counts by its last value only, as the contract read it", func(t *testing.T) {
			// The contract sees a = {"y":2}; encoding/json alone would fill
			// the same struct from both, x = 999 included.
			foreignWorker(t, wk, "capped_repeat", `{"a":{"x":999},"a":{"y":2}}`)
			out, err := dispatch.Call[cappedIn, nestedOut](ctx, b, "capped_repeat", cappedIn{"x"}, dispatch.Direct(), dispatch.Timeout(testkit.Wait))
			if err != nil || out.A.X != 0 || out.A.Y != 2 {
				t.Errorf("Call = %+v, %v; want a.y 2 and no a.x", out, err)
			}
		})

		t.Run("a timeout names each rejected result, when it arrived and why", func(t *testing.T) {
			bad := []struct {
				output, why string
				violation   bool // of the contract, or a key's case
			}{
				{`{"n":"one"}`, "/n", true},
				{`{}`, "/n: required", true},
				{`null`, "/n: required", true},
				{`{"n":null}`, "/n", true},
				{`{"n":11}`, "/n", true},
				{`{"n":1,"N":999}`, `/N: the key names the field "n" only by case`, true},
				{`{"n":-1e30}`, "does not decode as dispatch_test.cappedOut", false},
				{`{"n":1e400}`, "invalid TaskResult", false},
			}
			var outputs []string
			for _, r := range bad {
				outputs = append(outputs, r.output)
			}
			foreignWorker(t, wk, "capped_bad", outputs...)
			// The timeout must come after every answer arrived; a machine too
			// slow for that gets a longer one.
			for timeout := 200 * time.Millisecond; ; timeout *= 2 {
				sent := time.Now()
				_, err := dispatch.Call[cappedIn, cappedOut](ctx, b, "capped_bad", cappedIn{"x"}, dispatch.Direct(), dispatch.Timeout(timeout))
				var te *dispatch.TimeoutError
				if !errors.As(err, &te) {
					t.Fatalf("Call = %v, want a *TimeoutError", err)
				}
				if len(te.Rejected) < len(bad) && timeout < testkit.Wait/4 {
					continue
				}
				if len(te.Rejected) != len(bad) || te.MoreRejected != 0 {
					t.Fatalf("%d rejected results listed, %d more; want %d: %v", len(te.Rejected), te.MoreRejected, len(bad), err)
				}
				id := te.PendingTaskIDs[0]
				for i, r := range te.Rejected {
					if r.TaskID != id || r.Arrived.Before(sent) || i > 0 && r.Arrived.Before(te.Rejected[i-1].Arrived) ||
						r.Err == nil || !strings.Contains(r.Err.Error(), bad[i].why) {
						t.Errorf("rejected result %d: %+v; want task %s, in arrival order, for %q", i, r, id, bad[i].why)
					}
					if errors.Is(r.Err, contracts.ErrViolation) != bad[i].violation {
						t.Errorf("rejected result %d: %v; a contract violation: %v", i, r.Err, bad[i].violation)
					}
					want := "a result for task " + id + " arrived at " + r.Arrived.Format("2006-01-02T15:04:05.000000Z07:00") + " and was rejected: " + r.Err.Error()
					if !strings.Contains(err.Error(), want) {
						t.Errorf("the error says %q\nwant it to say %q", err, want)
					}
				}
				if strings.Contains(err.Error(), "router") {
					t.Errorf("the error %q blames the router, which delivered every answer", err)
				}
				return
			}
		})
	})
}

func TestAStreamTimeoutNamesTheRejectedResultsOfItsPendingTasks(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		contract, err := contracts.For[cappedIn, cappedOut]()
		if err != nil {
			t.Fatal(err)
		}
		// Task "fixed" is answered badly, then well; task "broken" badly only.
		testkit.Responder(t, connect(), "stream_capped", "", func(task heddle.TaskMessage) [][]byte {
			if task.Payload["text"] == "fixed" {
				return [][]byte{withOutput(t, task, `{"n":12}`), withOutput(t, task, `{"n":2}`)}
			}
			return [][]byte{withOutput(t, task, `{"n":13}`)}
		})
		b := connect()
		ctx := testkit.Context(t)
		// The timeout must come after every answer arrived; a machine too
		// slow for that gets a longer one.
		for timeout := 200 * time.Millisecond; ; timeout *= 2 {
			s, err := dispatch.NewStream(ctx, b, heddle.SubjectResultsDefault,
				dispatch.Direct(), dispatch.Timeout(timeout), dispatch.Contract(contract))
			if err != nil {
				t.Fatal(err)
			}
			fixed := heddle.NewTaskMessage("stream_capped", map[string]any{"text": "fixed"})
			broken := heddle.NewTaskMessage("stream_capped", map[string]any{"text": "broken"})
			if err := s.Dispatch(ctx, fixed, broken); err != nil {
				t.Fatal(err)
			}
			results, err := s.Collect(ctx)
			_ = s.Close()
			var te *dispatch.TimeoutError
			if !errors.As(err, &te) {
				t.Fatalf("Collect = %v, want a *TimeoutError", err)
			}
			if (len(results) != 1 || len(te.Rejected) != 1) && timeout < testkit.Wait/4 {
				continue
			}
			if len(results) != 1 || results[0].TaskID != fixed.TaskID {
				t.Fatalf("collected %+v, want the fixed task's valid result", results)
			}
			if len(te.Rejected) != 1 || te.Rejected[0].TaskID != broken.TaskID || !strings.Contains(te.Rejected[0].Err.Error(), "/n: must be <= 10 but found 13") {
				t.Fatalf("rejected %+v, want only the pending task's result", te.Rejected)
			}
			if !strings.Contains(err.Error(), "a result for task "+broken.TaskID+" arrived at ") {
				t.Fatalf("the error %q does not name the rejected result", err)
			}
			return
		}
	})
}
