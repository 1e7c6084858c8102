package txn

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of Run, the values of the outcome label of payments_txn_total.
const (
	OutcomeCommitted = "committed" // fn returned nil and COMMIT succeeded
	OutcomeFailed    = "failed"    // a non-retryable error from BEGIN, fn or COMMIT; nothing committed
	OutcomeExhausted = "exhausted" // Options.AttemptsMax retryable failures in a row
	OutcomeAmbiguous = "ambiguous" // COMMIT sent, no answer: see ErrAmbiguousCommit
	OutcomeCanceled  = "canceled"  // the context ended between attempts or during backoff
)

// Metrics counts what Runners do. One Metrics serves every Runner of a
// process; Options.Name tells shards apart. A nil *Metrics records nothing.
type Metrics struct {
	retries  *prometheus.CounterVec
	runs     *prometheus.CounterVec
	attempts *prometheus.HistogramVec
}

// NewMetrics creates the transaction metrics and registers them with reg
// (nothing is registered when reg is nil):
//
//   - payments_txn_retries_total{shard,reason}: attempts that failed with a
//     retryable error and were retried; reason is serialization_failure,
//     deadlock_detected or restart (a CockroachDB restart without SQLSTATE).
//   - payments_txn_total{shard,outcome}: calls of Run by outcome, one of the
//     Outcome constants.
//   - payments_txn_attempts{shard}: histogram of attempts per call of Run.
//
// Registering twice with the same registry reuses the collectors already
// registered, so several constructions in one process count together. Any
// other registration error is a programming error and panics, as
// prometheus.MustRegister does.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_txn_retries_total",
			Help: "Transaction attempts that failed with a retryable error and were retried.",
		}, []string{"shard", "reason"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_txn_total",
			Help: "Transactions run, by final outcome.",
		}, []string{"shard", "outcome"}),
		attempts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "payments_txn_attempts",
			Help:    "Attempts needed per transaction, including the last one.",
			Buckets: []float64{1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100},
		}, []string{"shard"}),
	}
	if reg == nil {
		return m
	}
	m.retries = register(reg, m.retries)
	m.runs = register(reg, m.runs)
	m.attempts = register(reg, m.attempts)
	return m
}

// register registers c, or returns the equal collector registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(err)
}

func (m *Metrics) retry(shard, reason string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(shard, reason).Inc()
}

func (m *Metrics) finish(shard, outcome string, attempts int) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(shard, outcome).Inc()
	m.attempts.WithLabelValues(shard).Observe(float64(attempts))
}
