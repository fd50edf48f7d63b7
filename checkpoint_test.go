package heddle_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
)

func TestCheckpointStateRoundTripsAndNamesEveryBadField(t *testing.T) {
	cp := heddle.CheckpointState{
		GoalID: "goal-1", OriginalInstruction: "summarize", ExecutiveSummary: "half done",
		CompletedTasks: []map[string]any{{"task_id": "t-1", "summary": "a"}}, PendingTasks: []map[string]any{},
		OpenIssues: []string{"b.pdf"}, DecisionsMade: []string{"skip images"},
		ContextTokenCount: 812, CheckpointNumber: 2, CreatedAt: time.Date(2026, 12, 1, 10, 0, 0, 500, time.UTC),
	}
	data, err := cp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"goal_id":"goal-1","original_instruction":"summarize","executive_summary":"half done",` +
		`"completed_tasks":[{"summary":"a","task_id":"t-1"}],"pending_tasks":[],"open_issues":["b.pdf"],` +
		`"decisions_made":["skip images"],"context_token_count":812,"checkpoint_number":2,"created_at":"2026-12-01T10:00:00Z"}`
	if string(data) != want {
		t.Errorf("encoded\n got %s\nwant %s", data, want)
	}
	got, err := heddle.DecodeCheckpointState(data)
	if err != nil {
		t.Fatal(err)
	}
	cp.CreatedAt = cp.CreatedAt.Truncate(time.Microsecond)
	if !reflect.DeepEqual(got, cp) {
		t.Errorf("decoded %+v, want %+v", got, cp)
	}

	bad := `{"goal_id":"g","executive_summary":"","completed_tasks":[1],"pending_tasks":[],"open_issues":"x",` +
		`"decisions_made":[],"context_token_count":1.5,"checkpoint_number":-1}`
	_, err = heddle.DecodeCheckpointState([]byte(bad))
	var ve *heddle.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, heddle.ErrInvalidMessage) {
		t.Fatalf("error %v, want a *ValidationError", err)
	}
	if ve.Has("executive_summary") {
		t.Errorf("error %v names executive_summary, whose empty value schema v1 accepts", err)
	}
	for _, field := range []string{"original_instruction", "completed_tasks", "open_issues",
		"context_token_count", "checkpoint_number"} {
		if !ve.Has(field) {
			t.Errorf("error %v does not name %s", err, field)
		}
	}
	if ve.Has("created_at") {
		t.Errorf("error %v names created_at, which defaults to now when absent", err)
	}
}

func TestEmptyTextFieldsThatSchemaV1AcceptsDecodeAndRoundTrip(t *testing.T) {
	cp := `{"goal_id":"g","original_instruction":"","executive_summary":"","completed_tasks":[],"pending_tasks":[],` +
		`"open_issues":[],"decisions_made":[],"context_token_count":0,"checkpoint_number":0,"created_at":"2026-12-01T10:00:00Z"}`
	got, err := heddle.DecodeCheckpointState([]byte(cp))
	if err != nil {
		t.Fatalf("a checkpoint with an empty original_instruction and executive_summary: %v", err)
	}
	if data, err := got.Encode(); err != nil || string(data) != cp {
		t.Errorf("re-encoded\n got %s, %v\nwant %s", data, err, cp)
	}
	for _, null := range []string{`"original_instruction":null`, `"executive_summary":null`} {
		bad := `{"goal_id":"g","original_instruction":"","executive_summary":"",` + null + `}`
		if _, err := heddle.DecodeCheckpointState([]byte(bad)); err == nil {
			t.Errorf("%s decoded without error; null is not text", null)
		}
	}

	goal, err := heddle.DecodeOrchestratorGoal([]byte(`{"goal_id":"g","instruction":""}`))
	if err != nil || goal.Instruction != "" {
		t.Fatalf("a goal with an empty instruction: %+v, %v", goal, err)
	}
	if _, err := heddle.DecodeOrchestratorGoal([]byte(`{"goal_id":"g"}`)); err == nil {
		t.Error("a goal without an instruction decoded without error")
	}
}
