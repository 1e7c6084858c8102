package webhooks

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

// Reseal seals again, under the box's current key, the signing secrets
// (current and previous) of every endpoint on one shard, deleted ones
// included, that another key sealed or that are stored in the clear from
// before a key was configured. It reads the table in primary-key order,
// batchMax rows a transaction, and writes each changed row only if its four
// secret columns still hold what it read (a compare-and-set): a secret
// rolled meanwhile by a serving process is left as that process wrote it
// and counted as changed. The guard makes READ COMMITTED safe here, which
// keeps the rotation out of the serializable conflicts of serving traffic.
// A value that no key of the box opens stops the pass with an error naming
// the endpoint, never the value.
func (s *Service) Reseal(ctx context.Context, sh *sharding.Shard, batchMax int) (secretbox.ResealCount, error) {
	var total secretbox.ResealCount
	box := s.sealer.box
	if box == nil {
		return total, errors.New("reseal webhook secrets: no encryption key is configured")
	}
	if batchMax < 1 || batchMax > ResealBatchMax {
		return total, fmt.Errorf("reseal batch of %d rows: want 1 to %d", batchMax, ResealBatchMax)
	}
	type row struct {
		tenant, id               uuid.UUID
		secret, prev             *string
		secretSealed, prevSealed []byte
		newSecret, newPrev       []byte
	}
	// reseal returns the sealed value of one secret under the current key
	// and whether it differs from what is stored.
	reseal := func(r *row, role string, clear *string, sealed []byte) ([]byte, bool, error) {
		ad := additionalData(r.tenant, role)
		if clear != nil {
			b, err := box.Seal([]byte(*clear), ad)
			return b, true, err
		}
		if sealed == nil {
			return nil, false, nil
		}
		return box.Reseal(sealed, ad)
	}
	afterTenant, afterID := uuid.Nil, uuid.Nil
	for {
		var page []row
		var n secretbox.ResealCount
		err := sh.Tx.RunReadCommitted(ctx, func(ctx context.Context, tx pgx.Tx) error {
			page, n = page[:0], secretbox.ResealCount{}
			rows, err := tx.Query(ctx, `SELECT tenant_id, id, secret, secret_sealed, previous_secret, previous_secret_sealed
				FROM webhook_endpoints WHERE (tenant_id, id) > ($1, $2) ORDER BY tenant_id, id LIMIT $3`, afterTenant, afterID, batchMax)
			if err != nil {
				return fmt.Errorf("read webhook endpoints: %w", err)
			}
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.tenant, &r.id, &r.secret, &r.secretSealed, &r.prev, &r.prevSealed); err != nil {
					rows.Close()
					return fmt.Errorf("read webhook endpoints: %w", err)
				}
				page = append(page, r)
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("read webhook endpoints: %w", err)
			}
			n.Scanned = len(page)
			batch := &pgx.Batch{}
			for i := range page {
				r := &page[i]
				var changedSecret, changedPrev bool
				if r.newSecret, changedSecret, err = reseal(r, "secret", r.secret, r.secretSealed); err != nil {
					return fmt.Errorf("reseal the signing secret of endpoint %s: %w", ids.Format(ids.PrefixWebhook, r.id), err)
				}
				if r.newPrev, changedPrev, err = reseal(r, "previous_secret", r.prev, r.prevSealed); err != nil {
					return fmt.Errorf("reseal the previous signing secret of endpoint %s: %w", ids.Format(ids.PrefixWebhook, r.id), err)
				}
				if !changedSecret && !changedPrev {
					continue
				}
				batch.Queue(`UPDATE webhook_endpoints SET secret = NULL, secret_sealed = $3, previous_secret = NULL, previous_secret_sealed = $4
					WHERE tenant_id = $1 AND id = $2
						AND secret IS NOT DISTINCT FROM $5::TEXT AND secret_sealed IS NOT DISTINCT FROM $6::BYTEA
						AND previous_secret IS NOT DISTINCT FROM $7::TEXT AND previous_secret_sealed IS NOT DISTINCT FROM $8::BYTEA`,
					r.tenant, r.id, r.newSecret, r.newPrev, r.secret, r.secretSealed, r.prev, r.prevSealed)
			}
			written, missed, err := txn.ExecGuarded(ctx, tx, batch)
			n.Resealed, n.Changed = n.Resealed+written, n.Changed+missed
			if err != nil {
				return fmt.Errorf("reseal webhook secrets: %w", err)
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
		afterTenant, afterID = page[len(page)-1].tenant, page[len(page)-1].id
	}
	return total, nil
}
