package txn

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// ExecGuarded sends b in tx: a batch of single-row writes, each guarded by
// the values it expects to replace (a compare-and-set in its WHERE). It
// answers how many wrote their row and how many found the guard no longer
// true (a concurrent writer changed the row first), or the first error.
func ExecGuarded(ctx context.Context, tx pgx.Tx, b *pgx.Batch) (written, missed int, err error) {
	if b.Len() == 0 {
		return 0, 0, nil
	}
	res := tx.SendBatch(ctx, b)
	for range b.Len() {
		tag, err := res.Exec()
		if err != nil {
			res.Close()
			return written, missed, err
		}
		if tag.RowsAffected() == 1 {
			written++
		} else {
			missed++
		}
	}
	return written, missed, res.Close()
}
