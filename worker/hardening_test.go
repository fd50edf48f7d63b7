package worker_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/worker"
)

// boundedIn's fields are optional, so a payload may leave out the exact
// key and carry one differing by case.
type boundedIn struct {
	Name  string `json:"name,omitempty" jsonschema:"maxLength=5"`
	N     int    `json:"n,omitempty" jsonschema:"maximum=10"`
	Inner *struct {
		Code string `json:"code,omitempty" jsonschema:"maxLength=2"`
	} `json:"inner,omitempty"`
}

type boundedOut struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

// startWorker runs w until the test ends, or until stop is called.
func startWorker(t *testing.T, w *worker.Worker, err error) (stop func()) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return testkit.StartActor(t, w.Run, w.Ready())
}

func TestATypedWorkersContractCannotBeBypassedByAKeysCase(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		var calls atomic.Int64
		w, err := worker.New(connect(), "bounded", func(_ context.Context, in boundedIn) (boundedOut, error) {
			calls.Add(1)
			return boundedOut{Name: in.Name, N: in.N}, nil
		}, worker.Config{})
		startWorker(t, w, err)
		b := connect()
		for _, payload := range []map[string]any{
			{"name": "ok", "n": 1, "NAME": "toolongname"},
			{"name": "ok", "N": 999},
			{"name": "ok", "inner": map[string]any{"CODE": "too long"}},
		} {
			task := heddle.NewTaskMessage("bounded", payload)
			res, err := dispatch.Request(testkit.Context(t), b, task, dispatch.Direct())
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != heddle.StatusFailed || !strings.Contains(res.Error, "only by case") {
				t.Errorf("payload %v: result %s %q, want failed naming the key that matches a field only by case", payload, res.Status, res.Error)
			}
		}
		if n := calls.Load(); n != 0 {
			t.Errorf("the handler ran %d times on payloads that bypass the contract", n)
		}
		// The exact keys still work.
		task := heddle.NewTaskMessage("bounded", map[string]any{"name": "ok", "n": 3, "inner": map[string]any{"code": "ab"}})
		res, err := dispatch.Request(testkit.Context(t), b, task, dispatch.Direct())
		if err != nil || res.Status != heddle.StatusCompleted || res.Output["n"] != float64(3) {
			t.Errorf("a valid payload: %+v, %v", res, err)
		}
	})
}

func TestAnOutputTooLargeToPublishBecomesASmallFailedResult(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		w, err := worker.NewDynamic(connect(), "huge", func(context.Context, map[string]any) (map[string]any, error) {
			return map[string]any{"blob": strings.Repeat("x", 2<<20)}, nil
		}, worker.Config{})
		stop := startWorker(t, w, err)
		task := heddle.NewTaskMessage("huge", nil)
		res, err := dispatch.Request(testkit.Context(t), connect(), task, dispatch.Direct())
		if err != nil {
			t.Fatalf("Request = %v, want the failed result in place of the output", err)
		}
		if res.Status != heddle.StatusFailed || !strings.Contains(res.Error, "too large to publish") || res.Output != nil {
			t.Errorf("result %s %q, want failed saying the output was too large", res.Status, res.Error)
		}
		stop() // the counts are final once Run has returned
		if s := w.Stats(); s.Failed != 1 || s.Completed != 0 || s.PublishErrors != 0 {
			t.Errorf("Stats() = %+v, want one failed task and no publish error", s)
		}
	})
}

func TestAHandlerReportsTheModelTokensAndMetadataOfItsResult(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		w, err := worker.NewDynamic(connect(), "reporting", func(ctx context.Context, in map[string]any) (map[string]any, error) {
			if in["quiet"] == true {
				return map[string]any{}, nil
			}
			worker.Report(ctx, worker.Usage{Model: "small-1", Tokens: map[string]int{"prompt_tokens": 10}})
			worker.Report(ctx, worker.Usage{Tokens: map[string]int{"prompt_tokens": 2, "completion_tokens": 7},
				Metadata: map[string]any{"stage_name": "s"}})
			return map[string]any{}, nil
		}, worker.Config{})
		startWorker(t, w, err)
		b := connect()
		res, err := dispatch.Request(testkit.Context(t), b, heddle.NewTaskMessage("reporting", nil), dispatch.Direct())
		if err != nil {
			t.Fatal(err)
		}
		if res.ModelUsed != "small-1" || res.TokenUsage["prompt_tokens"] != 12 || res.TokenUsage["completion_tokens"] != 7 ||
			res.Metadata["stage_name"] != "s" {
			t.Errorf("result model %q, tokens %v, metadata %v; want the reports", res.ModelUsed, res.TokenUsage, res.Metadata)
		}
		res, err = dispatch.Request(testkit.Context(t), b, heddle.NewTaskMessage("reporting", map[string]any{"quiet": true}), dispatch.Direct())
		if err != nil {
			t.Fatal(err)
		}
		if res.ModelUsed != "" || len(res.TokenUsage) != 2 || res.TokenUsage["prompt_tokens"] != 0 || res.Metadata != nil {
			t.Errorf("unreported result: model %q, tokens %v, metadata %v; want Python's defaults", res.ModelUsed, res.TokenUsage, res.Metadata)
		}
	})
	if worker.Report(context.Background(), worker.Usage{Model: "x"}) {
		t.Error("Report outside a handler reported true")
	}
}

func TestAWorkerWithoutRetriesFailsAtTheFirstError(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		var calls atomic.Int64
		w, err := worker.NewDynamic(connect(), "once", func(context.Context, map[string]any) (map[string]any, error) {
			calls.Add(1)
			return nil, errors.New("model unavailable")
		}, worker.Config{NoRetries: true})
		startWorker(t, w, err)
		task := heddle.NewTaskMessage("once", nil) // max_retries 2
		res, err := dispatch.Request(testkit.Context(t), connect(), task, dispatch.Direct())
		if err != nil || res.Status != heddle.StatusFailed || res.Error != "model unavailable" {
			t.Fatalf("result %+v, %v; want failed with the handler's error", res, err)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("the handler ran %d times, want once", n)
		}
		if s := w.Stats(); s.Retried != 0 {
			t.Errorf("Stats().Retried = %d, want 0", s.Retried)
		}
	})
}

type strictIn struct {
	Email string `json:"email" jsonschema:"format=email,maxLength=40"`
	Age   int    `json:"age" jsonschema:"minimum=0"`
}

func TestShallowValidationAcceptsWhatAPythonWorkerAccepts(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		handler := func(_ context.Context, in strictIn) (boundedOut, error) { return boundedOut{N: in.Age}, nil }
		full, err := worker.New(connect(), "full", handler, worker.Config{})
		startWorker(t, full, err)
		shallow, err := worker.New(connect(), "shallow", handler, worker.Config{ShallowValidation: true})
		startWorker(t, shallow, err)
		b := connect()
		tests := []struct {
			name          string
			payload       map[string]any
			full, shallow heddle.TaskStatus
		}{
			{"a valid payload passes both", map[string]any{"email": "ada@example.com", "age": 36}, heddle.StatusCompleted, heddle.StatusCompleted},
			{"a bad format and a bound pass only the shallow check", map[string]any{"email": "not an email", "age": -1}, heddle.StatusFailed, heddle.StatusCompleted},
			{"a missing required key fails both", map[string]any{"email": "ada@example.com"}, heddle.StatusFailed, heddle.StatusFailed},
			{"a top-level type fails both", map[string]any{"email": "ada@example.com", "age": "old"}, heddle.StatusFailed, heddle.StatusFailed},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				for wt, want := range map[string]heddle.TaskStatus{"full": tt.full, "shallow": tt.shallow} {
					res, err := dispatch.Request(testkit.Context(t), b, heddle.NewTaskMessage(wt, tt.payload), dispatch.Direct())
					if err != nil {
						t.Fatal(err)
					}
					if res.Status != want {
						t.Errorf("%s worker: %s (%s), want %s", wt, res.Status, res.Error, want)
					}
				}
			})
		}
	})
}
