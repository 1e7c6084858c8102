package api_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/retention"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/webhooks"
)

// Figures of the purge measurement.
const (
	purgeBenchDuration = 20 * time.Second
	purgeBenchClients  = 32
	// purgeBenchOldEvents old events are seeded, each with a finished
	// delivery and one attempt: enough that the purge runs for the whole
	// measurement.
	purgeBenchOldEvents = 300_000
	purgeBenchChunk     = 5_000
)

// oldID is a UUIDv7 of time at, with a random tail, as ids.New would have
// minted then.
func oldID(at time.Time) uuid.UUID {
	id := ids.Before(at)
	var tail [8]byte
	_, _ = rand.Read(tail[:])
	copy(id[8:], tail[:])
	id[8] = 0x80 | id[8]&0x3f
	return id
}

// seedOld inserts n events from 40 days ago into the tenant's shard, each
// delivered once (succeeded) to the endpoint, with its attempt.
func seedOld(tb testing.TB, sh *sharding.Shard, tenant, endpoint uuid.UUID, n int) {
	tb.Helper()
	ctx := context.Background()
	start := time.Now().Add(-40 * retention.Day)
	for done := 0; done < n; done += purgeBenchChunk {
		m := min(purgeBenchChunk, n-done)
		evs, dels, atts, ats := make([]uuid.UUID, m), make([]uuid.UUID, m), make([]uuid.UUID, m), make([]time.Time, m)
		for i := range m {
			at := start.Add(time.Duration(done+i) * time.Millisecond)
			evs[i], dels[i], atts[i], ats[i] = oldID(at), oldID(at), oldID(at), at
		}
		batch := []string{
			`INSERT INTO events (tenant_id, id, type, object_type, object_id, object_version, data, created_at)
				SELECT $1, e, 'payment.succeeded', 'payment', e, 2, '{"object":"payment"}', at FROM unnest($2::UUID[], $3::TIMESTAMPTZ[]) AS u (e, at)`,
			`INSERT INTO webhook_deliveries (tenant_id, id, event_id, endpoint_id, event_type, event_created_at, status, attempts,
				started_at, created_at, updated_at, completed_at, last_status_code)
				SELECT $1, d, e, $5, 'payment.succeeded', at, 'succeeded', 1, at, at, at, at, 200
				FROM unnest($2::UUID[], $3::TIMESTAMPTZ[], $4::UUID[]) AS u (e, at, d)`,
			`INSERT INTO webhook_attempts (tenant_id, delivery_id, id, attempted_at, status_code, latency_ms, response_body, response_truncated)
				SELECT $1, d, a, at, 200, 3, '', false FROM unnest($2::TIMESTAMPTZ[], $3::UUID[], $4::UUID[]) AS u (at, d, a)`,
		}
		for i, sql := range batch {
			args := []any{tenant, evs, ats}
			switch i {
			case 1:
				args = append(args, dels, endpoint)
			case 2:
				args = []any{tenant, ats, dels, atts}
			}
			if _, err := sh.Pool.Exec(ctx, sql, args...); err != nil {
				tb.Fatalf("seed: %v", err)
			}
		}
	}
	if _, err := sh.Pool.Exec(ctx, `ANALYZE events; ANALYZE webhook_deliveries; ANALYZE webhook_attempts`); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkPaymentsWithPurge measures what a running retention purge
// does to the payment path: 32 clients of one tenant create (automatic
// and manual), capture and refund payments for 20 s with the webhook
// fan-out running, once with the purge idle and once with it deleting
// 300,000 old events, deliveries and attempts of the same tenant. It
// reports serialization retries per payment-path request, 5xx answers and
// requests per second. Run with:
//
//	go test -run '^$' -bench PaymentsWithPurge -benchtime 1x ./api
func BenchmarkPaymentsWithPurge(b *testing.B) {
	for _, purge := range []bool{false, true} {
		b.Run(fmt.Sprintf("purge=%v", purge), func(b *testing.B) {
			for range b.N {
				runPurgeBench(b, purge)
			}
		})
	}
}

func runPurgeBench(b *testing.B, purge bool) {
	h := newHarness(b, harnessOptions{WebhookAllowPrivate: true})
	ten := h.createTenant("Busy", map[string]any{"rate_limit_per_second": 1_000_000, "rate_limit_burst": 1_000_000})
	tenant, _ := ids.Parse(ids.PrefixTenant, ten.ID)
	ep := h.do("POST", "/v1/webhook_endpoints", ten.Secret, map[string]any{"url": "http://127.0.0.1:9/hooks", "enabled_events": []string{"webhook_endpoint.disabled"}})
	if ep.Status != http.StatusCreated {
		b.Fatalf("endpoint: %d %s", ep.Status, ep.Body)
	}
	endpoint, _ := ids.Parse(ids.PrefixWebhook, ep.json(b)["id"].(string))
	var sh *sharding.Shard
	for _, s := range h.shards.All() {
		var n int
		if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM tenants WHERE tenant_id = $1`, tenant).Scan(&n); err == nil && n == 1 {
			sh = s
		}
	}
	seedOld(b, sh, tenant, endpoint, purgeBenchOldEvents)
	purger, err := retention.New(retention.Options{Shards: h.shards})
	if err != nil {
		b.Fatal(err)
	}
	worker, err := webhooks.NewWorker(webhooks.WorkerOptions{Shards: h.shards})
	if err != nil {
		b.Fatal(err)
	}
	retriesBefore, txsBefore := metricValue(b, h, "payments_txn_retries_total", ""), metricValue(b, h, "payments_txn_total", "")
	b.ResetTimer()
	ctx, cancel := context.WithTimeout(context.Background(), purgeBenchDuration)
	defer cancel()
	var background sync.WaitGroup
	background.Go(func() {
		for ctx.Err() == nil {
			for _, s := range h.shards.All() {
				_, _ = worker.Fanout(ctx, s)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	var purged retention.Stats
	var purgeTime time.Duration
	if purge {
		background.Go(func() {
			start := time.Now()
			st, err := purger.PurgeShard(ctx, sh)
			purgeTime = time.Since(start)
			if err != nil && ctx.Err() == nil {
				b.Errorf("purge: %v", err)
			}
			purged = st
		})
	}
	var requests, failures atomic.Int64
	var clients sync.WaitGroup
	for c := range purgeBenchClients {
		clients.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("purge-%d-%d", c, i)
				manual := i%4 == 0
				body := map[string]any{"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa"}
				if manual {
					body["capture_method"] = "manual"
				}
				r := h.do("POST", "/v1/payments", ten.Secret, body, "Idempotency-Key", key)
				requests.Add(1)
				if r.Status >= 500 {
					failures.Add(1)
					continue
				}
				id, _ := r.json(b)["id"].(string)
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
				}
			}
		})
	}
	clients.Wait()
	background.Wait()
	b.StopTimer()
	retries := metricValue(b, h, "payments_txn_retries_total", "") - retriesBefore
	txs := metricValue(b, h, "payments_txn_total", "") - txsBefore
	b.ReportMetric(retries, "retries")
	b.ReportMetric(100*retries/float64(max(requests.Load(), 1)), "retries/100req")
	b.ReportMetric(float64(failures.Load()), "5xx")
	b.ReportMetric(float64(requests.Load())/purgeBenchDuration.Seconds(), "req/s")
	b.ReportMetric(float64(purged.Events+purged.Deliveries+purged.Attempts), "rows_purged")
	b.Logf("purge=%v: %d requests, %d 5xx, %v transactions, %v retries; purged %+v in %v",
		purge, requests.Load(), failures.Load(), txs, retries, purged, purgeTime.Round(time.Millisecond))
}
