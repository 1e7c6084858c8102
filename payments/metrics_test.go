package payments_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor/sandbox"
)

// gathered sums the series of a family whose labels include want: the
// value of counters and gauges, the sample count of histograms.
func gathered(tb testing.TB, reg *prometheus.Registry, name string, want map[string]string) (float64, bool) {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	total, found := 0.0, false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue series
				}
			}
			found = true
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			case m.Histogram != nil:
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return total, found
}

// TestSLOMetrics follows one payment whose processor answers are lost:
// its creation is observed as pending, a reconciler pass that cannot
// finish it leaves it in the backlog with its age, the next pass finishes
// it and observes its confirmation from its creation, and a pass that
// cannot scan counts as a failed run.
func TestSLOMetrics(t *testing.T) {
	t.Parallel()
	h, lossy := newLossyHarness(t)
	reg := prometheus.NewRegistry()
	svc := payments.NewService(payments.Options{Router: h.router, Processor: h.proc, Metrics: payments.NewMetrics(reg)})
	tenantID, _ := h.newTenant(t)
	shard := h.shardOf(t, tenantID).Name
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		v, ok := gathered(t, reg, name, labels)
		if !ok {
			t.Fatalf("%s%v is not exposed", name, labels)
		}
		return v
	}
	if v := value("payments_reconciler_runs_total", map[string]string{"outcome": payments.ReconcileRunError}); v != 0 {
		t.Fatalf("failed runs %v before any run", v)
	}

	ok := h.create(t, tenantID, sandbox.PaymentMethodVisa, "", 1_000, "usd")
	if ok.Status != payments.StatusSucceeded {
		t.Fatalf("control payment %s", ok.Status)
	}
	if _, err := svc.Create(t.Context(), tenantID, payments.CreateParams{Amount: 2_000, Currency: "usd", PaymentMethod: sandbox.PaymentMethodVisa}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(t.Context(), tenantID, payments.CreateParams{Amount: 2_000, Currency: "usd", PaymentMethod: sandbox.PaymentMethodDeclined}); err == nil {
		t.Fatal("declined card accepted")
	}
	lossy.loseNext("authorize")
	lost, err := svc.Create(t.Context(), tenantID, payments.CreateParams{Amount: 5_000, Currency: "usd", PaymentMethod: sandbox.PaymentMethodVisa})
	wantLost(t, err)
	conf := "payments_payment_confirmation_duration_seconds"
	for outcome, want := range map[string]float64{"succeeded": 1, "failed": 1, "pending": 1} {
		if v := value(conf, map[string]string{"processor": "sandbox", "outcome": outcome}); v != want {
			t.Errorf("confirmations %s: %v, want %v", outcome, v, want)
		}
	}

	// The reconciler's repeat is lost too: the payment stays in the backlog.
	lossy.loseNext("authorize")
	if _, err := svc.Reconcile(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	backlog := map[string]string{"shard": shard, "kind": payments.ReconcileKindOperation}
	if v := value("payments_reconciler_backlog", backlog); v != 1 {
		t.Errorf("backlog %v after a pass that could not finish the payment, want 1", v)
	}
	if v := value("payments_reconciler_oldest_age_seconds", backlog); v <= 0 {
		t.Errorf("oldest age %v, want above 0", v)
	}
	if v := value("payments_reconciler_object_errors_total", nil); v != 1 {
		t.Errorf("object errors %v, want 1", v)
	}
	if v := value("payments_reconciler_backlog", map[string]string{"shard": shard, "kind": payments.ReconcileKindRefund}); v != 0 {
		t.Errorf("refund backlog %v, want 0", v)
	}

	// The next pass finishes it: the backlog empties and the confirmation
	// is observed, from the payment's creation.
	if _, err := svc.Reconcile(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if got := h.get(t, tenantID, lost.ID); got.Status != payments.StatusSucceeded {
		t.Fatalf("after the second pass: %s", got.Status)
	}
	if v := value("payments_reconciler_backlog", backlog); v != 0 {
		t.Errorf("backlog %v after the payment was finished, want 0", v)
	}
	if v := value("payments_reconciler_oldest_age_seconds", backlog); v != 0 {
		t.Errorf("oldest age %v with nothing waiting, want 0", v)
	}
	if v := value(conf, map[string]string{"processor": "sandbox", "outcome": "succeeded"}); v != 2 {
		t.Errorf("succeeded confirmations %v, want 2 (the reconciler's included)", v)
	}
	if v := value("payments_reconciler_runs_total", map[string]string{"outcome": payments.ReconcileRunOK}); v != 2 {
		t.Errorf("ok runs %v, want 2", v)
	}
	if v := value("payments_reconciler_last_success_timestamp_seconds", nil); v <= 0 {
		t.Errorf("last success %v", v)
	}

	// A pass that cannot scan (here: its context is gone) is a failed run.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := svc.Reconcile(ctx, 0); err == nil {
		t.Fatal("reconcile with a canceled context succeeded")
	}
	if v := value("payments_reconciler_runs_total", map[string]string{"outcome": payments.ReconcileRunError}); v != 1 {
		t.Errorf("failed runs %v, want 1", v)
	}
}
