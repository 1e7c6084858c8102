package webhooks

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome labels of the metrics.
const (
	OutcomeSucceeded = "succeeded" // a delivery got a 2xx answer
	OutcomeFailed    = "failed"    // a delivery was given up
	OutcomeRetry     = "retry"     // an attempt failed and another is scheduled
)

// Metrics are the worker's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	deliveries          *prometheus.CounterVec
	attemptsPerDelivery prometheus.Histogram
	staleDiscards       prometheus.Counter
	oldestAge           *prometheus.GaugeVec
	dispatched          prometheus.Counter
	deliveryLag         prometheus.Histogram
	backlogAge          *prometheus.GaugeVec
}

// NewMetrics registers the metrics on reg. Registering twice on one
// registry reuses the first collectors, so several workers of one process
// share them.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_webhook_deliveries_total",
			Help: "Webhook attempt outcomes: succeeded and failed end a delivery, retry schedules another attempt.",
		}, []string{"outcome"})),
		attemptsPerDelivery: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "payments_webhook_attempts_per_delivery",
			Help:    "Attempts a delivery took until it succeeded or was given up.",
			Buckets: []float64{1, 2, 3, 4, 6, 8, 10, 12, 15, 20},
		})),
		staleDiscards: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payments_webhook_stale_lease_discards_total",
			Help: "Outcomes discarded because the worker's lease had been taken over (the delivery may have been sent twice).",
		})),
		oldestAge: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payments_webhook_oldest_undelivered_event_age_seconds",
			Help: "Age of the oldest event not yet fanned out or with a delivery still pending, per shard; 0 when none.",
		}, []string{"shard"})),
		dispatched: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payments_webhook_events_dispatched_total",
			Help: "Events fanned out to deliveries.",
		})),
		backlogAge: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payments_webhook_backlog_age_seconds",
			Help: "How late the webhook worker is, per shard: the age of the oldest event not fanned out, or the longest a due delivery has waited for its attempt; deliveries waiting for a later retry do not count. 0 when none.",
		}, []string{"shard"})),
		deliveryLag: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "payments_webhook_delivery_lag_seconds",
			Help:    "Time from an event to its successful delivery to an endpoint (retries included).",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 3 * 86400},
		})),
	}
	// Every outcome exists from the start, so ratios over them are
	// defined before the first failure.
	for _, o := range []string{OutcomeSucceeded, OutcomeFailed, OutcomeRetry} {
		m.deliveries.WithLabelValues(o)
	}
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

func (m *Metrics) outcome(o string) {
	if m != nil {
		m.deliveries.WithLabelValues(o).Inc()
	}
}

func (m *Metrics) finished(attempts int) {
	if m != nil {
		m.attemptsPerDelivery.Observe(float64(attempts))
	}
}

func (m *Metrics) stale() {
	if m != nil {
		m.staleDiscards.Inc()
	}
}

func (m *Metrics) age(shard string, seconds float64) {
	if m != nil {
		m.oldestAge.WithLabelValues(shard).Set(seconds)
	}
}

func (m *Metrics) backlog(shard string, seconds float64) {
	if m != nil {
		m.backlogAge.WithLabelValues(shard).Set(seconds)
	}
}

func (m *Metrics) lag(d time.Duration) {
	if m != nil {
		m.deliveryLag.Observe(max(d, 0).Seconds())
	}
}

func (m *Metrics) dispatchedEvents(n int) {
	if m != nil {
		m.dispatched.Add(float64(n))
	}
}
