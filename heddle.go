package heddle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/internal/wire"
)

// Subjects and queue groups of the mesh, those of the Python Heddle. Every
// subject the SDK publishes or subscribes to is built here and nowhere
// else, so they stay byte-identical with the Python Heddle.
const (
	// SubjectTasksIncoming receives every new task; the Router consumes it
	// in queue group RouterQueueGroup.
	SubjectTasksIncoming = "heddle.tasks.incoming"
	// SubjectDeadLetter receives the Router's DeadLetter envelopes.
	SubjectDeadLetter = "heddle.tasks.dead_letter"
	// SubjectGoalsIncoming receives OrchestratorGoals.
	SubjectGoalsIncoming = "heddle.goals.incoming"
	// SubjectControlReload asks every Router replica to re-read its rules.
	SubjectControlReload = "heddle.control.reload"
	// SubjectResultsDefault receives the results of tasks that have no
	// parent_task_id.
	SubjectResultsDefault = "heddle.results.default"
	// SubjectResultsAll matches every result subject, for monitors.
	SubjectResultsAll = "heddle.results.>"
	// RouterQueueGroup is the queue group Go router replicas share on
	// SubjectTasksIncoming, so that several Go routers split the load.
	// The Python router subscribes without a queue group: every Python
	// router sees every task. Run one kind of router per mesh: a Python
	// router beside Go routers would route each task once more.
	RouterQueueGroup = "router"
	// OrchestratorQueueGroup is the queue group orchestrators share on
	// SubjectGoalsIncoming, as the Python Heddle names it.
	OrchestratorQueueGroup = "orchestrators"
	// PipelineQueueGroup is the queue group pipelines share on
	// SubjectGoalsIncoming, as the Python Heddle names it.
	PipelineQueueGroup = "pipelines"

	subjectTasksPrefix   = "heddle.tasks."
	subjectGoalsToPrefix = "heddle.goals.to."
	subjectResultsPrefix = "heddle.results."
	workerQueuePrefix    = "processors-"
	llmWorkerQueuePrefix = "workers-"
)

// WorkerSubject is the subject the Router forwards tasks of workerType at
// tier to: heddle.tasks.{worker_type}.{tier}.
func WorkerSubject(workerType string, tier ModelTier) string {
	return subjectTasksPrefix + workerType + "." + string(tier)
}

// WorkerSubjectAllTiers matches the tasks of workerType at every tier:
// heddle.tasks.{worker_type}.*.
func WorkerSubjectAllTiers(workerType string) string {
	return subjectTasksPrefix + workerType + ".*"
}

// WorkerQueueGroup is the queue group the processor workers of
// workerType share: processors-{worker_type}, as the Python processor
// workers and every Heddle SDK name it, so that a Go worker and a
// Python one of the same type split the tasks and none runs twice.
func WorkerQueueGroup(workerType string) string {
	return workerQueuePrefix + workerType
}

// LLMWorkerQueueGroup is the queue group of the Python Heddle's LLM
// workers of workerType: workers-{worker_type}. A Go worker that joins
// such a pool sets worker.Config.QueueGroup to it.
func LLMWorkerQueueGroup(workerType string) string {
	return llmWorkerQueuePrefix + workerType
}

// ValidateWorkerType reports whether workerType can name a worker: it must
// be non-empty and usable in WorkerSubject and WorkerQueueGroup (no
// whitespace, wildcards or empty tokens). The error wraps ErrWorkerType.
func ValidateWorkerType(workerType string) error {
	if workerType == "" {
		return fmt.Errorf("%w: the worker type is empty; name it as tasks do in worker_type", ErrWorkerType)
	}
	if err := bus.ValidatePublishSubject(WorkerSubject(workerType, TierStandard)); err != nil {
		return fmt.Errorf("%w: %q cannot be used in the subject %s (no whitespace, wildcards or empty tokens): %w",
			ErrWorkerType, workerType, WorkerSubject(workerType, TierStandard), err)
	}
	if err := bus.ValidateQueue(WorkerQueueGroup(workerType)); err != nil {
		return fmt.Errorf("%w: %q cannot be used in the queue group %s: %w", ErrWorkerType, workerType, WorkerQueueGroup(workerType), err)
	}
	return nil
}

// GoalSubject is where goals addressed to the pipeline or orchestrator
// called name are published: heddle.goals.to.{name}. Only the actors
// given that name serve it (in their usual queue group, so replicas of
// one share the goals), while SubjectGoalsIncoming stays shared by every
// goal-serving actor, as in the Python Heddle, which knows no addressed
// goals. The error names the subject when name cannot be used in it.
func GoalSubject(name string) (string, error) {
	subject := subjectGoalsToPrefix + name
	if name == "" {
		return "", fmt.Errorf("%w: the goal server's name is empty", ErrConfig)
	}
	if err := bus.ValidatePublishSubject(subject); err != nil {
		return "", fmt.Errorf("%w: the name %q cannot be used in the goal subject %s: %w", ErrConfig, name, subject, err)
	}
	return subject, nil
}

// ResultSubject is where results for children of parentTaskID are
// published: heddle.results.{parent_task_id}, or SubjectResultsDefault
// when parentTaskID is empty.
func ResultSubject(parentTaskID string) string {
	if parentTaskID == "" {
		return SubjectResultsDefault
	}
	return subjectResultsPrefix + parentTaskID
}

// MetadataDeadLetterReason is the TaskResult.Metadata key under which a
// router's failed result for a dead-lettered task names the reason's
// kind (event.ReasonRateLimited, event.ReasonUnknownTier, ...); its Error holds the
// whole reason.
const MetadataDeadLetterReason = "dead_letter_reason"

// DefaultDrainTimeout bounds every long-running actor's shutdown when its
// Config leaves DrainTimeout zero: the time from the end of Run's context
// until the work still in progress is cancelled and Run returns.
const DefaultDrainTimeout = 30 * time.Second

// Defaults of the wire format, applied when a field is absent from a
// decoded message and by the constructors.
const (
	DefaultModelTier  = TierStandard
	DefaultPriority   = PriorityNormal
	DefaultMaxRetries = 2
)

// FieldError is one problem with one wire field. Field is the JSON name
// (task_id, payload, ...); it is empty when the problem concerns the whole
// document, such as malformed JSON.
type FieldError struct {
	Field   string
	Problem string
}

func (f FieldError) String() string {
	if f.Field == "" {
		return f.Problem
	}
	return f.Field + ": " + f.Problem
}

// ValidationError lists every problem found in one message, in wire field
// order. Its text is, for example:
//
//	invalid TaskMessage: worker_type: required; model_tier: "huge" is not one of local, standard, frontier
type ValidationError struct {
	// Type is the message type: TaskMessage, TaskResult, OrchestratorGoal
	// or DeadLetter.
	Type   string
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid ")
	b.WriteString(e.Type)
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.String())
	}
	return b.String()
}

// Is reports whether target is ErrInvalidMessage.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidMessage }

// Has reports whether the error names field.
func (e *ValidationError) Has(field string) bool {
	for _, f := range e.Fields {
		if f.Field == field {
			return true
		}
	}
	return false
}

// problems accumulates FieldErrors for one message.
type problems struct {
	typ    string
	fields wire.Problems
}

func (p *problems) add(field, format string, args ...any) { p.fields.Add(field, format, args...) }

func (p *problems) err() error { return fieldErr(p.typ, p.fields) }

// fieldErr is the *ValidationError listing found, or nil when it is empty.
func fieldErr(typ string, found wire.Problems) error {
	if len(found) == 0 {
		return nil
	}
	fields := make([]FieldError, len(found))
	for i, f := range found {
		fields[i] = FieldError(f)
	}
	return &ValidationError{Type: typ, Fields: fields}
}

// TaskMessage is a unit of work for one worker type. It travels from a
// caller to the Router on SubjectTasksIncoming, then to a worker on
// WorkerSubject.
//
// On the wire ParentTaskID and RequestID are null when empty. Payload and
// Metadata are never null: nil maps are written as {}.
type TaskMessage struct {
	// TaskID identifies the task (a UUID v4 from NewTaskMessage). When a
	// decoded message has none, a fresh one is assigned, as the Python
	// Heddle does.
	TaskID string
	// ParentTaskID links a subtask to its goal or parent task; its results
	// go to ResultSubject(ParentTaskID).
	ParentTaskID string
	// WorkerType names the worker that handles the task. Required; it is
	// used as subject tokens, so it holds no whitespace, wildcards or empty
	// tokens.
	WorkerType string
	// Payload is the worker's input, checked against its contract.
	// Required on the wire.
	Payload map[string]any
	// ModelTier defaults to DefaultModelTier.
	ModelTier ModelTier
	// Priority defaults to DefaultPriority.
	Priority Priority
	// MaxRetries defaults to DefaultMaxRetries.
	MaxRetries int
	// RetryCount counts the retries made so far.
	RetryCount int
	// CreatedAt is when the task was made (UTC, microsecond precision).
	CreatedAt time.Time
	// RequestID correlates every task of one goal or request.
	RequestID string
	// Metadata carries routing hints and pipeline context.
	Metadata map[string]any
	// Extra holds unknown top-level fields of a decoded message, verbatim;
	// they are written back after the known fields, so a message passing
	// through a Go actor (a router re-encoding it) keeps fields added by
	// newer senders. Of these, the extensions, whose names start with an
	// underscore (_trace_context, the W3C trace context), also pass to
	// what is derived from the message: its TaskResult (Result) and the
	// subtasks an orchestrator or pipeline makes for it. Other unknown
	// fields stay with the message they came in.
	Extra map[string]json.RawMessage
}

// NewTaskMessage returns a task for workerType with a fresh task_id, the
// current time and the default tier, priority and retries. A nil payload
// becomes an empty object.
func NewTaskMessage(workerType string, payload map[string]any) TaskMessage {
	if payload == nil {
		payload = map[string]any{}
	}
	return TaskMessage{
		TaskID:     uuid.NewString(),
		WorkerType: workerType,
		Payload:    payload,
		ModelTier:  DefaultModelTier,
		Priority:   DefaultPriority,
		MaxRetries: DefaultMaxRetries,
		CreatedAt:  now(),
		Metadata:   map[string]any{},
	}
}

// Validate reports every invalid field of m: an empty task_id or
// worker_type, a worker_type or parent_task_id that cannot be used in a
// subject, an unknown tier or priority, negative retry counts, a zero
// created_at.
func (m TaskMessage) Validate() error {
	p := problems{typ: "TaskMessage"}
	m.validate(&p)
	return p.err()
}

func (m TaskMessage) validate(p *problems) {
	if m.TaskID == "" {
		p.add("task_id", "required")
	}
	checkParentTaskID(p, m.ParentTaskID)
	checkWorkerType(p, m.WorkerType)
	if !m.ModelTier.Valid() {
		p.add("model_tier", "%s", wire.EnumProblem(string(m.ModelTier), modelTiers))
	}
	if !m.Priority.Valid() {
		p.add("priority", "%s", wire.EnumProblem(string(m.Priority), priorities))
	}
	if m.MaxRetries < 0 {
		p.add("max_retries", "must be >= 0, got %d", m.MaxRetries)
	}
	if m.RetryCount < 0 {
		p.add("retry_count", "must be >= 0, got %d", m.RetryCount)
	}
	if m.CreatedAt.IsZero() {
		p.add("created_at", "required")
	}
}

// WorkerSubject is the subject for m at its own tier. The Router uses
// WorkerSubject(m.WorkerType, resolvedTier) when an override applies.
func (m TaskMessage) WorkerSubject() string { return WorkerSubject(m.WorkerType, m.ModelTier) }

// ResultSubject is where m's result is published.
func (m TaskMessage) ResultSubject() string { return ResultSubject(m.ParentTaskID) }

// Result returns the TaskResult for m with the given status and output,
// completed now. A non-nil err becomes the result's error text.
func (m TaskMessage) Result(status TaskStatus, output map[string]any, err error) TaskResult {
	r := NewTaskResult(m.TaskID, m.WorkerType, status)
	r.ParentTaskID = m.ParentTaskID
	r.Output = output
	if err != nil {
		r.Error = err.Error()
	}
	r.Extra = m.Extensions()
	return r
}

// Extensions returns a copy of m's extensions: the unknown top-level
// fields whose names start with an underscore, such as _trace_context.
// Every actor carries them from a task to its result and to the subtasks
// made for it; nil when there are none.
func (m TaskMessage) Extensions() map[string]json.RawMessage { return extensions(m.Extra) }

// Extensions returns a copy of g's extensions (see
// TaskMessage.Extensions), which an orchestrator or pipeline carries onto
// the goal's subtasks and its final result.
func (g OrchestratorGoal) Extensions() map[string]json.RawMessage { return extensions(g.Extra) }

// extensions returns the underscore-prefixed members of extra.
func extensions(extra map[string]json.RawMessage) map[string]json.RawMessage {
	var out map[string]json.RawMessage
	for k, v := range extra {
		if strings.HasPrefix(k, "_") {
			if out == nil {
				out = make(map[string]json.RawMessage)
			}
			out[k] = bytes.Clone(v)
		}
	}
	return out
}

// AddExtensions copies into m.Extra each extension of from (see
// Extensions) that m does not already carry.
func (m *TaskMessage) AddExtensions(from map[string]json.RawMessage) {
	m.Extra = addExtensions(m.Extra, from)
}

// AddExtensions copies into r.Extra each extension of from that r does
// not already carry.
func (r *TaskResult) AddExtensions(from map[string]json.RawMessage) {
	r.Extra = addExtensions(r.Extra, from)
}

func addExtensions(dst, from map[string]json.RawMessage) map[string]json.RawMessage {
	for k, v := range from {
		if !strings.HasPrefix(k, "_") {
			continue
		}
		if _, ok := dst[k]; ok {
			continue
		}
		if dst == nil {
			dst = make(map[string]json.RawMessage)
		}
		dst[k] = bytes.Clone(v)
	}
	return dst
}

// TaskResult is a worker's answer to one TaskMessage, published on
// ResultSubject(ParentTaskID).
//
// On the wire ParentTaskID, Error and ModelUsed are null when empty, and
// Output is null when nil.
type TaskResult struct {
	// TaskID is the task answered. Required.
	TaskID string
	// ParentTaskID is copied from the task.
	ParentTaskID string
	// WorkerType is copied from the task. Required.
	WorkerType string
	// Status is required.
	Status TaskStatus
	// Output is the worker's output, checked against its contract; nil is
	// null on the wire.
	Output map[string]any
	// Error describes a failure.
	Error string
	// ModelUsed names the model that did the work, if any.
	ModelUsed string
	// TokenUsage counts tokens by kind (prompt_tokens, completion_tokens).
	TokenUsage map[string]int
	// ProcessingTimeMS is the handler's run time in milliseconds.
	ProcessingTimeMS int
	// CompletedAt is when the work ended (UTC, microsecond precision).
	CompletedAt time.Time
	// Metadata carries what the worker adds about the work (stage names,
	// hints); nil is left out of the wire form, as the Python runtime
	// writes results without it.
	Metadata map[string]any
	// Extra holds unknown top-level fields of a decoded result, verbatim,
	// and the task's extensions (_trace_context, ...) copied by Result.
	Extra map[string]json.RawMessage
}

// NewTaskResult returns a result for taskID completed now. Most callers
// use TaskMessage.Result, which also copies the parent_task_id.
func NewTaskResult(taskID, workerType string, status TaskStatus) TaskResult {
	return TaskResult{
		TaskID:      taskID,
		WorkerType:  workerType,
		Status:      status,
		TokenUsage:  map[string]int{},
		CompletedAt: now(),
	}
}

// Validate reports every invalid field of r.
func (r TaskResult) Validate() error {
	p := problems{typ: "TaskResult"}
	r.validate(&p)
	return p.err()
}

func (r TaskResult) validate(p *problems) {
	if r.TaskID == "" {
		p.add("task_id", "required")
	}
	checkParentTaskID(p, r.ParentTaskID)
	if r.WorkerType == "" {
		p.add("worker_type", "required")
	}
	if !r.Status.Valid() {
		if r.Status == "" {
			p.add("status", "required")
		} else {
			p.add("status", "%s", wire.EnumProblem(string(r.Status), taskStatuses))
		}
	}
	if r.ProcessingTimeMS < 0 {
		p.add("processing_time_ms", "must be >= 0, got %d", r.ProcessingTimeMS)
	}
	if r.CompletedAt.IsZero() {
		p.add("completed_at", "required")
	}
}

// Subject is where r is published: ResultSubject(r.ParentTaskID).
func (r TaskResult) Subject() string { return ResultSubject(r.ParentTaskID) }

// OrchestratorGoal is a top-level request to an orchestrator or pipeline,
// published on SubjectGoalsIncoming. Its final TaskResult (task_id =
// goal_id) is published on ResultSubject(GoalID).
type OrchestratorGoal struct {
	// GoalID identifies the goal; a decoded goal without one gets a fresh
	// UUID, as in the Python Heddle.
	GoalID string
	// Instruction is the goal in words. Required, non-empty.
	Instruction string
	// Context carries domain data (file_ref, categories, ...).
	Context map[string]any
	// RequestID correlates the goal's tasks; null on the wire when empty.
	RequestID string
	// Priority defaults to DefaultPriority.
	Priority Priority
	// CreatedAt is when the goal was made (UTC, microsecond precision).
	CreatedAt time.Time
	// Extra holds unknown top-level fields of a decoded goal, verbatim.
	Extra map[string]json.RawMessage
}

// NewOrchestratorGoal returns a goal with a fresh goal_id, the current time
// and the default priority. A nil ctx becomes an empty object.
func NewOrchestratorGoal(instruction string, ctx map[string]any) OrchestratorGoal {
	if ctx == nil {
		ctx = map[string]any{}
	}
	return OrchestratorGoal{
		GoalID:      uuid.NewString(),
		Instruction: instruction,
		Context:     ctx,
		Priority:    DefaultPriority,
		CreatedAt:   now(),
	}
}

// Validate reports every invalid field of g.
func (g OrchestratorGoal) Validate() error {
	p := problems{typ: "OrchestratorGoal"}
	g.validate(&p)
	return p.err()
}

func (g OrchestratorGoal) validate(p *problems) {
	if g.GoalID == "" {
		p.add("goal_id", "required")
	} else if err := bus.ValidatePublishSubject(ResultSubject(g.GoalID)); err != nil {
		p.add("goal_id", "%q cannot be used in a result subject", g.GoalID)
	}
	if !g.Priority.Valid() {
		p.add("priority", "%s", wire.EnumProblem(string(g.Priority), priorities))
	}
	if g.CreatedAt.IsZero() {
		p.add("created_at", "required")
	}
}

// ResultSubject is where the goal's final result (and its subtasks'
// results) are published.
func (g OrchestratorGoal) ResultSubject() string { return ResultSubject(g.GoalID) }

// DeadLetter is the Router's envelope for a task it could not route,
// published on SubjectDeadLetter. It keeps the original message bytes
// exactly, so a replay publishes the very same task.
//
// On the wire (compatible with the Python router and consumer):
//
//	reason         the router's reason (invalid_task_message: ..., unknown_tier: ..., rate_limited: ...)
//	original_task  the original message, embedded verbatim when it is valid JSON, else null
//	original_raw   base64 of the exact original bytes; present only when original_task
//	               cannot reproduce them (not JSON, or whitespace around the JSON value)
//	task_id        read from the original when possible, else null
//	worker_type    read from the original when possible, else null
//	received_at    when the router received it (absent from Python envelopes)
type DeadLetter struct {
	// Reason says why the task was not routed. Required.
	Reason string
	// TaskID and WorkerType are read from the original when it is a JSON
	// object holding them as strings; empty otherwise.
	TaskID     string
	WorkerType string
	// ReceivedAt is when the router received the original; zero when the
	// envelope did not say (Python envelopes).
	ReceivedAt time.Time
	// Extra holds unknown top-level fields of a decoded envelope, verbatim.
	Extra map[string]json.RawMessage

	original []byte
}

// NewDeadLetter wraps original, which is kept byte for byte, with reason.
// task_id and worker_type are read from original when it is a JSON object
// that holds them as strings.
func NewDeadLetter(reason string, original []byte) DeadLetter {
	d := DeadLetter{
		Reason:     reason,
		ReceivedAt: now(),
		original:   append([]byte{}, original...),
	}
	d.TaskID, _ = wire.PeekString(original, "task_id")
	d.WorkerType, _ = wire.PeekString(original, "worker_type")
	return d
}

// deadLetterUnparsed and deadLetterTruncated name the members of the
// object written as original_task for an original that is not JSON, and
// for one too large to keep.
const (
	deadLetterUnparsed  = "_unparsed"
	deadLetterTruncated = "_truncated"
	// deadLetterHead bounds the text of a truncated original kept.
	deadLetterHead = 1024
)

// Truncated returns d with its original replaced by a small JSON object
// describing it, for an envelope too large for the bus:
//
//	{"_truncated": {"size": 2097152, "sha256": "…", "head": "<the first 1 KiB as text>"}}
//
// The size and hash identify the original in the sender's logs; a replay
// publishes the description, which the router dead-letters again. A
// router publishes it when the full envelope exceeds the bus's max
// payload, so that the dead letter is never lost.
func (d DeadLetter) Truncated() DeadLetter {
	sum := sha256.Sum256(d.original)
	head := d.original[:min(len(d.original), deadLetterHead)]
	b := []byte(`{"` + deadLetterTruncated + `":{"size":`)
	b = strconv.AppendInt(b, int64(len(d.original)), 10)
	b = append(b, `,"sha256":"`...)
	b = hex.AppendEncode(b, sum[:])
	b = append(b, `","head":`...)
	b = wire.AppendString(b, string(head))
	b = append(b, "}}"...)
	d.original = b
	return d
}

// Original returns the exact bytes of the message that was dead-lettered;
// replaying publishes them unchanged to SubjectTasksIncoming. The caller
// must not modify the returned slice.
func (d DeadLetter) Original() []byte { return d.original }

// Validate reports every invalid field of d.
func (d DeadLetter) Validate() error {
	p := problems{typ: "DeadLetter"}
	if d.Reason == "" {
		p.add("reason", "required")
	}
	if d.original == nil {
		p.add("original_task", "required")
	}
	return p.err()
}

// checkWorkerType requires a worker type usable in WorkerSubject.
func checkWorkerType(p *problems, workerType string) {
	if workerType == "" {
		p.add("worker_type", "required")
		return
	}
	if err := bus.ValidatePublishSubject(workerType); err != nil {
		p.add("worker_type", "%q cannot be used in a subject: %v", workerType, err)
	}
}

// checkParentTaskID requires a parent id usable in ResultSubject.
func checkParentTaskID(p *problems, id string) {
	if id == "" {
		return
	}
	if err := bus.ValidatePublishSubject(id); err != nil {
		p.add("parent_task_id", "%q cannot be used in a subject: %v", id, err)
	}
}

// subjectTokensValid reports whether s, placed between publish subject
// tokens (as in WorkerSubject and ResultSubject), leaves a valid publish
// subject: the rule of package bus, applied once everywhere.
func subjectTokensValid(s string) bool { return bus.ValidatePublishSubject(s) == nil }

// now is the timestamp the constructors use: UTC at microsecond
// precision, the precision Python datetimes hold.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
