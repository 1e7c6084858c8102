package webhooks

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payments-api/payments/events"
)

// gaugeOf reads the gauge of one shard.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name, shard string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "shard" && l.GetValue() == shard {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("%s{shard=%q} is not exposed", name, shard)
	return 0
}

// TestBacklogAgeAndDeliveryLag: a delivery waiting for its retry is
// undelivered but does not make the worker late; once due and waiting, it
// does; its successful delivery observes the lag from the event.
func TestBacklogAgeAndDeliveryLag(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, &Guard{AllowPrivateNetworks: true})
	e.endpoint("http://127.0.0.1:9/hooks", "*")
	e.clock.Advance(time.Second)
	created := e.clock.Now()
	e.appendEvents(1, events.PaymentSucceeded)
	reg := prometheus.NewRegistry()
	w := e.worker(WorkerOptions{Owner: "worker-m", Metrics: NewMetrics(reg)})
	ctx := context.Background()
	late := func() float64 { return gaugeOf(t, reg, "payments_webhook_backlog_age_seconds", "s0") }
	undelivered := func() float64 { return gaugeOf(t, reg, "payments_webhook_oldest_undelivered_event_age_seconds", "s0") }

	// Not fanned out yet, 10 s old: late by 10 s.
	e.clock.Advance(10 * time.Second)
	w.refreshGauge(ctx, e.sh, w.opts.Logger)
	if got := late(); got != 10 {
		t.Fatalf("backlog age %v before fan-out, want 10", got)
	}
	if _, err := w.Fanout(ctx, e.sh); err != nil {
		t.Fatal(err)
	}
	jobs, err := w.Claim(ctx, e.sh, 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claimed %d (%v)", len(jobs), err)
	}
	if !jobs[0].EventCreatedAt.Equal(created) {
		t.Fatalf("job's event time %v, want %v", jobs[0].EventCreatedAt, created)
	}
	fail := Result{Attempted: true, At: e.clock.Now(), StatusCode: 500, Error: "status 500"}
	if err := w.Record(ctx, jobs[0], fail); err != nil {
		t.Fatal(err)
	}
	var next time.Time
	if err := e.sh.Pool.QueryRow(ctx, `SELECT next_attempt_at FROM webhook_deliveries`).Scan(&next); err != nil {
		t.Fatal(err)
	}

	// Waiting for its retry: undelivered, but the worker is not late.
	w.refreshGauge(ctx, e.sh, w.opts.Logger)
	if got := late(); got != 0 {
		t.Errorf("backlog age %v while the delivery waits for its retry, want 0", got)
	}
	if got := undelivered(); got != 10 {
		t.Errorf("oldest undelivered %v, want 10", got)
	}

	// Due for 30 s and not attempted: late by 30 s.
	e.clock.Set(next.Add(30 * time.Second))
	w.refreshGauge(ctx, e.sh, w.opts.Logger)
	if got := late(); got < 29.9 || got > 30.1 {
		t.Errorf("backlog age %v with a delivery due for 30 s, want 30", got)
	}

	jobs, err = w.Claim(ctx, e.sh, 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claimed %d (%v)", len(jobs), err)
	}
	ok := Result{Attempted: true, Success: true, At: e.clock.Now(), StatusCode: 200}
	if err := w.Record(ctx, jobs[0], ok); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	var sum float64
	for _, f := range families {
		if f.GetName() == "payments_webhook_delivery_lag_seconds" {
			count, sum = f.GetMetric()[0].GetHistogram().GetSampleCount(), f.GetMetric()[0].GetHistogram().GetSampleSum()
		}
	}
	if want := e.clock.Now().Sub(created).Seconds(); count != 1 || sum < want-0.1 || sum > want+0.1 {
		t.Errorf("delivery lag: %d observations, sum %v, want one of %v", count, sum, want)
	}
	w.refreshGauge(ctx, e.sh, w.opts.Logger)
	if late() != 0 || undelivered() != 0 {
		t.Errorf("after the delivery: backlog age %v, undelivered %v, want 0 and 0", late(), undelivered())
	}
}
