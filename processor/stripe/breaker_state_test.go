package stripe_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

// breakerStates reads payments_stripe_circuit_breaker_state by account_id.
func breakerStates(tb testing.TB, reg *prometheus.Registry) map[string]float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "payments_stripe_circuit_breaker_state" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "account_id" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

// TestBreakerStatePerAccount: each account has its own state series (0
// closed, 2 open), a tenant's new adapter takes its series over before the
// old one is closed, and a closed adapter's series goes away.
func TestBreakerStatePerAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := stripetest.New(t)
	reg := prometheus.NewRegistry()
	m := stripe.NewMetrics(reg)
	adapter := func(account, id string) *stripe.Adapter {
		o := stripe.DefaultOptions()
		o.SecretKey, o.APIBase, o.CallTimeout, o.Metrics = testKey, d.URL, callTimeoutTest, m
		o.Account, o.AccountID, o.BreakerFailures, o.BreakerOpen, o.NetworkRetries = account, id, 1, time.Minute, 0
		a, err := stripe.New(o)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	platform := adapter(stripe.AccountPlatform, "")
	tenantA := adapter(stripe.AccountTenant, "ten_a")
	tenantB := adapter(stripe.AccountTenant, "ten_b")
	if got := breakerStates(t, reg); len(got) != 3 || got["platform"] != 0 || got["ten_a"] != 0 || got["ten_b"] != 0 {
		t.Fatalf("states %v, want platform, ten_a and ten_b closed (0)", got)
	}

	d.Script(stripetest.OpCreate, stripetest.Fault{Kind: stripetest.FaultStatus, Status: http.StatusInternalServerError})
	_, err := tenantA.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_state"))
	wantUnavailable(t, err)
	if tenantA.Ready() == nil {
		t.Fatal("ten_a's breaker did not open")
	}
	if got := breakerStates(t, reg); got["ten_a"] != 2 || got["ten_b"] != 0 || got["platform"] != 0 {
		t.Fatalf("states %v, want ten_a open (2) and the others closed", got)
	}

	// ten_a's key changes: the resolver builds the new adapter, then
	// closes the old one. The series is the new adapter's (closed).
	replaced := adapter(stripe.AccountTenant, "ten_a")
	tenantA.Close()
	if got := breakerStates(t, reg); got["ten_a"] != 0 || len(got) != 3 {
		t.Fatalf("after the key change: states %v, want ten_a closed (0) from its new adapter", got)
	}
	replaced.Close()
	tenantB.Close()
	if got := breakerStates(t, reg); len(got) != 1 || got["platform"] != 0 {
		t.Fatalf("after closing the tenants' adapters: states %v, want platform alone", got)
	}
	_ = platform
}
