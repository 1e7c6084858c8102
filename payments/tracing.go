package payments

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// startProcessorSpan starts the span of one processor call ("processor.
// authorize", ...) inside a traced caller; end records the call's error.
// Without a tracer, or outside a traced request, it costs a nil check.
func (s *Service) startProcessorSpan(ctx context.Context, op, processorName, objectID string) (context.Context, func(error)) {
	if s.tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, func(error) {}
	}
	ctx, span := s.tracer.Start(ctx, "processor."+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("payments.processor", processorName), attribute.String("payments.object", objectID)))
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "processor call failed")
		}
		span.End()
	}
}
