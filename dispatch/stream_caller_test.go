package dispatch_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
)

func newTestCaller(t *testing.T, b bus.Bus, subject string, rec *testlog.Recorder) *dispatch.Caller {
	t.Helper()
	c, err := dispatch.NewCaller(testkit.Context(t), b, subject, dispatch.With(heddle.WithLogger(rec.Logger())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestACallerGivesEachConcurrentCallItsOwnResult(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		t.Run("concurrent calls over one subscription each get their own result", func(t *testing.T) {
			wk := connect()
			for range 2 {
				testkit.Responder(t, wk, "caller_echo", heddle.WorkerQueueGroup("caller_echo"), func(task heddle.TaskMessage) [][]byte {
					return [][]byte{testkit.Encode(t, testkit.Echo(task))}
				})
			}
			rec := testlog.New()
			c := newTestCaller(t, connect(), heddle.SubjectResultsDefault, rec)
			var wg sync.WaitGroup
			for g := range 20 {
				wg.Go(func() {
					for i := range 25 {
						task := heddle.NewTaskMessage("caller_echo", map[string]any{"g": g, "i": i})
						res, err := c.Request(testkit.Context(t), task, dispatch.Direct(), dispatch.Timeout(testkit.Wait))
						if err != nil || res.TaskID != task.TaskID || fmt.Sprint(res.Output["echo"]) != fmt.Sprint(map[string]any{"g": float64(g), "i": float64(i)}) {
							t.Errorf("call %d/%d: %+v, %v", g, i, res, err)
							return
						}
					}
				})
			}
			wg.Wait()
			if st := c.Stats(); st != (dispatch.StreamStats{Collected: 500}) {
				t.Fatalf("stats %+v, want 500 collected and nothing else", st)
			}
		})
		t.Run("a malformed result and a contract violation are skipped and the valid result returned", func(t *testing.T) {
			contract, err := contracts.FromJSON(nil, []byte(`{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}`))
			if err != nil {
				t.Fatal(err)
			}
			testkit.Responder(t, connect(), "caller_flaky", "", func(task heddle.TaskMessage) [][]byte {
				return [][]byte{
					[]byte(`{"task_id":` + `"` + task.TaskID + `", oops`),
					testkit.Encode(t, task.Result(heddle.StatusCompleted, map[string]any{"n": "one"}, nil)),
					testkit.Encode(t, task.Result(heddle.StatusCompleted, map[string]any{"n": 1}, nil)),
				}
			})
			rec := testlog.New()
			c := newTestCaller(t, connect(), heddle.SubjectResultsDefault, rec)
			res, err := c.Request(testkit.Context(t), heddle.NewTaskMessage("caller_flaky", nil),
				dispatch.Direct(), dispatch.Contract(contract), dispatch.Timeout(testkit.Wait))
			if err != nil || res.Output["n"] != float64(1) {
				t.Fatalf("DispatchAndWait = %+v, %v; want the valid result", res, err)
			}
			recs := rec.All("result_stream.parse_error")
			if len(recs) != 2 || !strings.Contains(recs[0].Attrs["error"].(string), "malformed JSON") || !strings.Contains(recs[1].Attrs["error"].(string), "/n") {
				t.Fatalf("parse_error events %+v, want the malformed JSON then /n", recs)
			}
			if st := c.Stats(); st.ParseErrors != 2 || st.Collected != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
		t.Run("a timeout names the task, and its result arriving afterwards is late", func(t *testing.T) {
			wk := connect()
			rec := testlog.New()
			c := newTestCaller(t, connect(), heddle.SubjectResultsDefault, rec)
			// A worker that takes the task and never answers.
			testkit.Responder(t, wk, "caller_silent", "", func(heddle.TaskMessage) [][]byte { return nil })
			task := heddle.NewTaskMessage("caller_silent", nil)
			res, err := c.Request(testkit.Context(t), task, dispatch.Direct(), dispatch.Timeout(testkit.ShortTimeout))
			var te *dispatch.TimeoutError
			if res != nil || !errors.As(err, &te) || !slices.Equal(te.PendingTaskIDs, []string{task.TaskID}) || te.ExpectedCount != 1 {
				t.Fatalf("DispatchAndWait = %v, %v; want a timeout naming %s", res, err, task.TaskID)
			}
			ctx := testkit.Context(t)
			if err := wk.Publish(ctx, &bus.Msg{Subject: task.ResultSubject(), Data: testkit.Encode(t, testkit.Echo(task))}); err != nil {
				t.Fatal(err)
			}
			if recs := rec.Wait(t, "result_stream.late", 1); recs[0].Attrs["task_id"] != task.TaskID {
				t.Fatalf("late event %+v", recs[0].Attrs)
			}
			if st := c.Stats(); st != (dispatch.StreamStats{Late: 1, Timeouts: 1}) {
				t.Fatalf("stats %+v", st)
			}
		})
		t.Run("a repeated result is a duplicate and an unknown task_id is ignored", func(t *testing.T) {
			testkit.Responder(t, connect(), "caller_twice", "", func(task heddle.TaskMessage) [][]byte {
				other := testkit.Echo(task)
				other.TaskID = "someone-else"
				return [][]byte{testkit.Encode(t, other), testkit.Encode(t, testkit.Echo(task)), testkit.Encode(t, testkit.Echo(task))}
			})
			rec := testlog.New()
			c := newTestCaller(t, connect(), heddle.SubjectResultsDefault, rec)
			task := heddle.NewTaskMessage("caller_twice", nil)
			if _, err := c.Request(testkit.Context(t), task, dispatch.Direct(), dispatch.Timeout(testkit.Wait)); err != nil {
				t.Fatal(err)
			}
			rec.Wait(t, "result_stream.duplicate", 1)
			if st := c.Stats(); st != (dispatch.StreamStats{Collected: 1, Duplicates: 1, Ignored: 1}) {
				t.Fatalf("stats %+v", st)
			}
			if _, err := c.Request(testkit.Context(t), task, dispatch.Direct()); !errors.Is(err, dispatch.ErrDuplicateTaskID) {
				t.Fatalf("dispatching the answered task_id again: %v, want ErrDuplicateTaskID", err)
			}
		})
		t.Run("rejected calls publish nothing", func(t *testing.T) {
			caller, watcher := connect(), connect()
			spy := newStreamSpy(t, watcher, "heddle.tasks.>")
			c := newTestCaller(t, caller, heddle.ResultSubject("caller-parent"), testlog.New())
			contract, err := contracts.FromJSON([]byte(`{"type":"object","required":["text"]}`), nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := testkit.Context(t)
			orphan := heddle.NewTaskMessage("w", map[string]any{"text": "x"})
			if _, err := c.Request(ctx, orphan); !errors.Is(err, dispatch.ErrResultSubjectMismatch) {
				t.Fatalf("a task without the caller's parent: %v, want ErrResultSubjectMismatch", err)
			}
			empty := heddle.NewTaskMessage("w", nil)
			empty.ParentTaskID = "caller-parent"
			if _, err := c.Request(ctx, empty, dispatch.Contract(contract)); !errors.Is(err, contracts.ErrViolation) {
				t.Fatalf("a payload violating the contract: %v, want ErrViolation", err)
			}
			spy.assertNothingBefore(t, caller, heddle.SubjectTasksIncoming)
		})
		t.Run("Close ends a waiting call and later calls", func(t *testing.T) {
			rec := testlog.New()
			c := newTestCaller(t, connect(), heddle.SubjectResultsDefault, rec)
			done := make(chan error, 1)
			go func() {
				_, err := c.Request(testkit.Context(t), heddle.NewTaskMessage("caller_silent", nil), dispatch.Timeout(testkit.Wait))
				done <- err
			}()
			// The call is waiting once its task is published; a Close before
			// that also makes it return ErrStreamClosed.
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; !errors.Is(err, dispatch.ErrStreamClosed) {
				t.Fatalf("waiting call: %v, want ErrStreamClosed", err)
			}
			if _, err := c.Request(testkit.Context(t), heddle.NewTaskMessage("w", nil)); !errors.Is(err, dispatch.ErrStreamClosed) {
				t.Fatalf("call after Close: %v, want ErrStreamClosed", err)
			}
		})
	})
}
