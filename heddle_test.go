package heddle_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/internal/wire"
	"github.com/heddle-go/heddle/schemas"
)

func TestDecodeTaskMessageNamesEveryBadField(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{
			name: "a missing worker_type and an unknown tier are both reported",
			data: `{"payload":{},"model_tier":"huge"}`,
			want: `invalid TaskMessage: worker_type: required; model_tier: "huge" is not one of local, standard, frontier`,
		},
		{
			name: "wrong types name the type found",
			data: `{"task_id":1,"worker_type":"w","payload":[],"max_retries":"2","metadata":null}`,
			want: `invalid TaskMessage: task_id: expected string, got number; payload: expected object, got array; max_retries: expected integer, got string; metadata: expected object, got null`,
		},
		{
			name: "an empty worker_type is not a missing one",
			data: `{"worker_type":"","payload":{}}`,
			want: `invalid TaskMessage: worker_type: must not be empty`,
		},
		{
			name: "a worker_type that breaks the subject is refused",
			data: `{"worker_type":"a b","payload":{}}`,
			want: `invalid TaskMessage: worker_type: "a b" cannot be used in a subject: bus: bad subject "a b": white space U+0020 at byte 1`,
		},
		{
			name: "an unknown priority lists the allowed values",
			data: `{"worker_type":"w","payload":{},"priority":"urgent"}`,
			want: `invalid TaskMessage: priority: "urgent" is not one of low, normal, high, critical`,
		},
		{
			name: "negative counts are refused",
			data: `{"worker_type":"w","payload":{},"max_retries":-1,"retry_count":-2}`,
			want: `invalid TaskMessage: max_retries: must be >= 0, got -1; retry_count: must be >= 0, got -2`,
		},
		{
			name: "a bad timestamp is quoted",
			data: `{"worker_type":"w","payload":{},"created_at":"yesterday"}`,
			want: `invalid TaskMessage: created_at: "yesterday" is not an RFC 3339 timestamp`,
		},
		{
			name: "malformed JSON is a problem with the whole document",
			data: `{"worker_type":`,
			want: `invalid TaskMessage: malformed JSON: unexpected end of JSON input`,
		},
		{
			name: "a JSON array is not a message",
			data: `[1]`,
			want: `invalid TaskMessage: expected a JSON object, got array`,
		},
		{
			name: "field names are case-sensitive, as in Python",
			data: `{"Worker_Type":"w","payload":{}}`,
			want: `invalid TaskMessage: worker_type: required`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := heddle.DecodeTaskMessage([]byte(tt.data))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error:\n got %v\nwant %s", err, tt.want)
			}
			if !errors.Is(err, heddle.ErrInvalidMessage) {
				t.Errorf("error does not match ErrInvalidMessage")
			}
			var ve *heddle.ValidationError
			if !errors.As(err, &ve) || ve.Type != "TaskMessage" {
				t.Errorf("error is not a TaskMessage *ValidationError: %#v", err)
			}
		})
	}
}

func TestDecodeTaskMessageAppliesTheWireDefaults(t *testing.T) {
	before := time.Now().UTC().Truncate(time.Microsecond)
	m, err := heddle.DecodeTaskMessage([]byte(`{"worker_type":"echo","payload":{"n":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(m.TaskID); err != nil {
		t.Errorf("task_id %q is not a UUID: %v", m.TaskID, err)
	}
	if m.CreatedAt.Before(before) || m.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at = %v, want now in UTC", m.CreatedAt)
	}
	want := heddle.TaskMessage{
		TaskID: m.TaskID, WorkerType: "echo", Payload: map[string]any{"n": 1.0},
		ModelTier: heddle.TierStandard, Priority: heddle.PriorityNormal, MaxRetries: 2,
		CreatedAt: m.CreatedAt, Metadata: map[string]any{},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("decoded\n got %#v\nwant %#v", m, want)
	}
}

func TestDecodeTaskResultAndGoalNameTheirFields(t *testing.T) {
	_, err := heddle.DecodeTaskResult([]byte(`{"task_id":"t","status":"done","output":"x","token_usage":{"prompt_tokens":1.5}}`))
	want := `invalid TaskResult: worker_type: required; status: "done" is not one of pending, processing, completed, failed, retry; output: expected object, got string; token_usage: "prompt_tokens": expected integer, got 1.5`
	if err == nil || err.Error() != want {
		t.Errorf("TaskResult error:\n got %v\nwant %s", err, want)
	}
	_, err = heddle.DecodeOrchestratorGoal([]byte(`{"context":[],"priority":"asap"}`))
	want = `invalid OrchestratorGoal: instruction: required; context: expected object, got array; priority: "asap" is not one of low, normal, high, critical`
	if err == nil || err.Error() != want {
		t.Errorf("OrchestratorGoal error:\n got %v\nwant %s", err, want)
	}
	_, err = heddle.DecodeDeadLetter([]byte(`{"task_id":null}`))
	want = `invalid DeadLetter: reason: required; original_task: required`
	if err == nil || err.Error() != want {
		t.Errorf("DeadLetter error:\n got %v\nwant %s", err, want)
	}
}

func TestEnumsRejectUnknownValues(t *testing.T) {
	for _, tier := range heddle.ModelTiers() {
		if got, err := heddle.ParseModelTier(string(tier)); err != nil || got != tier {
			t.Errorf("ParseModelTier(%q) = %q, %v", tier, got, err)
		}
	}
	for _, p := range []heddle.Priority{heddle.PriorityLow, heddle.PriorityNormal, heddle.PriorityHigh, heddle.PriorityCritical} {
		if got, err := heddle.ParsePriority(string(p)); err != nil || got != p {
			t.Errorf("ParsePriority(%q) = %q, %v", p, got, err)
		}
	}
	for _, s := range []heddle.TaskStatus{heddle.StatusPending, heddle.StatusProcessing, heddle.StatusCompleted, heddle.StatusFailed, heddle.StatusRetry} {
		if got, err := heddle.ParseTaskStatus(string(s)); err != nil || got != s {
			t.Errorf("ParseTaskStatus(%q) = %q, %v", s, got, err)
		}
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"an unknown tier", second(heddle.ParseModelTier("gpu")), `heddle: unknown enum value: model tier "gpu" is not one of local, standard, frontier`},
		{"a tier in the wrong case", second(heddle.ParseModelTier("LOCAL")), `heddle: unknown enum value: model tier "LOCAL" is not one of local, standard, frontier`},
		{"an unknown priority", second(heddle.ParsePriority("")), `heddle: unknown enum value: priority "" is not one of low, normal, high, critical`},
		{"an unknown status", second(heddle.ParseTaskStatus("done")), `heddle: unknown enum value: task status "done" is not one of pending, processing, completed, failed, retry`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || tt.err.Error() != tt.want || !errors.Is(tt.err, heddle.ErrUnknownEnum) {
				t.Errorf("error = %v, want %s (matching ErrUnknownEnum)", tt.err, tt.want)
			}
		})
	}

	// The enum types reject unknown values inside the user's own structs.
	var cfg struct {
		Tier     heddle.ModelTier  `json:"tier"`
		Priority heddle.Priority   `json:"priority"`
		Status   heddle.TaskStatus `json:"status"`
	}
	if err := json.Unmarshal([]byte(`{"tier":"frontier","priority":"high","status":"retry"}`), &cfg); err != nil || cfg.Tier != heddle.TierFrontier {
		t.Errorf("decoding known values: %v, %+v", err, cfg)
	}
	if err := json.Unmarshal([]byte(`{"tier":"huge"}`), &cfg); !errors.Is(err, heddle.ErrUnknownEnum) || !strings.Contains(err.Error(), "local, standard, frontier") {
		t.Errorf("decoding an unknown tier: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"status":3}`), &cfg); !errors.Is(err, heddle.ErrUnknownEnum) {
		t.Errorf("decoding a number as a status: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestSubjectsAndQueueGroupsAreBuiltAsThePythonHeddleNamesThem(t *testing.T) {
	task := heddle.NewTaskMessage("summarizer", nil)
	task.ModelTier = heddle.TierLocal
	sub := task
	sub.ParentTaskID = "goal-1"
	goal := heddle.NewOrchestratorGoal("do it", nil)

	tests := []struct {
		name, got, want string
		publish         bool // the subject is published to, so it has no wildcards
	}{
		{"tasks enter on the incoming subject", heddle.SubjectTasksIncoming, "heddle.tasks.incoming", true},
		{"the router forwards to worker type and tier", heddle.WorkerSubject("summarizer", heddle.TierFrontier), "heddle.tasks.summarizer.frontier", true},
		{"a task knows its worker subject", task.WorkerSubject(), "heddle.tasks.summarizer.local", true},
		{"a worker may serve every tier", heddle.WorkerSubjectAllTiers("summarizer"), "heddle.tasks.summarizer.*", false},
		{"a result without parent goes to default", heddle.ResultSubject(""), "heddle.results.default", true},
		{"a result with a parent goes to the parent's subject", heddle.ResultSubject("goal-1"), "heddle.results.goal-1", true},
		{"a task without parent knows its result subject", task.ResultSubject(), heddle.SubjectResultsDefault, true},
		{"a subtask knows its result subject", sub.ResultSubject(), "heddle.results.goal-1", true},
		{"a result knows its subject", sub.Result(heddle.StatusCompleted, nil, nil).Subject(), "heddle.results.goal-1", true},
		{"a goal's results share its subject", goal.ResultSubject(), "heddle.results." + goal.GoalID, true},
		{"every result subject", heddle.SubjectResultsAll, "heddle.results.>", false},
		{"dead letters", heddle.SubjectDeadLetter, "heddle.tasks.dead_letter", true},
		{"goals", heddle.SubjectGoalsIncoming, "heddle.goals.incoming", true},
		{"reload", heddle.SubjectControlReload, "heddle.control.reload", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("subject = %q, want %q", tt.got, tt.want)
			}
			validate := bus.ValidateSubscribeSubject
			if tt.publish {
				validate = bus.ValidatePublishSubject
			}
			if err := validate(tt.got); err != nil {
				t.Errorf("subject %q is not valid: %v", tt.got, err)
			}
		})
	}
	if !bus.Match(heddle.WorkerSubjectAllTiers("summarizer"), task.WorkerSubject()) {
		t.Errorf("the all-tiers subject does not match a tier subject")
	}
	if !bus.Match(heddle.SubjectResultsAll, heddle.ResultSubject("x")) {
		t.Errorf("the all-results subject does not match a result subject")
	}
}

// The Heddle SDK porting guide: processor workers of every SDK share
// processors-{worker_type}; the Python LLM workers use
// workers-{worker_type}; the Python CLI runs pipelines in "pipelines" and
// orchestrators in "orchestrators". A Go actor in another group would
// run each task or goal a second time in a mixed mesh.
func TestQueueGroupsAreThoseOfThePortingGuide(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"processor workers", heddle.WorkerQueueGroup("summarizer"), "processors-summarizer"},
		{"Python LLM workers", heddle.LLMWorkerQueueGroup("summarizer"), "workers-summarizer"},
		{"pipelines", heddle.PipelineQueueGroup, "pipelines"},
		{"orchestrators", heddle.OrchestratorQueueGroup, "orchestrators"},
		{"Go routers", heddle.RouterQueueGroup, "router"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("queue group %q, want %q", tt.got, tt.want)
			}
			if err := bus.ValidateQueue(tt.got); err != nil {
				t.Errorf("queue group %q is not valid: %v", tt.got, err)
			}
		})
	}
}

func TestConstructorsMakeValidMessages(t *testing.T) {
	before := time.Now().UTC().Truncate(time.Microsecond)
	m := heddle.NewTaskMessage("echo", map[string]any{"text": "hi"})
	if err := m.Validate(); err != nil {
		t.Fatalf("NewTaskMessage: %v", err)
	}
	id, err := uuid.Parse(m.TaskID)
	if err != nil || id.Version() != 4 {
		t.Errorf("task_id %q is not a UUID v4", m.TaskID)
	}
	if m.CreatedAt.Before(before) || m.CreatedAt.Location() != time.UTC || m.CreatedAt.Nanosecond()%1000 != 0 {
		t.Errorf("created_at = %v, want now, UTC, whole microseconds", m.CreatedAt)
	}
	if m.ModelTier != heddle.DefaultModelTier || m.Priority != heddle.DefaultPriority || m.MaxRetries != heddle.DefaultMaxRetries || m.Metadata == nil {
		t.Errorf("defaults not applied: %+v", m)
	}
	if heddle.NewTaskMessage("echo", nil).Payload == nil {
		t.Errorf("a nil payload must become an empty object")
	}
	if a, b := heddle.NewTaskMessage("echo", nil), heddle.NewTaskMessage("echo", nil); a.TaskID == b.TaskID {
		t.Errorf("two tasks share a task_id")
	}

	m.ParentTaskID = "goal-7"
	r := m.Result(heddle.StatusFailed, nil, errors.New("boom"))
	if r.TaskID != m.TaskID || r.ParentTaskID != "goal-7" || r.WorkerType != "echo" || r.Error != "boom" || r.Status != heddle.StatusFailed {
		t.Errorf("Result copied the wrong fields: %+v", r)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("Result: %v", err)
	}
	ok := m.Result(heddle.StatusCompleted, map[string]any{"n": 1}, nil)
	if ok.Error != "" || ok.Output["n"] != 1 {
		t.Errorf("Result without error: %+v", ok)
	}

	g := heddle.NewOrchestratorGoal("summarise", nil)
	if err := g.Validate(); err != nil || g.Context == nil || g.Priority != heddle.PriorityNormal {
		t.Errorf("NewOrchestratorGoal: %v %+v", err, g)
	}
	if _, err := uuid.Parse(g.GoalID); err != nil {
		t.Errorf("goal_id %q is not a UUID", g.GoalID)
	}
}

func TestValidateReportsEveryBadFieldOfAGoValue(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"a zero TaskMessage", heddle.TaskMessage{}.Validate(),
			`invalid TaskMessage: task_id: required; worker_type: required; model_tier: "" is not one of local, standard, frontier; priority: "" is not one of low, normal, high, critical; created_at: required`},
		{"a zero TaskResult", heddle.TaskResult{}.Validate(),
			`invalid TaskResult: task_id: required; worker_type: required; status: required; completed_at: required`},
		{"a zero OrchestratorGoal", heddle.OrchestratorGoal{}.Validate(),
			`invalid OrchestratorGoal: goal_id: required; priority: "" is not one of low, normal, high, critical; created_at: required`},
		{"a zero DeadLetter", heddle.DeadLetter{}.Validate(),
			`invalid DeadLetter: reason: required; original_task: required`},
		{"a parent id with a wildcard", func() error {
			m := heddle.NewTaskMessage("w", nil)
			m.ParentTaskID = "a.*"
			return m.Validate()
		}(), `invalid TaskMessage: parent_task_id: "a.*" cannot be used in a subject: bus: bad subject "a.*": wildcard "*" at byte 2 is not allowed in a publish subject`},
		{"a negative processing time", func() error {
			r := heddle.NewTaskResult("t", "w", heddle.StatusCompleted)
			r.ProcessingTimeMS = -1
			return r.Validate()
		}(), `invalid TaskResult: processing_time_ms: must be >= 0, got -1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || tt.err.Error() != tt.want {
				t.Errorf("error:\n got %v\nwant %s", tt.err, tt.want)
			}
		})
	}
}

func TestEncodeWritesTheWireForm(t *testing.T) {
	created := time.Date(2026, 2, 9, 10, 15, 30, 123456789, time.FixedZone("CET", 3600))
	m := heddle.TaskMessage{
		TaskID: "t-1", WorkerType: "echo", Payload: map[string]any{"s": "<é>\u2028"},
		ModelTier: heddle.TierLocal, Priority: heddle.PriorityHigh, MaxRetries: 3, CreatedAt: created,
		Extra: map[string]json.RawMessage{"zz": json.RawMessage(`[1, 2]`), "task_id": json.RawMessage(`"shadow"`), "aa": json.RawMessage(`null`)},
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"task_id":"t-1","parent_task_id":null,"worker_type":"echo","payload":{"s":"\u003cé\u003e\u2028"},"model_tier":"local","priority":"high","max_retries":3,"retry_count":0,"created_at":"2026-02-09T09:15:30.123456Z","request_id":null,"metadata":{},"aa":null,"zz":[1, 2]}`
	if string(b) != want {
		t.Errorf("encoded\n got %s\nwant %s", b, want)
	}
	viaJSON, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var a, c any
	json.Unmarshal(b, &a)
	json.Unmarshal(viaJSON, &c)
	if !reflect.DeepEqual(a, c) {
		t.Errorf("json.Marshal and Encode disagree:\n%s\n%s", viaJSON, b)
	}

	r := heddle.NewTaskResult("t-1", "echo", heddle.StatusCompleted)
	r.CompletedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r.TokenUsage = map[string]int{"prompt_tokens": 10, "completion_tokens": 2}
	b, err = r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want = `{"task_id":"t-1","parent_task_id":null,"worker_type":"echo","status":"completed","output":null,"error":null,"model_used":null,"token_usage":{"completion_tokens":2,"prompt_tokens":10},"processing_time_ms":0,"completed_at":"2026-01-02T03:04:05Z"}`
	if string(b) != want {
		t.Errorf("encoded\n got %s\nwant %s", b, want)
	}

	if _, err := (heddle.TaskMessage{WorkerType: "w"}).Encode(); !errors.Is(err, heddle.ErrInvalidMessage) {
		t.Errorf("Encode of an invalid message: %v", err)
	}
	bad := heddle.NewTaskMessage("w", nil)
	bad.Extra = map[string]json.RawMessage{"x": json.RawMessage(`{`)}
	if _, err := bad.Encode(); err == nil || !strings.Contains(err.Error(), `extra field "x"`) {
		t.Errorf("Encode with invalid extra JSON: %v", err)
	}
	nan := heddle.NewTaskMessage("w", map[string]any{"x": func() {}})
	if _, err := nan.Encode(); err == nil || !strings.Contains(err.Error(), "payload") {
		t.Errorf("Encode with an unencodable payload: %v", err)
	}
}

func TestMessagesWorkWithEncodingJSON(t *testing.T) {
	type envelope struct {
		Task   heddle.TaskMessage `json:"task"`
		Result heddle.TaskResult  `json:"result"`
	}
	in := envelope{Task: heddle.NewTaskMessage("echo", map[string]any{"a": "b"})}
	in.Result = in.Task.Result(heddle.StatusCompleted, map[string]any{}, nil)
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out envelope
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip through encoding/json:\n in %#v\nout %#v", in, out)
	}
	before := out
	if err := json.Unmarshal([]byte(`{"task":null,"result":null}`), &out); err != nil || !reflect.DeepEqual(out, before) {
		t.Errorf("JSON null must leave a message unchanged: %v", err)
	}
	if _, err := heddle.DecodeTaskMessage([]byte(`null`)); !errors.Is(err, heddle.ErrInvalidMessage) {
		t.Errorf("DecodeTaskMessage(null) = %v, want an invalid message", err)
	}
	err = json.Unmarshal([]byte(`{"task":{"payload":{}}}`), &out)
	if !errors.Is(err, heddle.ErrInvalidMessage) || !strings.Contains(err.Error(), "worker_type: required") {
		t.Errorf("json.Unmarshal of an invalid nested task: %v", err)
	}
}

func TestDeadLetterKeepsTheOriginalExactly(t *testing.T) {
	tests := []struct {
		name             string
		original         []byte
		taskID, workerTy string
		rawKept          bool // original_raw is needed
	}{
		{"a compact task", []byte(`{"task_id":"t-1","worker_type":"echo","payload":{}}`), "t-1", "echo", false},
		{"a pretty-printed task with HTML characters", []byte("{\n  \"worker_type\": \"<b>&</b>\",\n  \"payload\": {}\n}"), "", "<b>&</b>", false},
		{"JSON with whitespace around it", []byte(" {\"task_id\":\"t-2\"}\n"), "t-2", "", true},
		{"bytes that are not JSON", []byte("not json"), "", "", true},
		{"invalid UTF-8, read as encoding/json reads it", []byte("{\"worker_type\":\"\xff\"}"), "", "\ufffd", true},
		{"an empty message", []byte{}, "", "", true},
		{"a JSON string", []byte(`"just a string"`), "", "", false},
		{"ids of the wrong type", []byte(`{"task_id":5,"worker_type":["x"]}`), "", "", false},
	}
	schema, err := contracts.NewSchema(schemas.DeadLetter())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := heddle.NewDeadLetter("invalid_task_message: test", tt.original)
			if d.TaskID != tt.taskID || d.WorkerType != tt.workerTy {
				t.Errorf("ids read = %q, %q; want %q, %q", d.TaskID, d.WorkerType, tt.taskID, tt.workerTy)
			}
			if !bytes.Equal(d.Original(), tt.original) {
				t.Errorf("Original() = %q", d.Original())
			}
			b, err := d.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatalf("envelope is not JSON: %s", b)
			}
			if got := bytes.Contains(b, []byte(`"original_raw"`)); got != tt.rawKept {
				t.Errorf("original_raw present = %v, want %v: %s", got, tt.rawKept, b)
			}
			if !tt.rawKept && !bytes.Contains(b, append([]byte(`"original_task":`), tt.original...)) {
				t.Errorf("original_task does not hold the original verbatim: %s", b)
			}
			back, err := heddle.DecodeDeadLetter(b)
			if err != nil {
				t.Fatalf("decode: %v\n%s", err, b)
			}
			if !bytes.Equal(back.Original(), tt.original) {
				t.Errorf("Original() after a round trip = %q, want %q", back.Original(), tt.original)
			}
			if !reflect.DeepEqual(back, d) {
				t.Errorf("round trip changed the envelope:\n got %#v\nwant %#v", back, d)
			}
			if err := schema.Validate(json.RawMessage(b)); err != nil {
				t.Errorf("the DeadLetter schema rejects the envelope: %v", err)
			}
		})
	}
}

func TestTimesAreRFC3339UTCAtMicrosecondPrecision(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2026-02-09T10:15:30Z", "2026-02-09T10:15:30Z"},
		{"2026-02-09T10:15:30.123456789Z", "2026-02-09T10:15:30.123456Z"},
		{"2026-02-09T12:15:30.5+02:00", "2026-02-09T10:15:30.500000Z"},
		{"2026-02-09T10:15:30.000001", "2026-02-09T10:15:30.000001Z"},
		{"2026-02-09 10:15:30", "2026-02-09T10:15:30Z"},
		{"2026-02-09 10:15:30.25+00:00", "2026-02-09T10:15:30.250000Z"},
	}
	for _, tt := range tests {
		got, err := wire.ParseTime(tt.in)
		if err != nil {
			t.Errorf("ParseTime(%q): %v", tt.in, err)
			continue
		}
		if s := wire.FormatTime(got); s != tt.want {
			t.Errorf("FormatTime(ParseTime(%q)) = %q, want %q", tt.in, s, tt.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2026-02-30T10:00:00Z", "2026-02-09", "10:15:30", "1770632130"} {
		if _, err := wire.ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

func TestEnvelopeSchemasCompileAndDescribeTheWireFields(t *testing.T) {
	tests := []struct {
		name     string
		doc      []byte
		required []string
		fields   []string
	}{
		{"TaskMessage", schemas.TaskMessage(), []string{"worker_type", "payload"},
			[]string{"task_id", "parent_task_id", "worker_type", "payload", "model_tier", "priority", "max_retries", "retry_count", "created_at", "request_id", "metadata"}},
		{"TaskResult", schemas.TaskResult(), []string{"task_id", "worker_type", "status"},
			[]string{"task_id", "parent_task_id", "worker_type", "status", "output", "error", "model_used", "token_usage", "processing_time_ms", "completed_at"}},
		{"OrchestratorGoal", schemas.OrchestratorGoal(), []string{"instruction"},
			[]string{"goal_id", "instruction", "context", "request_id", "priority", "created_at"}},
		{"DeadLetter", schemas.DeadLetter(), []string{"reason"},
			[]string{"reason", "original_task", "original_raw", "task_id", "worker_type", "received_at"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := contracts.NewSchema(tt.doc); err != nil {
				t.Fatalf("the schema does not compile: %v", err)
			}
			var doc struct {
				Schema     string                     `json:"$schema"`
				Title      string                     `json:"title"`
				Required   []string                   `json:"required"`
				Properties map[string]json.RawMessage `json:"properties"`
			}
			if err := json.Unmarshal(tt.doc, &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Schema != "https://json-schema.org/draft/2020-12/schema" || doc.Title != tt.name {
				t.Errorf("$schema %q, title %q", doc.Schema, doc.Title)
			}
			if !slices.Equal(doc.Required, tt.required) {
				t.Errorf("required = %q, want %q", doc.Required, tt.required)
			}
			for _, f := range tt.fields {
				if _, ok := doc.Properties[f]; !ok {
					t.Errorf("no property %s", f)
				}
			}
			if len(doc.Properties) != len(tt.fields) {
				t.Errorf("%d properties, want %d", len(doc.Properties), len(tt.fields))
			}
			tt.doc[0] = 'X'
		})
	}
	if schemas.TaskMessage()[0] != '{' {
		t.Errorf("the schema accessors must return a fresh copy")
	}
}

func TestValidationErrorLooksUpFields(t *testing.T) {
	_, err := heddle.DecodeTaskMessage([]byte(`{"payload":{},"priority":"x"}`))
	var ve *heddle.ValidationError
	if !errors.As(err, &ve) {
		t.Fatal(err)
	}
	if !ve.Has("worker_type") || !ve.Has("priority") || ve.Has("payload") {
		t.Errorf("Has is wrong for %v", err)
	}
	if ve.Fields[0] != (heddle.FieldError{Field: "worker_type", Problem: "required"}) {
		t.Errorf("first field error = %+v", ve.Fields[0])
	}
}
