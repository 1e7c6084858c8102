package accounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/secretbox"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/txn"
)

// ResealBatchMax bounds the rows one reseal transaction reads and writes.
const ResealBatchMax = 1000

// Reseal seals again, under the box's current key, the secrets of every
// processor account on one shard that another key sealed. It reads the
// table in primary-key order, batchMax rows a transaction, and writes
// each changed row only if it still holds the bytes it read (a
// compare-and-set), so an account set meanwhile by a serving process is
// left as that process wrote it and counted as changed. That guard makes
// the write safe under READ COMMITTED, which keeps the rotation out of the
// serializable conflicts of serving traffic. A value that no key of the box
// opens stops the pass with an error naming the tenant, never the value.
func (s *Store) Reseal(ctx context.Context, sh *sharding.Shard, batchMax int) (secretbox.ResealCount, error) {
	var total secretbox.ResealCount
	if s.box == nil {
		return total, errors.New("reseal processor accounts: no encryption key is configured")
	}
	if batchMax < 1 || batchMax > ResealBatchMax {
		return total, fmt.Errorf("reseal batch of %d rows: want 1 to %d", batchMax, ResealBatchMax)
	}
	after, afterProc := uuid.Nil, ""
	for {
		type row struct {
			tenant           uuid.UUID
			proc             string
			key, hooks       []byte
			newKey, newHooks []byte
		}
		var page []row
		var n secretbox.ResealCount
		err := sh.Tx.RunReadCommitted(ctx, func(ctx context.Context, tx pgx.Tx) error {
			page, n = page[:0], secretbox.ResealCount{}
			rows, err := tx.Query(ctx, `SELECT tenant_id, processor, secret_key_sealed, webhook_secrets_sealed FROM processor_accounts
				WHERE (tenant_id, processor) > ($1, $2) ORDER BY tenant_id, processor LIMIT $3`, after, afterProc, batchMax)
			if err != nil {
				return fmt.Errorf("read processor accounts: %w", err)
			}
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.tenant, &r.proc, &r.key, &r.hooks); err != nil {
					rows.Close()
					return fmt.Errorf("read processor accounts: %w", err)
				}
				page = append(page, r)
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("read processor accounts: %w", err)
			}
			n.Scanned = len(page)
			batch := &pgx.Batch{}
			for i := range page {
				r := &page[i]
				var changedKey, changedHooks bool
				if r.newKey, changedKey, err = s.box.Reseal(r.key, adSecretKey(r.tenant)); err != nil {
					return fmt.Errorf("reseal the Stripe key of tenant %s: %w", ids.Format(ids.PrefixTenant, r.tenant), err)
				}
				if r.newHooks, changedHooks, err = s.box.Reseal(r.hooks, adWebhookSecrets(r.tenant)); err != nil {
					return fmt.Errorf("reseal the webhook secrets of tenant %s: %w", ids.Format(ids.PrefixTenant, r.tenant), err)
				}
				if !changedKey && !changedHooks {
					continue
				}
				batch.Queue(`UPDATE processor_accounts SET secret_key_sealed = $3, webhook_secrets_sealed = $4
					WHERE tenant_id = $1 AND processor = $2 AND secret_key_sealed = $5 AND webhook_secrets_sealed = $6`,
					r.tenant, r.proc, r.newKey, r.newHooks, r.key, r.hooks)
			}
			written, missed, err := txn.ExecGuarded(ctx, tx, batch)
			n.Resealed, n.Changed = n.Resealed+written, n.Changed+missed
			if err != nil {
				return fmt.Errorf("reseal processor accounts: %w", err)
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total.Add(n)
		if len(page) < batchMax {
			break
		}
		after, afterProc = page[len(page)-1].tenant, page[len(page)-1].proc
	}
	// Cached accounts hold plaintext, which a reseal does not change.
	return total, nil
}
