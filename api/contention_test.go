package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payments-api/payments/webhooks"
)

// contentionDuration and contentionClients are the figures: one
// busy tenant, 32 clients, 30 seconds.
const (
	contentionDuration = 30 * time.Second
	contentionClients  = 32
)

// TestOneBusyTenantNeverExhaustsRetries runs 32 clients of one tenant for
// 30 s against the real router, with the webhook fan-out scanning the
// outbox all along, as the worker does. Creations (automatic and manual),
// captures and refunds mix the batched path with the others. No request
// may answer 5xx, no transaction may use up its attempts, and at most 1%
// of transactions may be retried.
func TestOneBusyTenantNeverExhaustsRetries(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("a 30 s contention run")
	}
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Busy", map[string]any{"rate_limit_per_second": 1_000_000, "rate_limit_burst": 1_000_000})
	worker, err := webhooks.NewWorker(webhooks.WorkerOptions{Shards: h.shards})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), contentionDuration)
	defer cancel()
	var fanouts sync.WaitGroup
	fanouts.Go(func() {
		for ctx.Err() == nil {
			for _, sh := range h.shards.All() {
				if _, err := worker.Fanout(ctx, sh); err != nil && ctx.Err() == nil {
					t.Errorf("fan-out: %v", err)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	var requests, failures atomic.Int64
	var wg sync.WaitGroup
	for c := range contentionClients {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("busy-%d-%d", c, i)
				manual := i%4 == 0
				body := map[string]any{"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa"}
				if manual {
					body["capture_method"] = "manual"
				}
				r := h.do("POST", "/v1/payments", ten.Secret, body, "Idempotency-Key", key)
				requests.Add(1)
				if r.Status >= 500 {
					failures.Add(1)
					t.Errorf("create: %d %s", r.Status, r.Body)
					continue
				}
				id, _ := r.json(t)["id"].(string)
				switch {
				case manual && r.Status == http.StatusCreated:
					r = h.do("POST", "/v1/payments/"+id+"/capture", ten.Secret, nil, "Idempotency-Key", key+"-capture")
				case i%4 == 1 && r.Status == http.StatusCreated:
					r = h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": id, "amount": 500}, "Idempotency-Key", key+"-refund")
				default:
					continue
				}
				requests.Add(1)
				if r.Status >= 500 {
					failures.Add(1)
					t.Errorf("follow-up: %d %s", r.Status, r.Body)
				}
			}
		})
	}
	wg.Wait()
	fanouts.Wait()

	exhausted := metricValue(t, h, "payments_txn_total", `outcome="exhausted"`)
	retries := metricValue(t, h, "payments_txn_retries_total", "")
	txs := metricValue(t, h, "payments_txn_total", "")
	t.Logf("%d requests, %d 5xx; %v transactions, %v retries (%.2f%%), %v exhausted",
		requests.Load(), failures.Load(), txs, retries, 100*retries/max(txs, 1), exhausted)
	if exhausted != 0 {
		t.Errorf("%v transactions used up their attempts", exhausted)
	}
	if retries > 0.01*txs {
		t.Errorf("%v serialization retries over %v transactions: more than 1%%", retries, txs)
	}
	if requests.Load() < contentionClients {
		t.Errorf("only %d requests ran", requests.Load())
	}
}

// metricValue sums the samples of the counter name in the harness's
// registry whose label text contains match ("" for all).
func metricValue(t testing.TB, h *harness, name, match string) float64 {
	t.Helper()
	families, err := h.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := ""
			for _, l := range m.GetLabel() {
				labels += fmt.Sprintf("%s=%q,", l.GetName(), l.GetValue())
			}
			if match == "" || strings.Contains(labels, match) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
