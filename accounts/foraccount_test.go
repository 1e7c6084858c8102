package accounts_test

import (
	"context"
	"testing"

	"github.com/payments-api/payments/accounts"
	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/sandbox"
	"github.com/payments-api/payments/processor/stripe"
)

// TestForAccount: "" resolves the tenant's current account and names it;
// a recorded account resolves that account whatever the tenant has now;
// the tenant's account, once removed, answers processor_account_missing;
// an unknown account name is refused.
func TestForAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, newBox(t, 1))
	platform, err := sandbox.New(sandbox.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer platform.Close()
	r := accounts.NewResolver(f.store, platform, func(key string) (processor.Processor, error) {
		o := stripe.DefaultOptions()
		o.SecretKey, o.Account = key, stripe.AccountTenant
		return stripe.New(o)
	})
	tenant := ids.Format(ids.PrefixTenant, f.tenant)
	want := func(account string, wantProc processor.Processor, wantName, wantAccount string) {
		t.Helper()
		p, got, err := r.ForAccount(ctx, tenant, account)
		if err != nil || got != wantAccount || p.Name() != wantName || (wantProc != nil && p != wantProc) {
			t.Fatalf("ForAccount(%q): %v %q %v, want %s on account %q", account, p, got, err, wantName, wantAccount)
		}
	}
	want("", platform, "sandbox", processor.AccountPlatform)
	want(processor.AccountPlatform, platform, "sandbox", processor.AccountPlatform)
	if _, _, err := r.ForAccount(ctx, tenant, processor.AccountTenant); !errcode.Is(err, accounts.CodeAccountMissing) {
		t.Fatalf("tenant account before it is set: %v, want %s", err, accounts.CodeAccountMissing)
	}

	if _, err := f.store.SetStripe(ctx, f.tenant, keyTenant, []string{hookNew}); err != nil {
		t.Fatal(err)
	}
	want("", nil, stripe.Name, processor.AccountTenant)
	want(processor.AccountTenant, nil, stripe.Name, processor.AccountTenant)
	// A payment made on the platform still goes there.
	want(processor.AccountPlatform, platform, "sandbox", processor.AccountPlatform)

	if err := f.store.DeleteStripe(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.ForAccount(ctx, tenant, processor.AccountTenant); !errcode.Is(err, accounts.CodeAccountMissing) || errcode.As(err).Kind != errcode.KindConflict {
		t.Fatalf("tenant account after delete: %v, want a 409 %s", err, accounts.CodeAccountMissing)
	}
	want("", platform, "sandbox", processor.AccountPlatform)
	if _, _, err := r.ForAccount(ctx, tenant, "connect"); !errcode.Is(err, errcode.CodeParameterInvalid) {
		t.Fatalf("unknown account: %v", err)
	}
	if _, _, err := r.ForAccount(ctx, "ten_bogus", ""); !errcode.Is(err, errcode.CodeResourceMissing) {
		t.Fatalf("bogus tenant: %v", err)
	}
}
