package event

import "context"

// OpKind says which operation an Interceptor wraps.
type OpKind uint8

const (
	// OpHandle is one attempt of a worker's handler: input decoded and
	// checked, handler run, output checked. A retry is a new OpHandle with
	// the next Attempt.
	OpHandle OpKind = iota + 1
	// OpRoute is a router's decision on one task, and its forward or dead
	// letter.
	OpRoute
	// OpDispatch is a caller's dispatch of one task (dispatch.Request,
	// Call, a stream's task): publish and wait for its result.
	OpDispatch
	// OpGoal is an orchestrator's or pipeline's work on one goal, subtasks
	// and final result included.
	OpGoal
)

// String returns the kind's name: "handle", "route", "dispatch", "goal".
func (k OpKind) String() string {
	switch k {
	case OpHandle:
		return "handle"
	case OpRoute:
		return "route"
	case OpDispatch:
		return "dispatch"
	case OpGoal:
		return "goal"
	}
	return "unknown"
}

// Op describes the operation an Interceptor wraps. The actor sets the
// identifying fields before calling the interceptor, and the outcome
// (Status, Reason, Err) before next returns, so an interceptor reads the
// outcome after next returns.
type Op struct {
	Kind OpKind
	// Actor is the kind of actor running the operation ("worker",
	// "router", "dispatch", "orchestrator", "pipeline").
	Actor string
	// TaskID, ParentTaskID, WorkerType and Tier identify the task; for
	// OpGoal, TaskID is the goal's id and WorkerType the actor's name.
	TaskID       string
	ParentTaskID string
	WorkerType   string
	Tier         string
	// Subject is where the task goes (OpRoute, OpDispatch) or came from.
	Subject string
	// Attempt is the handler attempt, from 1 (OpHandle); RetryCount the
	// task's retry_count as the attempt began.
	Attempt    int
	RetryCount int
	// Status is the outcome: "completed" or "failed" (OpHandle, OpDispatch,
	// OpGoal), "routed", "held" or "dead_lettered" (OpRoute).
	Status string
	// Reason is the outcome's bounded reason kind, when it failed or was
	// dead-lettered.
	Reason string
	// Err is the operation's error, when it failed.
	Err error
}

// Next runs the wrapped operation with ctx. The context it is given is
// the one the operation runs with: the handler's, the one whose trace
// context is injected into what the operation publishes.
type Next func(ctx context.Context) error

// Interceptor wraps an operation. It must call next exactly once, and may
// pass it a context of its own (a span's, values added); it returns what
// next returns, or an error of its own that the actor reports as the
// operation's error where it can (a handler attempt fails with it).
// Interceptors are called in the order given, the first outermost.
type Interceptor interface {
	Intercept(ctx context.Context, op *Op, next Next) error
}

// OpSelector is implemented by an Interceptor that wraps only some kinds
// of operation. Intercepts is asked once per kind when the actor is
// made; an actor whose interceptors want none of a kind runs those
// operations without building anything for them.
type OpSelector interface {
	Intercepts(kind OpKind) bool
}

// Intercepts reports whether i wraps operations of kind: true unless i is
// an OpSelector that says otherwise.
func Intercepts(i Interceptor, kind OpKind) bool {
	if s, ok := i.(OpSelector); ok {
		return s.Intercepts(kind)
	}
	return true
}

// InterceptorFunc adapts a function to an Interceptor.
type InterceptorFunc func(ctx context.Context, op *Op, next Next) error

// Intercept calls f(ctx, op, next).
func (f InterceptorFunc) Intercept(ctx context.Context, op *Op, next Next) error {
	return f(ctx, op, next)
}

// Propagator moves a trace context between a context.Context and a
// task's _trace_context object (the W3C trace context the Python Heddle
// writes: {"traceparent": ..., "tracestate": ...}), seen as a map of
// strings. OpenTelemetry's propagation.TraceContext fits it with
// propagation.MapCarrier.
type Propagator interface {
	// Extract returns ctx carrying the trace context in carrier. The
	// carrier is the caller's, reused once Extract returns: keep none of
	// it but the strings read from it.
	Extract(ctx context.Context, carrier map[string]string) context.Context
	// Inject writes ctx's trace context into carrier, the caller's
	// likewise.
	Inject(ctx context.Context, carrier map[string]string)
}
