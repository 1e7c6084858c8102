package payments

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/sharding"
)

// Outcome labels of payments_payment_confirmation_duration_seconds besides
// the statuses a creation ends in (succeeded, requires_capture, failed, and
// requires_action while the customer authenticates, which is not observed
// again: the customer's time is not the service's).
const (
	// ConfirmationPending: the request ended with the payment still
	// pending (processor unavailable or asynchronous); its final state is
	// observed again, from its creation, when it arrives.
	ConfirmationPending = "pending"
	// ConfirmationError: recording the payment or its outcome failed (a
	// database error); idempotency refusals and replays are not observed.
	ConfirmationError = "error"
)

// Kinds of reconciler work, the "kind" label of the reconciler gauges.
const (
	ReconcileKindOperation = "operation"       // payment operations in flight
	ReconcileKindRefund    = "refund"          // pending refunds
	ReconcileKindPending   = "pending_payment" // pending payments without an operation
)

// Metrics are the service-level metrics of payments and the reconciler.
// A nil *Metrics records nothing.
type Metrics struct {
	confirmation  *prometheus.HistogramVec
	backlog       *prometheus.GaugeVec
	backlogAge    *prometheus.GaugeVec
	runs          *prometheus.CounterVec
	objectErrors  prometheus.Counter
	lastSuccess   prometheus.Gauge
	reconcileTime prometheus.Histogram
}

// Outcomes of a reconciler pass, the "outcome" label of
// payments_reconciler_runs_total.
const (
	ReconcileRunOK    = "ok"
	ReconcileRunError = "error"
)

// NewMetrics registers the metrics on reg (nil: unregistered). Registering
// twice on one registry reuses the first collectors.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		confirmation: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "payments_payment_confirmation_duration_seconds",
			Help:    "Time from a payment's creation request to its final state, by processor and outcome (succeeded, requires_capture, failed, requires_action; pending when the request ended without an outcome, error when recording failed). A pending payment that reaches its final state later, through a notification or the reconciler, is observed again from its creation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .15, .2, .3, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
		}, []string{"processor", "outcome"})),
		backlog: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payments_reconciler_backlog",
			Help: "Objects old enough for the reconciler and not yet finished, per shard and kind (operation, refund, pending_payment), as of its last pass.",
		}, []string{"shard", "kind"})),
		backlogAge: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payments_reconciler_oldest_age_seconds",
			Help: "Age of the oldest object waiting for the reconciler, per shard and kind; 0 when none.",
		}, []string{"shard", "kind"})),
		runs: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_reconciler_runs_total",
			Help: "Reconciler passes by outcome: ok, or error when a shard could not be scanned.",
		}, []string{"outcome"})),
		objectErrors: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payments_reconciler_object_errors_total",
			Help: "Objects the reconciler tried and could not finish (the processor did not answer, a write failed); they are tried again next pass.",
		})),
		lastSuccess: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "payments_reconciler_last_success_timestamp_seconds",
			Help: "Unix time of the reconciler's last pass that scanned every shard.",
		})),
		reconcileTime: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "payments_reconciler_run_duration_seconds",
			Help:    "Duration of one reconciler pass over every shard.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300},
		})),
	}
	// Both outcomes exist from the start, so a rate over them is defined
	// before the first failure.
	m.runs.WithLabelValues(ReconcileRunOK)
	m.runs.WithLabelValues(ReconcileRunError)
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// confirmed observes a payment creation's time to its outcome.
func (m *Metrics) confirmed(processorName, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	if processorName == "" {
		processorName = "unknown"
	}
	m.confirmation.WithLabelValues(processorName, outcome).Observe(max(d, 0).Seconds())
}

// confirmationOutcome names a creation's outcome for the histogram: the
// payment's status, pending when it has none final yet, error when
// recording the outcome failed.
func confirmationOutcome(p Payment, err error) string {
	if p.Status == "" || (err != nil && errcode.As(err) == nil) {
		return ConfirmationError
	}
	return string(p.Status)
}

func (m *Metrics) reconciled(ok bool, objectErrors int, d time.Duration, now time.Time) {
	if m == nil {
		return
	}
	m.objectErrors.Add(float64(objectErrors))
	m.reconcileTime.Observe(d.Seconds())
	if !ok {
		m.runs.WithLabelValues(ReconcileRunError).Inc()
		return
	}
	m.runs.WithLabelValues(ReconcileRunOK).Inc()
	m.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
}

// backlogQueries count the reconciler's work older than $1 and find the
// oldest. Each runs on a partial index of its kind (payments_by_operation,
// refunds_pending, payments_pending), so it costs the backlog, not the
// table.
var backlogQueries = []struct{ kind, sql string }{
	{ReconcileKindOperation, `SELECT count(*), min(operation_started_at) FROM payments WHERE operation IS NOT NULL AND operation_started_at < $1`},
	{ReconcileKindRefund, `SELECT count(*), min(updated_at) FROM refunds WHERE status = 'pending' AND updated_at < $1`},
	{ReconcileKindPending, `SELECT count(*), min(updated_at) FROM payments WHERE status = 'pending' AND operation IS NULL AND updated_at < $1`},
}

// measureBacklog sets the backlog gauges of one shard.
func (m *Metrics) measureBacklog(ctx context.Context, sh *sharding.Shard, cutoff, now time.Time) error {
	if m == nil {
		return nil
	}
	for _, q := range backlogQueries {
		var n int64
		var oldest *time.Time
		if err := sh.Pool.QueryRow(ctx, q.sql, cutoff).Scan(&n, &oldest); err != nil {
			return err
		}
		age := 0.0
		if oldest != nil {
			age = max(now.Sub(*oldest).Seconds(), 0)
		}
		m.backlog.WithLabelValues(sh.Name, q.kind).Set(float64(n))
		m.backlogAge.WithLabelValues(sh.Name, q.kind).Set(age)
	}
	return nil
}
