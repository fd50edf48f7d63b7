package heddle

import (
	"github.com/heddle-go/heddle/internal/wire"

	"encoding/json"
	"fmt"
)

// ModelTier selects the model class that handles a task.
type ModelTier string

// The model tiers.
const (
	TierLocal    ModelTier = "local"
	TierStandard ModelTier = "standard"
	TierFrontier ModelTier = "frontier"
)

var modelTiers = []ModelTier{TierLocal, TierStandard, TierFrontier}

// ModelTiers returns every model tier, cheapest first.
func ModelTiers() []ModelTier { return append([]ModelTier(nil), modelTiers...) }

// Valid reports whether t is one of the model tiers.
func (t ModelTier) Valid() bool { return t == TierLocal || t == TierStandard || t == TierFrontier }

// ParseModelTier returns the tier named s, or an error wrapping
// ErrUnknownEnum that lists the allowed values.
func ParseModelTier(s string) (ModelTier, error) {
	if t := ModelTier(s); t.Valid() {
		return t, nil
	}
	return "", enumError("model tier", s, modelTiers)
}

// UnmarshalJSON accepts only the tier names; JSON null leaves t unchanged.
func (t *ModelTier) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "model tier", t, ParseModelTier)
}

// Priority is a task's or goal's scheduling priority.
type Priority string

// The priorities.
const (
	PriorityLow      Priority = "low"
	PriorityNormal   Priority = "normal"
	PriorityHigh     Priority = "high"
	PriorityCritical Priority = "critical"
)

var priorities = []Priority{PriorityLow, PriorityNormal, PriorityHigh, PriorityCritical}

// Valid reports whether p is one of the priorities.
func (p Priority) Valid() bool {
	return p == PriorityLow || p == PriorityNormal || p == PriorityHigh || p == PriorityCritical
}

// ParsePriority returns the priority named s, or an error wrapping
// ErrUnknownEnum that lists the allowed values.
func ParsePriority(s string) (Priority, error) {
	if p := Priority(s); p.Valid() {
		return p, nil
	}
	return "", enumError("priority", s, priorities)
}

// UnmarshalJSON accepts only the priority names; JSON null leaves p
// unchanged.
func (p *Priority) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "priority", p, ParsePriority)
}

// TaskStatus is the state a TaskResult reports.
type TaskStatus string

// The task statuses.
const (
	StatusPending    TaskStatus = "pending"
	StatusProcessing TaskStatus = "processing"
	StatusCompleted  TaskStatus = "completed"
	StatusFailed     TaskStatus = "failed"
	StatusRetry      TaskStatus = "retry"
)

var taskStatuses = []TaskStatus{StatusPending, StatusProcessing, StatusCompleted, StatusFailed, StatusRetry}

// Valid reports whether s is one of the task statuses.
func (s TaskStatus) Valid() bool {
	switch s {
	case StatusPending, StatusProcessing, StatusCompleted, StatusFailed, StatusRetry:
		return true
	}
	return false
}

// ParseTaskStatus returns the status named s, or an error wrapping
// ErrUnknownEnum that lists the allowed values.
func ParseTaskStatus(s string) (TaskStatus, error) {
	if st := TaskStatus(s); st.Valid() {
		return st, nil
	}
	return "", enumError("task status", s, taskStatuses)
}

// UnmarshalJSON accepts only the status names; JSON null leaves s
// unchanged.
func (s *TaskStatus) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "task status", s, ParseTaskStatus)
}

func enumError[T ~string](what, s string, allowed []T) error {
	return fmt.Errorf("%w: %s %s", ErrUnknownEnum, what, wire.EnumProblem(s, allowed))
}

func unmarshalEnum[T ~string](b []byte, what string, dst *T, parse func(string) (T, error)) error {
	if isNull(b) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: %s must be a JSON string, got %s", ErrUnknownEnum, what, wire.KindName(b))
	}
	v, err := parse(s)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}
