package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// streamSpy records every message on subject, seen from conn.
type streamSpy struct {
	msgs chan *bus.Msg
}

func newStreamSpy(t *testing.T, conn bus.Bus, subject string) *streamSpy {
	t.Helper()
	s := &streamSpy{msgs: make(chan *bus.Msg, 1024)}
	if _, err := conn.Subscribe(context.Background(), subject, func(_ context.Context, m *bus.Msg) error {
		s.msgs <- m
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// assertNothingBefore proves the spy saw nothing on subject so far: it
// flushes pub, publishes a sentinel there from pub (messages from one
// publisher arrive in order) and requires the sentinel to be the first
// message the spy sees.
func (s *streamSpy) assertNothingBefore(t *testing.T, pub bus.Bus, subject string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait)
	defer cancel()
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, &bus.Msg{Subject: subject, Data: []byte("sentinel")}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-s.msgs:
		if string(m.Data) != "sentinel" {
			t.Fatalf("%s received %q before the sentinel; want nothing published", m.Subject, m.Data)
		}
	case <-ctx.Done():
		t.Fatal("the sentinel never arrived")
	}
}

func newTestStream(t *testing.T, b bus.Bus, subject string, log *slog.Logger, opts ...dispatch.Option) *dispatch.Stream {
	t.Helper()
	s, err := dispatch.NewStream(testkit.Context(t), b, subject, append(opts, dispatch.With(heddle.WithLogger(log)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// streamOrderBus is a recordingBus that plays an instant worker: when a
// task is published on a worker subject it publishes the task's result
// right behind it, before Publish returns, and records it as "reply".
type streamOrderBus struct {
	*recordingBus
}

func (o streamOrderBus) Publish(ctx context.Context, m *bus.Msg) error {
	if err := o.recordingBus.Publish(ctx, m); err != nil {
		return err
	}
	task, err := heddle.DecodeTaskMessage(m.Data)
	if err != nil || !strings.HasPrefix(m.Subject, "heddle.tasks.") {
		return nil
	}
	data, err := testkit.Echo(task).Encode()
	if err != nil {
		return err
	}
	o.record("reply " + task.ResultSubject())
	return o.Bus.Publish(ctx, &bus.Msg{Subject: task.ResultSubject(), Data: data})
}

func TestResultStreamNeverMissesAnInstantReply(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		t.Run("a worker replying the moment it receives the task loses nothing in 1,000 round trips", func(t *testing.T) {
			caller, wk := connect(), connect()
			testkit.Responder(t, wk, "instant", "", func(task heddle.TaskMessage) [][]byte {
				return [][]byte{testkit.Encode(t, testkit.Echo(task))}
			})
			losses := 0
			for i := range 1000 {
				task := heddle.NewTaskMessage("instant", map[string]any{"i": i})
				ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait)
				res, err := dispatch.Request(ctx, caller, task, dispatch.Direct(), dispatch.Timeout(testkit.Wait))
				cancel()
				if err != nil || res.TaskID != task.TaskID {
					losses++
					t.Errorf("round trip %d: result %v, error %v", i, res, err)
				}
			}
			if losses != 0 {
				t.Fatalf("%d of 1,000 results lost", losses)
			}
		})
		t.Run("a result published before Dispatch returns is collected, because the stream subscribed first", func(t *testing.T) {
			ob := streamOrderBus{newRecordingBus(connect())}
			s := newTestStream(t, ob, heddle.SubjectResultsDefault, nil, dispatch.Direct(), dispatch.Timeout(testkit.Wait))
			// The bus answers itself; a worker type of its own keeps the
			// responder of the test above out of it.
			task := heddle.NewTaskMessage("instant_ordered", nil)
			if err := s.Dispatch(testkit.Context(t), task); err != nil {
				t.Fatal(err)
			}
			results, err := s.Collect(testkit.Context(t))
			if err != nil || len(results) != 1 || results[0].TaskID != task.TaskID {
				t.Fatalf("Collect = %v, %v; want the one result", results, err)
			}
			want := []string{"subscribe heddle.results.default", "publish " + task.WorkerSubject(), "reply heddle.results.default"}
			if got := ob.recorded(); !slices.Equal(got, want) {
				t.Fatalf("bus calls %q, want %q", got, want)
			}
		})
	})
}

func TestResultStreamKeepsWaitingAfterAMalformedResult(t *testing.T) {
	outputContract, err := contracts.FromJSON(nil, []byte(`{"type":"object","properties":{"count":{"type":"integer"}},"required":["count"]}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		contract  *contracts.Contract
		bad       func(task heddle.TaskMessage) []byte
		wantError string
		wantID    bool // the parse_error names the task_id
	}{
		{
			name:      "malformed JSON is a parse error",
			bad:       func(task heddle.TaskMessage) []byte { return []byte(`{"task_id": "` + task.TaskID + `", oops`) },
			wantError: "malformed JSON",
		},
		{
			name: "a result without status is a parse error naming status",
			bad: func(task heddle.TaskMessage) []byte {
				return []byte(`{"task_id":"` + task.TaskID + `","parent_task_id":null,"worker_type":"` + task.WorkerType + `","output":{}}`)
			},
			wantError: "status: required",
			wantID:    true,
		},
		{
			name:     "an output violating the worker's output contract is a parse error naming the field",
			contract: outputContract,
			bad: func(task heddle.TaskMessage) []byte {
				r := task.Result(heddle.StatusCompleted, map[string]any{"count": "three"}, nil)
				data, _ := r.Encode()
				return data
			},
			wantError: "/count",
			wantID:    true,
		},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				caller, wk := connect(), connect()
				workerType := fmt.Sprintf("flaky%d", i)
				testkit.Responder(t, wk, workerType, "", func(task heddle.TaskMessage) [][]byte {
					good := task.Result(heddle.StatusCompleted, map[string]any{"count": 3}, nil)
					return [][]byte{tt.bad(task), testkit.Encode(t, good)}
				})
				rec := testlog.New()
				s := newTestStream(t, caller, heddle.SubjectResultsDefault, rec.Logger(), dispatch.Direct(), dispatch.Timeout(testkit.Wait), dispatch.Contract(tt.contract))
				task := heddle.NewTaskMessage(workerType, nil)
				if err := s.Dispatch(testkit.Context(t), task); err != nil {
					t.Fatal(err)
				}
				results, err := s.Collect(testkit.Context(t))
				if err != nil || len(results) != 1 || results[0].Output["count"] != float64(3) {
					t.Fatalf("Collect = %+v, %v; want only the valid result", results, err)
				}
				if st := s.Stats(); st.ParseErrors != 1 || st.Collected != 1 {
					t.Fatalf("stats %+v, want 1 parse error and 1 collected", st)
				}
				recs := rec.All("result_stream.parse_error")
				if len(recs) != 1 {
					t.Fatalf("%d parse_error events, want 1", len(recs))
				}
				if msg, _ := recs[0].Attrs["error"].(string); !strings.Contains(msg, tt.wantError) {
					t.Fatalf("parse_error error = %q, want it to contain %q", msg, tt.wantError)
				}
				if id := recs[0].Attrs["task_id"]; tt.wantID && id != task.TaskID {
					t.Fatalf("parse_error task_id = %v, want %s", id, task.TaskID)
				}
			})
		}
	})
}

func TestResultStreamIgnoresDuplicatesAndUnknownTaskIDs(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		t.Run("a repeat and an unknown task_id are counted and never returned", func(t *testing.T) {
			caller, wk := connect(), connect()
			rec := testlog.New()
			subject := heddle.ResultSubject("parent-dup")
			s := newTestStream(t, caller, subject, rec.Logger(), dispatch.Timeout(testkit.Wait))
			if err := s.Expect("task-a", "task-b"); err != nil {
				t.Fatal(err)
			}
			ctx := testkit.Context(t)
			for _, id := range []string{"task-unknown", "task-a", "task-a", "task-b"} {
				r := heddle.NewTaskResult(id, "w", heddle.StatusCompleted)
				r.ParentTaskID = "parent-dup"
				if err := wk.Publish(ctx, &bus.Msg{Subject: subject, Data: testkit.Encode(t, r)}); err != nil {
					t.Fatal(err)
				}
			}
			results, err := s.Collect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range results {
				ids = append(ids, r.TaskID)
			}
			if !slices.Equal(ids, []string{"task-a", "task-b"}) {
				t.Fatalf("collected %v, want [task-a task-b]", ids)
			}
			if st := s.Stats(); st != (dispatch.StreamStats{Collected: 2, Ignored: 1, Duplicates: 1}) {
				t.Fatalf("stats %+v", st)
			}
			if recs := rec.All("result_stream.ignored"); len(recs) != 1 || recs[0].Attrs["task_id"] != "task-unknown" {
				t.Fatalf("ignored events %+v", recs)
			}
			if recs := rec.All("result_stream.duplicate"); len(recs) != 1 || recs[0].Attrs["task_id"] != "task-a" {
				t.Fatalf("duplicate events %+v", recs)
			}
		})
		t.Run("a malformed result naming another task_id is ignored, not a parse error", func(t *testing.T) {
			caller, wk := connect(), connect()
			s := newTestStream(t, caller, heddle.SubjectResultsDefault, nil, dispatch.Timeout(testkit.Wait))
			if err := s.Expect("mine"); err != nil {
				t.Fatal(err)
			}
			ctx := testkit.Context(t)
			for _, data := range [][]byte{
				[]byte(`{"worker_type":"w","status":"done","task_id":"theirs"}`),
				testkit.Encode(t, heddle.NewTaskResult("mine", "w", heddle.StatusCompleted)),
			} {
				if err := wk.Publish(ctx, &bus.Msg{Subject: heddle.SubjectResultsDefault, Data: data}); err != nil {
					t.Fatal(err)
				}
			}
			if results, err := s.Collect(ctx); err != nil || len(results) != 1 {
				t.Fatalf("Collect = %v, %v", results, err)
			}
			if st := s.Stats(); st != (dispatch.StreamStats{Collected: 1, Ignored: 1}) {
				t.Fatalf("stats %+v, want the other task's malformed result ignored", st)
			}
		})
		t.Run("streams sharing heddle.results.default each collect only their own task_ids", func(t *testing.T) {
			one, two, wk := connect(), connect(), connect()
			s1 := newTestStream(t, one, heddle.SubjectResultsDefault, nil, dispatch.Timeout(testkit.Wait))
			s2 := newTestStream(t, two, heddle.SubjectResultsDefault, nil, dispatch.Timeout(testkit.Wait))
			if err := s1.Expect("mine-1"); err != nil {
				t.Fatal(err)
			}
			if err := s2.Expect("mine-2"); err != nil {
				t.Fatal(err)
			}
			ctx := testkit.Context(t)
			for _, id := range []string{"mine-2", "mine-1"} {
				r := heddle.NewTaskResult(id, "w", heddle.StatusCompleted)
				if err := wk.Publish(ctx, &bus.Msg{Subject: heddle.SubjectResultsDefault, Data: testkit.Encode(t, r)}); err != nil {
					t.Fatal(err)
				}
			}
			for i, s := range []*dispatch.Stream{s1, s2} {
				results, err := s.Collect(ctx)
				want := fmt.Sprintf("mine-%d", i+1)
				if err != nil || len(results) != 1 || results[0].TaskID != want {
					t.Fatalf("stream %d collected %v, %v; want only %s", i+1, results, err, want)
				}
			}
			if st := s1.Stats(); st.Ignored != 1 || st.Collected != 1 {
				t.Fatalf("stream 1 stats %+v, want the other stream's result ignored", st)
			}
		})
	})
}

func TestResultStreamTimeoutNamesExactlyTheMissingTasks(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		t.Run("two of three results missing", func(t *testing.T) {
			caller, wk := connect(), connect()
			rec := testlog.New()
			subject := heddle.ResultSubject("parent-timeout")
			s := newTestStream(t, caller, subject, rec.Logger(), dispatch.Timeout(testkit.ShortTimeout))
			if err := s.Expect("task-c", "task-a", "task-b"); err != nil {
				t.Fatal(err)
			}
			r := heddle.NewTaskResult("task-b", "w", heddle.StatusCompleted)
			r.ParentTaskID = "parent-timeout"
			if err := wk.Publish(testkit.Context(t), &bus.Msg{Subject: subject, Data: testkit.Encode(t, r)}); err != nil {
				t.Fatal(err)
			}
			// Expect does not start the timeout; Collect does, after task-b
			// is in.
			rec.Wait(t, "result_stream.collected", 1)
			results, err := s.Collect(testkit.Context(t))

			var te *dispatch.TimeoutError
			if !errors.As(err, &te) || !errors.Is(err, dispatch.ErrTimeout) {
				t.Fatalf("Collect error %v, want a *TimeoutError matching ErrTimeout", err)
			}
			if len(results) != 1 || results[0].TaskID != "task-b" || len(te.Results) != 1 || te.Results[0].TaskID != "task-b" {
				t.Fatalf("partial results %v and %v, want [task-b] in both", results, te.Results)
			}
			if !slices.Equal(te.PendingTaskIDs, []string{"task-a", "task-c"}) || te.ExpectedCount != 3 || te.CollectedCount != 1 || te.Timeout != testkit.ShortTimeout {
				t.Fatalf("timeout error %+v", te)
			}
			meta := te.Metadata()
			wantMeta := map[string]any{"pending_task_ids": []string{"task-a", "task-c"}, "expected_count": 3,
				"collected_count": 1, "timeout_seconds": testkit.ShortTimeout.Seconds()}
			if fmt.Sprint(meta) != fmt.Sprint(wantMeta) {
				t.Fatalf("Metadata() = %v, want %v", meta, wantMeta)
			}
			if msg := err.Error(); !strings.Contains(msg, "task-a, task-c") || strings.Contains(msg, "task-b") {
				t.Fatalf("error text %q should name exactly the pending task_ids", msg)
			}
			if st := s.Stats(); st.Timeouts != 1 || st.Collected != 1 {
				t.Fatalf("stats %+v", st)
			}
			recs := rec.All("result_stream.timeout")
			if len(recs) != 1 || fmt.Sprint(recs[0].Attrs["pending_task_ids"]) != "[task-a task-c]" {
				t.Fatalf("timeout events %+v", recs)
			}
		})
		t.Run("a result published on another parent's subject is never seen and its task is named pending", func(t *testing.T) {
			// The runbook's first question: a worker that computed its
			// result subject from a wrong parent_task_id.
			caller, wk := connect(), connect()
			rec := testlog.New()
			s := newTestStream(t, caller, heddle.ResultSubject("parent-right"), rec.Logger(), dispatch.Timeout(testkit.ShortTimeout))
			if err := s.Expect("task-x"); err != nil {
				t.Fatal(err)
			}
			r := heddle.NewTaskResult("task-x", "w", heddle.StatusCompleted)
			r.ParentTaskID = "parent-wrong"
			ctx := testkit.Context(t)
			if err := wk.Publish(ctx, &bus.Msg{Subject: r.Subject(), Data: testkit.Encode(t, r)}); err != nil {
				t.Fatal(err)
			}
			if err := wk.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			_, err := s.Collect(ctx)
			var te *dispatch.TimeoutError
			if !errors.As(err, &te) || !slices.Equal(te.PendingTaskIDs, []string{"task-x"}) {
				t.Fatalf("Collect error %v, want a timeout naming task-x", err)
			}
			if st := s.Stats(); st != (dispatch.StreamStats{Timeouts: 1}) {
				t.Fatalf("stats %+v: the stream saw something", st)
			}
		})
		t.Run("every task dispatched to a worker nobody serves is pending, sorted", func(t *testing.T) {
			s := newTestStream(t, connect(), heddle.SubjectResultsDefault, nil, dispatch.Timeout(testkit.ShortTimeout), dispatch.Direct())
			var ids []string
			var tasks []heddle.TaskMessage
			for range 3 {
				task := heddle.NewTaskMessage("nobody", nil)
				tasks = append(tasks, task)
				ids = append(ids, task.TaskID)
			}
			slices.Sort(ids)
			if err := s.Dispatch(testkit.Context(t), tasks...); err != nil {
				t.Fatal(err)
			}
			results, err := s.Collect(testkit.Context(t))
			var te *dispatch.TimeoutError
			if !errors.As(err, &te) || len(results) != 0 || !slices.Equal(te.PendingTaskIDs, ids) || te.ExpectedCount != 3 || te.CollectedCount != 0 {
				t.Fatalf("Collect = %v, %v; want a timeout naming %v", results, err, ids)
			}
		})
	})
}

func TestResultStreamCountsLateResults(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller, wk := connect(), connect()
		rec := testlog.New()
		s := newTestStream(t, caller, heddle.SubjectResultsDefault, rec.Logger(), dispatch.Timeout(testkit.ShortTimeout))
		if err := s.Expect("slow-task"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Collect(testkit.Context(t)); !errors.Is(err, dispatch.ErrTimeout) {
			t.Fatalf("Collect error %v, want a timeout", err)
		}
		ctx := testkit.Context(t)
		r := heddle.NewTaskResult("slow-task", "w", heddle.StatusCompleted)
		if err := wk.Publish(ctx, &bus.Msg{Subject: heddle.SubjectResultsDefault, Data: testkit.Encode(t, r)}); err != nil {
			t.Fatal(err)
		}
		if err := wk.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		recs := rec.Wait(t, "result_stream.late", 1)
		if recs[0].Attrs["task_id"] != "slow-task" {
			t.Fatalf("late event %+v", recs[0])
		}
		if st := s.Stats(); st.Late != 1 || st.Collected != 0 || st.Timeouts != 1 {
			t.Fatalf("stats %+v, want the result counted late only", st)
		}
		if err := s.Dispatch(ctx, heddle.NewTaskMessage("w", nil)); !errors.Is(err, dispatch.ErrStreamEnded) {
			t.Fatalf("Dispatch after the timeout: %v, want ErrStreamEnded", err)
		}
	})
}

func TestResultStreamCanStopEarly(t *testing.T) {
	publish := func(t *testing.T, b bus.Bus, ids ...string) {
		t.Helper()
		for _, id := range ids {
			r := heddle.NewTaskResult(id, "w", heddle.StatusCompleted)
			if err := b.Publish(testkit.Context(t), &bus.Msg{Subject: heddle.SubjectResultsDefault, Data: testkit.Encode(t, r)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		t.Run("a quorum of 2 of 4 ends the collection after two results without error", func(t *testing.T) {
			caller, wk := connect(), connect()
			rec := testlog.New()
			s := newTestStream(t, caller, heddle.SubjectResultsDefault, rec.Logger(), dispatch.Quorum(2), dispatch.Timeout(testkit.Wait))
			if err := s.Expect("q1", "q2", "q3", "q4"); err != nil {
				t.Fatal(err)
			}
			publish(t, wk, "q1", "q2", "q3")
			results, err := s.Collect(testkit.Context(t))
			if err != nil || len(results) != 2 || results[0].TaskID != "q1" || results[1].TaskID != "q2" {
				t.Fatalf("Collect = %v, %v; want q1, q2", results, err)
			}
			rec.Wait(t, "result_stream.late", 1)
			if st := s.Stats(); st.Collected != 2 || st.Late != 1 || st.Timeouts != 0 {
				t.Fatalf("stats %+v, want q3 counted late after the quorum", st)
			}
		})
		t.Run("a progress callback returning false ends the collection after that result", func(t *testing.T) {
			caller, wk := connect(), connect()
			rec := testlog.New()
			type call struct {
				id                  string
				collected, expected int
			}
			var calls []call
			s := newTestStream(t, caller, heddle.SubjectResultsDefault, rec.Logger(), dispatch.Timeout(testkit.Wait), dispatch.Progress(func(r heddle.TaskResult, collected, expected int) bool {
				calls = append(calls, call{r.TaskID, collected, expected})
				return false
			}))
			if err := s.Expect("p1", "p2", "p3"); err != nil {
				t.Fatal(err)
			}
			publish(t, wk, "p1")
			results, err := s.Collect(testkit.Context(t))
			if err != nil || len(results) != 1 || results[0].TaskID != "p1" {
				t.Fatalf("Collect = %v, %v; want p1 only", results, err)
			}
			if !slices.Equal(calls, []call{{"p1", 1, 3}}) {
				t.Fatalf("progress calls %+v", calls)
			}
			publish(t, wk, "p2")
			rec.Wait(t, "result_stream.late", 1)
		})
	})
}

func TestResultStreamMaxInFlightBoundsTheTasksAwaitingResults(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller, wk := connect(), connect()
		tasks := make(chan heddle.TaskMessage, 100)
		_, err := wk.Subscribe(context.Background(), heddle.WorkerSubjectAllTiers("held"), func(_ context.Context, m *bus.Msg) error {
			task, err := heddle.DecodeTaskMessage(m.Data)
			if err != nil { // the sentinel
				task = heddle.TaskMessage{WorkerType: string(m.Data)}
			}
			tasks <- task
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		s := newTestStream(t, caller, heddle.SubjectResultsDefault, nil, dispatch.Direct(), dispatch.MaxInFlight(3), dispatch.Timeout(testkit.Wait))
		all := make([]heddle.TaskMessage, 10)
		for i := range all {
			all[i] = heddle.NewTaskMessage("held", map[string]any{"i": i})
		}
		ctx := testkit.Context(t)
		if err := s.Dispatch(ctx, all...); err != nil {
			t.Fatal(err)
		}
		// Dispatch published the first three only: a sentinel published
		// after them from the same connection comes fourth.
		if err := caller.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := caller.Publish(ctx, &bus.Msg{Subject: heddle.WorkerSubject("held", heddle.TierStandard), Data: []byte("sentinel")}); err != nil {
			t.Fatal(err)
		}
		next := func() heddle.TaskMessage {
			select {
			case task := <-tasks:
				return task
			case <-ctx.Done():
				t.Fatal("no task arrived")
				return heddle.TaskMessage{}
			}
		}
		var held []heddle.TaskMessage
		for range 3 {
			held = append(held, next())
		}
		if got := next(); got.WorkerType != "sentinel" {
			t.Fatalf("a fourth task %s was published before any result came in", got.TaskID)
		}
		done := make(chan []heddle.TaskResult, 1)
		go func() {
			results, err := s.Collect(ctx)
			if err != nil {
				t.Error(err)
			}
			done <- results
		}()
		// Each result lets exactly one more task out, in order.
		for i := 0; len(held) > 0; i++ {
			answer := held[0]
			held = held[1:]
			if err := wk.Publish(ctx, &bus.Msg{Subject: answer.ResultSubject(), Data: testkit.Encode(t, testkit.Echo(answer))}); err != nil {
				t.Fatal(err)
			}
			if i+3 < len(all) {
				got := next()
				if got.TaskID != all[i+3].TaskID {
					t.Fatalf("task %d published out of order", i+3)
				}
				held = append(held, got)
			}
		}
		if results := <-done; len(results) != 10 {
			t.Fatalf("collected %d results, want 10", len(results))
		}
	})
}

func TestResultStreamDispatchRejectsTasksBeforePublishing(t *testing.T) {
	valid := func(parent string) heddle.TaskMessage {
		task := heddle.NewTaskMessage("checked", nil)
		task.ParentTaskID = parent
		return task
	}
	tests := []struct {
		name  string
		tasks func() []heddle.TaskMessage
		check func(t *testing.T, err error)
	}{
		{"a task whose parent_task_id sends its result elsewhere is rejected", func() []heddle.TaskMessage {
			return []heddle.TaskMessage{valid("parent-ok"), valid("parent-other")}
		}, func(t *testing.T, err error) {
			if !errors.Is(err, dispatch.ErrResultSubjectMismatch) || !strings.Contains(err.Error(), "heddle.results.parent-other") {
				t.Fatalf("error %v, want ErrResultSubjectMismatch naming heddle.results.parent-other", err)
			}
		}},
		{"a task_id given twice is rejected", func() []heddle.TaskMessage {
			task := valid("parent-ok")
			return []heddle.TaskMessage{task, task}
		}, func(t *testing.T, err error) {
			if !errors.Is(err, dispatch.ErrDuplicateTaskID) {
				t.Fatalf("error %v, want ErrDuplicateTaskID", err)
			}
		}},
		{"an invalid task is rejected naming the field", func() []heddle.TaskMessage {
			task := valid("parent-ok")
			task.ModelTier = "huge"
			return []heddle.TaskMessage{valid("parent-ok"), task}
		}, func(t *testing.T, err error) {
			var ve *heddle.ValidationError
			if !errors.As(err, &ve) || !ve.Has("model_tier") {
				t.Fatalf("error %v, want a ValidationError naming model_tier", err)
			}
		}},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				caller, watcher := connect(), connect()
				spy := newStreamSpy(t, watcher, "heddle.tasks.>")
				s := newTestStream(t, caller, heddle.ResultSubject("parent-ok"), nil, dispatch.Timeout(testkit.Wait))
				tt.check(t, s.Dispatch(testkit.Context(t), tt.tasks()...))
				spy.assertNothingBefore(t, caller, heddle.SubjectTasksIncoming)
				if p := s.Pending(); len(p) != 0 {
					t.Fatalf("pending %v after a rejected Dispatch, want none", p)
				}
			})
		}
	})
}

func TestResultStreamCloseEndsAWait(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		s := newTestStream(t, connect(), heddle.SubjectResultsDefault, nil, dispatch.Timeout(testkit.Wait))
		if err := s.Expect("never"); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := s.Collect(testkit.Context(t))
			done <- err
		}()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, dispatch.ErrStreamClosed) {
			t.Fatalf("Collect error %v, want ErrStreamClosed", err)
		}
		if err := s.Expect("more"); !errors.Is(err, dispatch.ErrStreamClosed) {
			t.Fatalf("Expect after Close: %v, want ErrStreamClosed", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestResultStreamResultsEndsWhenTheContextEnds(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller, wk := connect(), connect()
		s := newTestStream(t, caller, heddle.SubjectResultsDefault, nil, dispatch.Timeout(testkit.Wait))
		if err := s.Expect("later"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Collect(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Collect error %v, want context.Canceled", err)
		}
		// The stream goes on: the result is collected by a later call.
		r := heddle.NewTaskResult("later", "w", heddle.StatusCompleted)
		if err := wk.Publish(testkit.Context(t), &bus.Msg{Subject: heddle.SubjectResultsDefault, Data: testkit.Encode(t, r)}); err != nil {
			t.Fatal(err)
		}
		results, err := s.Collect(testkit.Context(t))
		if err != nil || len(results) != 1 {
			t.Fatalf("Collect = %v, %v", results, err)
		}
	})
}
