package heddle_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/orchestrator"
	"github.com/heddle-go/heddle/pipeline"
	"github.com/heddle-go/heddle/worker"
)

const upstreamDir = "schemas/upstream-v1"

// checkManifest verifies the sha256 of every schema manifest.json lists.
func checkManifest(fsys fs.FS) error {
	raw, err := fs.ReadFile(fsys, "manifest.json")
	if err != nil {
		return err
	}
	var m struct {
		Schemas map[string]struct {
			SHA256 string `json:"sha256"`
		} `json:"schemas"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("manifest.json: %w", err)
	}
	if len(m.Schemas) == 0 {
		return errors.New("manifest.json lists no schema")
	}
	for name, want := range m.Schemas {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != want.SHA256 {
			return fmt.Errorf("%s: sha256 %s, the manifest says %s", name, got, want.SHA256)
		}
	}
	return nil
}

func TestUpstreamSchemasMatchTheirManifest(t *testing.T) {
	dir := os.DirFS(upstreamDir)
	if err := checkManifest(dir); err != nil {
		t.Fatal(err)
	}
	// An edited schema, even by one byte, fails the check.
	edited := fstest.MapFS{}
	for _, name := range []string{"manifest.json", "task_message.schema.json", "task_result.schema.json",
		"orchestrator_goal.schema.json", "checkpoint_state.schema.json"} {
		data, err := fs.ReadFile(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		edited[name] = &fstest.MapFile{Data: data}
	}
	edited["task_result.schema.json"].Data = bytes.Replace(edited["task_result.schema.json"].Data, []byte(`"completed"`), []byte(`"complete"`), 1)
	if err := checkManifest(edited); err == nil || !strings.Contains(err.Error(), "task_result.schema.json") {
		t.Errorf("checkManifest of an edited schema = %v, want an error naming it", err)
	}
}

// upstreamSchema compiles one upstream schema; widen edits the document
// first (for the documented drift).
func upstreamSchema(t *testing.T, name string, widen func(doc map[string]any)) *contracts.Schema {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(upstreamDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if widen != nil {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		widen(doc)
		if raw, err = json.Marshal(doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := contracts.NewSchema(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

// withRetryStatus adds the runtime's retry status to the schema's
// TaskStatus enum: known drift.
func withRetryStatus(doc map[string]any) {
	status := doc["$defs"].(map[string]any)["TaskStatus"].(map[string]any)
	status["enum"] = append(status["enum"].([]any), "retry")
}

func validateUpstream(t *testing.T, s *contracts.Schema, what string, data []byte) {
	t.Helper()
	if err := s.Validate(json.RawMessage(data)); err != nil {
		t.Errorf("%s does not validate against the upstream schema: %v\n%s", what, err, data)
	}
}

type upstreamIn struct {
	N int `json:"n" jsonschema:"maximum=10"`
}

type upstreamOut struct {
	Doubled int `json:"doubled"`
}

func TestEmittedMessagesValidateAgainstTheUpstreamSchemas(t *testing.T) {
	taskSchema := upstreamSchema(t, "task_message.schema.json", nil)
	resultSchema := upstreamSchema(t, "task_result.schema.json", nil)
	goalSchema := upstreamSchema(t, "orchestrator_goal.schema.json", nil)
	checkpointSchema := upstreamSchema(t, "checkpoint_state.schema.json", nil)

	task := heddle.NewTaskMessage("double", map[string]any{"n": 2})
	task.Extra = map[string]json.RawMessage{"_trace_context": json.RawMessage(`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`)}
	data, err := task.Encode()
	if err != nil {
		t.Fatal(err)
	}
	validateUpstream(t, taskSchema, "a new TaskMessage", data)

	goal := heddle.NewOrchestratorGoal("summarize the files", map[string]any{"files": []any{"a.pdf"}})
	if data, err = goal.Encode(); err != nil {
		t.Fatal(err)
	}
	validateUpstream(t, goalSchema, "a new OrchestratorGoal", data)

	cp := heddle.CheckpointState{GoalID: goal.GoalID, OriginalInstruction: goal.Instruction, ExecutiveSummary: "two files read",
		CompletedTasks: []map[string]any{{"task_id": "t-1"}}, OpenIssues: []string{"b.pdf is empty"},
		ContextTokenCount: 812, CheckpointNumber: 1, CreatedAt: time.Now()}
	if data, err = cp.Encode(); err != nil {
		t.Fatal(err)
	}
	validateUpstream(t, checkpointSchema, "a CheckpointState", data)

	for name, data := range emittedResults(t) {
		s := resultSchema
		if strings.Contains(name, "retried") {
			s = upstreamSchema(t, "task_result.schema.json", withRetryStatus)
		}
		validateUpstream(t, s, name, data)
	}
}

// emittedResults runs a worker, an orchestrator and a pipeline on membus
// and returns the bytes of each kind of TaskResult they publish.
func emittedResults(t *testing.T) map[string][]byte {
	t.Helper()
	b := membus.New()
	defer b.Close()
	var mu sync.Mutex
	got := map[string][]byte{} // by task_id and worker_type
	arrived := make(chan struct{}, 64)
	if _, err := b.Subscribe(t.Context(), heddle.SubjectResultsAll, func(_ context.Context, m *bus.Msg) error {
		r, err := heddle.DecodeTaskResult(m.Data)
		if err != nil {
			t.Errorf("a result that does not decode: %v", err)
			return nil
		}
		mu.Lock()
		got[r.TaskID+"/"+r.WorkerType] = bytes.Clone(m.Data)
		mu.Unlock()
		arrived <- struct{}{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	attempts := map[int]int{}
	double, err := worker.New(b, "double", func(_ context.Context, in upstreamIn) (upstreamOut, error) {
		mu.Lock()
		attempts[in.N]++
		first := attempts[in.N] == 1
		mu.Unlock()
		switch {
		case in.N == 7:
			return upstreamOut{}, worker.Permanent(errors.New("seven is not doubled"))
		case in.N == 3 && first:
			return upstreamOut{}, errors.New("try again")
		}
		return upstreamOut{Doubled: 2 * in.N}, nil
	}, worker.Config{RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	orch, err := orchestrator.New(b, orchestrator.Config{
		Decompose: func(_ context.Context, g heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) {
			return []heddle.TaskMessage{heddle.NewTaskMessage("double", map[string]any{"n": 1})}, nil
		},
		Synthesize: func(_ context.Context, _ heddle.OrchestratorGoal, rs []heddle.TaskResult) (map[string]any, error) {
			return map[string]any{"results": len(rs)}, nil
		},
		Direct: true, QueueGroup: "orchestrators-test",
	})
	if err != nil {
		t.Fatal(err)
	}
	pipe, err := pipeline.New(b, pipeline.Config{Name: "upstream", Direct: true, QueueGroup: "pipelines-test",
		Stages: []pipeline.Stage{{Name: "twice", WorkerType: "double", InputMapping: map[string]string{"n": "goal.context.n"}}}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := heddle.Start(t.Context(), double, orch, pipe)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := g.Stop(); err != nil {
			t.Error(err)
		}
	}()
	ctx := testkit.Context(t)
	names := map[string]string{} // key in got -> what it is
	for name, n := range map[string]any{"a completed result": 2, "a result failed by the contract": 11,
		"a result failed permanently": 7, "a retried result": 3} {
		task := heddle.NewTaskMessage("double", map[string]any{"n": n})
		if _, err := dispatch.Request(ctx, b, task, dispatch.Direct()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		names[task.TaskID+"/double"] = name
	}
	// The orchestrator and the pipeline are in groups of their own: each
	// answers the goal with a final result.
	goal := heddle.NewOrchestratorGoal("double it", map[string]any{"n": 4})
	if _, err := dispatch.SubmitGoal(ctx, b, goal); err != nil {
		t.Fatal(err)
	}
	names[goal.GoalID+"/"+orchestrator.WorkerType] = "an orchestrator's final result"
	names[goal.GoalID+"/upstream"] = "a pipeline's final result"
	out := map[string][]byte{}
	for len(out) < len(names) {
		mu.Lock()
		for key, name := range names {
			if data, ok := got[key]; ok {
				out[name] = data
			}
		}
		mu.Unlock()
		if len(out) == len(names) {
			break
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			t.Fatalf("saw %d of the %d kinds of result on the wire", len(out), len(names))
		}
	}
	return out
}

func TestPythonFixturesDecodeValidateAndRoundTrip(t *testing.T) {
	files, err := filepath.Glob("contracttest/testdata/python-heddle/*.json")
	if err != nil || len(files) < 16 {
		t.Fatalf("python-heddle fixtures: %d files, %v", len(files), err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			switch typ, _, _ := strings.Cut(name, "__"); typ {
			case "TaskMessage":
				roundTrip(t, data, heddle.DecodeTaskMessage, heddle.TaskMessage.Encode)
			case "TaskResult":
				roundTrip(t, data, heddle.DecodeTaskResult, heddle.TaskResult.Encode)
			case "OrchestratorGoal":
				roundTrip(t, data, heddle.DecodeOrchestratorGoal, heddle.OrchestratorGoal.Encode)
			case "DeadLetter":
				d := roundTrip(t, data, heddle.DecodeDeadLetter, heddle.DeadLetter.Encode)
				var env struct {
					OriginalTask json.RawMessage `json:"original_task"`
				}
				if err := json.Unmarshal(data, &env); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(d.Original(), env.OriginalTask) {
					t.Errorf("original %s, want exactly %s", d.Original(), env.OriginalTask)
				}
			default:
				t.Fatalf("no decoder for %s", typ)
			}
		})
	}
}

// roundTrip decodes data, validates it, encodes it and decodes that
// again, requiring the same value, and returns it.
func roundTrip[M any](t *testing.T, data []byte, decode func([]byte) (M, error), encode func(M) ([]byte, error)) M {
	t.Helper()
	m, err := decode(data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	enc, err := encode(m)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	again, err := decode(enc)
	if err != nil {
		t.Fatalf("decode of the re-encoded message: %v\n%s", err, enc)
	}
	if !reflect.DeepEqual(m, again) {
		t.Errorf("round trip changed the message:\n%+v\n%+v", m, again)
	}
	return m
}

// The Python dead-letter consumer reads original_task alone: for input
// that is not JSON it must still find an object it can store and replay,
// while Go readers get the exact bytes back from original_raw.
func TestADeadLetterOfNonJSONIsReadableFromOriginalTaskAlone(t *testing.T) {
	original := []byte("not json \xff at all")
	env, err := heddle.NewDeadLetter("invalid_task_message: malformed JSON", original).Encode()
	if err != nil {
		t.Fatal(err)
	}
	var python struct {
		OriginalTask map[string]any `json:"original_task"`
	}
	if err := json.Unmarshal(env, &python); err != nil || python.OriginalTask == nil {
		t.Fatalf("original_task of %s is not an object: %v", env, err)
	}
	if got := python.OriginalTask["_unparsed"]; got != "not json \uFFFD at all" {
		t.Errorf("original_task._unparsed = %q, want the text with the invalid byte replaced", got)
	}
	d, err := heddle.DecodeDeadLetter(env)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Original(), original) {
		t.Errorf("Original() = %q, want the exact bytes %q", d.Original(), original)
	}
}
