// Package retention purges what the service keeps only for a while:
// events older than their retention (PAYMENTS_EVENT_RETENTION_DAYS, 30
// days by default) and finished webhook deliveries with their attempts
// (PAYMENTS_WEBHOOK_RETENTION_DAYS, 30 days). Idempotency keys have their
// own purge (idempotency.Purge). The ledger is never purged: its entries
// are the record of the money, and no statement here names its tables.
//
// A purge stays out of the payment path's way. It walks each tenant's rows
// in primary-key order (IDs are UUIDv7, so key order is time order and
// ids.Before bounds the walk without an index on a timestamp), in batches
// of at most BatchRows rows, each batch in its own short READ COMMITTED
// statement or transaction, with a pause between batches. READ COMMITTED
// takes no predicate locks, so a purge never becomes the pivot that aborts
// a SERIALIZABLE payment transaction, and the rows it deletes are old rows
// that no payment reads or writes. Every delete re-checks its own
// conditions (a delivery still finished and old, an event with no
// delivery left and no outbox row), and the foreign keys refuse anything
// else, so a concurrent change is never lost.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/sharding"
)

// Defaults and limits of Options.
const (
	// Day is the unit of the retention settings.
	Day = 24 * time.Hour
	// EventRetentionDefault is how long events are kept.
	EventRetentionDefault = 30 * Day
	// DeliveryRetentionDefault is how long finished webhook deliveries and
	// their attempts are kept.
	DeliveryRetentionDefault = 30 * Day
	// RetentionMin and RetentionMax bound both retentions. An event must
	// outlive the webhook retry span (3 days) and the longest a merchant
	// may page back through GET /v1/events.
	RetentionMin = 7 * Day
	RetentionMax = 3650 * Day
	// BatchRowsDefault and BatchRowsMax bound the rows one batch walks.
	BatchRowsDefault = 500
	BatchRowsMax     = 10_000
	// PauseDefault is the pause between two batches of a shard.
	PauseDefault = 10 * time.Millisecond
	// PauseMax bounds Options.Pause.
	PauseMax = 10 * time.Second
	// IntervalDefault is how often Run purges every shard.
	IntervalDefault = 10 * time.Minute
	// tenantsPage is how many tenants one query of a shard's tenants reads.
	tenantsPage = 100
)

// Options configures a Purger. Zero values take the defaults.
type Options struct {
	Shards            *sharding.Map
	EventRetention    time.Duration
	DeliveryRetention time.Duration
	// BatchRows bounds the rows one batch walks (and so deletes).
	BatchRows int
	// Pause separates two batches on a shard, leaving it to the payment
	// path.
	Pause time.Duration
	// Interval is how often Run purges.
	Interval time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
	// Registerer receives payments_retention_purged_total; nil registers
	// nothing.
	Registerer prometheus.Registerer
}

// Stats counts what one pass deleted.
type Stats struct {
	Events     int64
	Deliveries int64
	Attempts   int64
	Batches    int
}

func (s *Stats) add(o Stats) {
	s.Events += o.Events
	s.Deliveries += o.Deliveries
	s.Attempts += o.Attempts
	s.Batches += o.Batches
}

// Purger runs the purges. It is safe for concurrent use; concurrent passes
// over the same shard only repeat each other's work.
type Purger struct {
	o      Options
	purged *prometheus.CounterVec
}

// New returns a Purger, or an error naming the option out of range.
func New(o Options) (*Purger, error) {
	if o.Shards == nil {
		return nil, errors.New("retention: no shards")
	}
	if o.EventRetention == 0 {
		o.EventRetention = EventRetentionDefault
	}
	if o.DeliveryRetention == 0 {
		o.DeliveryRetention = DeliveryRetentionDefault
	}
	if o.BatchRows == 0 {
		o.BatchRows = BatchRowsDefault
	}
	if o.Pause == 0 {
		o.Pause = PauseDefault
	}
	if o.Interval == 0 {
		o.Interval = IntervalDefault
	}
	switch {
	case o.EventRetention < RetentionMin || o.EventRetention > RetentionMax:
		return nil, fmt.Errorf("event retention %v: must be between %v and %v", o.EventRetention, RetentionMin, RetentionMax)
	case o.DeliveryRetention < RetentionMin || o.DeliveryRetention > RetentionMax:
		return nil, fmt.Errorf("webhook delivery retention %v: must be between %v and %v", o.DeliveryRetention, RetentionMin, RetentionMax)
	case o.BatchRows < 1 || o.BatchRows > BatchRowsMax:
		return nil, fmt.Errorf("purge batch rows %d: must be between 1 and %d", o.BatchRows, BatchRowsMax)
	case o.Pause < 0 || o.Pause > PauseMax:
		return nil, fmt.Errorf("purge pause %v: must be between 0 and %v", o.Pause, PauseMax)
	case o.Interval < 0:
		return nil, fmt.Errorf("purge interval %v: must be positive", o.Interval)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	purged := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payments_retention_purged_total",
		Help: "Rows deleted by the retention purge, by table.",
	}, []string{"shard", "table"})
	if o.Registerer != nil {
		if err := o.Registerer.Register(purged); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("register retention metrics: %w", err)
			}
			purged = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return &Purger{o: o, purged: purged}, nil
}

// Run purges every shard every Interval until ctx ends.
func (p *Purger) Run(ctx context.Context) {
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, sh := range p.o.Shards.All() {
			st, err := p.PurgeShard(ctx, sh)
			if err != nil && ctx.Err() == nil {
				p.o.Logger.Warn("retention purge", "shard", sh.Name, "error", err.Error())
			}
			if st.Events+st.Deliveries+st.Attempts > 0 {
				p.o.Logger.Info("retention purge", "shard", sh.Name, "events", st.Events, "deliveries", st.Deliveries,
					"attempts", st.Attempts, "batches", st.Batches)
			}
		}
	}
}

// PurgeShard makes one pass over the shard's tenants: their finished
// webhook deliveries (and attempts) older than DeliveryRetention, then
// their events older than EventRetention that no delivery names any more
// and the outbox has dispatched.
func (p *Purger) PurgeShard(ctx context.Context, sh *sharding.Shard) (Stats, error) {
	now := p.o.Now()
	cutDeliveries, cutEvents := now.Add(-p.o.DeliveryRetention), now.Add(-p.o.EventRetention)
	var total Stats
	after := uuid.Nil
	for {
		tenants, err := p.tenants(ctx, sh, after)
		if err != nil {
			return total, err
		}
		for _, tenant := range tenants {
			st, err := p.walk(ctx, sh, tenant, cutDeliveries, p.deliveries)
			total.add(st)
			if err != nil {
				return total, err
			}
			st, err = p.walk(ctx, sh, tenant, cutEvents, p.events)
			total.add(st)
			if err != nil {
				return total, err
			}
		}
		if len(tenants) < tenantsPage {
			return total, nil
		}
		after = tenants[len(tenants)-1]
	}
}

func (p *Purger) tenants(ctx context.Context, sh *sharding.Shard, after uuid.UUID) ([]uuid.UUID, error) {
	rows, err := sh.Pool.Query(ctx, `SELECT tenant_id FROM tenants WHERE tenant_id > $1 ORDER BY tenant_id LIMIT $2`, after, tenantsPage)
	if err != nil {
		return nil, fmt.Errorf("list tenants to purge: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("list tenants to purge: %w", err)
	}
	return out, nil
}

// batchFunc deletes what may go among one batch of a tenant's keys.
type batchFunc func(ctx context.Context, sh *sharding.Shard, tenant uuid.UUID, keys []uuid.UUID, cutoff time.Time) (Stats, error)

// walk runs del over the tenant's keys of table del names below cutoff, in
// key order, BatchRows keys at a time, pausing between batches.
func (p *Purger) walk(ctx context.Context, sh *sharding.Shard, tenant uuid.UUID, cutoff time.Time, del func() (string, batchFunc)) (Stats, error) {
	scan, f := del()
	var total Stats
	after, bound := uuid.Nil, ids.Before(cutoff)
	for {
		rows, err := sh.Pool.Query(ctx, scan, tenant, after, bound, p.o.BatchRows)
		if err != nil {
			return total, fmt.Errorf("scan rows to purge: %w", err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return total, fmt.Errorf("scan rows to purge: %w", err)
		}
		if len(keys) == 0 {
			return total, nil
		}
		st, err := f(ctx, sh, tenant, keys, cutoff)
		st.Batches = 1
		total.add(st)
		if err != nil {
			return total, err
		}
		if len(keys) < p.o.BatchRows {
			return total, nil
		}
		after = keys[len(keys)-1]
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(p.o.Pause):
		}
	}
}

// deliveries: the scan of a tenant's deliveries, and the delete of the
// finished ones among a batch, with their attempts, in one READ COMMITTED
// transaction. A delivery redelivered meanwhile is pending or finished
// anew, and no longer matches.
func (p *Purger) deliveries() (string, batchFunc) {
	const scan = `SELECT id FROM webhook_deliveries WHERE tenant_id = $1 AND id > $2 AND id < $3 ORDER BY id LIMIT $4`
	return scan, func(ctx context.Context, sh *sharding.Shard, tenant uuid.UUID, keys []uuid.UUID, cutoff time.Time) (Stats, error) {
		var st Stats
		err := sh.Tx.RunReadCommitted(ctx, func(ctx context.Context, tx pgx.Tx) error {
			st = Stats{}
			tag, err := tx.Exec(ctx, `DELETE FROM webhook_attempts WHERE tenant_id = $1 AND delivery_id IN (
				SELECT id FROM webhook_deliveries WHERE tenant_id = $1 AND id = ANY($2) AND status <> 'pending' AND completed_at < $3)`,
				tenant, keys, cutoff)
			if err != nil {
				return fmt.Errorf("purge webhook attempts: %w", err)
			}
			st.Attempts = tag.RowsAffected()
			tag, err = tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND id = ANY($2) AND status <> 'pending' AND completed_at < $3`,
				tenant, keys, cutoff)
			if err != nil {
				return fmt.Errorf("purge webhook deliveries: %w", err)
			}
			st.Deliveries = tag.RowsAffected()
			return nil
		})
		if err != nil {
			return Stats{}, err // rolled back
		}
		p.purged.WithLabelValues(sh.Name, "webhook_attempts").Add(float64(st.Attempts))
		p.purged.WithLabelValues(sh.Name, "webhook_deliveries").Add(float64(st.Deliveries))
		return st, nil
	}
}

// events: the scan of a tenant's events, and the delete, in one statement,
// of those among a batch that are old, named by no delivery and not
// waiting in the outbox.
func (p *Purger) events() (string, batchFunc) {
	const scan = `SELECT id FROM events WHERE tenant_id = $1 AND id > $2 AND id < $3 ORDER BY id LIMIT $4`
	return scan, func(ctx context.Context, sh *sharding.Shard, tenant uuid.UUID, keys []uuid.UUID, cutoff time.Time) (Stats, error) {
		var st Stats
		err := sh.Tx.RunReadCommitted(ctx, func(ctx context.Context, tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `DELETE FROM events AS e WHERE e.tenant_id = $1 AND e.id = ANY($2) AND e.created_at < $3
				AND NOT EXISTS (SELECT 1 FROM webhook_deliveries AS d WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id)
				AND NOT EXISTS (SELECT 1 FROM event_outbox AS o WHERE o.tenant_id = e.tenant_id AND o.event_id = e.id)`,
				tenant, keys, cutoff)
			if err != nil {
				return fmt.Errorf("purge events: %w", err)
			}
			st.Events = tag.RowsAffected()
			return nil
		})
		if err != nil {
			return Stats{}, err
		}
		p.purged.WithLabelValues(sh.Name, "events").Add(float64(st.Events))
		return st, nil
	}
}
