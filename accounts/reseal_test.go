package accounts_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

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
