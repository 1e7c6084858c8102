package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/payments-api/payments/idempotency"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/readcache"
	"github.com/payments-api/payments/retention"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/webhooks"
)

// PurgeInterval is how often expired idempotency keys are purged.
const PurgeInterval = 10 * time.Minute

// runWorkers starts the background work of serve and worker: the
// reconciler, the purge of idempotency keys older than their retention, the
// read cache's repair, the webhook worker and the retention purge of events
// and webhook deliveries. They stop when ctx ends; Wait
// on the result.
func runWorkers(ctx context.Context, c config, m *sharding.Map, pays *payments.Service, cache *readcache.Cache, hooks *webhooks.Worker, log *slog.Logger) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); hooks.Run(ctx) }()
	go func() { defer wg.Done(); pays.RunReconciler(ctx, c.ReconcileInterval, c.ReconcileAge) }()
	go func() { defer wg.Done(); cache.RunRepair(ctx) }()
	// The retention purge of events and finished webhook deliveries; the
	// configuration was validated by loadConfig.
	if purger, err := retention.New(retention.Options{Shards: m, EventRetention: c.Retention.Events,
		DeliveryRetention: c.Retention.Deliveries, Logger: log}); err != nil {
		log.Error("retention purge not started", "error", err.Error())
	} else {
		wg.Go(func() { purger.Run(ctx) })
	}
	go func() {
		defer wg.Done()
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
	}()
	return &wg
}
