package txn_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/payments-api/payments/txn"
)

// TestBatchSpansLinkEveryRequest holds a first batch open while five
// traced requests queue, so that they share the next batch. That batch's
// span hangs from the first of them and links to the wait span of each,
// and each request's own trace holds its wait span with the batch size.
func TestBatchSpansLinkEveryRequest(t *testing.T) {
	t.Parallel()
	_, pool := newRowsDB(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tr := tp.Tracer("test")
	release := make(chan struct{})
	apply := func(ctx context.Context, tx pgx.Tx, units []*row) error {
		if units[0].id == 0 {
			<-release
		}
		return insertRows(ctx, tx, units)
	}
	b, err := txn.NewBatcher(newRunner(t, pool, txn.Options{Name: "rows", Tracer: tr}), txn.BatchOptions{SizeMax: 32, InflightMax: 1}, apply)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	request := func(id int) error {
		ctx, span := tr.Start(context.Background(), "request")
		defer span.End()
		return b.Do(ctx, &row{id: id, amount: 1})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	wg.Add(1)
	go func() { defer wg.Done(); errs <- request(0) }()
	time.Sleep(50 * time.Millisecond) // the first batch is in flight
	for id := 1; id <= 5; id++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- request(id) }()
	}
	time.Sleep(100 * time.Millisecond) // the five are queued behind it
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	spans := exp.GetSpans().Snapshots()
	waits := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if s.Name() == "txn.batch.wait" {
			waits[s.SpanContext().SpanID()] = s
		}
	}
	if len(waits) != 6 {
		t.Fatalf("%d wait spans, want one per request", len(waits))
	}
	linked := map[trace.SpanID]int{}
	var shared sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() != "txn.batch" {
			continue
		}
		var units int64
		for _, kv := range s.Attributes() {
			if kv.Key == "payments.batch.units" {
				units = kv.Value.AsInt64()
			}
		}
		if int64(len(s.Links())) != units {
			t.Errorf("a batch of %d units has %d links", units, len(s.Links()))
		}
		for _, l := range s.Links() {
			linked[l.SpanContext.SpanID()]++
		}
		first := s.Links()[0].SpanContext
		if s.Parent().SpanID() != first.SpanID() || s.SpanContext().TraceID() != first.TraceID() {
			t.Errorf("a batch span is not the child of its first unit's wait span")
		}
		if units == 5 {
			shared = s
		}
	}
	for id, w := range waits {
		if linked[id] != 1 {
			t.Errorf("wait span %s is linked by %d batches, want 1", id, linked[id])
		}
		if w.Parent().SpanID() == (trace.SpanID{}) {
			t.Error("a wait span is not the child of its request")
		}
	}
	if shared == nil {
		t.Fatal("the five queued requests did not share a batch")
	}
	traces := map[trace.TraceID]bool{}
	for _, l := range shared.Links() {
		traces[l.SpanContext.TraceID()] = true
	}
	if len(traces) != 5 {
		t.Errorf("the shared batch links %d traces, want the five requests'", len(traces))
	}
}

// TestRunWithoutTracedCallerRecordsNothing: a tracer alone makes no span;
// only a caller inside a recording span gets a transaction span.
func TestRunWithoutTracedCallerRecordsNothing(t *testing.T) {
	t.Parallel()
	_, pool := newRowsDB(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	r := newRunner(t, pool, txn.Options{Name: "rows", Tracer: tp.Tracer("test")})
	noop := func(context.Context, pgx.Tx) error { return nil }
	if err := r.Run(context.Background(), noop); err != nil {
		t.Fatal(err)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans without a traced caller", n)
	}
	ctx, span := tp.Tracer("test").Start(context.Background(), "caller")
	if err := r.Run(ctx, noop); err != nil {
		t.Fatal(err)
	}
	span.End()
	var found bool
	for _, s := range exp.GetSpans().Snapshots() {
		if s.Name() == "txn" && s.Parent().SpanID() == span.SpanContext().SpanID() {
			found = true
		}
	}
	if !found {
		t.Fatal("no transaction span under the traced caller")
	}
}
