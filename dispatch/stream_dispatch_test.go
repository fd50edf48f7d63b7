package dispatch_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
)

func TestRequestReturnsTheResultOfItsTaskOrATypedError(t *testing.T) {
	contract, err := contracts.FromJSON(
		[]byte(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`),
		[]byte(`{"type":"object","properties":{"length":{"type":"integer"}},"required":["length"]}`))
	if err != nil {
		t.Fatal(err)
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller, wk, watcher := connect(), connect(), connect()
		// "measure" answers with the payload's length; "broken" first with
		// an output violating the contract, then a valid one; "failing"
		// with a failed result; "silent" never.
		testkit.Responder(t, wk, "measure", "", func(task heddle.TaskMessage) [][]byte {
			text, _ := task.Payload["text"].(string)
			return [][]byte{testkit.Encode(t, task.Result(heddle.StatusCompleted, map[string]any{"length": len(text)}, nil))}
		})
		testkit.Responder(t, wk, "broken", "", func(task heddle.TaskMessage) [][]byte {
			return [][]byte{
				testkit.Encode(t, task.Result(heddle.StatusCompleted, map[string]any{"length": "long"}, nil)),
				testkit.Encode(t, task.Result(heddle.StatusCompleted, map[string]any{"length": 4}, nil)),
			}
		})
		testkit.Responder(t, wk, "failing", "", func(task heddle.TaskMessage) [][]byte {
			return [][]byte{testkit.Encode(t, task.Result(heddle.StatusFailed, nil, errors.New("no such file")))}
		})
		spy := newStreamSpy(t, watcher, "heddle.tasks.>")
		// A stand-in for the Router: it forwards what reaches
		// heddle.tasks.incoming to the task's worker subject.
		_, err := wk.Subscribe(context.Background(), heddle.SubjectTasksIncoming, func(ctx context.Context, m *bus.Msg) error {
			task, err := heddle.DecodeTaskMessage(m.Data)
			if err != nil {
				return nil // the spy's sentinel
			}
			return wk.Publish(ctx, &bus.Msg{Subject: task.WorkerSubject(), Data: m.Data})
		})
		if err != nil {
			t.Fatal(err)
		}
		// drainSpyAtLeast empties what the spy saw so far, up to a sentinel
		// from the caller, and past it until at least n other messages came:
		// a message another connection published before the sentinel is not
		// ordered with it for a third subscription (no bus promises order
		// across publishers), so it may come just after.
		drainSpyAtLeast := func(t *testing.T, n int) []string {
			t.Helper()
			ctx := testkit.Context(t)
			if err := caller.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := caller.Publish(ctx, &bus.Msg{Subject: "heddle.tasks.spy_sentinel.standard", Data: []byte("sentinel")}); err != nil {
				t.Fatal(err)
			}
			var subjects []string
			seen := false
			for {
				if seen && len(subjects) >= n {
					return subjects
				}
				select {
				case m := <-spy.msgs:
					if string(m.Data) == "sentinel" {
						seen = true
						continue
					}
					subjects = append(subjects, m.Subject)
				case <-ctx.Done():
					t.Fatal("the sentinel never arrived")
				}
			}
		}
		drainSpy := func(t *testing.T) []string { return drainSpyAtLeast(t, 0) }

		t.Run("returns the worker's result, through the router by default", func(t *testing.T) {
			drainSpy(t)
			task := heddle.NewTaskMessage("measure", map[string]any{"text": "hello"})
			res, err := dispatch.Request(testkit.Context(t), caller, task, dispatch.Timeout(testkit.Wait))
			if err != nil || res.TaskID != task.TaskID || res.Status != heddle.StatusCompleted || res.Output["length"] != float64(5) {
				t.Fatalf("DispatchAndWait = %+v, %v", res, err)
			}
			// Two publishers: the order between them is not defined.
			want := []string{heddle.SubjectTasksIncoming, task.WorkerSubject()}
			if got := drainSpyAtLeast(t, len(want)); !slices.Equal(slices.Sorted(slices.Values(got)), want) {
				t.Fatalf("task went through %v, want %v", got, want)
			}
		})
		t.Run("Direct publishes to the worker subject only", func(t *testing.T) {
			drainSpy(t)
			task := heddle.NewTaskMessage("measure", map[string]any{"text": "hi"})
			task.ModelTier = heddle.TierFrontier
			res, err := dispatch.Request(testkit.Context(t), caller, task, dispatch.Direct(), dispatch.Timeout(testkit.Wait))
			if err != nil || res.Output["length"] != float64(2) {
				t.Fatalf("DispatchAndWait = %+v, %v", res, err)
			}
			if got := drainSpy(t); !slices.Equal(got, []string{"heddle.tasks.measure.frontier"}) {
				t.Fatalf("task went through %v, want only heddle.tasks.measure.frontier", got)
			}
		})
		t.Run("a failed result is returned as a result, not an error", func(t *testing.T) {
			res, err := dispatch.Request(testkit.Context(t), caller, heddle.NewTaskMessage("failing", nil),
				dispatch.Direct(), dispatch.Timeout(testkit.Wait))
			if err != nil || res.Status != heddle.StatusFailed || res.Error != "no such file" {
				t.Fatalf("DispatchAndWait = %+v, %v", res, err)
			}
		})
		t.Run("a payload violating the input contract is an error and nothing is published", func(t *testing.T) {
			drainSpy(t)
			task := heddle.NewTaskMessage("measure", map[string]any{"text": 42})
			res, err := dispatch.Request(testkit.Context(t), caller, task, dispatch.Contract(contract), dispatch.Timeout(testkit.Wait))
			var ve *contracts.ValidationError
			if res != nil || !errors.As(err, &ve) || !errors.Is(err, contracts.ErrViolation) || !strings.Contains(err.Error(), "/text") {
				t.Fatalf("DispatchAndWait = %v, %v; want a contract violation naming /text", res, err)
			}
			if got := drainSpy(t); len(got) != 0 {
				t.Fatalf("published %v, want nothing", got)
			}
		})
		t.Run("an invalid task is an error naming the field and nothing is published", func(t *testing.T) {
			drainSpy(t)
			task := heddle.NewTaskMessage("measure", map[string]any{"text": "x"})
			task.Priority = "urgent"
			res, err := dispatch.Request(testkit.Context(t), caller, task)
			var ve *heddle.ValidationError
			if res != nil || !errors.As(err, &ve) || !ve.Has("priority") {
				t.Fatalf("DispatchAndWait = %v, %v; want a ValidationError naming priority", res, err)
			}
			if got := drainSpy(t); len(got) != 0 {
				t.Fatalf("published %v, want nothing", got)
			}
		})
		t.Run("an output violating the output contract is skipped and the valid result returned", func(t *testing.T) {
			rec := testlog.New()
			task := heddle.NewTaskMessage("broken", map[string]any{"text": "four"})
			res, err := dispatch.Request(testkit.Context(t), caller, task, dispatch.Direct(),
				dispatch.Contract(contract), dispatch.Timeout(testkit.Wait), dispatch.With(heddle.WithLogger(rec.Logger())))
			if err != nil || res.Output["length"] != float64(4) {
				t.Fatalf("DispatchAndWait = %+v, %v; want the valid result", res, err)
			}
			recs := rec.All("result_stream.parse_error")
			if len(recs) != 1 || !strings.Contains(recs[0].Attrs["error"].(string), "/length") {
				t.Fatalf("parse_error events %+v, want one naming /length", recs)
			}
		})
		t.Run("a worker that never answers is a *TimeoutError naming the task, never a nil result with a nil error", func(t *testing.T) {
			task := heddle.NewTaskMessage("silent", nil)
			res, err := dispatch.Request(testkit.Context(t), caller, task, dispatch.Direct(), dispatch.Timeout(testkit.ShortTimeout))
			var te *dispatch.TimeoutError
			if res != nil || !errors.As(err, &te) || !slices.Equal(te.PendingTaskIDs, []string{task.TaskID}) ||
				te.ExpectedCount != 1 || te.CollectedCount != 0 || !strings.Contains(err.Error(), task.TaskID) {
				t.Fatalf("DispatchAndWait = %v, %v; want a timeout naming %s", res, err, task.TaskID)
			}
		})
		t.Run("a cancelled context is returned as the error", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			res, err := dispatch.Request(ctx, caller, heddle.NewTaskMessage("silent", nil))
			if res != nil || !errors.Is(err, context.Canceled) {
				t.Fatalf("DispatchAndWait = %v, %v; want context.Canceled", res, err)
			}
		})
	})
}
