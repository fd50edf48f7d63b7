package worker_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/worker"
)

// A handler may keep what it was given past its return: each attempt's
// context, its input and its output. The worker allocates some of a
// task's state with the task and reuses values between tasks; none of
// that may show in what a handler kept.

func TestEachAttemptsContextKeepsItsOwnTaskAfterTheTaskEnds(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("kept_ctx")
		kept := make(chan context.Context, 4)
		w, err := worker.New(connect(), wt, func(ctx context.Context, in workerEchoIn) (workerEchoOut, error) {
			kept <- ctx
			if in.Text == "x" && len(kept) < 3 {
				return workerEchoOut{}, errors.New("not yet")
			}
			return workerEchoOut{Echo: in.Text}, nil
		}, worker.Config{RetryBackoff: time.Millisecond, Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		workerStart(t, w)
		caller := connect()
		results := workerCollect(t, caller, heddle.SubjectResultsDefault)
		task := heddle.NewTaskMessage(wt, map[string]any{"text": "x"})
		task.MaxRetries = 2
		workerPublishTask(t, caller, task)
		if r := results.next(t); r.Status != heddle.StatusCompleted {
			t.Fatalf("status %s (error %q), want completed", r.Status, r.Error)
		}
		// A second task runs on the same pool goroutine once the first
		// is over.
		second := heddle.NewTaskMessage(wt, map[string]any{"text": "y"})
		workerPublishTask(t, caller, second)
		if r := results.next(t); r.Status != heddle.StatusCompleted {
			t.Fatalf("second task: status %s (error %q), want completed", r.Status, r.Error)
		}
		for i := range 3 {
			ctx := <-kept
			got, ok := worker.TaskFromContext(ctx)
			if !ok || got.TaskID != task.TaskID || got.RetryCount != i {
				t.Errorf("attempt %d's context, kept: task %q retry_count %d (%v); want task %q retry_count %d",
					i+1, got.TaskID, got.RetryCount, ok, task.TaskID, i)
			}
			if ctx.Err() != context.Canceled {
				t.Errorf("attempt %d's context, kept: Err() = %v, want context.Canceled", i+1, ctx.Err())
			}
		}
	})
}

type keptIn struct {
	Text  string         `json:"text"`
	Tags  []string       `json:"tags"`
	Attrs map[string]any `json:"attrs"`
	Inner *keptInner     `json:"inner"`
}

type keptInner struct {
	N float64 `json:"n"`
}

type keptOut struct {
	Text string   `json:"text"`
	Tags []string `json:"tags"`
}

func TestInputsAndOutputsAHandlerKeepsAreNotChangedByLaterTasks(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("kept_io")
		type keptPair struct {
			in  keptIn
			out keptOut
		}
		kept := make(chan keptPair, 2)
		w, err := worker.New(connect(), wt, func(_ context.Context, in keptIn) (keptOut, error) {
			out := keptOut{Text: in.Text, Tags: in.Tags}
			kept <- keptPair{in, out}
			return out, nil
		}, worker.Config{Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		workerStart(t, w)
		caller := connect()
		results := workerCollect(t, caller, heddle.SubjectResultsDefault)
		payloads := []map[string]any{
			{"text": "first", "tags": []any{"a", "b"}, "attrs": map[string]any{"k": "v"}, "inner": map[string]any{"n": 1}},
			{"text": "second", "tags": []any{"c"}, "attrs": map[string]any{"k": "w", "j": true}, "inner": map[string]any{"n": 2}},
		}
		for _, p := range payloads {
			workerPublishTask(t, caller, heddle.NewTaskMessage(wt, p))
			if r := results.next(t); r.Status != heddle.StatusCompleted {
				t.Fatalf("status %s (error %q), want completed", r.Status, r.Error)
			}
		}
		want := []keptPair{
			{keptIn{"first", []string{"a", "b"}, map[string]any{"k": "v"}, &keptInner{1}}, keptOut{"first", []string{"a", "b"}}},
			{keptIn{"second", []string{"c"}, map[string]any{"k": "w", "j": true}, &keptInner{2}}, keptOut{"second", []string{"c"}}},
		}
		for i, w := range want {
			got := <-kept
			if !reflect.DeepEqual(got.in, w.in) || !reflect.DeepEqual(got.out, w.out) {
				t.Errorf("task %d's input and output, kept: %+v, %+v; want %+v, %+v", i+1, got.in, got.out, w.in, w.out)
			}
		}
	})
}
