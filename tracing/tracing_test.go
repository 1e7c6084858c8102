package tracing

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/payments-api/payments/dbtest"
)

func TestTracesPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://collector:4318":        "http://collector:4318/v1/traces",
		"https://collector:4318/":      "https://collector:4318/v1/traces",
		"http://collector:4318/otlp//": "http://collector:4318/otlp/v1/traces",
	} {
		if got := joinTracesPath(in); got != want {
			t.Errorf("joinTracesPath(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := NewProvider(context.Background(), Options{Endpoint: "collector:4318"}); err == nil {
		t.Error("NewProvider accepted an endpoint without a scheme")
	}
	tp, err := NewProvider(context.Background(), Options{Endpoint: "http://127.0.0.1:4318", Service: "payments"})
	if err != nil {
		t.Fatal(err)
	}
	_ = tp.Shutdown(context.Background())
}

// TestRedisSpansOnlyInsideTracedWork: a command outside a recording span
// makes no trace; inside one it is a child span, without its arguments.
func TestRedisSpansOnlyInsideTracedWork(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	opts, err := redis.ParseURL(dbtest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	if err := InstrumentRedis(rdb, tp); err != nil {
		t.Fatal(err)
	}
	key := dbtest.KeyPrefix(t) + "traced"
	ctx := context.Background()
	if err := rdb.Set(ctx, key, "sk_test_secretvalue", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans for a command outside traced work", n)
	}
	ctx, span := tp.Tracer("test").Start(ctx, "request")
	if err := rdb.Get(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	span.End()
	var found bool
	for _, s := range exp.GetSpans().Snapshots() {
		if s.Name() == "request" {
			continue
		}
		found = s.Parent().SpanID() == span.SpanContext().SpanID()
		for _, kv := range s.Attributes() {
			if kv.Key == "db.statement" || kv.Key == "db.query.text" {
				t.Errorf("the redis span records %s=%q", kv.Key, kv.Value.Emit())
			}
		}
	}
	if !found {
		t.Fatal("no redis span under the traced request")
	}
}
