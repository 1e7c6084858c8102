package stripe

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/payments-api/payments/processor"
)

// Outcomes of a Stripe call, the "outcome" label of the call metrics.
const (
	// OutcomeOK: Stripe answered with the object.
	OutcomeOK = "ok"
	// OutcomeDeclined: Stripe declined the card (a normal outcome).
	OutcomeDeclined = "declined"
	// OutcomeInvalid: Stripe refused the request (4xx other than 429).
	OutcomeInvalid = "invalid"
	// OutcomeRateLimited: Stripe answered 429 after stripe-go's retries.
	OutcomeRateLimited = "rate_limited"
	// OutcomeUnavailable: no usable answer (network, timeout, 5xx, the
	// account's key refused, an idempotency conflict).
	OutcomeUnavailable = "unavailable"
	// OutcomeRejected: the circuit breaker refused the call; nothing was
	// sent.
	OutcomeRejected = "rejected"
)

// Account labels: the platform's account or a tenant's own, as payments
// record them (processor.AccountPlatform, processor.AccountTenant).
const (
	AccountPlatform = processor.AccountPlatform
	AccountTenant   = processor.AccountTenant
)

// Metrics are the Prometheus metrics of every Adapter of a process. Tenant
// accounts share the "tenant" label so that the series stay few however
// many tenants bring their own account.
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	breakers *prometheus.GaugeVec
	// state is the breaker state of each account: the platform's, and
	// each tenant's own by tenant ID (at most accounts.AdaptersMax).
	state *prometheus.GaugeVec

	mu sync.Mutex
	// owners is the breaker that holds each account's state series: when
	// a tenant's key changes, the new adapter's breaker takes the series
	// over before the old one is closed.
	owners map[string]*breaker
}

// BreakerStateValue is the value of payments_stripe_circuit_breaker_state
// for each state.
var BreakerStateValue = map[gobreaker.State]float64{
	gobreaker.StateClosed: 0, gobreaker.StateHalfOpen: 1, gobreaker.StateOpen: 2,
}

// NewMetrics returns the Stripe metrics, registered with reg unless it is
// nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_stripe_calls_total",
			Help: "Stripe API calls by account kind, operation and outcome (ok, declined, invalid, rate_limited, unavailable, rejected by the circuit breaker).",
		}, []string{"account", "operation", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "payments_stripe_call_duration_seconds",
			Help:    "Latency of Stripe API calls, stripe-go's network retries included, by account kind, operation and outcome.",
			Buckets: []float64{.025, .05, .1, .2, .3, .5, .75, 1, 2, 5, 10, 30, 60},
		}, []string{"account", "operation", "outcome"}),
		breakers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payments_stripe_circuit_breakers",
			Help: "Stripe circuit breakers by account kind and state (closed, half-open, open). The platform account has one breaker: its state is the series whose value is 1.",
		}, []string{"account", "state"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payments_stripe_circuit_breaker_state",
			Help: "State of each Stripe account's circuit breaker: 0 closed, 1 half-open, 2 open. account_id is platform or the tenant (ten_...) whose own account it is.",
		}, []string{"account_id"}),
		owners: map[string]*breaker{},
	}
	if reg != nil {
		reg.MustRegister(m)
	}
	return m
}

// Describe implements prometheus.Collector, so Metrics made without a
// registry can be registered later.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.calls.Describe(ch)
	m.duration.Describe(ch)
	m.breakers.Describe(ch)
	m.state.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.calls.Collect(ch)
	m.duration.Collect(ch)
	m.breakers.Collect(ch)
	m.state.Collect(ch)
}

func (m *Metrics) observe(account, op, outcome string, d time.Duration) {
	m.calls.WithLabelValues(account, op, outcome).Inc()
	m.duration.WithLabelValues(account, op, outcome).Observe(d.Seconds())
}

func (m *Metrics) rejected(account, op string) {
	m.calls.WithLabelValues(account, op, OutcomeRejected).Inc()
}

func (m *Metrics) breakerMoved(b *breaker, from, to gobreaker.State) {
	m.breakers.WithLabelValues(b.account, from.String()).Dec()
	m.breakers.WithLabelValues(b.account, to.String()).Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owners[b.accountID] == b {
		m.state.WithLabelValues(b.accountID).Set(BreakerStateValue[to])
	}
}

func (m *Metrics) breakerAdded(b *breaker, st gobreaker.State) {
	m.breakers.WithLabelValues(b.account, st.String()).Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.owners[b.accountID] = b
	m.state.WithLabelValues(b.accountID).Set(BreakerStateValue[st])
}

func (m *Metrics) breakerRemoved(b *breaker, st gobreaker.State) {
	m.breakers.WithLabelValues(b.account, st.String()).Dec()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owners[b.accountID] == b {
		delete(m.owners, b.accountID)
		m.state.DeleteLabelValues(b.accountID)
	}
}
