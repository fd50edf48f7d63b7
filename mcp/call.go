package mcp

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
)

// MetaKey is the key, in a tool error's _meta, of the error's details
// for programs: reason (one of the Reason constants), error (the text
// the content holds too), tool, and where they apply task_id, goal_id,
// worker_type, pipeline, dead_letter_reason, violations (each with path
// and message), pending_task_ids, expected_count, collected_count and
// timeout_seconds.
const MetaKey = "heddle/error"

// Reasons a call fails, the first word of a tool error's text and the
// reason of its _meta and of its mcp.call_failed or mcp.call_refused
// event.
const (
	// ReasonInvalidArguments: the arguments are not a JSON object, or a
	// pipeline tool got a key other than instruction and context, or an
	// instruction that is not a string. Nothing was published.
	ReasonInvalidArguments = "invalid_arguments"
	// ReasonContractViolation: the arguments break the worker's input
	// contract, or the context breaks the pipeline tool's context schema;
	// the text names each field and what is wrong. Nothing was published.
	// (The reason kind a worker reports for the same fault.)
	ReasonContractViolation = event.ReasonInputContract
	// ReasonDeadLettered: the router dead-lettered the task; the text
	// holds the router's reason (no_worker: ..., rate_limited: ...,
	// unknown_tier: ...).
	ReasonDeadLettered = "dead_lettered"
	// ReasonNoRouter: the task was sent to the router and no router is
	// running.
	ReasonNoRouter = "no_router"
	// ReasonNoWorker: the task was sent straight to the worker (Direct)
	// and no worker of its type serves its tier.
	ReasonNoWorker = event.ReasonNoWorker
	// ReasonNoGoalServer: no pipeline or orchestrator of the tool's name
	// is running.
	ReasonNoGoalServer = "no_goal_server"
	// ReasonTaskFailed: the worker answered with a failed result, or the
	// pipeline failed the goal; the text holds its error.
	ReasonTaskFailed = "task_failed"
	// ReasonTimeout: no result came within the tool's timeout; the text
	// names the task_ids still pending and any result that came and was
	// refused (an output breaking the output contract).
	ReasonTimeout = event.ReasonTimeout
	// ReasonTooLarge: the task or goal is larger than the bus takes (its
	// max payload). Nothing was published.
	ReasonTooLarge = "too_large"
	// ReasonBusClosed: the gateway's bus closed.
	ReasonBusClosed = "bus_closed"
	// ReasonCancelled: the call was cancelled (the client went away, or
	// the gateway stopped).
	ReasonCancelled = "cancelled"
	// ReasonError: any other failure to send the call.
	ReasonError = "error"
)

// Events of a Gateway, one per call, with the attributes tool, kind,
// task_id (a worker tool's) or goal_id (a pipeline tool's), worker_type
// or pipeline, duration, and for a failure reason and error. The typed
// fields of the event.Event: TaskID (the task or goal), WorkerType (the
// worker type or pipeline), Tier, Status, Reason, Detail and Duration.
const (
	// EventCallCompleted: a call was answered with its output.
	EventCallCompleted = "mcp.call_completed"
	// EventCallFailed: a call sent to the mesh was answered with a tool
	// error.
	EventCallFailed = "mcp.call_failed"
	// EventCallRefused: a call was refused before anything was published.
	EventCallRefused = "mcp.call_refused"
	// EventServing: Run or ServeStdio serves (transport, addr, path,
	// tools).
	EventServing = "mcp.serving"
)

// callError is a failed call: its reason, its text, and the details its
// _meta holds.
type callError struct {
	reason  string
	text    string
	details map[string]any
	refused bool // nothing was published
}

// toolHandler answers the calls of t.
func (g *Gateway) toolHandler(t *tool) mcpsdk.ToolHandler {
	return func(ctx context.Context, req *mcpsdk.CallToolRequest) (*mcpsdk.CallToolResult, error) {
		// A call ends with the client's request, or when Run gives up
		// draining.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(g.abort, cancel)()

		start := time.Now()
		var (
			raw   json.RawMessage
			trace map[string]json.RawMessage
		)
		if req != nil && req.Params != nil {
			raw, trace = req.Params.Arguments, traceExtension(req.Params.Meta)
		}
		// The client's trace context: the work done for the call (the
		// dispatch and its interceptors' spans) continues its trace.
		ctx = g.emit.Extract(ctx, trace)
		var (
			id     string
			output map[string]any
			cerr   *callError
		)
		switch t.kind {
		case kindWorker:
			id, output, cerr = g.callWorker(ctx, t, raw, trace)
		default:
			id, output, cerr = g.callPipeline(ctx, t, raw, trace)
		}
		ev := event.Event{TaskID: id, Duration: time.Since(start), Status: "completed"}
		attrs := []slog.Attr{slog.String("tool", t.name), slog.String("kind", t.kind), slog.String(idKey(t), id)}
		if t.kind == kindWorker {
			ev.WorkerType, ev.Tier = t.workerType, string(t.tier)
			attrs = append(attrs, slog.String("worker_type", t.workerType))
		} else {
			ev.WorkerType = t.pipeline
			attrs = append(attrs, slog.String("pipeline", t.pipeline))
		}
		attrs = append(attrs, slog.Duration("duration", ev.Duration))
		if cerr != nil {
			ev.Name, ev.Status, ev.Reason, ev.Detail = EventCallFailed, "failed", cerr.reason, cerr.text
			count, level := &g.stats.failed, slog.LevelWarn
			if cerr.refused {
				ev.Name, ev.Status, count, level = EventCallRefused, "refused", &g.stats.refused, slog.LevelInfo
			}
			g.emit.CountEvent(ctx, count, level, ev, append(attrs, slog.String("reason", cerr.reason), slog.String("error", cerr.text))...)
			return cerr.result(t, idKey(t), id), nil
		}
		ev.Name = EventCallCompleted
		g.emit.CountEvent(ctx, &g.stats.completed, slog.LevelInfo, ev, attrs...)
		return success(output)
	}
}

// idKey is the wire name of what a call of t sends: a task or a goal.
func idKey(t *tool) string {
	if t.kind == kindWorker {
		return "task_id"
	}
	return "goal_id"
}

// result is the tool error for e.
func (e *callError) result(t *tool, idKey, id string) *mcpsdk.CallToolResult {
	details := map[string]any{"reason": e.reason, "error": e.text, "tool": t.name}
	if id != "" && !e.refused {
		details[idKey] = id
	}
	if t.kind == kindWorker {
		details["worker_type"] = t.workerType
	} else {
		details["pipeline"] = t.pipeline
	}
	for k, v := range e.details {
		details[k] = v
	}
	return &mcpsdk.CallToolResult{
		Meta:    mcpsdk.Meta{MetaKey: details},
		Content: []mcpsdk.Content{&mcpsdk.TextContent{Text: e.reason + ": " + e.text}},
		IsError: true,
	}
}

// success is the result of a completed call: the output as structured
// content, and as its JSON text for clients that read only text.
func success(output map[string]any) (*mcpsdk.CallToolResult, error) {
	if output == nil {
		output = map[string]any{}
	}
	text, err := json.Marshal(output)
	if err != nil {
		// An output decoded from JSON always encodes; this is a bug.
		return nil, fmt.Errorf("mcp: encoding the output: %w", err)
	}
	return &mcpsdk.CallToolResult{
		Content:           []mcpsdk.Content{&mcpsdk.TextContent{Text: string(text)}},
		StructuredContent: output,
	}, nil
}

// arguments decodes a call's arguments: a JSON object, its numbers kept
// as their text (json.Number) so that an integer of any size reaches the
// worker exactly. Absent arguments are an empty object.
func arguments(raw json.RawMessage) (map[string]any, *callError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, refused(ReasonInvalidArguments, "the arguments are not JSON: "+err.Error())
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, refused(ReasonInvalidArguments, fmt.Sprintf("the arguments must be a JSON object, got %s", jsonKind(v)))
	}
	return m, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

func refused(reason, text string) *callError {
	return &callError{reason: reason, text: text, refused: true}
}

// violation is the refusal of a value that breaks a contract.
func violation(err error, what string) *callError {
	var ve *contracts.ValidationError
	if !errors.As(err, &ve) {
		return refused(ReasonError, fmt.Sprintf("checking %s: %v", what, err))
	}
	parts := make([]string, 0, len(ve.Violations))
	list := make([]any, 0, len(ve.Violations))
	for _, v := range ve.Violations {
		path := cmp.Or(v.Path, "/")
		parts = append(parts, path+": "+v.Message)
		list = append(list, map[string]any{"path": path, "message": v.Message})
	}
	e := refused(ReasonContractViolation, fmt.Sprintf("%s breaks its contract: %s; nothing was sent", what, strings.Join(parts, "; ")))
	e.details = map[string]any{"violations": list}
	return e
}

// callWorker sends one task to t's worker type and waits for its result.
func (g *Gateway) callWorker(ctx context.Context, t *tool, raw json.RawMessage, trace map[string]json.RawMessage) (string, map[string]any, *callError) {
	payload, cerr := arguments(raw)
	if cerr != nil {
		return "", nil, cerr
	}
	if err := t.contract.ValidateInput(payload); err != nil {
		return "", nil, violation(err, fmt.Sprintf("the input of worker type %q", t.workerType))
	}
	task := heddle.NewTaskMessage(t.workerType, payload)
	// dispatch writes ctx's trace context over it when it has a
	// propagator; without one it travels as the client sent it.
	task.Extra = trace
	opts := []dispatch.Option{dispatch.Timeout(t.timeout), dispatch.Tier(t.tier), dispatch.With(g.opts...)}
	if t.direct {
		opts = append(opts, dispatch.Direct())
	}
	if out := t.contract.Output(); out != nil {
		// The input was checked above; only the output is left to check.
		opts = append(opts, dispatch.Contract(contracts.New(nil, out)))
	}
	res, err := dispatch.Request(ctx, g.b, task, opts...)
	if err != nil {
		return task.TaskID, nil, g.failure(ctx, err, fmt.Sprintf("worker type %q", t.workerType), t.tier)
	}
	if res.Status != heddle.StatusCompleted {
		return task.TaskID, nil, &callError{
			reason: ReasonTaskFailed,
			text: fmt.Sprintf("worker type %q answered task %s with status %s: %s",
				t.workerType, res.TaskID, res.Status, cmp.Or(res.Error, "no error given")),
		}
	}
	return task.TaskID, res.Output, nil
}

// pipelineArgs are the keys a pipeline tool takes.
var pipelineArgs = []string{"context", "instruction"}

// callPipeline submits one goal to t's pipeline and waits for its final
// result.
func (g *Gateway) callPipeline(ctx context.Context, t *tool, raw json.RawMessage, trace map[string]json.RawMessage) (string, map[string]any, *callError) {
	args, cerr := arguments(raw)
	if cerr != nil {
		return "", nil, cerr
	}
	for k := range args {
		if !slices.Contains(pipelineArgs, k) {
			return "", nil, refused(ReasonInvalidArguments,
				fmt.Sprintf("unknown argument %q: a pipeline tool takes instruction (a string) and context (an object)", k))
		}
	}
	instruction := t.instruction
	switch v := args["instruction"].(type) {
	case nil:
	case string:
		if strings.TrimSpace(v) != "" {
			instruction = v
		}
	default:
		return "", nil, refused(ReasonInvalidArguments, fmt.Sprintf("instruction must be a string, got %s", jsonKind(v)))
	}
	goalCtx := map[string]any{}
	switch v := args["context"].(type) {
	case nil:
		if t.context != nil {
			goalCtx = nil // absent: the schema decides whether that will do
		}
	case map[string]any:
		goalCtx = v
	default:
		return "", nil, refused(ReasonInvalidArguments, fmt.Sprintf("context must be an object, got %s", jsonKind(v)))
	}
	if t.context != nil {
		if goalCtx == nil {
			return "", nil, violation(&contracts.ValidationError{Violations: []contracts.Violation{{Path: "/context", Message: "required"}}},
				fmt.Sprintf("the goal context of pipeline %q", t.pipeline))
		}
		if err := t.context.Validate(goalCtx); err != nil {
			var ve *contracts.ValidationError
			if errors.As(err, &ve) {
				err = ve.Prefixed("/context")
			}
			return "", nil, violation(err, fmt.Sprintf("the goal context of pipeline %q", t.pipeline))
		}
	}
	goal := heddle.NewOrchestratorGoal(instruction, goalCtx)
	goal.Extra = g.emit.Inject(ctx, trace)
	opts := []dispatch.Option{dispatch.To(t.pipeline), dispatch.With(g.opts...)}
	if t.timeout > 0 {
		opts = append(opts, dispatch.Timeout(t.timeout))
	}
	res, err := dispatch.SubmitGoal(ctx, g.b, goal, opts...)
	if err != nil {
		return goal.GoalID, nil, g.failure(ctx, err, fmt.Sprintf("pipeline %q", t.pipeline), "")
	}
	if res.Status != heddle.StatusCompleted {
		return goal.GoalID, nil, &callError{
			reason: ReasonTaskFailed,
			text: fmt.Sprintf("pipeline %q answered goal %s with status %s: %s",
				t.pipeline, goal.GoalID, res.Status, cmp.Or(res.Error, "no error given")),
		}
	}
	return goal.GoalID, res.Output, nil
}

// Bounds of the trace context taken from a call's _meta: a traceparent
// is 55 characters in version 00, a tracestate at most 512.
const (
	maxTraceparent = 128
	maxTracestate  = 512
)

// traceExtension returns the _trace_context extension for a call whose
// _meta holds a W3C trace context (traceparent, and tracestate), as MCP
// clients send it (OpenTelemetry's conventions for MCP), or nil.
func traceExtension(meta mcpsdk.Meta) map[string]json.RawMessage {
	tp, _ := meta["traceparent"].(string)
	if tp == "" || len(tp) > maxTraceparent {
		return nil
	}
	tc := map[string]string{"traceparent": tp}
	if ts, _ := meta["tracestate"].(string); ts != "" && len(ts) <= maxTracestate {
		tc["tracestate"] = ts
	}
	data, err := json.Marshal(tc)
	if err != nil {
		return nil
	}
	return map[string]json.RawMessage{traceKey: data}
}

// traceKey is the extension holding the W3C trace context.
const traceKey = "_trace_context"

// failure maps an error of package dispatch to a tool error naming its
// reason. target names what the call was for.
func (g *Gateway) failure(ctx context.Context, err error, target string, tier heddle.ModelTier) *callError {
	var (
		dl *dispatch.DeadLetterError
		to *dispatch.TimeoutError
		te *dispatch.TaskError
		ve *contracts.ValidationError
	)
	switch {
	case errors.As(err, &dl):
		return &callError{
			reason:  ReasonDeadLettered,
			text:    fmt.Sprintf("the router dead-lettered the task for %s: %s", target, cmp.Or(dl.Result.Error, dl.Reason)),
			details: map[string]any{"dead_letter_reason": dl.Reason},
		}
	case errors.As(err, &to):
		details := to.Metadata()
		return &callError{reason: ReasonTimeout, text: fmt.Sprintf("no answer from %s: %v", target, to), details: details}
	case errors.As(err, &te):
		return &callError{reason: ReasonTaskFailed, text: fmt.Sprintf("%s failed: %s", target, te.Result.Error)}
	case errors.As(err, &ve):
		return violation(err, "the input of "+target)
	case errors.Is(err, dispatch.ErrNoRouter):
		return &callError{reason: ReasonNoRouter, text: fmt.Sprintf("no router is running to route the task for %s (%v); start one, or make the tool direct", target, err)}
	case errors.Is(err, dispatch.ErrNoWorker):
		return &callError{reason: ReasonNoWorker, text: fmt.Sprintf("nothing serves %s at tier %q (%v)", target, tier, err)}
	case errors.Is(err, dispatch.ErrNoGoalServer):
		return &callError{reason: ReasonNoGoalServer, text: fmt.Sprintf("nothing serves %s (%v)", target, err)}
	case errors.Is(err, bus.ErrMaxPayload):
		return refused(ReasonTooLarge, fmt.Sprintf("the call to %s is too large for the bus: %v", target, err))
	case errors.Is(err, bus.ErrClosed):
		return &callError{reason: ReasonBusClosed, text: fmt.Sprintf("the gateway's bus closed while calling %s: %v", target, err)}
	case ctx.Err() != nil:
		return &callError{reason: ReasonCancelled, text: fmt.Sprintf("the call to %s was cancelled: %v", target, err)}
	}
	return &callError{reason: ReasonError, text: fmt.Sprintf("calling %s: %v", target, err)}
}
