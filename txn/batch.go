package txn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of BatchOptions.
const (
	BatchSizeMaxDefault     = 64
	BatchDelayMaxDefault    = 2 * time.Millisecond
	BatchInflightMaxDefault = 1
	BatchQueueMaxDefault    = 4096
	// BatchTimeoutDefault bounds one batch's transaction, retries included.
	BatchTimeoutDefault = 15 * time.Second
)

// ErrBatcherClosed answers Do after Close.
var ErrBatcherClosed = errors.New("txn: batcher closed")

// BatchOptions configures a Batcher. The zero value is usable.
type BatchOptions struct {
	// SizeMax closes a batch at this many units.
	SizeMax int
	// DelayMax closes a batch this long after its first unit arrived,
	// when another batch is still committing; with none in flight a batch
	// is sent as soon as the queue is empty, so a lone request waits for
	// nothing.
	DelayMax time.Duration
	// InflightMax bounds the batch transactions of one Batcher that run at
	// once. One means a shard's payment writes never run concurrently, so
	// they never conflict: PostgreSQL's predicate locks are page-grained,
	// and the newest pages of every payment index are where every batch
	// reads and writes. More overlaps a commit's fsync with the next
	// batch, at the price of conflicts.
	InflightMax int
	// QueueMax bounds the units waiting for a batch; Do blocks beyond it.
	QueueMax int
	// Timeout bounds one batch's transaction, its retries included.
	Timeout time.Duration
	// Metrics receives the batch sizes; nil records nothing.
	Metrics *BatchMetrics
}

func (o BatchOptions) withDefaults() (BatchOptions, error) {
	if o.SizeMax == 0 {
		o.SizeMax = BatchSizeMaxDefault
	}
	if o.DelayMax == 0 {
		o.DelayMax = BatchDelayMaxDefault
	}
	if o.InflightMax == 0 {
		o.InflightMax = BatchInflightMaxDefault
	}
	if o.QueueMax == 0 {
		o.QueueMax = BatchQueueMaxDefault
	}
	if o.Timeout == 0 {
		o.Timeout = BatchTimeoutDefault
	}
	switch {
	case o.SizeMax < 1 || o.SizeMax > 1024:
		return o, fmt.Errorf("batch SizeMax %d: use 1 to 1024", o.SizeMax)
	case o.DelayMax < 0 || o.DelayMax > time.Second:
		return o, fmt.Errorf("batch DelayMax %v: use 0 to 1s", o.DelayMax)
	case o.InflightMax < 1 || o.InflightMax > 64:
		return o, fmt.Errorf("batch InflightMax %d: use 1 to 64", o.InflightMax)
	case o.QueueMax < 1:
		return o, fmt.Errorf("batch QueueMax %d: use a positive bound", o.QueueMax)
	case o.Timeout < 0:
		return o, fmt.Errorf("batch Timeout %v must not be negative", o.Timeout)
	}
	return o, nil
}

// Batcher combines concurrent units of work into shared SERIALIZABLE
// transactions (group commit). Do hands it one unit and returns after the
// transaction that carried the unit committed, or with the reason it did
// not. apply writes a whole batch, with multi-row statements or pipelined
// batches, and reports each unit's own result inside the unit: it is
// called again from scratch when the transaction is retried, so it must
// set every unit's outputs on every call.
//
// When apply (or the COMMIT) fails with an error that is not retryable, a
// unit broke a constraint or a check: the batch is split in halves and each
// half runs in its own transaction, down to the one unit that fails, which
// alone gets the error. A batch whose every attempt lost a serialization
// conflict (ErrAttemptsExhausted: nothing committed) is split the same way,
// since smaller transactions conflict less. An ambiguous COMMIT
// (ErrAmbiguousCommit) answers every unit of that batch with that error,
// never with success.
type Batcher[U any] struct {
	runner *Runner
	apply  func(ctx context.Context, tx pgx.Tx, units []U) error
	opts   BatchOptions
	queue  chan *batchItem[U]
	slots  chan struct{}
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

type batchItem[U any] struct {
	unit U
	done chan error
	// span is the unit's wait span, invalid when the unit is not traced;
	// the batch's span links to it.
	span trace.SpanContext
	// units is the size of the batch that carried the unit, set before
	// done is answered.
	units int
}

// NewBatcher returns a Batcher that commits through runner. Call Close to
// stop it.
func NewBatcher[U any](runner *Runner, opts BatchOptions, apply func(ctx context.Context, tx pgx.Tx, units []U) error) (*Batcher[U], error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("txn: new batcher: %w", err)
	}
	b := &Batcher[U]{
		runner: runner, apply: apply, opts: opts,
		queue: make(chan *batchItem[U], opts.QueueMax),
		slots: make(chan struct{}, opts.InflightMax),
		stop:  make(chan struct{}),
	}
	b.wg.Add(1)
	go b.dispatch()
	return b, nil
}

// Do runs u in the next batch and waits for its transaction. Once u is
// queued, Do waits for the batch even when ctx ends, so that its answer is
// always the truth about u: nil only after COMMIT succeeded.
//
// A traced caller gets a child span for its wait ("txn.batch.wait"); the
// batch's own span links to the wait span of every unit it carries (see
// commit).
func (b *Batcher[U]) Do(ctx context.Context, u U) error {
	it := &batchItem[U]{unit: u, done: make(chan error, 1)}
	if tr := b.runner.opts.Tracer; tr != nil && trace.SpanFromContext(ctx).IsRecording() {
		var span trace.Span
		ctx, span = tr.Start(ctx, "txn.batch.wait", trace.WithAttributes(attribute.String("payments.shard", b.runner.opts.Name)))
		it.span = span.SpanContext()
		err := b.do(ctx, it)
		span.SetAttributes(attribute.Int("payments.batch.units", it.units))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "unit not committed")
		}
		span.End()
		return err
	}
	return b.do(ctx, it)
}

func (b *Batcher[U]) do(ctx context.Context, it *batchItem[U]) error {
	select {
	case b.queue <- it:
	case <-ctx.Done():
		return fmt.Errorf("txn: shard %s: not queued: %w", b.runner.opts.Name, ctx.Err())
	case <-b.stop:
		return ErrBatcherClosed
	}
	return <-it.done
}

// Close stops taking units, lets the running batches finish, and answers
// every unit still queued with ErrBatcherClosed.
func (b *Batcher[U]) Close() {
	b.once.Do(func() { close(b.stop) })
	b.wg.Wait()
	for {
		select {
		case it := <-b.queue:
			it.done <- ErrBatcherClosed
		default:
			return
		}
	}
}

func (b *Batcher[U]) dispatch() {
	defer b.wg.Done()
	for {
		select {
		case b.slots <- struct{}{}:
		case <-b.stop:
			return
		}
		var first *batchItem[U]
		select {
		case first = <-b.queue:
		case <-b.stop:
			<-b.slots
			return
		}
		items := b.collect(first)
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() { <-b.slots }()
			b.commit(items)
		}()
	}
}

// collect fills a batch after its first unit: whatever is queued, and,
// while another batch is committing, what arrives within DelayMax.
func (b *Batcher[U]) collect(first *batchItem[U]) []*batchItem[U] {
	items := []*batchItem[U]{first}
	var timer <-chan time.Time
	for len(items) < b.opts.SizeMax {
		select {
		case it := <-b.queue:
			items = append(items, it)
			continue
		default:
		}
		if len(b.slots) <= 1 || b.opts.DelayMax == 0 {
			return items // nothing else in flight: send now
		}
		if timer == nil {
			t := time.NewTimer(b.opts.DelayMax)
			defer t.Stop()
			timer = t.C
		}
		select {
		case it := <-b.queue:
			items = append(items, it)
		case <-timer:
			return items
		case <-b.stop:
			return items
		}
	}
	return items
}

// commit runs one batch and answers its units, splitting it when a unit's
// own error failed the transaction.
//
// A batch serves many requests, so its span ("txn.batch") cannot be the
// child of each: it is the child of its first traced unit's wait span, so
// that a lone request's trace holds its whole write, and it links to the
// wait span of every traced unit it carries, the first included. A batch
// with no traced unit records no span, and nor do its statements.
func (b *Batcher[U]) commit(items []*batchItem[U]) {
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.Timeout)
	defer cancel()
	units := make([]U, len(items))
	for i, it := range items {
		units[i] = it.unit
	}
	b.opts.Metrics.observe(b.runner.opts.Name, len(units))
	var span trace.Span
	if tr := b.runner.opts.Tracer; tr != nil {
		ctx, span = b.startSpan(ctx, tr, items)
	}
	err := b.runner.Run(ctx, func(ctx context.Context, tx pgx.Tx) error { return b.apply(ctx, tx, units) })
	if span != nil {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "batch not committed")
		}
		span.End()
	}
	reason := splitUnitFault
	if errors.Is(err, ErrAttemptsExhausted) {
		reason = splitContention
	}
	if err == nil || len(items) == 1 || (reason == splitUnitFault && !b.unitFault(err)) {
		for _, it := range items {
			it.units = len(items)
			it.done <- err
		}
		return
	}
	b.opts.Metrics.split(b.runner.opts.Name, reason)
	half := len(items) / 2
	b.commit(items[:half])
	b.commit(items[half:])
}

// startSpan starts the span of a batch with traced units; span is nil
// when none of them is traced.
func (b *Batcher[U]) startSpan(ctx context.Context, tr trace.Tracer, items []*batchItem[U]) (context.Context, trace.Span) {
	var links []trace.Link
	var parent trace.SpanContext
	for _, it := range items {
		if !it.span.IsValid() {
			continue
		}
		if !parent.IsValid() {
			parent = it.span
		}
		links = append(links, trace.Link{SpanContext: it.span})
	}
	if !parent.IsValid() {
		return ctx, nil
	}
	return tr.Start(trace.ContextWithSpanContext(ctx, parent), "txn.batch", trace.WithLinks(links...), trace.WithAttributes(
		attribute.String("payments.shard", b.runner.opts.Name), attribute.Int("payments.batch.units", len(items))))
}

// Why a batch was split (payments_txn_batch_splits_total's reason).
const (
	// splitUnitFault: a unit's own error failed the transaction; the
	// halves isolate it.
	splitUnitFault = "unit_fault"
	// splitContention: every attempt lost a serialization conflict
	// (ErrAttemptsExhausted, so none committed). A half reads and writes
	// less, conflicts less often, and gets attempts of its own; a lone
	// unit that still exhausts them is answered with that error.
	splitContention = "contention"
)

// unitFault reports whether err may be one unit's doing, so that splitting
// the batch isolates it. An ambiguous commit or an ended context say
// nothing about any unit, and a retry of part of the batch could double
// what may have committed. Exhausted attempts are split for contention
// instead (splitContention): they committed nothing.
func (b *Batcher[U]) unitFault(err error) bool {
	return !errors.Is(err, ErrAmbiguousCommit) && !errors.Is(err, ErrAttemptsExhausted) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// BatchMetrics counts batches; register it once per process.
type BatchMetrics struct {
	size   *prometheus.HistogramVec
	splits *prometheus.CounterVec
}

// NewBatchMetrics registers payments_txn_batch_units and
// payments_txn_batch_splits_total with reg.
func NewBatchMetrics(reg prometheus.Registerer) *BatchMetrics {
	m := &BatchMetrics{
		size: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "payments_txn_batch_units",
			Help:    "Units of work per group-commit transaction, by shard.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}, []string{"shard"}),
		splits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_txn_batch_splits_total",
			Help: "Batches split in halves, by shard and reason: unit_fault isolates a failing unit, contention retries a batch whose attempts all lost serialization conflicts.",
		}, []string{"shard", "reason"}),
	}
	reg.MustRegister(m.size, m.splits)
	return m
}

func (m *BatchMetrics) observe(shard string, n int) {
	if m != nil {
		m.size.WithLabelValues(shard).Observe(float64(n))
	}
}

func (m *BatchMetrics) split(shard, reason string) {
	if m != nil {
		m.splits.WithLabelValues(shard, reason).Inc()
	}
}
