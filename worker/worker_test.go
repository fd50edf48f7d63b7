package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/worker"
)

// workerWait bounds every wait of these tests for something that should
// happen; a correct worker never comes near it.
const workerWait = 20 * time.Second

var workerTypeSeq atomic.Uint64

// workerTestType returns a worker type no other test uses, so tests can
// share an external NATS server.
func workerTestType(name string) string {
	return fmt.Sprintf("%s_%d_%08x", name, workerTypeSeq.Add(1), rand.Uint32())
}

// workerRun is a Worker running in the background.
type workerRun struct {
	w      *worker.Worker
	cancel context.CancelFunc
	done   chan error
}

// startWorker runs w until the test ends (or stop is called) and returns
// once its subscriptions are live.
func workerStart(t *testing.T, w *worker.Worker) *workerRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &workerRun{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	timer := time.NewTimer(workerWait)
	defer timer.Stop()
	select {
	case <-w.Ready():
	case err := <-r.done:
		r.done <- err
		t.Fatalf("Run returned before subscribing: %v", err)
	case <-timer.C:
		t.Fatalf("worker not subscribed within %s", workerWait)
	}
	return r
}

// stop cancels Run and returns its error.
func (r *workerRun) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	timer := time.NewTimer(workerWait)
	defer timer.Stop()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-timer.C:
		t.Fatalf("Run did not return within %s of its context ending", workerWait)
		return nil
	}
}

// workerResult is a TaskResult as received, with its wire bytes.
type workerResult struct {
	heddle.TaskResult
	raw map[string]json.RawMessage
}

// workerResults collects the TaskResults published on one subject.
type workerResults struct {
	ch chan workerResult
}

// collectResults subscribes to subject on b, before the test publishes
// anything, and collects what arrives.
func workerCollect(t *testing.T, b bus.Bus, subject string) *workerResults {
	t.Helper()
	rs := &workerResults{ch: make(chan workerResult, 1024)}
	sub, err := b.Subscribe(context.Background(), subject, func(_ context.Context, m *bus.Msg) error {
		r, err := heddle.DecodeTaskResult(m.Data)
		if err != nil {
			t.Errorf("malformed result on %s: %v: %s", subject, err, m.Data)
			return nil
		}
		var raw map[string]json.RawMessage
		_ = json.Unmarshal(m.Data, &raw)
		rs.ch <- workerResult{TaskResult: r, raw: raw}
		return nil
	})
	if err != nil {
		t.Fatalf("subscribe to %s: %v", subject, err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return rs
}

// next returns the next result.
func (rs *workerResults) next(t *testing.T) workerResult {
	t.Helper()
	timer := time.NewTimer(workerWait)
	defer timer.Stop()
	select {
	case r := <-rs.ch:
		return r
	case <-timer.C:
		t.Fatalf("no result within %s", workerWait)
		return workerResult{}
	}
}

// publishTask sends task to its worker subject.
func workerPublishTask(t *testing.T, b bus.Bus, task heddle.TaskMessage) {
	t.Helper()
	data, err := task.Encode()
	if err != nil {
		t.Fatalf("encode task: %v", err)
	}
	workerPublishRaw(t, b, task.WorkerSubject(), data)
}

func workerPublishRaw(t *testing.T, b bus.Bus, subject string, data []byte) {
	t.Helper()
	if err := b.Publish(context.Background(), &bus.Msg{Subject: subject, Data: data}); err != nil {
		t.Fatalf("publish to %s: %v", subject, err)
	}
}

type workerEchoIn struct {
	Text string `json:"text"`
}

type workerEchoOut struct {
	Echo string `json:"echo"`
}

func TestWorkerAnswersEachTaskOnItsResultSubject(t *testing.T) {
	tests := []struct {
		name   string
		parent string
	}{
		{"a task with a parent is answered on heddle.results.{parent_task_id}", "goal-42"},
		{"a task without a parent is answered on heddle.results.default", ""},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wt := workerTestType("echo")
				logs := testlog.New()
				const minDuration = 5 * time.Millisecond
				w, err := worker.New(connect(), wt, func(ctx context.Context, in workerEchoIn) (workerEchoOut, error) {
					// A deadline, not a sleep: the handler takes at least
					// minDuration, so processing_time_ms must show it.
					wait, cancel := context.WithTimeout(ctx, minDuration)
					defer cancel()
					<-wait.Done()
					return workerEchoOut{Echo: in.Text}, nil
				}, worker.Config{}, heddle.WithLogger(logs.Logger()))
				if err != nil {
					t.Fatal(err)
				}
				workerStart(t, w)
				caller := connect()
				task := heddle.NewTaskMessage(wt, map[string]any{"text": "hello"})
				task.ParentTaskID = tt.parent
				results := workerCollect(t, caller, heddle.ResultSubject(tt.parent))
				workerPublishTask(t, caller, task)

				r := results.next(t)
				after := time.Now()
				if r.TaskID != task.TaskID || r.ParentTaskID != tt.parent || r.WorkerType != wt {
					t.Errorf("result ids = (%q, %q, %q), want (%q, %q, %q)", r.TaskID, r.ParentTaskID, r.WorkerType, task.TaskID, tt.parent, wt)
				}
				if r.Status != heddle.StatusCompleted || r.Error != "" {
					t.Fatalf("status %s, error %q; want completed", r.Status, r.Error)
				}
				if got := r.Output["echo"]; got != "hello" {
					t.Errorf("output echo = %v, want hello", got)
				}
				for _, field := range []string{"processing_time_ms", "completed_at"} {
					if _, ok := r.raw[field]; !ok {
						t.Errorf("result has no %s on the wire", field)
					}
				}
				if r.ProcessingTimeMS < int(minDuration.Milliseconds()) {
					t.Errorf("processing_time_ms = %d, want >= %d", r.ProcessingTimeMS, minDuration.Milliseconds())
				}
				if r.CompletedAt.Before(task.CreatedAt) || r.CompletedAt.After(after) {
					t.Errorf("completed_at %v not between the task's creation %v and now %v", r.CompletedAt, task.CreatedAt, after)
				}
				for _, ev := range []string{"worker.received", "worker.completed"} {
					rec := logs.WaitFor(t, ev, task.TaskID, 1)[0]
					if rec.Attrs["parent_task_id"] != tt.parent || rec.Attrs["worker_type"] != wt {
						t.Errorf("%s attrs = %v, want parent_task_id %q and worker_type %q", ev, rec.Attrs, tt.parent, wt)
					}
				}
				if got := logs.Events("actor.subscribed", ""); len(got) != 3 {
					t.Errorf("actor.subscribed logged %d times, want once per tier (3)", len(got))
				}
				if s := w.Stats(); s.Received != 1 || s.Completed != 1 || s.Failed != 0 {
					t.Errorf("stats = %+v, want 1 received and 1 completed", s)
				}
			})
		}
	})
}

type workerOrderItem struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty" jsonschema:"minimum=1"`
}

type workerOrderIn struct {
	Customer string            `json:"customer"`
	Items    []workerOrderItem `json:"items"`
}

type workerOrderOut struct {
	Total int `json:"total"`
}

func TestWorkerChecksContractsAtBothEnds(t *testing.T) {
	outputSchema := []byte(`{"type":"object","required":["total"],"properties":{"total":{"type":"integer","minimum":0}}}`)
	override, err := contracts.FromJSON(nil, outputSchema)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		contract   *contracts.Contract
		payload    map[string]any
		total      int
		wantField  string
		wantCalled bool
	}{
		{
			name:      "a nested field of the wrong type fails the task naming /items/0/qty",
			payload:   map[string]any{"customer": "acme", "items": []any{map[string]any{"sku": "a", "qty": "three"}}},
			wantField: "/items/0/qty",
		},
		{
			name:      "a missing required field fails the task naming /customer",
			payload:   map[string]any{"items": []any{}},
			wantField: "/customer",
		},
		{
			name:      "a value out of bounds fails the task naming /items/1/qty",
			payload:   map[string]any{"customer": "acme", "items": []any{map[string]any{"sku": "a", "qty": 1}, map[string]any{"sku": "b", "qty": 0}}},
			wantField: "/items/1/qty",
		},
		{
			name:       "an output violating the output schema fails the task naming /total",
			contract:   override,
			payload:    map[string]any{"customer": "acme", "items": []any{}},
			total:      -1,
			wantField:  "/total",
			wantCalled: true,
		},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wt := workerTestType("orders")
				logs := testlog.New()
				var calls atomic.Int32
				w, err := worker.New(connect(), wt, func(ctx context.Context, in workerOrderIn) (workerOrderOut, error) {
					calls.Add(1)
					return workerOrderOut{Total: tt.total}, nil
				}, worker.Config{Contract: tt.contract}, heddle.WithLogger(logs.Logger()))
				if err != nil {
					t.Fatal(err)
				}
				workerStart(t, w)
				caller := connect()
				results := workerCollect(t, caller, heddle.SubjectResultsDefault)
				task := heddle.NewTaskMessage(wt, tt.payload)
				workerPublishTask(t, caller, task)

				r := results.next(t)
				if r.Status != heddle.StatusFailed {
					t.Fatalf("status %s, want failed", r.Status)
				}
				if !strings.Contains(r.Error, tt.wantField+":") {
					t.Errorf("error %q does not name %s", r.Error, tt.wantField)
				}
				if r.Output != nil {
					t.Errorf("output = %v, want null", r.Output)
				}
				if called := calls.Load() > 0; called != tt.wantCalled {
					t.Errorf("handler called = %v, want %v", called, tt.wantCalled)
				}
				rec := logs.WaitFor(t, "worker.failed", task.TaskID, 1)[0]
				if reason := rec.Attrs["reason"]; reason != "input_contract" && reason != "output_contract" {
					t.Errorf("worker.failed reason = %v, want a contract reason", reason)
				}
			})
		}
	})
}

func TestWorkerRetriesRetryableErrors(t *testing.T) {
	errFlaky := errors.New("upstream unavailable")
	tests := []struct {
		name         string
		maxRetries   int
		failFirst    int // attempts that fail; -1 means all
		permanent    bool
		wantStatus   heddle.TaskStatus
		wantAttempts int
		wantError    string
	}{
		{"a handler failing twice then succeeding completes after two retries", 2, 2, false, heddle.StatusCompleted, 3, ""},
		{"a handler failing on every attempt fails once max_retries is spent", 1, -1, false, heddle.StatusFailed, 2, "failed after 2 attempt(s)"},
		{"a permanent error fails after one attempt whatever max_retries", 2, -1, true, heddle.StatusFailed, 1, "upstream unavailable"},
		{"a task with max_retries 0 is never retried", 0, -1, false, heddle.StatusFailed, 1, "failed after 1 attempt(s)"},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wt := workerTestType("flaky")
				logs := testlog.New()
				var attempts atomic.Int32
				seen := make(chan int, 8) // RetryCount seen by each attempt
				w, err := worker.New(connect(), wt, func(ctx context.Context, in workerEchoIn) (workerEchoOut, error) {
					n := int(attempts.Add(1))
					task, ok := worker.TaskFromContext(ctx)
					if !ok {
						t.Error("TaskFromContext found no task")
					}
					seen <- task.RetryCount
					if tt.failFirst < 0 || n <= tt.failFirst {
						if tt.permanent {
							return workerEchoOut{}, worker.Permanent(errFlaky)
						}
						return workerEchoOut{}, errFlaky
					}
					return workerEchoOut{Echo: in.Text}, nil
				}, worker.Config{RetryBackoff: time.Millisecond}, heddle.WithLogger(logs.Logger()))
				if err != nil {
					t.Fatal(err)
				}
				workerStart(t, w)
				caller := connect()
				results := workerCollect(t, caller, heddle.SubjectResultsDefault)
				task := heddle.NewTaskMessage(wt, map[string]any{"text": "x"})
				task.MaxRetries = tt.maxRetries
				workerPublishTask(t, caller, task)

				r := results.next(t)
				if r.Status != tt.wantStatus {
					t.Fatalf("status %s (error %q), want %s", r.Status, r.Error, tt.wantStatus)
				}
				if !strings.Contains(r.Error, tt.wantError) || !strings.Contains(r.Error, errFlaky.Error()) && tt.wantStatus == heddle.StatusFailed {
					t.Errorf("error %q, want it to contain %q and the handler's error", r.Error, tt.wantError)
				}
				if got := int(attempts.Load()); got != tt.wantAttempts {
					t.Errorf("handler ran %d times, want %d", got, tt.wantAttempts)
				}
				for i := range tt.wantAttempts {
					if got := <-seen; got != i {
						t.Errorf("attempt %d saw retry_count %d, want %d", i+1, got, i)
					}
				}
				retries := tt.wantAttempts - 1
				evs := logs.Events("worker.retry", task.TaskID)
				if len(evs) != retries {
					t.Fatalf("worker.retry logged %d times, want %d", len(evs), retries)
				}
				for i, ev := range evs {
					if ev.Attrs["retry_count"] != int64(i+1) || ev.Attrs["error"] != errFlaky.Error() || ev.Attrs["parent_task_id"] != "" {
						t.Errorf("worker.retry #%d attrs = %v, want retry_count %d and the error", i+1, ev.Attrs, i+1)
					}
				}
				if retries > 0 {
					if got := string(r.Extra["retry_count"]); got != fmt.Sprint(retries) {
						t.Errorf("result retry_count = %q, want %d", got, retries)
					}
				} else if _, ok := r.Extra["retry_count"]; ok {
					t.Errorf("result carries retry_count though no retry was made")
				}
				if s := w.Stats(); s.Retried != uint64(retries) {
					t.Errorf("Stats().Retried = %d, want %d", s.Retried, retries)
				}
			})
		}
	})
}

func TestWorkerSurvivesAPanickingHandler(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("panicky")
		logs := testlog.New()
		w, err := worker.New(connect(), wt, func(ctx context.Context, in workerEchoIn) (workerEchoOut, error) {
			if in.Text == "boom" {
				panic("handler exploded")
			}
			return workerEchoOut{Echo: in.Text}, nil
		}, worker.Config{Concurrency: 1}, heddle.WithLogger(logs.Logger()))
		if err != nil {
			t.Fatal(err)
		}
		workerStart(t, w)
		caller := connect()
		results := workerCollect(t, caller, heddle.SubjectResultsDefault)
		bad := heddle.NewTaskMessage(wt, map[string]any{"text": "boom"})
		good := heddle.NewTaskMessage(wt, map[string]any{"text": "fine"})
		workerPublishTask(t, caller, bad)
		workerPublishTask(t, caller, good)

		got := map[string]workerResult{}
		for range 2 {
			r := results.next(t)
			got[r.TaskID] = r
		}
		if r := got[bad.TaskID]; r.Status != heddle.StatusFailed || !strings.Contains(r.Error, "handler exploded") {
			t.Errorf("panicking task: status %s, error %q; want failed naming the panic", r.Status, r.Error)
		}
		if r := got[good.TaskID]; r.Status != heddle.StatusCompleted || r.Output["echo"] != "fine" {
			t.Errorf("next task: status %s, output %v; want completed", r.Status, r.Output)
		}
		rec := logs.WaitFor(t, "worker.failed", bad.TaskID, 1)[0]
		if rec.Attrs["reason"] != "panic" || rec.Attrs["stack"] == nil {
			t.Errorf("worker.failed attrs = %v, want reason panic with a stack", rec.Attrs)
		}
		// The counters move after the result is published; the completed
		// event follows its counter, so once it is seen the stats are final.
		logs.WaitFor(t, "worker.completed", good.TaskID, 1)
		if s := w.Stats(); s.Panics != 1 || s.Failed != 1 || s.Completed != 1 || s.Retried != 0 {
			t.Errorf("stats = %+v, want 1 panic not retried, 1 failed, 1 completed", s)
		}
	})
}

func TestWorkerCountsMalformedMessagesAndGoesOn(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("strict")
		logs := testlog.New()
		w, err := worker.New(connect(), wt, func(ctx context.Context, in workerEchoIn) (workerEchoOut, error) {
			return workerEchoOut{Echo: in.Text}, nil
		}, worker.Config{}, heddle.WithLogger(logs.Logger()))
		if err != nil {
			t.Fatal(err)
		}
		workerStart(t, w)
		caller := connect()
		results := workerCollect(t, caller, heddle.SubjectResultsDefault)
		subject := heddle.WorkerSubject(wt, heddle.TierStandard)

		// Not JSON: nothing identifies a caller, so no result.
		workerPublishRaw(t, caller, subject, []byte(`{"task_id": "truncated`))
		// Readable ids but no payload: the caller gets a failed result.
		workerPublishRaw(t, caller, subject, []byte(`{"task_id":"no-payload","worker_type":"`+wt+`"}`))
		// A task for another worker type on this worker's subject.
		other := heddle.NewTaskMessage("someone_else", map[string]any{"text": "x"})
		data, err := other.Encode()
		if err != nil {
			t.Fatal(err)
		}
		workerPublishRaw(t, caller, subject, data)
		good := heddle.NewTaskMessage(wt, map[string]any{"text": "still here"})
		workerPublishTask(t, caller, good)

		got := map[string]workerResult{}
		for range 3 {
			r := results.next(t)
			got[r.TaskID] = r
		}
		if r := got["no-payload"]; r.Status != heddle.StatusFailed || !strings.Contains(r.Error, "payload: required") {
			t.Errorf("task without payload: status %s, error %q; want failed naming payload", r.Status, r.Error)
		}
		if r := got[other.TaskID]; r.Status != heddle.StatusFailed || !strings.Contains(r.Error, `"someone_else"`) {
			t.Errorf("task for another worker type: status %s, error %q; want failed naming its worker_type", r.Status, r.Error)
		}
		if r := got[good.TaskID]; r.Status != heddle.StatusCompleted {
			t.Errorf("valid task after malformed ones: status %s (error %q), want completed", r.Status, r.Error)
		}
		evs := logs.WaitFor(t, "worker.failed", "", 3)
		reasons := map[any]int{}
		for _, ev := range evs {
			reasons[ev.Attrs["reason"]]++
		}
		if reasons["decode"] != 2 || reasons["worker_type_mismatch"] != 1 {
			t.Errorf("worker.failed reasons = %v, want decode twice and worker_type_mismatch once", reasons)
		}
		logs.WaitFor(t, "worker.completed", good.TaskID, 1) // the counters are final once it is logged
		if s := w.Stats(); s.Malformed != 3 || s.Received != 1 || s.Completed != 1 {
			t.Errorf("stats = %+v, want 3 malformed, 1 received and completed", s)
		}
	})
}

func TestWorkerQueueGroupAnswersEachTaskExactlyOnce(t *testing.T) {
	const replicas, tasks = 3, 300
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("shared")
		runs := make([]*workerRun, replicas)
		for i := range runs {
			w, err := worker.New(connect(), wt, func(ctx context.Context, in workerEchoIn) (workerEchoOut, error) {
				return workerEchoOut{Echo: in.Text}, nil
			}, worker.Config{})
			if err != nil {
				t.Fatal(err)
			}
			runs[i] = workerStart(t, w)
		}
		caller := connect()
		parent := "fanout-" + wt
		results := workerCollect(t, caller, heddle.ResultSubject(parent))
		want := map[string]bool{}
		for i := range tasks {
			task := heddle.NewTaskMessage(wt, map[string]any{"text": fmt.Sprint(i)})
			task.ParentTaskID = parent
			task.ModelTier = heddle.ModelTiers()[i%3]
			want[task.TaskID] = true
			workerPublishTask(t, caller, task)
		}
		answered := map[string]int{}
		for range tasks {
			r := results.next(t)
			answered[r.TaskID]++
			if r.Status != heddle.StatusCompleted {
				t.Errorf("task %s: status %s (%q)", r.TaskID, r.Status, r.Error)
			}
		}
		for id := range want {
			if answered[id] != 1 {
				t.Errorf("task %s answered %d times, want once", id, answered[id])
			}
		}
		// Once every replica has drained, their counts are final: a task
		// handled twice would show here even if its second result had not
		// arrived yet.
		var received, completed uint64
		for _, r := range runs {
			if err := r.stop(t); err != nil {
				t.Errorf("Run: %v", err)
			}
			s := r.w.Stats()
			received += s.Received
			completed += s.Completed
		}
		if received != tasks || completed != tasks {
			t.Errorf("replicas received %d and completed %d tasks in total, want %d each", received, completed, tasks)
		}
	})
}

func TestWorkerBoundsConcurrentHandlers(t *testing.T) {
	const limit, tasks = 2, 5
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("bounded")
		logs := testlog.New()
		var running, peak atomic.Int32
		entered := make(chan string, tasks)
		release := make(chan struct{})
		w, err := worker.New(connect(), wt, func(ctx context.Context, in workerEchoIn) (workerEchoOut, error) {
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			entered <- in.Text
			<-release
			running.Add(-1)
			return workerEchoOut{Echo: in.Text}, nil
		}, worker.Config{Concurrency: limit}, heddle.WithLogger(logs.Logger()))
		if err != nil {
			t.Fatal(err)
		}
		workerStart(t, w)
		caller := connect()
		results := workerCollect(t, caller, heddle.SubjectResultsDefault)
		for i := range tasks {
			workerPublishTask(t, caller, heddle.NewTaskMessage(wt, map[string]any{"text": fmt.Sprint(i)}))
		}
		// Two handlers run at once: both entered, neither released.
		for range limit {
			<-entered
		}
		// The third task is on its way to the worker, or waits there for a
		// slot (worker.received comes only once a slot takes it); peak
		// below is what proves the bound.
		if err := caller.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		select {
		case id := <-entered:
			t.Fatalf("task %s entered the handler while %d others were running", id, limit)
		default:
		}
		for i := range tasks {
			release <- struct{}{}
			if i+limit < tasks {
				<-entered
			}
		}
		for range tasks {
			if r := results.next(t); r.Status != heddle.StatusCompleted {
				t.Errorf("status %s (%q), want completed", r.Status, r.Error)
			}
		}
		if p := peak.Load(); p != limit {
			t.Errorf("at most %d handlers ran at once, want exactly %d", p, limit)
		}
	})
}

func TestWorkerRunFinishesInFlightTasksWhenItsContextEnds(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("graceful")
		entered := make(chan struct{})
		release := make(chan struct{})
		ctxErr := make(chan error, 1)
		w, err := worker.New(connect(), wt, func(ctx context.Context, in workerEchoIn) (workerEchoOut, error) {
			close(entered)
			<-release
			ctxErr <- ctx.Err()
			return workerEchoOut{Echo: in.Text}, nil
		}, worker.Config{})
		if err != nil {
			t.Fatal(err)
		}
		run := workerStart(t, w)
		caller := connect()
		results := workerCollect(t, caller, heddle.SubjectResultsDefault)
		task := heddle.NewTaskMessage(wt, map[string]any{"text": "last"})
		workerPublishTask(t, caller, task)
		<-entered

		run.cancel()
		select {
		case err := <-run.done:
			t.Fatalf("Run returned (%v) while a task was in flight", err)
		default:
		}
		close(release)
		if err := run.stop(t); err != nil {
			t.Errorf("Run = %v, want nil after a complete drain", err)
		}
		if err := <-ctxErr; err != nil {
			t.Errorf("in-flight handler's context ended with Run's: %v", err)
		}
		if r := results.next(t); r.TaskID != task.TaskID || r.Status != heddle.StatusCompleted {
			t.Errorf("result %s status %s, want the in-flight task completed", r.TaskID, r.Status)
		}
		if err := w.Run(context.Background()); !errors.Is(err, heddle.ErrStarted) {
			t.Errorf("second Run = %v, want ErrWorkerStarted", err)
		}
	})
}

func TestWorkerFailsATaskThatOutlivesItsTimeout(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("slow")
		logs := testlog.New()
		var attempts atomic.Int32
		w, err := worker.New(connect(), wt, func(ctx context.Context, in workerEchoIn) (workerEchoOut, error) {
			attempts.Add(1)
			<-ctx.Done()
			return workerEchoOut{}, ctx.Err()
		}, worker.Config{TaskTimeout: 20 * time.Millisecond}, heddle.WithLogger(logs.Logger()))
		if err != nil {
			t.Fatal(err)
		}
		workerStart(t, w)
		caller := connect()
		results := workerCollect(t, caller, heddle.SubjectResultsDefault)
		task := heddle.NewTaskMessage(wt, map[string]any{"text": "x"})
		workerPublishTask(t, caller, task)

		r := results.next(t)
		if r.Status != heddle.StatusFailed || !strings.Contains(r.Error, "timed out after 20ms") {
			t.Errorf("status %s, error %q; want failed naming the 20ms timeout", r.Status, r.Error)
		}
		if n := attempts.Load(); n != 1 {
			t.Errorf("handler ran %d times, want 1: a timeout is not retried", n)
		}
		if rec := logs.WaitFor(t, "worker.failed", task.TaskID, 1)[0]; rec.Attrs["reason"] != "timeout" {
			t.Errorf("worker.failed reason = %v, want timeout", rec.Attrs["reason"])
		}
	})
}

func TestWorkerHandlerContextCarriesRunValuesAndEndsWithTheAttempt(t *testing.T) {
	type runKey struct{}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("ctx")
		handlerCtx := make(chan context.Context, 1)
		w, err := worker.New(connect(), wt, func(ctx context.Context, in workerEchoIn) (workerEchoOut, error) {
			handlerCtx <- ctx
			return workerEchoOut{Echo: in.Text}, nil
		}, worker.Config{TaskTimeout: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(context.WithValue(context.Background(), runKey{}, "run value"))
		done := make(chan error, 1)
		go func() { done <- w.Run(runCtx) }()
		t.Cleanup(func() {
			cancel()
			<-done
		})
		<-w.Ready()
		caller := connect()
		results := workerCollect(t, caller, heddle.SubjectResultsDefault)
		task := heddle.NewTaskMessage(wt, map[string]any{"text": "x"})
		before := time.Now()
		workerPublishTask(t, caller, task)
		if r := results.next(t); r.Status != heddle.StatusCompleted {
			t.Fatalf("status %s (error %q), want completed", r.Status, r.Error)
		}
		after := time.Now()

		ctx := <-handlerCtx
		if v := ctx.Value(runKey{}); v != "run value" {
			t.Errorf("handler context Value(Run's key) = %v, want Run's value", v)
		}
		if got, ok := worker.TaskFromContext(ctx); !ok || got.TaskID != task.TaskID {
			t.Errorf("TaskFromContext = %q, %v; want task %q", got.TaskID, ok, task.TaskID)
		}
		deadline, ok := ctx.Deadline()
		if !ok || deadline.Before(before.Add(time.Hour)) || deadline.After(after.Add(time.Hour)) {
			t.Errorf("handler context deadline = %v, %v; want TaskTimeout (1h) after the attempt began", deadline, ok)
		}
		// The result is published after the attempt returned, so its
		// context has ended, though Run's has not.
		select {
		case <-ctx.Done():
		default:
			t.Fatal("handler context still open after its result was published")
		}
		if err := ctx.Err(); err != context.Canceled {
			t.Errorf("handler context Err() = %v after the attempt returned, want context.Canceled", err)
		}
	})
}

func TestDynamicWorkerChecksOnlyTheContractItIsGiven(t *testing.T) {
	contract, err := contracts.FromJSON([]byte(`{"type":"object","required":["n"],"properties":{"n":{"type":"integer"}}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		contract   *contracts.Contract
		payload    map[string]any
		wantStatus heddle.TaskStatus
	}{
		{"a payload satisfying the given contract completes", contract, map[string]any{"n": 3}, heddle.StatusCompleted},
		{"a payload violating the given contract fails naming /n", contract, map[string]any{"n": "three"}, heddle.StatusFailed},
		{"without a contract any payload reaches the handler", nil, map[string]any{"n": "three"}, heddle.StatusCompleted},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wt := workerTestType("dynamic")
				w, err := worker.NewDynamic(connect(), wt, func(ctx context.Context, in map[string]any) (map[string]any, error) {
					return map[string]any{"got": in["n"]}, nil
				}, worker.Config{Contract: tt.contract, Tiers: []heddle.ModelTier{heddle.TierLocal}})
				if err != nil {
					t.Fatal(err)
				}
				workerStart(t, w)
				caller := connect()
				results := workerCollect(t, caller, heddle.SubjectResultsDefault)
				task := heddle.NewTaskMessage(wt, tt.payload)
				task.ModelTier = heddle.TierLocal
				workerPublishTask(t, caller, task)
				r := results.next(t)
				if r.Status != tt.wantStatus {
					t.Fatalf("status %s (%q), want %s", r.Status, r.Error, tt.wantStatus)
				}
				if r.Status == heddle.StatusFailed && !strings.Contains(r.Error, "/n:") {
					t.Errorf("error %q does not name /n", r.Error)
				}
				if r.Status == heddle.StatusCompleted && fmt.Sprint(r.Output["got"]) != fmt.Sprint(tt.payload["n"]) {
					t.Errorf("output %v, want got = %v", r.Output, tt.payload["n"])
				}
			})
		}
	})
}

func TestNewWorkerRejectsInvalidSettings(t *testing.T) {
	echo := func(ctx context.Context, in workerEchoIn) (workerEchoOut, error) { return workerEchoOut{}, nil }
	tests := []struct {
		name string
		make func(b bus.Bus) (*worker.Worker, error)
		want error
		text string
	}{
		{"an empty worker type", func(b bus.Bus) (*worker.Worker, error) {
			return worker.New(b, "", echo, worker.Config{})
		}, heddle.ErrWorkerType, "empty"},
		{"a worker type with a space", func(b bus.Bus) (*worker.Worker, error) {
			return worker.New(b, "two words", echo, worker.Config{})
		}, heddle.ErrWorkerType, `"two words"`},
		{"a worker type with a wildcard", func(b bus.Bus) (*worker.Worker, error) {
			return worker.New(b, "summ.*", echo, worker.Config{})
		}, heddle.ErrWorkerType, `"summ.*"`},
		{"a worker type with an empty token", func(b bus.Bus) (*worker.Worker, error) {
			return worker.New(b, "summ..x", echo, worker.Config{})
		}, heddle.ErrWorkerType, `"summ..x"`},
		{"an unknown tier", func(b bus.Bus) (*worker.Worker, error) {
			return worker.New(b, "w", echo, worker.Config{Tiers: []heddle.ModelTier{"huge"}})
		}, heddle.ErrConfig, `"huge" is not one of`},
		{"a negative concurrency", func(b bus.Bus) (*worker.Worker, error) {
			return worker.New(b, "w", echo, worker.Config{Concurrency: -1})
		}, heddle.ErrConfig, "Concurrency"},
		{"a nil handler", func(b bus.Bus) (*worker.Worker, error) {
			return worker.NewDynamic(b, "w", nil, worker.Config{})
		}, heddle.ErrConfig, "nil handler"},
		{"an output type that encodes as a string", func(b bus.Bus) (*worker.Worker, error) {
			return worker.New(b, "w", func(context.Context, workerEchoIn) (string, error) { return "", nil }, worker.Config{})
		}, worker.ErrOutputNotObject, "string"},
		{"an output type that encodes as an array", func(b bus.Bus) (*worker.Worker, error) {
			return worker.New(b, "w", func(context.Context, workerEchoIn) ([]workerEchoOut, error) { return nil, nil }, worker.Config{})
		}, worker.ErrOutputNotObject, "[]worker_test.workerEchoOut"},
		{"an exec worker without a command", func(b bus.Bus) (*worker.Worker, error) {
			return worker.NewExec(b, "w", worker.ExecSpec{}, worker.Config{})
		}, heddle.ErrConfig, "ExecSpec.Command"},
		{"an exec worker with an unknown output format", func(b bus.Bus) (*worker.Worker, error) {
			return worker.NewExec(b, "w", worker.ExecSpec{Command: []string{"true"}, OutputFormat: "xml"}, worker.Config{})
		}, heddle.ErrConfig, "ExecSpec.OutputFormat"},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		for _, tt := range tests {
			t.Run(tt.name+" is refused", func(t *testing.T) {
				w, err := tt.make(b)
				if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.text) {
					t.Fatalf("err = %v, want %v mentioning %s", err, tt.want, tt.text)
				}
				if w != nil {
					t.Errorf("a worker was returned with the error")
				}
			})
		}
	})
}

func TestPermanentMarksAnErrorAsNotRetryable(t *testing.T) {
	base := errors.New("bad request")
	err := fmt.Errorf("calling model: %w", worker.Permanent(base))
	if !worker.IsPermanent(err) || !errors.Is(err, base) {
		t.Errorf("IsPermanent = %v, errors.Is(base) = %v; want both true", worker.IsPermanent(err), errors.Is(err, base))
	}
	if worker.IsPermanent(base) {
		t.Error("an unmarked error reads as permanent")
	}
	if worker.Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
}

func TestWorkerDrainTimeoutCancelsHandlersAndStillAnswers(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("stuck")
		logs := testlog.New()
		entered := make(chan struct{}, 2)
		w, err := worker.New(connect(), wt, func(ctx context.Context, in workerEchoIn) (workerEchoOut, error) {
			entered <- struct{}{}
			<-ctx.Done()
			return workerEchoOut{}, ctx.Err()
		}, worker.Config{Concurrency: 1, DrainTimeout: 50 * time.Millisecond}, heddle.WithLogger(logs.Logger()))
		if err != nil {
			t.Fatal(err)
		}
		run := workerStart(t, w)
		caller := connect()
		results := workerCollect(t, caller, heddle.SubjectResultsDefault)
		running := heddle.NewTaskMessage(wt, map[string]any{"text": "running"})
		waiting := heddle.NewTaskMessage(wt, map[string]any{"text": "waiting"})
		workerPublishTask(t, caller, running)
		workerPublishTask(t, caller, waiting)
		<-entered
		// Both tasks are with the worker's connection once the server
		// has them: the drain delivers what was sent before it began.
		if err := caller.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}

		if err := run.stop(t); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "DrainTimeout") {
			t.Errorf("Run = %v, want an error naming the drain timeout", err)
		}
		for range 2 {
			r := results.next(t)
			if r.Status != heddle.StatusFailed || !strings.Contains(r.Error, "shut down") {
				t.Errorf("task %s: status %s, error %q; want failed by the shutdown", r.TaskID, r.Status, r.Error)
			}
		}
		if len(entered) != 0 {
			t.Error("the waiting task reached the handler after the drain timeout")
		}
		if s := w.Stats(); s.Received != 2 || s.Failed != 2 {
			t.Errorf("stats = %+v, want 2 received and 2 failed", s)
		}
		for _, ev := range logs.Events("worker.failed", "") {
			if ev.Attrs["reason"] != "shutdown" {
				t.Errorf("worker.failed reason = %v, want shutdown", ev.Attrs["reason"])
			}
		}
	})
}
