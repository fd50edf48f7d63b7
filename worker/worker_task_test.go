package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/worker"
)

// unchecked checks neither side, so that these tests reach the decoding.
var unchecked = contracts.New(nil, nil)

// typedIn holds the kinds a typed input is filled with from the decoded
// payload, and ones left to encoding/json.
type typedIn struct {
	Text  string            `json:"text"`
	Count int               `json:"count"`
	Score float64           `json:"score"`
	Tags  []string          `json:"tags"`
	Extra map[string]any    `json:"extra"`
	Inner *typedInner       `json:"inner"`
	By    map[string]uint16 `json:"by"`
	When  time.Time         `json:"when"`
}

type typedInner struct {
	Name string `json:"name"`
}

// typedOut is a typed output with omitempty and big integers.
type typedOut struct {
	In    typedIn `json:"in"`
	Big   int64   `json:"big"`
	Empty string  `json:"empty,omitempty"`
}

func TestTypedWorkerInputIsWhatEncodingJSONDecodes(t *testing.T) {
	payloads := []string{
		`{"text":"a","count":3,"score":0.5,"tags":["x"],"extra":{"k":[1,"v"]},"inner":{"name":"n"},"by":{"a":7}}`,
		`{"text":"a","count":3,"score":2.0}`,                      // an integral fraction: left to encoding/json
		`{"text":"a","when":"2026-01-02T03:04:05Z","inner":null}`, // a type with its own decoder
		`{"text":"a","inner":{"name":"x"},"inner":{"name":"y"}}`,  // a repeated key
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		for _, p := range payloads {
			t.Run(p, func(t *testing.T) {
				got := make(chan typedIn, 1)
				wt := workerTestType("typed")
				w, err := worker.New(connect(), wt, func(_ context.Context, in typedIn) (typedOut, error) {
					got <- in
					return typedOut{In: in, Big: 1<<62 + 1}, nil
				}, worker.Config{Contract: unchecked})
				if err != nil {
					t.Fatal(err)
				}
				workerStart(t, w)
				caller := connect()
				var payload map[string]any
				if err := json.Unmarshal([]byte(p), &payload); err != nil {
					t.Fatal(err)
				}
				task := heddle.NewTaskMessage(wt, payload)
				task.ParentTaskID = "p" + task.TaskID
				results := workerCollect(t, caller, task.ResultSubject())
				data, err := task.Encode()
				if err != nil {
					t.Fatal(err)
				}
				// The payload's own bytes, as the caller wrote them
				// (repeated keys included).
				data = []byte(strings.Replace(string(data), `"payload":`+string(mustJSON(t, payload)), `"payload":`+p, 1))
				workerPublishRaw(t, caller, task.WorkerSubject(), data)
				r := results.next(t)
				if r.Status != heddle.StatusCompleted {
					t.Fatalf("status %s: %s", r.Status, r.Error)
				}
				var want typedIn
				if err := json.Unmarshal([]byte(p), &want); err != nil {
					t.Fatal(err)
				}
				in := <-got
				if !reflect.DeepEqual(in, want) {
					t.Fatalf("the handler got\n%#v\nencoding/json decodes\n%#v", in, want)
				}
				// The output as json.Marshal writes it: the big integer
				// exact, the empty field left out.
				if string(r.raw["output"]) == "" || !strings.Contains(string(r.raw["output"]), `"big":4611686018427387905`) ||
					strings.Contains(string(r.raw["output"]), `"empty"`) {
					t.Fatalf("output %s", r.raw["output"])
				}
			})
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := heddle.NewTaskMessage("x", v.(map[string]any)).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m["payload"]
}

func TestTypedWorkerRetryGetsTheInputTheContractSaw(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		seen := make(chan any, 2)
		wt := workerTestType("mutating")
		w, err := worker.New(connect(), wt, func(_ context.Context, in typedIn) (typedOut, error) {
			seen <- in.Extra["list"].([]any)[0]
			in.Extra["list"].([]any)[0] = "changed by the first attempt"
			in.Extra["added"] = true
			if len(seen) == 1 {
				return typedOut{}, errors.New("try again")
			}
			return typedOut{In: in}, nil
		}, worker.Config{RetryBackoff: time.Millisecond, Contract: unchecked})
		if err != nil {
			t.Fatal(err)
		}
		workerStart(t, w)
		caller := connect()
		task := heddle.NewTaskMessage(wt, map[string]any{"text": "a", "extra": map[string]any{"list": []any{1}}})
		task.ParentTaskID, task.MaxRetries = "p"+task.TaskID, 1
		results := workerCollect(t, caller, task.ResultSubject())
		workerPublishTask(t, caller, task)
		if r := results.next(t); r.Status != heddle.StatusCompleted {
			t.Fatalf("status %s: %s", r.Status, r.Error)
		}
		for i := range 2 {
			if v := <-seen; v != float64(1) {
				t.Fatalf("attempt %d saw %v, not the payload's 1", i+1, v)
			}
		}
	})
}

func TestTypedWorkerRefusesAnIntegerWrittenWithAFraction(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wt := workerTestType("fraction")
		w, err := worker.New(connect(), wt, func(_ context.Context, in typedIn) (typedOut, error) {
			return typedOut{In: in}, nil
		}, worker.Config{Contract: unchecked})
		if err != nil {
			t.Fatal(err)
		}
		workerStart(t, w)
		caller := connect()
		task := heddle.NewTaskMessage(wt, map[string]any{"count": 1.5})
		task.ParentTaskID = "p" + task.TaskID
		results := workerCollect(t, caller, task.ResultSubject())
		workerPublishTask(t, caller, task)
		r := results.next(t)
		if r.Status != heddle.StatusFailed || !strings.Contains(r.Error, "cannot unmarshal number 1.5") {
			t.Fatalf("status %s, error %q; want encoding/json's error", r.Status, r.Error)
		}
	})
}
