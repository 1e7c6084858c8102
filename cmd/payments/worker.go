package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/payments-api/payments/idempotency"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/readcache"
	"github.com/payments-api/payments/retention"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/webhooks"
)

// PurgeInterval is how often expired idempotency keys are purged.
const PurgeInterval = 10 * time.Minute

// runWorkers starts the background work of serve and worker: the
// reconciler, the payout driver, the purge of idempotency keys older than their retention, the
// read cache's repair and fence, the ledger's closer, the webhook worker
// and the retention purge of events and webhook deliveries. They stop when
// ctx ends; Wait on the result.
func runWorkers(ctx context.Context, c config, m *sharding.Map, pays *payments.Service, cache *readcache.Cache, hooks *webhooks.Worker, log *slog.Logger) *sync.WaitGroup {
	var wg sync.WaitGroup
	// wg.Go counts each goroutine itself: a new one cannot be forgotten
	// in a total.
	wg.Go(func() { runLedgerCloser(ctx, c, m, log) })
	wg.Go(func() { hooks.Run(ctx) })
	wg.Go(func() { cache.RunFence(ctx) })
	wg.Go(func() { pays.RunReconciler(ctx, c.ReconcileInterval, c.ReconcileAge) })
	wg.Go(func() { pays.RunPayoutDriver(ctx, c.Payouts.Interval, c.Payouts.Drive) })
	wg.Go(func() { cache.RunRepair(ctx) })
	// The retention purge of events and finished webhook deliveries; the
	// configuration was validated by loadConfig.
	if purger, err := retention.New(retention.Options{Shards: m, EventRetention: c.Retention.Events,
		DeliveryRetention: c.Retention.Deliveries, Logger: log}); err != nil {
		log.Error("retention purge not started", "error", err.Error())
	} else {
		wg.Go(func() { purger.Run(ctx) })
	}
	wg.Go(func() {
		t := time.NewTicker(PurgeInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// One hour of slack beyond the promised retention.
			cutoff := time.Now().Add(-idempotency.Retention - time.Hour)
			for _, s := range m.All() {
				for {
					n, err := idempotency.Purge(ctx, s.Pool, cutoff)
					if err != nil {
						if ctx.Err() == nil {
							log.Warn("purge idempotency keys", "shard", s.Name, "error", err.Error())
						}
						break
					}
					if n < idempotency.PurgeBatchMax {
						break
					}
				}
			}
		}
	})
	return &wg
}

// runLedgerCloser checkpoints every shard's ledger, and seals it when
// sealing is on, every LedgerCloseInterval until ctx ends. A pass that
// reaches its read bounds leaves the rest to the next one, so a backfill of
// old history proceeds a slice per pass.
func runLedgerCloser(ctx context.Context, c config, m *sharding.Map, log *slog.Logger) {
	t := time.NewTicker(c.LedgerCloseInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range m.All() {
			r, err := ledger.Close(ctx, s.Pool, c.LedgerClose)
			if err != nil && ctx.Err() == nil {
				log.Warn("close ledger", "shard", s.Name, "error", err.Error())
			}
			if r.Checkpoints > 0 || r.Seals > 0 {
				log.Debug("closed ledger", "shard", s.Name, "tenants", r.Tenants, "checkpoints", r.Checkpoints, "seals", r.Seals)
			}
		}
	}
}
