package heddle

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/heddle-go/heddle/internal/codec"
	"github.com/heddle-go/heddle/internal/wire"
)

// DecodeTaskMessage decodes and validates a TaskMessage. The error, if any,
// is a *ValidationError (matching ErrInvalidMessage) naming every bad or
// missing field, in wire field order.
//
// The four Decode functions read the Python Heddle's wire format as
// pydantic does, and no more loosely:
//
//   - field names match exactly (case-sensitive); when a name repeats, the
//     last value counts;
//   - enum values must be one of the lower-case names;
//   - counts must be JSON numbers with an integral value (2 and 2.0, not
//     2.5 or "2");
//   - payload, metadata, context and output must be JSON objects (output
//     may be null);
//   - absent wire.Optional fields take the wire defaults; absent task_id and
//     goal_id get a fresh UUID v4 and absent created_at / completed_at the
//     current time, as pydantic's default factories do;
//   - times are RFC 3339 ("T" or a space before the time); a timestamp
//     without offset (a naive Python datetime) is read as UTC; every time
//     is kept in UTC at microsecond precision, as Python holds it;
//   - unknown top-level fields are accepted and kept verbatim in Extra,
//     and written back on encode, so a message passing through a Go actor
//     keeps fields added by newer senders;
//   - payload and the other free-form objects decode as encoding/json
//     decodes into map[string]any: numbers become float64, so integers
//     beyond 2^53 lose precision (send such identifiers as strings).
//
// Two checks go beyond pydantic: worker_type, parent_task_id and goal_id
// must be usable in a subject (no whitespace, wildcard tokens or empty
// tokens), and task_id, worker_type and goal_id must not be empty. An
// empty instruction is accepted, as schema v1 and pydantic accept it.
func DecodeTaskMessage(data []byte) (TaskMessage, error) {
	var m TaskMessage
	err := m.decode(data)
	return m, err
}

// DecodeTaskResult decodes and validates a TaskResult, by the rules of
// DecodeTaskMessage.
func DecodeTaskResult(data []byte) (TaskResult, error) {
	var r TaskResult
	err := r.decode(data)
	return r, err
}

// DecodeOrchestratorGoal decodes and validates an OrchestratorGoal, by the
// rules of DecodeTaskMessage.
func DecodeOrchestratorGoal(data []byte) (OrchestratorGoal, error) {
	var g OrchestratorGoal
	err := g.decode(data)
	return g, err
}

// DecodeDeadLetter decodes and validates a DeadLetter envelope, from the
// Go or the Python router. task_id and worker_type are read leniently: the
// Python router copies them from the original whatever their type, so a
// value that is not a string reads as unknown ("").
func DecodeDeadLetter(data []byte) (DeadLetter, error) {
	var d DeadLetter
	err := d.decode(data)
	return d, err
}

// UnmarshalJSON decodes and validates like DecodeTaskMessage. JSON null
// leaves m unchanged, as encoding/json expects of an Unmarshaler.
func (m *TaskMessage) UnmarshalJSON(data []byte) error {
	if isNull(data) {
		return nil
	}
	return m.decode(data)
}

// UnmarshalJSON decodes and validates like DecodeTaskResult; JSON null
// leaves r unchanged.
func (r *TaskResult) UnmarshalJSON(data []byte) error {
	if isNull(data) {
		return nil
	}
	return r.decode(data)
}

// UnmarshalJSON decodes and validates like DecodeOrchestratorGoal; JSON
// null leaves g unchanged.
func (g *OrchestratorGoal) UnmarshalJSON(data []byte) error {
	if isNull(data) {
		return nil
	}
	return g.decode(data)
}

// UnmarshalJSON decodes and validates like DecodeDeadLetter; JSON null
// leaves d unchanged.
func (d *DeadLetter) UnmarshalJSON(data []byte) error {
	if isNull(data) {
		return nil
	}
	return d.decode(data)
}

func isNull(data []byte) bool { return string(bytes.TrimSpace(data)) == "null" }

var taskMessageFields = []string{"task_id", "parent_task_id", "worker_type", "payload", "model_tier",
	"priority", "max_retries", "retry_count", "created_at", "request_id", "metadata"}

func (m *TaskMessage) decode(data []byte) error { return m.decodeAs(data, false) }

// decodeTaskEnvelope decodes and validates data as DecodeTaskMessage does,
// with the same verdict and the same error, but leaves Payload and
// Metadata nil: it checks them without building their maps. It is for
// readers of the envelope fields alone, such as a router (through
// internal/codec).
func decodeTaskEnvelope(data []byte) (TaskMessage, error) {
	var m TaskMessage
	err := m.decodeAs(data, true)
	return m, err
}

// decodeTaskPayload is DecodeTaskMessage, also returning the payload's
// bytes within data (nil when the message is rejected), so that a typed
// worker decodes its input from exactly the bytes that were checked
// (through internal/codec).
func decodeTaskPayload(data []byte) (TaskMessage, []byte, error) {
	var m TaskMessage
	payload, err := m.decodeRaw(data, false)
	return m, payload, err
}

func init() {
	codec.DecodeTaskEnvelope = decodeTaskEnvelope
	codec.DecodeTaskPayload = decodeTaskPayload
	codec.AppendTaskResult = (*TaskResult).appendJSON
}

func (m *TaskMessage) decodeAs(data []byte, envelope bool) error {
	_, err := m.decodeRaw(data, envelope)
	return err
}

// decodeRaw is decodeAs, also returning the payload's bytes in data (nil
// when the message is rejected).
func (m *TaskMessage) decodeRaw(data []byte, envelope bool) ([]byte, error) {
	d := wire.Decoder{Now: now}
	d.Init(data)
	d.Envelope = envelope
	if !d.IsObject() {
		return nil, fieldErr("TaskMessage", d.Problems)
	}
	var payload []byte
	*m = TaskMessage{
		TaskID:       d.Str("task_id", wire.Optional, uuid.NewString),
		ParentTaskID: d.Str("parent_task_id", wire.Nullable, nil),
		WorkerType:   d.Symbol("worker_type", wire.Required),
		Payload:      d.ObjectRaw("payload", wire.Required, nil, &payload),
		ModelTier:    ModelTier(d.Enum("model_tier", string(DefaultModelTier), modelTierNames)),
		Priority:     Priority(d.Enum("priority", string(DefaultPriority), priorityNames)),
		MaxRetries:   d.Integer("max_retries", DefaultMaxRetries),
		RetryCount:   d.Integer("retry_count", 0),
		CreatedAt:    d.Time("created_at", wire.Optional),
		RequestID:    d.Str("request_id", wire.Nullable, nil),
		Metadata:     d.Object("metadata", wire.Optional, nil),
	}
	if m.Metadata == nil && !envelope {
		m.Metadata = map[string]any{} // absent or rejected: the default
	}
	m.Extra = d.Extra()
	if envelope {
		m.Payload, m.Metadata = nil, nil
	}
	var p problems
	m.validate(&p)
	if err := fieldErr("TaskMessage", d.Check(p.fields, taskMessageFields)); err != nil {
		return nil, err
	}
	return payload, nil
}

var taskResultFields = []string{"task_id", "parent_task_id", "worker_type", "status", "output", "error",
	"model_used", "token_usage", "processing_time_ms", "completed_at", "metadata"}

func (r *TaskResult) decode(data []byte) error {
	d := wire.Decoder{Now: now}
	d.Init(data)
	if !d.IsObject() {
		return fieldErr("TaskResult", d.Problems)
	}
	*r = TaskResult{
		TaskID:           d.Str("task_id", wire.Required, nil),
		ParentTaskID:     d.Str("parent_task_id", wire.Nullable, nil),
		WorkerType:       d.Symbol("worker_type", wire.Required),
		Status:           TaskStatus(d.Enum("status", "", taskStatusNames)),
		Output:           d.Object("output", wire.Nullable, nil),
		Error:            d.Str("error", wire.Nullable, nil),
		ModelUsed:        d.Str("model_used", wire.Nullable, nil),
		TokenUsage:       d.TokenUsage("token_usage"),
		ProcessingTimeMS: d.Integer("processing_time_ms", 0),
		CompletedAt:      d.Time("completed_at", wire.Optional),
		Metadata:         d.Object("metadata", wire.Nullable, nil),
	}
	r.Extra = d.Extra()
	var p problems
	r.validate(&p)
	return fieldErr("TaskResult", d.Check(p.fields, taskResultFields))
}

var goalFields = []string{"goal_id", "instruction", "context", "request_id", "priority", "created_at"}

func (g *OrchestratorGoal) decode(data []byte) error {
	d := wire.Decoder{Now: now}
	d.Init(data)
	if !d.IsObject() {
		return fieldErr("OrchestratorGoal", d.Problems)
	}
	*g = OrchestratorGoal{
		GoalID:      d.Str("goal_id", wire.Optional, uuid.NewString),
		Instruction: d.Str("instruction", wire.RequiredText, nil),
		Context:     d.Object("context", wire.Optional, map[string]any{}),
		RequestID:   d.Str("request_id", wire.Nullable, nil),
		Priority:    Priority(d.Enum("priority", string(DefaultPriority), priorityNames)),
		CreatedAt:   d.Time("created_at", wire.Optional),
	}
	g.Extra = d.Extra()
	var p problems
	g.validate(&p)
	return fieldErr("OrchestratorGoal", d.Check(p.fields, goalFields))
}

var deadLetterFields = []string{"reason", "original_task", "original_raw", "task_id", "worker_type", "received_at"}

func (dl *DeadLetter) decode(data []byte) error {
	d := wire.Decoder{Now: now}
	d.Init(data)
	if !d.IsObject() {
		return fieldErr("DeadLetter", d.Problems)
	}
	*dl = DeadLetter{
		Reason:     d.Str("reason", wire.Required, nil),
		TaskID:     d.LenientString("task_id"),
		WorkerType: d.LenientString("worker_type"),
	}
	task, hasTask := d.Take("original_task")
	raw, hasRaw := d.Take("original_raw")
	switch {
	case hasRaw:
		s, ok := d.StringValue("original_raw", raw)
		if ok {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				d.Problems.Add("original_raw", "not valid base64: %v", err)
			} else {
				dl.original = b
			}
		}
	case hasTask:
		dl.original = bytes.Clone(task)
	default:
		d.Problems.Add("original_task", "required")
	}
	if rt, ok := d.Take("received_at"); ok && string(rt) != "null" {
		dl.ReceivedAt = d.TimeValue("received_at", rt)
	}
	dl.Extra = d.Extra()
	return fieldErr("DeadLetter", d.Check(nil, deadLetterFields))
}

// MarshalJSON writes m in wire form without validating it; see Encode.
func (m TaskMessage) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, `{"task_id":`...)
	b = wire.AppendString(b, m.TaskID)
	b = append(b, `,"parent_task_id":`...)
	b = wire.AppendNullable(b, m.ParentTaskID)
	b = append(b, `,"worker_type":`...)
	b = wire.AppendString(b, m.WorkerType)
	b = append(b, `,"payload":`...)
	b, err := wire.AppendObject(b, m.Payload, false)
	if err != nil {
		return nil, fmt.Errorf("heddle: encoding TaskMessage payload: %w", err)
	}
	b = append(b, `,"model_tier":`...)
	b = wire.AppendString(b, string(m.ModelTier))
	b = append(b, `,"priority":`...)
	b = wire.AppendString(b, string(m.Priority))
	b = append(b, `,"max_retries":`...)
	b = strconv.AppendInt(b, int64(m.MaxRetries), 10)
	b = append(b, `,"retry_count":`...)
	b = strconv.AppendInt(b, int64(m.RetryCount), 10)
	b = append(b, `,"created_at":`...)
	b = wire.AppendTime(b, m.CreatedAt)
	b = append(b, `,"request_id":`...)
	b = wire.AppendNullable(b, m.RequestID)
	b = append(b, `,"metadata":`...)
	if b, err = wire.AppendObject(b, m.Metadata, false); err != nil {
		return nil, fmt.Errorf("heddle: encoding TaskMessage metadata: %w", err)
	}
	return wire.AppendExtra(b, m.Extra, taskMessageFields)
}

// Encode validates m and returns its wire form.
func (m TaskMessage) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m.MarshalJSON()
}

// MarshalJSON writes r in wire form without validating it; see Encode.
func (r TaskResult) MarshalJSON() ([]byte, error) {
	return r.appendJSON(make([]byte, 0, 256))
}

// appendJSON appends r's wire form to b, as MarshalJSON writes it.
func (r *TaskResult) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"task_id":`...)
	b = wire.AppendString(b, r.TaskID)
	b = append(b, `,"parent_task_id":`...)
	b = wire.AppendNullable(b, r.ParentTaskID)
	b = append(b, `,"worker_type":`...)
	b = wire.AppendString(b, r.WorkerType)
	b = append(b, `,"status":`...)
	b = wire.AppendString(b, string(r.Status))
	b = append(b, `,"output":`...)
	b, err := wire.AppendObject(b, r.Output, true)
	if err != nil {
		return nil, fmt.Errorf("heddle: encoding TaskResult output: %w", err)
	}
	b = append(b, `,"error":`...)
	b = wire.AppendNullable(b, r.Error)
	b = append(b, `,"model_used":`...)
	b = wire.AppendNullable(b, r.ModelUsed)
	b = append(b, `,"token_usage":{`...)
	keys := make([]string, 0, len(r.TokenUsage))
	for k := range r.TokenUsage {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendString(b, k)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(r.TokenUsage[k]), 10)
	}
	b = append(b, `},"processing_time_ms":`...)
	b = strconv.AppendInt(b, int64(r.ProcessingTimeMS), 10)
	b = append(b, `,"completed_at":`...)
	b = wire.AppendTime(b, r.CompletedAt)
	if r.Metadata != nil {
		b = append(b, `,"metadata":`...)
		if b, err = wire.AppendObject(b, r.Metadata, false); err != nil {
			return nil, fmt.Errorf("heddle: encoding TaskResult metadata: %w", err)
		}
	}
	return wire.AppendExtra(b, r.Extra, taskResultFields)
}

// Encode validates r and returns its wire form.
func (r TaskResult) Encode() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r.MarshalJSON()
}

// MarshalJSON writes g in wire form without validating it; see Encode.
func (g OrchestratorGoal) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, `{"goal_id":`...)
	b = wire.AppendString(b, g.GoalID)
	b = append(b, `,"instruction":`...)
	b = wire.AppendString(b, g.Instruction)
	b = append(b, `,"context":`...)
	b, err := wire.AppendObject(b, g.Context, false)
	if err != nil {
		return nil, fmt.Errorf("heddle: encoding OrchestratorGoal context: %w", err)
	}
	b = append(b, `,"request_id":`...)
	b = wire.AppendNullable(b, g.RequestID)
	b = append(b, `,"priority":`...)
	b = wire.AppendString(b, string(g.Priority))
	b = append(b, `,"created_at":`...)
	b = wire.AppendTime(b, g.CreatedAt)
	return wire.AppendExtra(b, g.Extra, goalFields)
}

// Encode validates g and returns its wire form.
func (g OrchestratorGoal) Encode() ([]byte, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g.MarshalJSON()
}

// MarshalJSON writes d in wire form without validating it. Use Encode (or
// call MarshalJSON directly) when the original must stay byte-exact:
// json.Marshal re-compacts the embedded original_task, which keeps its JSON
// value but not necessarily its bytes.
func (d DeadLetter) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 128+len(d.original)+len(d.Reason))
	b = append(b, `{"reason":`...)
	b = wire.AppendString(b, d.Reason)
	b = append(b, `,"original_task":`...)
	trimmed := bytes.TrimSpace(d.original)
	embeddable := json.Valid(trimmed) && utf8.Valid(trimmed) && wire.NumbersInRange(trimmed)
	if embeddable {
		b = append(b, trimmed...)
	} else {
		// Not JSON, or JSON holding a number no float64 holds (which
		// every decoder built on encoding/json refuses): a reader of
		// original_task alone (the Python consumer) still gets an
		// object it can store, show and replay (the router
		// dead-letters it again); original_raw keeps the exact bytes
		// for Go readers.
		b = append(b, `{"`+deadLetterUnparsed+`":`...)
		b = wire.AppendString(b, string(d.original))
		b = append(b, '}')
	}
	if !embeddable || len(trimmed) != len(d.original) {
		b = append(b, `,"original_raw":"`...)
		b = base64.StdEncoding.AppendEncode(b, d.original)
		b = append(b, '"')
	}
	b = append(b, `,"task_id":`...)
	b = wire.AppendNullable(b, d.TaskID)
	b = append(b, `,"worker_type":`...)
	b = wire.AppendNullable(b, d.WorkerType)
	if !d.ReceivedAt.IsZero() {
		b = append(b, `,"received_at":`...)
		b = wire.AppendTime(b, d.ReceivedAt)
	}
	return wire.AppendExtra(b, d.Extra, deadLetterFields)
}

// Encode validates d and returns its wire form, with the original embedded
// byte for byte.
func (d DeadLetter) Encode() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d.MarshalJSON()
}

var (
	modelTierNames  = enumNames(modelTiers)
	priorityNames   = enumNames(priorities)
	taskStatusNames = enumNames(taskStatuses)
)

func enumNames[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}
