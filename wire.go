package heddle

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Decoding is strict where the Python Heddle (pydantic) is strict and
// stricter where a lax reading would hide a sender's bug:
//
//   - field names match exactly (case-sensitive);
//   - enum values must be one of the lower-case names;
//   - integers must be JSON integers ("2", 2.0 and 2.5 are rejected);
//   - payload, metadata, context and output must be JSON objects;
//   - absent optional fields take the wire defaults; absent task_id and
//     goal_id get a fresh UUID and absent created_at / completed_at the
//     current time, as pydantic's default factories do;
//   - times are RFC 3339; a timestamp without offset (a naive Python
//     datetime) is read as UTC; every time is kept at microsecond
//     precision;
//   - unknown top-level fields are kept verbatim in Extra and written back
//     on encode;
//   - payload and other free-form objects decode as encoding/json does into
//     map[string]any: numbers become float64, so integers beyond 2^53 lose
//     precision (send such identifiers as strings).
//
// Every problem found is reported, each naming its field, in one
// *ValidationError.

// DecodeTaskMessage decodes and validates a TaskMessage. The error, if any,
// is a *ValidationError naming every bad or missing field.
func DecodeTaskMessage(data []byte) (TaskMessage, error) {
	var m TaskMessage
	err := m.decode(data)
	return m, err
}

// DecodeTaskResult decodes and validates a TaskResult.
func DecodeTaskResult(data []byte) (TaskResult, error) {
	var r TaskResult
	err := r.decode(data)
	return r, err
}

// DecodeOrchestratorGoal decodes and validates an OrchestratorGoal.
func DecodeOrchestratorGoal(data []byte) (OrchestratorGoal, error) {
	var g OrchestratorGoal
	err := g.decode(data)
	return g, err
}

// DecodeDeadLetter decodes and validates a DeadLetter envelope, from the
// Go or the Python router.
func DecodeDeadLetter(data []byte) (DeadLetter, error) {
	var d DeadLetter
	err := d.decode(data)
	return d, err
}

// UnmarshalJSON decodes and validates like DecodeTaskMessage.
func (m *TaskMessage) UnmarshalJSON(data []byte) error { return m.decode(data) }

// UnmarshalJSON decodes and validates like DecodeTaskResult.
func (r *TaskResult) UnmarshalJSON(data []byte) error { return r.decode(data) }

// UnmarshalJSON decodes and validates like DecodeOrchestratorGoal.
func (g *OrchestratorGoal) UnmarshalJSON(data []byte) error { return g.decode(data) }

// UnmarshalJSON decodes and validates like DecodeDeadLetter.
func (d *DeadLetter) UnmarshalJSON(data []byte) error { return d.decode(data) }

var taskMessageFields = []string{"task_id", "parent_task_id", "worker_type", "payload", "model_tier",
	"priority", "max_retries", "retry_count", "created_at", "request_id", "metadata"}

func (m *TaskMessage) decode(data []byte) error {
	d := newDecoder("TaskMessage", data)
	if d.fields == nil {
		return d.p.err()
	}
	*m = TaskMessage{
		TaskID:       d.str("task_id", optional, uuid.NewString),
		ParentTaskID: d.str("parent_task_id", nullable, nil),
		WorkerType:   d.str("worker_type", required, nil),
		Payload:      d.object("payload", required, nil),
		ModelTier:    ModelTier(d.enum("model_tier", string(DefaultModelTier), modelTierNames)),
		Priority:     Priority(d.enum("priority", string(DefaultPriority), priorityNames)),
		MaxRetries:   d.integer("max_retries", DefaultMaxRetries),
		RetryCount:   d.integer("retry_count", 0),
		CreatedAt:    d.time("created_at", optional),
		RequestID:    d.str("request_id", nullable, nil),
		Metadata:     d.object("metadata", optional, map[string]any{}),
	}
	m.Extra = d.extra()
	return d.check(m.validate, taskMessageFields)
}

var taskResultFields = []string{"task_id", "parent_task_id", "worker_type", "status", "output", "error",
	"model_used", "token_usage", "processing_time_ms", "completed_at"}

func (r *TaskResult) decode(data []byte) error {
	d := newDecoder("TaskResult", data)
	if d.fields == nil {
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
	return d.check(r.validate, taskResultFields)
}

var goalFields = []string{"goal_id", "instruction", "context", "request_id", "priority", "created_at"}

func (g *OrchestratorGoal) decode(data []byte) error {
	d := newDecoder("OrchestratorGoal", data)
	if d.fields == nil {
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
	return d.check(g.validate, goalFields)
}

var deadLetterFields = []string{"reason", "original_task", "original_raw", "task_id", "worker_type", "received_at"}

func (dl *DeadLetter) decode(data []byte) error {
	d := newDecoder("DeadLetter", data)
	if d.fields == nil {
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
		dl.original = []byte(task)
	default:
		d.p.add("original_task", "required")
	}
	if rt, ok := d.take("received_at"); ok && kindOf(rt) != kindNull {
		dl.ReceivedAt = d.timeValue("received_at", rt)
	}
	dl.Extra = d.extra()
	return d.check(func(*problems) {}, deadLetterFields)
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
	b := make([]byte, 0, 256)
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

// Field presence rules for the decoder.
type presence int

const (
	required presence = iota // absent is an error; null is an error
	optional                 // absent takes the default; null is an error
	nullable                 // absent and null both mean empty
)

type jsonKindT byte

const (
	kindNull jsonKindT = iota
	kindString
	kindNumber
	kindBool
	kindObject
	kindArray
)

func (k jsonKindT) String() string {
	return [...]string{"null", "string", "number", "boolean", "object", "array"}[k]
}

// kindOf classifies a syntactically valid JSON value by its first byte.
func kindOf(raw []byte) jsonKindT {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return kindNull
	}
	switch raw[0] {
	case '"':
		return kindString
	case '{':
		return kindObject
	case '[':
		return kindArray
	case 't', 'f':
		return kindBool
	case 'n':
		return kindNull
	}
	return kindNumber
}

func jsonKind(raw []byte) string { return kindOf(raw).String() }

// decoder reads the top-level fields of one message, recording problems.
type decoder struct {
	p      problems
	fields map[string]json.RawMessage
	bad    map[string]bool // fields already reported
}

func newDecoder(typ string, data []byte) *decoder {
	d := &decoder{p: problems{typ: typ}}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || !json.Valid(data) {
			d.p.add("", "malformed JSON: %v", err)
		} else {
			d.p.add("", "expected a JSON object, got %s", jsonKind(data))
		}
		return d
	}
	if fields == nil { // the document was null
		d.p.add("", "expected a JSON object, got null")
		return d
	}
	d.fields = fields
	return d
}

func (d *decoder) fail(field, format string, args ...any) {
	d.p.add(field, format, args...)
	if d.bad == nil {
		d.bad = map[string]bool{}
	}
	d.bad[field] = true
}

// check runs a type's Validate checks on the decoded value, keeps the
// findings on fields the decoder has not already reported, and returns
// every problem in wire field order.
func (d *decoder) check(validate func(*problems), order []string) error {
	var p problems
	validate(&p)
	for _, f := range p.fields {
		if !d.bad[f.Field] {
			d.p.fields = append(d.p.fields, f)
		}
	}
	slices.SortStableFunc(d.p.fields, func(a, b FieldError) int {
		return slices.Index(order, a.Field) - slices.Index(order, b.Field)
	})
	return d.p.err()
}

func (d *decoder) take(name string) (json.RawMessage, bool) {
	raw, ok := d.fields[name]
	if ok {
		delete(d.fields, name)
	}
	return raw, ok
}

func (d *decoder) missing(name string, pr presence) {
	if pr == required {
		d.fail(name, "required")
	}
}

// str reads a string field. def supplies the value of an absent optional
// field.
func (d *decoder) str(name string, pr presence, def func() string) string {
	raw, ok := d.take(name)
	if !ok {
		d.missing(name, pr)
		if def != nil {
			return def()
		}
		return ""
	}
	if pr == nullable && kindOf(raw) == kindNull {
		return ""
	}
	s, ok := d.stringValue(name, raw)
	if ok && s == "" && pr != nullable {
		d.fail(name, "must not be empty")
	}
	return s
}

// lenientString reads a string that may be absent, null or of another
// type; anything but a string reads as empty.
func (d *decoder) lenientString(name string) string {
	raw, ok := d.take(name)
	if !ok || kindOf(raw) != kindString {
		return ""
	}
	s, _ := d.stringValue(name, raw)
	return s
}

func (d *decoder) stringValue(name string, raw json.RawMessage) (string, bool) {
	if kindOf(raw) != kindString {
		d.fail(name, "expected string, got %s", jsonKind(raw))
		return "", false
	}
	// The document was validated as a whole, so a string without escapes
	// needs no decoding beyond dropping its quotes.
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		d.fail(name, "invalid string: %v", err)
		return "", false
	}
	return s, true
}

func (d *decoder) object(name string, pr presence, def map[string]any) map[string]any {
	raw, ok := d.take(name)
	if !ok {
		d.missing(name, pr)
		return def
	}
	k := kindOf(raw)
	if k == kindNull && pr == nullable {
		return nil
	}
	if k != kindObject {
		d.fail(name, "expected object, got %s", k)
		return def
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		d.fail(name, "invalid object: %v", err)
		return def
	}
	return m
}

func (d *decoder) enum(name, def string, allowed []string) string {
	raw, ok := d.take(name)
	if !ok {
		if def == "" {
			d.fail(name, "required")
		}
		return def
	}
	s, ok := d.stringValue(name, raw)
	if !ok {
		return ""
	}
	if !slices.Contains(allowed, s) {
		d.fail(name, "%s", enumProblem(s, allowed))
		return ""
	}
	return s
}

func (d *decoder) integer(name string, def int) int {
	raw, ok := d.take(name)
	if !ok {
		return def
	}
	if k := kindOf(raw); k != kindNumber {
		d.fail(name, "expected integer, got %s", k)
		return def
	}
	n, err := strconv.ParseInt(string(raw), 10, strconv.IntSize)
	if err != nil {
		d.fail(name, "expected integer, got %s", raw)
		return def
	}
	return int(n)
}

func (d *decoder) tokenUsage(name string) map[string]int {
	raw, ok := d.take(name)
	if !ok {
		return map[string]int{}
	}
	if k := kindOf(raw); k != kindObject {
		d.fail(name, "expected object of integers, got %s", k)
		return map[string]int{}
	}
	var m map[string]int
	if err := json.Unmarshal(raw, &m); err != nil {
		d.fail(name, "expected object of integers: %v", err)
		return map[string]int{}
	}
	return m
}

// time reads a timestamp; an absent optional one is the current time.
func (d *decoder) time(name string, pr presence) time.Time {
	raw, ok := d.take(name)
	if !ok {
		d.missing(name, pr)
		return now()
	}
	return d.timeValue(name, raw)
}

func (d *decoder) timeValue(name string, raw json.RawMessage) time.Time {
	s, ok := d.stringValue(name, raw)
	if !ok {
		return time.Time{}
	}
	t, err := ParseTime(s)
	if err != nil {
		d.fail(name, "%q is not an RFC 3339 timestamp", s)
		return time.Time{}
	}
	return t
}

// extra returns the fields left after the known ones were taken.
func (d *decoder) extra() map[string]json.RawMessage {
	if len(d.fields) == 0 {
		return nil
	}
	return d.fields
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

// Accepted timestamp layouts, tried in order: RFC 3339 with a T or a space
// before the time, then the same without offset (read as UTC). Fractional
// seconds are accepted by each.
var timeLayouts = []string{
	time.RFC3339,
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
}

// wireTimeLayout writes UTC with at most six fractional digits, which
// Python's datetime (and pydantic) read back exactly.
const wireTimeLayout = "2006-01-02T15:04:05.999999Z07:00"

// ParseTime reads a wire timestamp: RFC 3339 (any offset), or an ISO 8601
// date-time without offset, read as UTC, as a naive Python datetime is
// written. The result is in UTC, truncated to microseconds.
func ParseTime(s string) (time.Time, error) {
	var firstErr error
	for _, layout := range timeLayouts {
		t, err := time.Parse(layout, s)
		if err == nil {
			return t.UTC().Truncate(time.Microsecond), nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return time.Time{}, fmt.Errorf("heddle: %q is not an RFC 3339 timestamp: %w", s, firstErr)
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

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

// appendObject writes m as a JSON object; nil is null when nullable, {}
// otherwise.
func appendObject(b []byte, m map[string]any, nullable bool) ([]byte, error) {
	if m == nil {
		if nullable {
			return append(b, "null"...), nil
		}
		return append(b, "{}"...), nil
	}
	enc, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

// appendExtra writes the unknown fields (sorted, skipping any that shadow a
// known field) and closes the object.
func appendExtra(b []byte, extra map[string]json.RawMessage, known []string) ([]byte, error) {
	if len(extra) > 0 {
		keys := make([]string, 0, len(extra))
		for k := range extra {
			if !slices.Contains(known, k) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := extra[k]
			if !json.Valid(v) {
				return nil, fmt.Errorf("heddle: extra field %q is not valid JSON", k)
			}
			b = append(b, ',')
			b = appendString(b, k)
			b = append(b, ':')
			b = append(b, bytes.TrimSpace(v)...)
		}
	}
	return append(b, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; HTML characters are left as they are.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
