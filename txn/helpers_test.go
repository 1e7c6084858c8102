package txn_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payments-api/payments/txn"
)

// newRunner builds a Runner on pool or fails the test.
func newRunner(tb testing.TB, pool *pgxpool.Pool, opts txn.Options) *txn.Runner {
	tb.Helper()
	r, err := txn.New(context.Background(), pool, opts)
	if err != nil {
		tb.Fatalf("txn.New: %v", err)
	}
	return r
}

// mustExec runs SQL outside any Runner, for setup and resets.
func mustExec(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	tb.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		tb.Fatalf("exec %q: %v", sql, err)
	}
}

// metricSum adds up the samples of the counter or histogram name in reg
// whose labels include every pair in labels. For a histogram it adds up
// the sample counts (calls of Observe).
func metricSum(tb testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	tb.Helper()
	families, err := reg.Gather()
	if err != nil {
		tb.Fatalf("gather metrics: %v", err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			if h := m.GetHistogram(); h != nil {
				sum += float64(h.GetSampleCount())
			} else {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
