package payments

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// traced reports whether ctx is inside a recording span and the service
// has a tracer. Callers check it before building a span's attributes, so
// that without tracing the path costs a nil check and nothing else.
func (s *Service) traced(ctx context.Context) bool {
	return s.tracer != nil && trace.SpanFromContext(ctx).IsRecording()
}

// endNothing is the end of a span that was not started.
func endNothing(error) {}

// startProcessorSpan starts the span of one processor call ("processor.
// authorize", ...); end records the call's error. Call it only when traced.
func (s *Service) startProcessorSpan(ctx context.Context, op, processorName, objectID string) (context.Context, func(error)) {
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
