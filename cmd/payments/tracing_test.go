package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/tracing"
)

func attr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// TestTracesOfAPaymentCreation serves the API with its real wiring and an
// in-memory exporter, creates one payment, and checks its trace: the HTTP
// server span with the request ID, a wait span per write and the batch
// spans that link to them, each transaction and its statements, the
// processor call and the Redis commands, all in one trace whose spans all
// hang from the request's span.
func TestTracesOfAPaymentCreation(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp, err := tracing.NewProvider(context.Background(), tracing.Options{Exporter: exp, Service: "payments", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tp.Shutdown(context.Background()) }()
	token := strings.Repeat("o", 40)
	addr := freeAddr(t)
	c, err := loadConfig(envOf(map[string]string{
		"DATABASE_URL": dbtest.NewDatabase(t), "REDIS_URL": dbtest.RedisURL(t), "PAYMENTS_REDIS_PREFIX": dbtest.KeyPrefix(t),
		"PAYMENTS_ADMIN_TOKEN": token, "PAYMENTS_HTTP_ADDR": addr,
	}), true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- serveWith(ctx, c, newLogger("info", logs), tp) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	for deadline := time.Now().Add(startWaitMax); !strings.Contains(logs.String(), `"msg":"serving"`); time.Sleep(startPollPause) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
	}
	base := "http://" + addr
	sk := createTenantSecret(t, base, token)
	// The tenant's creation made a trace of its own; start from nothing.
	time.Sleep(50 * time.Millisecond)
	exp.Reset()

	req, _ := http.NewRequest("POST", base+"/v1/payments", strings.NewReader(`{"amount":1000,"currency":"usd","payment_method":"pm_card_visa"}`))
	req.Header.Set("Authorization", "Bearer "+sk)
	req.Header.Set("Content-Type", "application/json")
	// A client's trace context is not trusted: the request's span is a root.
	req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var pay struct{ ID, Status string }
	if err := json.Unmarshal(body, &pay); err != nil || res.StatusCode != http.StatusCreated || pay.Status != "succeeded" {
		t.Fatalf("create payment: %d %s", res.StatusCode, body)
	}
	requestID := res.Header.Get("Request-Id")

	// The server span ends just after the answer is written.
	var spans []sdktrace.ReadOnlySpan
	var server sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(5 * time.Second); server == nil; time.Sleep(10 * time.Millisecond) {
		spans = exp.GetSpans().Snapshots()
		for _, s := range spans {
			if s.SpanKind() == trace.SpanKindServer {
				server = s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no server span among %d spans", len(spans))
		}
	}
	if v, ok := attr(server, "request_id"); !ok || v.AsString() != requestID || requestID == "" {
		t.Errorf("server span's request_id %q, the answer's Request-Id %q", v.AsString(), requestID)
	}
	if server.Name() != "POST create-payment" || server.Parent().IsValid() {
		t.Errorf("server span %q with parent %v, want the root POST create-payment", server.Name(), server.Parent())
	}
	if server.SpanContext().TraceID().String() == "0af7651916cd43dd8448eb211c80319c" {
		t.Error("the request joined the trace the client named")
	}
	if !strings.Contains(logs.String(), `"trace_id":"`+server.SpanContext().TraceID().String()+`"`) {
		t.Error("the request's log line does not name its trace")
	}

	// One trace, and every span hangs from a span of it.
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	count := map[string]int{}
	for _, s := range spans {
		if s.SpanContext().TraceID() != server.SpanContext().TraceID() {
			t.Errorf("span %q is in trace %s, the request in %s", s.Name(), s.SpanContext().TraceID(), server.SpanContext().TraceID())
		}
		if s.SpanContext().SpanID() != server.SpanContext().SpanID() {
			if _, ok := byID[s.Parent().SpanID()]; !ok {
				t.Errorf("span %q has a parent outside the trace", s.Name())
			}
		}
		switch scope := s.InstrumentationScope().Name; {
		case strings.Contains(scope, "otelpgx"):
			count["db"]++
		case strings.Contains(scope, "redisotel"):
			count["redis"]++
		default:
			count[s.Name()]++
		}
	}
	t.Logf("%d spans in the trace of one payment creation: %v", len(spans), count)
	// Two writes (intent, outcome), each one wait and one batch with its
	// transaction; the authentication's and the claim's own statements.
	if count["txn.batch.wait"] != 2 || count["txn.batch"] != 2 || count["txn"] < 2 || count["processor.authorize"] != 1 ||
		count["db"] < 4 || count["redis"] < 1 {
		t.Errorf("spans by kind: %v", count)
	}
	for _, s := range spans {
		switch s.Name() {
		case "txn.batch":
			// The batch links to the wait span of the request it carries.
			links := s.Links()
			if len(links) != 1 || byID[links[0].SpanContext.SpanID()] == nil || byID[links[0].SpanContext.SpanID()].Name() != "txn.batch.wait" {
				t.Errorf("batch span links %v, want the request's wait span", links)
			}
			if byID[s.Parent().SpanID()].Name() != "txn.batch.wait" {
				t.Errorf("batch span's parent is %q", byID[s.Parent().SpanID()].Name())
			}
		case "processor.authorize":
			if v, _ := attr(s, "payments.object"); v.AsString() != pay.ID {
				t.Errorf("processor span names %q, want %s", v.AsString(), pay.ID)
			}
		}
		if strings.Contains(s.InstrumentationScope().Name, "redisotel") {
			if _, ok := attr(s, "db.statement"); ok {
				t.Errorf("redis span %q records the command's arguments", s.Name())
			}
		}
	}
	// Each transaction holds its statements.
	var txnWithStatements int
	for _, s := range spans {
		if s.Name() != "txn" {
			continue
		}
		if slices.ContainsFunc(spans, func(c sdktrace.ReadOnlySpan) bool {
			return c.Parent().SpanID() == s.SpanContext().SpanID() && strings.Contains(c.InstrumentationScope().Name, "otelpgx")
		}) {
			txnWithStatements++
		}
	}
	if txnWithStatements != count["txn"] {
		t.Errorf("%d of %d transaction spans hold statements", txnWithStatements, count["txn"])
	}
}

// TestNoTracingWithoutEndpoint: without OTEL_EXPORTER_OTLP_ENDPOINT no
// tracer provider is made; a wrong endpoint is refused with how to fix it.
func TestTracingConfig(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(envOf(goodEnv()), true)
	if err != nil || c.OTLPEndpoint != "" {
		t.Fatalf("default: %q %v", c.OTLPEndpoint, err)
	}
	e := goodEnv()
	e["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4318"
	if c, err := loadConfig(envOf(e), true); err != nil || c.OTLPEndpoint != "http://127.0.0.1:4318" {
		t.Fatalf("endpoint: %q %v", c.OTLPEndpoint, err)
	}
	for _, bad := range []string{"127.0.0.1:4318", "grpc://collector:4317", "http://", "http://" + strings.Repeat("a", tracing.EndpointBytesMax)} {
		e["OTEL_EXPORTER_OTLP_ENDPOINT"] = bad
		if _, err := loadConfig(envOf(e), true); err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT") {
			t.Errorf("endpoint %.40q: %v", bad, err)
		}
	}
}
