package payments

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/sharding"
)

// ReconcileBatchMax bounds the objects one reconciliation pass handles per
// shard and kind.
const ReconcileBatchMax = 100

// ReconcileStats counts what one pass did.
type ReconcileStats struct {
	Operations int // payment operations finished
	Refunds    int // refunds finished
	Settled    int // pending payments whose state was retrieved
	Errors     int
}

// Reconcile finishes what a crash or a lost processor answer left open: on
// every shard, payment operations and pending refunds older than age are
// finished by repeating the identical idempotent processor call, and
// pending payments are retrieved from the processor. It changes nothing
// that is younger than age, so it never races a request that is still
// running.
func (s *Service) Reconcile(ctx context.Context, age time.Duration) (ReconcileStats, error) {
	var st ReconcileStats
	start := s.now()
	cutoff := start.Add(-age)
	for _, sh := range s.router.Map().All() {
		if err := s.reconcileShard(ctx, sh, cutoff, &st); err != nil {
			s.metrics.reconciled(false, st.Errors, s.now().Sub(start), s.now())
			return st, fmt.Errorf("reconcile shard %s: %w", sh.Name, err)
		}
		// What is left after the pass: work the reconciler could not
		// finish, or more than one pass takes.
		if err := s.metrics.measureBacklog(ctx, sh, cutoff, s.now()); err != nil {
			s.metrics.reconciled(false, st.Errors, s.now().Sub(start), s.now())
			return st, fmt.Errorf("reconciler backlog of shard %s: %w", sh.Name, err)
		}
	}
	s.metrics.reconciled(true, st.Errors, s.now().Sub(start), s.now())
	return st, nil
}

type objectKey struct{ tenant, id uuid.UUID }

func keys(ctx context.Context, sh *sharding.Shard, sql string, cutoff time.Time) ([]objectKey, error) {
	rows, err := sh.Pool.Query(ctx, sql, cutoff, ReconcileBatchMax)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []objectKey
	for rows.Next() {
		var k objectKey
		if err := rows.Scan(&k.tenant, &k.id); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func (s *Service) reconcileShard(ctx context.Context, sh *sharding.Shard, cutoff time.Time, st *ReconcileStats) error {
	ops, err := keys(ctx, sh, `SELECT tenant_id, id FROM payments WHERE operation IS NOT NULL AND operation_started_at < $1 ORDER BY operation_started_at LIMIT $2`, cutoff)
	if err != nil {
		return err
	}
	for _, k := range ops {
		p, err := getPayment(ctx, sh.Pool, k.tenant, k.id)
		if err == nil {
			var out Payment
			out, err = s.finishOperation(ctx, sh, p, nil, nil)
			if p.Operation == OpAuthorize && p.Status == StatusPending && out.Status != StatusPending && (err == nil || isOutcome(err)) {
				// An interrupted creation reached its final state here:
				// its confirmation took from its creation until now.
				s.metrics.confirmed(p.Processor, string(out.Status), s.now().Sub(p.CreatedAt))
			}
		}
		if err != nil && !isOutcome(err) {
			st.Errors++
			s.log.Warn("reconcile payment operation", "payment", ids.Format(ids.PrefixPayment, k.id), "error", err.Error())
			continue
		}
		st.Operations++
	}
	refs, err := keys(ctx, sh, `SELECT tenant_id, id FROM refunds WHERE status = 'pending' AND updated_at < $1 ORDER BY updated_at LIMIT $2`, cutoff)
	if err != nil {
		return err
	}
	for _, k := range refs {
		r, err := getRefund(ctx, sh.Pool, k.tenant, k.id)
		if err == nil {
			_, err = s.finishRefund(ctx, sh, r, nil)
		}
		if err != nil {
			st.Errors++
			s.log.Warn("reconcile refund", "refund", ids.Format(ids.PrefixRefund, k.id), "error", err.Error())
			continue
		}
		st.Refunds++
	}
	pend, err := keys(ctx, sh, `SELECT tenant_id, id FROM payments WHERE status = 'pending' AND operation IS NULL AND updated_at < $1 ORDER BY updated_at LIMIT $2`, cutoff)
	if err != nil {
		return err
	}
	for _, k := range pend {
		if err := s.refresh(ctx, sh, k); err != nil {
			st.Errors++
			s.log.Warn("reconcile pending payment", "payment", ids.Format(ids.PrefixPayment, k.id), "error", err.Error())
			continue
		}
		st.Settled++
	}
	return nil
}

// isOutcome reports whether err is a payment's recorded outcome (such as a
// decline) rather than a failure to reconcile.
func isOutcome(err error) bool {
	return declineLike(err)
}

// refresh asks the processor for a pending payment's state and applies it
// through the same path as a processor update.
func (s *Service) refresh(ctx context.Context, sh *sharding.Shard, k objectKey) error {
	p, err := getPayment(ctx, sh.Pool, k.tenant, k.id)
	if err != nil || p.ProcessorRef == nil {
		return err
	}
	proc, err := s.processorOf(ctx, p)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	ch, err := proc.Retrieve(cctx, *p.ProcessorRef)
	cancel()
	if err != nil {
		return err
	}
	return s.ApplyUpdate(ctx, processor.Update{
		Ref: *p.ProcessorRef, PaymentID: p.PublicID(), TenantID: ids.Format(ids.PrefixTenant, p.TenantID), Charge: ch,
	})
}

// RunReconciler reconciles every interval until ctx ends.
func (s *Service) RunReconciler(ctx context.Context, interval, age time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			st, err := s.Reconcile(ctx, age)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("reconcile", "error", err.Error())
			}
			if st.Operations+st.Refunds+st.Settled > 0 {
				s.log.Info("reconciled", "operations", st.Operations, "refunds", st.Refunds, "settled", st.Settled, "errors", st.Errors)
			}
		}
	}
}
