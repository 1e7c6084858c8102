package accounts_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payments-api/payments/accounts"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/secretbox"
)

// TestResealRefusesWhatNoKeyOpens: an account sealed under a key the ring
// lacks stops the rotation with an error naming the tenant, never the
// value, and the row is left as it was; wrong batch sizes are refused.
func TestResealRefusesWhatNoKeyOpens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, newBox(t, 0x11))
	if _, err := f.store.SetStripe(ctx, f.tenant, keyTenant, []string{hookNew}); err != nil {
		t.Fatal(err)
	}
	ring, err := secretbox.NewRing(bytes.Repeat([]byte{0x22}, secretbox.KeyBytes), bytes.Repeat([]byte{0x33}, secretbox.KeyBytes))
	if err != nil {
		t.Fatal(err)
	}
	other := accounts.NewStore(f.router, ring, nil)
	for _, n := range []int{0, -1, accounts.ResealBatchMax + 1} {
		if _, err := other.Reseal(ctx, f.shard, n); err == nil {
			t.Errorf("a batch of %d rows accepted", n)
		}
	}
	_, err = other.Reseal(ctx, f.shard, 10)
	if !errors.Is(err, secretbox.ErrWrongKey) || !strings.Contains(err.Error(), ids.Format(ids.PrefixTenant, f.tenant)) || strings.Contains(err.Error(), keyTenant) {
		t.Fatalf("reseal of a value no key opens: %v", err)
	}
	if acct, ok, err := f.store.Stripe(ctx, f.tenant); err != nil || !ok || acct.SecretKey != keyTenant {
		t.Fatalf("the account after a refused reseal: %v %v", ok, err)
	}
	if _, err := accounts.NewStore(f.router, nil, nil).Reseal(ctx, f.shard, 10); err == nil {
		t.Error("a reseal without a key accepted")
	}
}

// TestResealLeavesARowChangedMeanwhile: a serving process sets the
// tenant's account while the rotation has read the old row and waits to
// write it. The rotation's compare-and-set then writes nothing, counts the
// row as changed, and the account is the one the serving process set.
func TestResealLeavesARowChangedMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	oldKey, newKey := bytes.Repeat([]byte{0x44}, secretbox.KeyBytes), bytes.Repeat([]byte{0x55}, secretbox.KeyBytes)
	oldBox, _ := secretbox.New(oldKey)
	f := newFixture(t, oldBox)
	if _, err := f.store.SetStripe(ctx, f.tenant, keyTenant, []string{hookNew}); err != nil {
		t.Fatal(err)
	}
	ring, err := secretbox.NewRing(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	serving := accounts.NewStore(f.router, ring, nil)

	// The serving process's write, held open: it locks the row.
	tx, err := f.shard.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	sealed, _ := ring.Seal([]byte(keyOther), []byte("processor_accounts/stripe/secret_key/"+f.tenant.String()))
	if _, err := tx.Exec(ctx, `UPDATE processor_accounts SET secret_key_sealed = $2, secret_key_last4 = '5678' WHERE tenant_id = $1`, f.tenant, sealed); err != nil {
		t.Fatal(err)
	}
	type result struct {
		n   secretbox.ResealCount
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := accounts.NewStore(f.router, ring, nil).Reseal(ctx, f.shard, 10)
		done <- result{n, err}
	}()
	// Wait until the rotation's UPDATE waits for the row.
	for i := 0; ; i++ {
		var waiting int
		if err := f.shard.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE processor_accounts SET secret_key_sealed = $3%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 1 {
			break
		}
		if i > 2000 {
			t.Fatal("the rotation never waited for the locked row")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.n.Scanned != 1 || r.n.Resealed != 0 || r.n.Changed != 1 {
		t.Fatalf("reseal beside a concurrent write: %+v %v", r.n, r.err)
	}
	acct, ok, err := serving.Stripe(ctx, f.tenant)
	if err != nil || !ok || acct.SecretKey != keyOther {
		t.Fatalf("the account after the rotation: ok=%v err=%v (the serving process's key must stay)", ok, err)
	}
	// The next pass reseals what the concurrent write left under the old
	// key (its webhook secrets), and then nothing is left.
	n, err := serving.Reseal(ctx, f.shard, 10)
	if err != nil || n.Resealed != 1 || n.Changed != 0 {
		t.Fatalf("second pass: %+v %v", n, err)
	}
	onlyNew, _ := secretbox.New(newKey)
	if acct, ok, err := accounts.NewStore(f.router, onlyNew, nil).Stripe(ctx, f.tenant); err != nil || !ok || acct.SecretKey != keyOther || acct.WebhookSecrets[0] != hookNew {
		t.Fatalf("under the new key alone: ok=%v err=%v", ok, err)
	}
}
