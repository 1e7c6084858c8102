// Package tracing sets up OpenTelemetry traces: a tracer provider that
// exports over OTLP/HTTP, and the instrumentation of the HTTP edge
// (otelhttp), of every shard's statements (otelpgx) and of Redis
// (redisotel). Only cmd uses it. Without an endpoint nothing here is
// called: no provider, no exporter and no wrapper exist, and the domain
// packages' span hooks see a nil tracer. docs/ARCHITECTURE.md ("Traces")
// describes the spans.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// ScopeName names the tracer of the service's own spans.
const ScopeName = "github.com/payments-api/payments"

// Limits.
const (
	// EndpointBytesMax bounds OTEL_EXPORTER_OTLP_ENDPOINT.
	EndpointBytesMax = 2048
	// ExportTimeout bounds one export of a batch of spans.
	ExportTimeout = 10 * time.Second
	// QueueSpansMax bounds the spans waiting for export; beyond it spans
	// are dropped, never waited for.
	QueueSpansMax = 8192
	// ShutdownTimeout bounds the flush of the queue at exit.
	ShutdownTimeout = 5 * time.Second
)

// ValidateEndpoint checks an OTLP/HTTP endpoint URL, such as
// http://otel-collector:4318. The error says how to fix it.
func ValidateEndpoint(s string) error {
	if len(s) > EndpointBytesMax {
		return fmt.Errorf("%d bytes, at most %d", len(s), EndpointBytesMax)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want the collector's OTLP/HTTP base URL, such as http://otel-collector:4318")
	}
	return nil
}

// Options configures NewProvider.
type Options struct {
	// Endpoint is the OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT);
	// spans go to its /v1/traces.
	Endpoint string
	// Exporter replaces the OTLP exporter (tests: an in-memory exporter,
	// exported synchronously).
	Exporter sdktrace.SpanExporter
	// Service and Version name the process in every span's resource.
	Service, Version string
}

// NewProvider returns a tracer provider that exports every span it
// samples. The sampler is the SDK's, which honours OTEL_TRACES_SAMPLER
// (parent-based always-on by default). Shut it down to flush.
func NewProvider(ctx context.Context, o Options) (*sdktrace.TracerProvider, error) {
	res := resource.NewSchemaless(attribute.String("service.name", o.Service), attribute.String("service.version", o.Version))
	if o.Exporter != nil {
		return sdktrace.NewTracerProvider(sdktrace.WithSyncer(o.Exporter), sdktrace.WithResource(res)), nil
	}
	if err := ValidateEndpoint(o.Endpoint); err != nil {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(joinTracesPath(o.Endpoint)), otlptracehttp.WithTimeout(ExportTimeout))
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithMaxQueueSize(QueueSpansMax), sdktrace.WithExportTimeout(ExportTimeout)),
		sdktrace.WithResource(res),
	), nil
}

// joinTracesPath appends the signal path to a base endpoint, as the
// OTEL_EXPORTER_OTLP_ENDPOINT convention asks.
func joinTracesPath(base string) string {
	u, _ := url.Parse(base)
	u.Path = strings.TrimRight(u.Path, "/") + "/v1/traces"
	return u.String()
}

// Tracer is the tracer of the service's own spans (transactions, batches,
// processor calls), nil for a nil provider.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(ScopeName)
}

// HTTPHandler wraps the edge in a server span per request. The span is
// named by the edge once it knows the operation. Trace context sent by
// clients is ignored: the API is public, and a caller must not choose our
// traces' sampling or parents.
func HTTPHandler(h http.Handler, tp trace.TracerProvider) http.Handler {
	return otelhttp.NewHandler(h, "http.request",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()),
	)
}

// QueryTracer traces the statements, batches and connection acquisitions
// of a shard's pool, inside a traced caller only (otelpgx records nothing
// without a recording parent). Statements are recorded without their
// parameters, which may hold secrets.
func QueryTracer(tp trace.TracerProvider) pgx.QueryTracer {
	return otelpgx.NewTracer(otelpgx.WithTracerProvider(tp), otelpgx.WithDisableConnectionDetailsInAttributes())
}

// InstrumentRedis traces rdb's commands inside a traced caller only, by
// name and without their arguments (rate-limit keys, cached payments).
func InstrumentRedis(rdb redis.UniversalClient, tp trace.TracerProvider) error {
	return redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(childOnly{tp}), redisotel.WithDBStatement(false))
}

// childOnly is a tracer provider whose tracers start spans only inside a
// recording span: background work (the webhook worker's polls, say) then
// makes no trace of its own per Redis command.
type childOnly struct{ trace.TracerProvider }

func (c childOnly) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childOnlyTracer{next: c.TracerProvider.Tracer(name, opts...)}
}

type childOnlyTracer struct {
	embedded.Tracer
	next trace.Tracer
}

func (t childOnlyTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if parent := trace.SpanFromContext(ctx); !parent.IsRecording() {
		return ctx, parent
	}
	return t.next.Start(ctx, name, opts...)
}
