package heddle

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/heddle-go/heddle/internal/wire"
)

// CheckpointState is an orchestrator's compressed state, written when its
// history grows past a token threshold so that it can start again from
// the checkpoint and a short window of recent interactions. Its wire
// form is the Python Heddle's (schema checkpoint_state, v1).
//
// On the wire the lists are never null: nil slices are written as [].
type CheckpointState struct {
	// GoalID is the goal the orchestrator works on. Required.
	GoalID string
	// OriginalInstruction is the goal's instruction. Required (absent or null is invalid; empty is valid).
	OriginalInstruction string
	// ExecutiveSummary condenses the history. Required (absent or null is invalid; empty is valid).
	ExecutiveSummary string
	// CompletedTasks and PendingTasks describe tasks, one object each.
	CompletedTasks []map[string]any
	PendingTasks   []map[string]any
	// OpenIssues and DecisionsMade are lines of text.
	OpenIssues    []string
	DecisionsMade []string
	// ContextTokenCount is the size of the compressed context in tokens.
	ContextTokenCount int
	// CheckpointNumber counts the checkpoints of the goal, from 1.
	CheckpointNumber int
	// CreatedAt is when the checkpoint was made (UTC, microsecond
	// precision); a decoded checkpoint without one gets the current time.
	CreatedAt time.Time
	// Extra holds unknown top-level fields of a decoded checkpoint,
	// verbatim.
	Extra map[string]json.RawMessage
}

var checkpointFields = []string{"goal_id", "original_instruction", "executive_summary", "completed_tasks",
	"pending_tasks", "open_issues", "decisions_made", "context_token_count", "checkpoint_number", "created_at"}

// DecodeCheckpointState decodes and validates a CheckpointState. The
// error, if any, is a *ValidationError naming every bad or missing field.
func DecodeCheckpointState(data []byte) (CheckpointState, error) {
	var c CheckpointState
	err := c.decode(data)
	return c, err
}

// UnmarshalJSON decodes as DecodeCheckpointState does; JSON null leaves c
// unchanged.
func (c *CheckpointState) UnmarshalJSON(data []byte) error {
	if isNull(data) {
		return nil
	}
	return c.decode(data)
}

func (c *CheckpointState) decode(data []byte) error {
	d := wire.Decoder{Now: now}
	d.Init(data)
	if !d.IsObject() {
		return fieldErr("CheckpointState", d.Problems)
	}
	*c = CheckpointState{
		GoalID:              d.Str("goal_id", wire.Required, nil),
		OriginalInstruction: d.Str("original_instruction", wire.RequiredText, nil),
		ExecutiveSummary:    d.Str("executive_summary", wire.RequiredText, nil),
		CompletedTasks:      checkpointList[map[string]any](&d, "completed_tasks", "objects"),
		PendingTasks:        checkpointList[map[string]any](&d, "pending_tasks", "objects"),
		OpenIssues:          checkpointList[string](&d, "open_issues", "strings"),
		DecisionsMade:       checkpointList[string](&d, "decisions_made", "strings"),
		ContextTokenCount:   checkpointInt(&d, "context_token_count"),
		CheckpointNumber:    checkpointInt(&d, "checkpoint_number"),
		CreatedAt:           d.Time("created_at", wire.Optional),
	}
	c.Extra = d.Extra()
	var p problems
	c.validate(&p)
	return fieldErr("CheckpointState", d.Check(p.fields, checkpointFields))
}

// checkpointList reads a required array of T.
func checkpointList[T any](d *wire.Decoder, name, what string) []T {
	raw, ok := d.Take(name)
	if !ok {
		d.Fail(name, "required")
		return nil
	}
	var out []T
	if wire.KindOf(raw) != wire.KindArray || json.Unmarshal(raw, &out) != nil {
		d.Fail(name, "expected an array of %s, got %s", what, wire.KindName(raw))
		return nil
	}
	for i, v := range out {
		if m, isMap := any(v).(map[string]any); isMap && m == nil {
			d.Fail(name, "item %d: expected object, got null", i)
			return nil
		}
	}
	return out
}

// checkpointInt reads a required integer.
func checkpointInt(d *wire.Decoder, name string) int {
	raw, ok := d.Take(name)
	if !ok {
		d.Fail(name, "required")
		return 0
	}
	n, ok := wire.ParseInteger(raw)
	if !ok {
		d.Fail(name, "expected integer, got %s", wire.KindName(raw))
	}
	return n
}

// Validate reports every invalid field of c: an empty goal_id, negative
// counts, a zero created_at. An empty original_instruction or
// executive_summary is valid, as schema v1 and the Python Heddle have it
// (absent or null is not).
func (c CheckpointState) Validate() error {
	p := problems{typ: "CheckpointState"}
	c.validate(&p)
	return p.err()
}

func (c CheckpointState) validate(p *problems) {
	if c.GoalID == "" {
		p.add("goal_id", "required")
	}
	if c.ContextTokenCount < 0 {
		p.add("context_token_count", "must not be negative, got %d", c.ContextTokenCount)
	}
	if c.CheckpointNumber < 0 {
		p.add("checkpoint_number", "must not be negative, got %d", c.CheckpointNumber)
	}
	if c.CreatedAt.IsZero() {
		p.add("created_at", "required")
	}
}

// MarshalJSON writes c in wire form without validating it; see Encode.
func (c CheckpointState) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, `{"goal_id":`...)
	b = wire.AppendString(b, c.GoalID)
	b = append(b, `,"original_instruction":`...)
	b = wire.AppendString(b, c.OriginalInstruction)
	b = append(b, `,"executive_summary":`...)
	b = wire.AppendString(b, c.ExecutiveSummary)
	for _, list := range []struct {
		name string
		objs []map[string]any
	}{{"completed_tasks", c.CompletedTasks}, {"pending_tasks", c.PendingTasks}} {
		b = append(b, `,"`+list.name+`":[`...)
		for i, o := range list.objs {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = wire.AppendObject(b, o, false); err != nil {
				return nil, fmt.Errorf("heddle: encoding CheckpointState %s item %d: %w", list.name, i, err)
			}
		}
		b = append(b, ']')
	}
	for _, list := range []struct {
		name  string
		lines []string
	}{{"open_issues", c.OpenIssues}, {"decisions_made", c.DecisionsMade}} {
		b = append(b, `,"`+list.name+`":[`...)
		for i, s := range list.lines {
			if i > 0 {
				b = append(b, ',')
			}
			b = wire.AppendString(b, s)
		}
		b = append(b, ']')
	}
	b = append(b, `,"context_token_count":`...)
	b = strconv.AppendInt(b, int64(c.ContextTokenCount), 10)
	b = append(b, `,"checkpoint_number":`...)
	b = strconv.AppendInt(b, int64(c.CheckpointNumber), 10)
	b = append(b, `,"created_at":`...)
	b = wire.AppendTime(b, c.CreatedAt)
	return wire.AppendExtra(b, c.Extra, checkpointFields)
}

// Encode validates c and returns its wire form.
func (c CheckpointState) Encode() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c.MarshalJSON()
}
