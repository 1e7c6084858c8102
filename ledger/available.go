package ledger

import (
	"context"
	"fmt"

	"github.com/google/uuid"
)

// Available returns the tenant's merchant_balance in one currency, from the
// running totals every posting statement updates (BalanceSlots rows at
// most, whatever the history's size); 0 without entries. Read inside the
// SERIALIZABLE transaction that posts a payout, it makes the check "the
// payout does not exceed the balance" and the posting one atomic step: a
// concurrent posting that would change the answer makes one of the two
// transactions fail with a serialization error, and its retry reads again.
func Available(ctx context.Context, q Querier, tenantID uuid.UUID, currency string) (int64, error) {
	const sql = `SELECT coalesce(sum(amount), 0)::BIGINT FROM ledger_balance_slots
WHERE tenant_id = $1 AND currency = $2 AND account = $3`
	var v int64
	if err := q.QueryRow(ctx, sql, tenantID, currency, string(AccountMerchantBalance)).Scan(&v); err != nil {
		return 0, fmt.Errorf("read available balance: %w", err)
	}
	return v, nil
}
