package heddle

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
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
//   - absent optional fields take the wire defaults; absent task_id and
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
// tokens), and task_id, worker_type, goal_id and instruction must not be
// empty.
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
// readers of the envelope fields alone, such as the Router.
func decodeTaskEnvelope(data []byte) (TaskMessage, error) {
	var m TaskMessage
	err := m.decodeAs(data, true)
	return m, err
}

func (m *TaskMessage) decodeAs(data []byte, envelope bool) error {
	_, err := m.decodeRaw(data, envelope)
	return err
}

// decodeRaw is decodeAs, also returning the payload's bytes in data (nil
// when the message is rejected).
func (m *TaskMessage) decodeRaw(data []byte, envelope bool) ([]byte, error) {
	var d decoder
	d.init("TaskMessage", data)
	d.envelope = envelope
	if !d.isObject {
		return nil, d.p.err()
	}
	var payload []byte
	*m = TaskMessage{
		TaskID:       d.str("task_id", optional, uuid.NewString),
		ParentTaskID: d.str("parent_task_id", nullable, nil),
		WorkerType:   d.strAs("worker_type", required, nil, true),
		Payload:      d.objectRaw("payload", required, nil, &payload),
		ModelTier:    ModelTier(d.enum("model_tier", string(DefaultModelTier), modelTierNames)),
		Priority:     Priority(d.enum("priority", string(DefaultPriority), priorityNames)),
		MaxRetries:   d.integer("max_retries", DefaultMaxRetries),
		RetryCount:   d.integer("retry_count", 0),
		CreatedAt:    d.time("created_at", optional),
		RequestID:    d.str("request_id", nullable, nil),
		Metadata:     d.object("metadata", optional, nil),
	}
	if m.Metadata == nil && !envelope {
		m.Metadata = map[string]any{} // absent or rejected: the default
	}
	m.Extra = d.extra()
	if envelope {
		m.Payload, m.Metadata = nil, nil
	}
	var p problems
	m.validate(&p)
	if err := d.check(&p, taskMessageFields); err != nil {
		return nil, err
	}
	return payload, nil
}

var taskResultFields = []string{"task_id", "parent_task_id", "worker_type", "status", "output", "error",
	"model_used", "token_usage", "processing_time_ms", "completed_at"}

func (r *TaskResult) decode(data []byte) error {
	var d decoder
	d.init("TaskResult", data)
	if !d.isObject {
		return d.p.err()
	}
	*r = TaskResult{
		TaskID:           d.str("task_id", required, nil),
		ParentTaskID:     d.str("parent_task_id", nullable, nil),
		WorkerType:       d.str("worker_type", required, nil),
		Status:           TaskStatus(d.enum("status", "", taskStatusNames)),
		Output:           d.object("output", nullable, nil),
		Error:            d.str("error", nullable, nil),
		ModelUsed:        d.str("model_used", nullable, nil),
		TokenUsage:       d.tokenUsage("token_usage"),
		ProcessingTimeMS: d.integer("processing_time_ms", 0),
		CompletedAt:      d.time("completed_at", optional),
	}
	r.Extra = d.extra()
	var p problems
	r.validate(&p)
	return d.check(&p, taskResultFields)
}

var goalFields = []string{"goal_id", "instruction", "context", "request_id", "priority", "created_at"}

func (g *OrchestratorGoal) decode(data []byte) error {
	var d decoder
	d.init("OrchestratorGoal", data)
	if !d.isObject {
		return d.p.err()
	}
	*g = OrchestratorGoal{
		GoalID:      d.str("goal_id", optional, uuid.NewString),
		Instruction: d.str("instruction", required, nil),
		Context:     d.object("context", optional, map[string]any{}),
		RequestID:   d.str("request_id", nullable, nil),
		Priority:    Priority(d.enum("priority", string(DefaultPriority), priorityNames)),
		CreatedAt:   d.time("created_at", optional),
	}
	g.Extra = d.extra()
	var p problems
	g.validate(&p)
	return d.check(&p, goalFields)
}

var deadLetterFields = []string{"reason", "original_task", "original_raw", "task_id", "worker_type", "received_at"}

func (dl *DeadLetter) decode(data []byte) error {
	var d decoder
	d.init("DeadLetter", data)
	if !d.isObject {
		return d.p.err()
	}
	*dl = DeadLetter{
		Reason:     d.str("reason", required, nil),
		TaskID:     d.lenientString("task_id"),
		WorkerType: d.lenientString("worker_type"),
	}
	task, hasTask := d.take("original_task")
	raw, hasRaw := d.take("original_raw")
	switch {
	case hasRaw:
		s, ok := d.stringValue("original_raw", raw)
		if ok {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				d.p.add("original_raw", "not valid base64: %v", err)
			} else {
				dl.original = b
			}
		}
	case hasTask:
		dl.original = bytes.Clone(task)
	default:
		d.p.add("original_task", "required")
	}
	if rt, ok := d.take("received_at"); ok && kindOf(rt) != kindNull {
		dl.ReceivedAt = d.timeValue("received_at", rt)
	}
	dl.Extra = d.extra()
	return d.check(&problems{}, deadLetterFields)
}

// MarshalJSON writes m in wire form without validating it; see Encode.
func (m TaskMessage) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, `{"task_id":`...)
	b = appendString(b, m.TaskID)
	b = append(b, `,"parent_task_id":`...)
	b = appendNullable(b, m.ParentTaskID)
	b = append(b, `,"worker_type":`...)
	b = appendString(b, m.WorkerType)
	b = append(b, `,"payload":`...)
	b, err := appendObject(b, m.Payload, false)
	if err != nil {
		return nil, fmt.Errorf("heddle: encoding TaskMessage payload: %w", err)
	}
	b = append(b, `,"model_tier":`...)
	b = appendString(b, string(m.ModelTier))
	b = append(b, `,"priority":`...)
	b = appendString(b, string(m.Priority))
	b = append(b, `,"max_retries":`...)
	b = strconv.AppendInt(b, int64(m.MaxRetries), 10)
	b = append(b, `,"retry_count":`...)
	b = strconv.AppendInt(b, int64(m.RetryCount), 10)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, m.CreatedAt)
	b = append(b, `,"request_id":`...)
	b = appendNullable(b, m.RequestID)
	b = append(b, `,"metadata":`...)
	if b, err = appendObject(b, m.Metadata, false); err != nil {
		return nil, fmt.Errorf("heddle: encoding TaskMessage metadata: %w", err)
	}
	return appendExtra(b, m.Extra, taskMessageFields)
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

// appendJSON appends r's wire form to b.
func (r *TaskResult) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"task_id":`...)
	b = appendString(b, r.TaskID)
	b = append(b, `,"parent_task_id":`...)
	b = appendNullable(b, r.ParentTaskID)
	b = append(b, `,"worker_type":`...)
	b = appendString(b, r.WorkerType)
	b = append(b, `,"status":`...)
	b = appendString(b, string(r.Status))
	b = append(b, `,"output":`...)
	b, err := appendObject(b, r.Output, true)
	if err != nil {
		return nil, fmt.Errorf("heddle: encoding TaskResult output: %w", err)
	}
	b = append(b, `,"error":`...)
	b = appendNullable(b, r.Error)
	b = append(b, `,"model_used":`...)
	b = appendNullable(b, r.ModelUsed)
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
		b = appendString(b, k)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(r.TokenUsage[k]), 10)
	}
	b = append(b, `},"processing_time_ms":`...)
	b = strconv.AppendInt(b, int64(r.ProcessingTimeMS), 10)
	b = append(b, `,"completed_at":`...)
	b = appendTime(b, r.CompletedAt)
	return appendExtra(b, r.Extra, taskResultFields)
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
	b = appendString(b, g.GoalID)
	b = append(b, `,"instruction":`...)
	b = appendString(b, g.Instruction)
	b = append(b, `,"context":`...)
	b, err := appendObject(b, g.Context, false)
	if err != nil {
		return nil, fmt.Errorf("heddle: encoding OrchestratorGoal context: %w", err)
	}
	b = append(b, `,"request_id":`...)
	b = appendNullable(b, g.RequestID)
	b = append(b, `,"priority":`...)
	b = appendString(b, string(g.Priority))
	b = append(b, `,"created_at":`...)
	b = appendTime(b, g.CreatedAt)
	return appendExtra(b, g.Extra, goalFields)
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
	b = appendString(b, d.Reason)
	b = append(b, `,"original_task":`...)
	trimmed := bytes.TrimSpace(d.original)
	embeddable := json.Valid(trimmed) && utf8.Valid(trimmed)
	if embeddable {
		b = append(b, trimmed...)
	} else {
		b = append(b, "null"...)
	}
	if !embeddable || len(trimmed) != len(d.original) {
		b = append(b, `,"original_raw":"`...)
		b = base64.StdEncoding.AppendEncode(b, d.original)
		b = append(b, '"')
	}
	b = append(b, `,"task_id":`...)
	b = appendNullable(b, d.TaskID)
	b = append(b, `,"worker_type":`...)
	b = appendNullable(b, d.WorkerType)
	if !d.ReceivedAt.IsZero() {
		b = append(b, `,"received_at":`...)
		b = appendTime(b, d.ReceivedAt)
	}
	return appendExtra(b, d.Extra, deadLetterFields)
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

// wireTimeLayout writes UTC with at most six fractional digits, which
// Python's datetime (and pydantic) read back exactly.
const wireTimeLayout = "2006-01-02T15:04:05.999999Z07:00"

// ParseTime reads a wire timestamp: an RFC 3339 date-time (any offset;
// "T" or a space between date and time; fractional seconds optional), or
// the same without offset, read as UTC, as a naive Python datetime is
// written. Every field has its full width. The result is in UTC,
// truncated to microseconds.
func ParseTime(s string) (time.Time, error) {
	canon, zoned, ok := canonicalTime(s)
	if !ok {
		return time.Time{}, fmt.Errorf("heddle: %q is not an RFC 3339 timestamp", s)
	}
	layout := "2006-01-02T15:04:05"
	if zoned {
		layout = time.RFC3339
	}
	t, err := time.Parse(layout, canon)
	if err != nil {
		return time.Time{}, fmt.Errorf("heddle: %q is not an RFC 3339 timestamp: %w", s, err)
	}
	return t.UTC().Truncate(time.Microsecond), nil
}

// canonicalTime checks the shape of a timestamp strictly (time.Parse alone
// accepts one-digit hours and comma decimal separators) and returns it
// with an upper-case T and Z, saying whether it has an offset.
func canonicalTime(s string) (canon string, zoned, ok bool) {
	digits := func(from, to int) bool {
		for i := from; i < to; i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return true
	}
	// yyyy-mm-ddThh:mm:ss
	if len(s) < 19 || !digits(0, 4) || s[4] != '-' || !digits(5, 7) || s[7] != '-' || !digits(8, 10) ||
		(s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
		!digits(11, 13) || s[13] != ':' || !digits(14, 16) || s[16] != ':' || !digits(17, 19) {
		return "", false, false
	}
	i := 19
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i+1 {
			return "", false, false
		}
		i = j
	}
	b := []byte(s)
	b[10] = 'T'
	switch rest := len(s) - i; {
	case rest == 0:
		return string(b), false, true
	case rest == 1 && (s[i] == 'Z' || s[i] == 'z'):
		b[i] = 'Z'
		return string(b), true, true
	case rest == 6 && (s[i] == '+' || s[i] == '-') && digits(i+1, i+3) && s[i+3] == ':' && digits(i+4, i+6):
		if s[i+1:i+3] > "23" || s[i+4:i+6] > "59" {
			return "", false, false
		}
		return string(b), true, true
	}
	return "", false, false
}

// FormatTime writes t as the wire does: RFC 3339 in UTC with at most six
// fractional digits.
func FormatTime(t time.Time) string { return string(appendTimeText(nil, t)) }

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = appendTimeText(b, t)
	return append(b, '"')
}

func appendTimeText(b []byte, t time.Time) []byte {
	return t.UTC().Truncate(time.Microsecond).AppendFormat(b, wireTimeLayout)
}
