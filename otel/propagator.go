package otel

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceparentKey is the W3C trace context member the Python Heddle
// always writes into a task's _trace_context.
const traceparentKey = "traceparent"

// carrierPropagator reads and writes a task's _trace_context, seen as a
// map of strings, through an OpenTelemetry TextMapPropagator.
type carrierPropagator struct {
	t    *Tracing
	prop propagation.TextMapPropagator
}

// Extract returns ctx carrying the trace context in carrier. A carrier
// whose traceparent the propagator cannot read gives ctx unchanged, and
// is counted and logged (EventInvalidTraceContext).
func (p carrierPropagator) Extract(ctx context.Context, carrier map[string]string) context.Context {
	if len(carrier) == 0 {
		return ctx
	}
	out := p.prop.Extract(ctx, propagation.MapCarrier(carrier))
	if tp, ok := carrier[traceparentKey]; ok {
		before, after := trace.SpanContextFromContext(ctx), trace.SpanContextFromContext(out)
		if !after.IsValid() || after.Equal(before) {
			p.t.reportInvalid(ctx, tp)
		}
	}
	return out
}

// Inject writes ctx's trace context into carrier.
func (p carrierPropagator) Inject(ctx context.Context, carrier map[string]string) {
	if carrier == nil {
		return
	}
	p.prop.Inject(ctx, propagation.MapCarrier(carrier))
}
