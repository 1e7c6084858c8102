package ledger

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
)

// TestQueuePostBooksOnceInOneStatement posts charges and a refund through
// a pipeline, then the same charge again: the first commits with every
// entry and balances; the second fails with the duplicate-source code and
// leaves the book as it was once its transaction is rolled back.
func TestQueuePostBooksOnceInOneStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	tenant := ids.New()
	c1 := mustCharge(t, tenant, "usd", 10000, feeFor(10000))
	c2 := mustCharge(t, tenant, "usd", 1190, feeFor(1190))
	r1 := mustRefund(t, tenant, "usd", c1.SourceID, 2500)
	queue := func(txs ...Transaction) error {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		b := &pgx.Batch{}
		if err := QueuePost(b, txs...); err != nil {
			return err
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	if err := queue(c1, c2, r1); err != nil {
		t.Fatalf("QueuePost: %v", err)
	}
	want := 10000 + 1190 - 2500 - feeFor(10000) - feeFor(1190)
	if got := mustBalances(t, pool, tenant); len(got) != 1 || got[0].Available != want {
		t.Fatalf("balances %+v, want usd %d", got, want)
	}
	assertZeroSums(t, pool, tenant, "usd")
	var entries int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM ledger_entries WHERE tenant_id = $1`, tenant).Scan(&entries); err != nil {
		t.Fatal(err)
	}
	if entries != len(c1.Entries)+len(c2.Entries)+len(r1.Entries) {
		t.Fatalf("%d entries stored, want %d", entries, len(c1.Entries)+len(c2.Entries)+len(r1.Entries))
	}

	again := mustCharge(t, tenant, "usd", 10000, feeFor(10000))
	again.SourceID = c1.SourceID
	err := queue(again)
	if e := errcode.As(err); e == nil || e.Code != CodeDuplicateSource {
		t.Fatalf("a second charge of one payment: %v, want %s", err, CodeDuplicateSource)
	}
	if got := mustBalances(t, pool, tenant); len(got) != 1 || got[0].Available != want {
		t.Fatalf("balances after the refused charge %+v, want usd %d", got, want)
	}
	if err := QueuePost(&pgx.Batch{}, c2, c2); err == nil {
		t.Fatal("QueuePost accepted one transaction twice")
	}
}
