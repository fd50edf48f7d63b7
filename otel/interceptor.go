package otel

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/cowmap"
)

// Span attribute keys of this package's own (the messaging ones are the
// OpenTelemetry semantic conventions').
const (
	AttrTaskID       = attribute.Key("heddle.task_id")
	AttrParentTaskID = attribute.Key("heddle.parent_task_id")
	AttrWorkerType   = attribute.Key("heddle.worker_type")
	AttrTier         = attribute.Key("heddle.tier")
	AttrRetryCount   = attribute.Key("heddle.retry_count")
	AttrAttempt      = attribute.Key("heddle.attempt")
	AttrStatus       = attribute.Key("heddle.status")
	AttrReason       = attribute.Key("heddle.reason")
	// AttrForwardedTo is the subject a router forwarded the task to (the
	// span's messaging.destination.name is the one it received it on).
	AttrForwardedTo = attribute.Key("heddle.forwarded_to")
)

// Statuses that end a span with status Error; the others (completed,
// routed, held) leave it unset, as OpenTelemetry advises for success.
const (
	statusFailed       = "failed"
	statusDeadLettered = "dead_lettered"
)

// outcomeError stands for the error of an operation that reports its
// failure by its status alone (a dead letter, a failed result).
type outcomeError struct{ status, reason string }

func (e outcomeError) Error() string {
	if e.reason == "" {
		return "heddle: " + e.status
	}
	return "heddle: " + e.status + ": " + e.reason
}

var (
	messagingSystem = semconv.MessagingSystemKey.String("nats")
	opProcess       = semconv.MessagingOperationTypeProcess
	opSend          = semconv.MessagingOperationTypeSend
)

// interceptor makes one span around each operation.
type interceptor struct {
	tracer trace.Tracer
	names  *spanNames
}

// Intercept starts the operation's span as a child of the span context
// in ctx (the one the actor extracted from the task's _trace_context, or
// the caller's), runs next with the span's context, and ends the span
// with the operation's outcome. A panic out of next ends the span as
// failed and goes on up.
//
// The span's attributes are set once, as it ends, and only when it is
// recording: a span that is not sampled (or a no-op TracerProvider's)
// costs no attribute at all, and a recorded one gets them in one slice.
// A Sampler therefore sees the span's name and kind but no attribute.
func (i interceptor) Intercept(ctx context.Context, op *event.Op, next event.Next) (err error) {
	kind := kindConsumer
	switch op.Kind {
	case event.OpDispatch:
		kind = kindProducer
	case event.OpHandle, event.OpRoute, event.OpGoal:
	default:
		kind = kindInternal
	}
	start := *op // the identity the operation began with
	ctx, span := i.tracer.Start(ctx, i.names.name(op), kind)
	ended := false
	defer func() {
		if !ended {
			if span.IsRecording() {
				var buf [16]attribute.KeyValue
				span.SetAttributes(startAttributes(buf[:0], &start)...)
				span.SetStatus(codes.Error, "panic")
			}
			span.End()
		}
	}()
	err = next(ctx)
	ended = true
	if span.IsRecording() {
		finish(span, &start, op, err)
	}
	span.End()
	return err
}

// startAttributes appends the attributes naming the operation as it
// began.
func startAttributes(attrs []attribute.KeyValue, op *event.Op) []attribute.KeyValue {
	opType := opProcess
	if op.Kind == event.OpDispatch {
		opType = opSend
	}
	attrs = append(attrs,
		AttrTaskID.String(op.TaskID),
		AttrWorkerType.String(op.WorkerType),
		AttrRetryCount.Int(op.RetryCount),
		messagingSystem, opType,
		semconv.MessagingOperationName(op.Kind.String()))
	if op.ParentTaskID != "" {
		attrs = append(attrs, AttrParentTaskID.String(op.ParentTaskID))
	}
	if op.Tier != "" {
		attrs = append(attrs, AttrTier.String(op.Tier))
	}
	if op.Attempt > 0 {
		attrs = append(attrs, AttrAttempt.Int(op.Attempt))
	}
	if op.Subject != "" {
		attrs = append(attrs, semconv.MessagingDestinationName(op.Subject))
	}
	return attrs
}

// The span start options of each kind, made once.
var (
	kindConsumer = trace.WithSpanKind(trace.SpanKindConsumer)
	kindProducer = trace.WithSpanKind(trace.SpanKindProducer)
	kindInternal = trace.WithSpanKind(trace.SpanKindInternal)
)

// spanNames keeps the span names a Tracing made, by operation kind and
// worker type: an actor serves few, and a name is then not built again
// for each span. Past spanNamesMax names, new ones are built each time.
type spanNames struct {
	m cowmap.Map[spanNameKey, string]
}

const spanNamesMax = 4096

type spanNameKey struct {
	kind       event.OpKind
	workerType string
}

// name is "heddle.<kind> <worker_type>" ("heddle.goal <name>" for a
// goal, whose WorkerType is its actor's name).
func (n *spanNames) name(op *event.Op) string {
	return n.m.LoadOrCompute(spanNameKey{op.Kind, op.WorkerType}, func() (string, bool) {
		name := "heddle." + op.Kind.String()
		if op.WorkerType != "" {
			name += " " + op.WorkerType
		}
		return name, n.m.Len() < spanNamesMax
	})
}

// finish sets the attributes of op on its span, in one call: those it
// began with (start), its status and reason, where a router sent the task
// and at which tier (when they changed as it ran), and on failure the
// error type; then, on failure, the error and the span status Error.
func finish(span trace.Span, start, op *event.Op, err error) {
	forwarded := op.Subject != start.Subject && op.Subject != ""
	resolved := op.Tier != start.Tier && op.Tier != ""
	if err == nil {
		err = op.Err
	}
	failed := err != nil || op.Status == statusFailed || op.Status == statusDeadLettered
	if resolved {
		// The tier the router resolved is the span's (as the operation
		// began it had the task's own).
		started := *start
		started.Tier = op.Tier
		start = &started
	}
	var buf [16]attribute.KeyValue
	attrs := startAttributes(buf[:0], start)
	if op.Status != "" {
		attrs = append(attrs, AttrStatus.String(op.Status))
	}
	if op.Reason != "" {
		attrs = append(attrs, AttrReason.String(op.Reason))
	}
	if forwarded {
		attrs = append(attrs, AttrForwardedTo.String(op.Subject))
	}
	if failed {
		if op.Reason != "" {
			attrs = append(attrs, semconv.ErrorTypeKey.String(op.Reason))
		} else {
			attrs = append(attrs, semconv.ErrorTypeOther)
		}
	}
	span.SetAttributes(attrs...)
	if !failed {
		return
	}
	if err == nil {
		err = outcomeError{status: op.Status, reason: op.Reason}
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}
