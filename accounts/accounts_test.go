package accounts_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/payments-api/payments/accounts"
	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/sandbox"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/secretbox"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/tenancy"
)

const (
	keyTenant = "sk_test_tenantsownkey000000000001234"
	keyOther  = "sk_live_tenantsownkey000000000005678"
	hookNew   = "whsec_tenant_new_0123456789"
	hookOld   = "whsec_tenant_old_0123456789"
)

type fixture struct {
	router  *sharding.Router
	store   *accounts.Store
	tenant  uuid.UUID
	shard   *sharding.Shard
	tenants *tenancy.Service
}

func newBox(tb testing.TB, fill byte) *secretbox.Box {
	tb.Helper()
	b, err := secretbox.New(bytes.Repeat([]byte{fill}, secretbox.KeyBytes))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func newFixture(tb testing.TB, box *secretbox.Box) fixture {
	tb.Helper()
	ctx := context.Background()
	m, err := sharding.Open(ctx, []sharding.Config{{Name: "s0", Region: "local", DSN: dbtest.NewDatabase(tb)}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Close)
	router := sharding.NewRouter(m)
	tenants := tenancy.NewService(router, tenancy.RateLimitDefaults{}, nil, nil)
	t, _, _, err := tenants.CreateTenant(ctx, tenancy.CreateTenantParams{Name: "Acme", Region: "local"})
	if err != nil {
		tb.Fatal(err)
	}
	sh, err := router.ForTenant(ctx, t.ID)
	if err != nil {
		tb.Fatal(err)
	}
	return fixture{router: router, store: accounts.NewStore(router, box, nil), tenant: t.ID, shard: sh, tenants: tenants}
}

func TestStripeAccountSealedAtRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, newBox(t, 1))
	sum, err := f.store.SetStripe(ctx, f.tenant, keyTenant, []string{hookNew, hookOld})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.SecretKeySet || sum.SecretKeyLast4 != "1234" || sum.Livemode || sum.WebhookSecrets != 2 {
		t.Fatalf("summary %+v", sum)
	}
	var sealedKey, sealedHooks []byte
	if err := f.shard.Pool.QueryRow(ctx, `SELECT secret_key_sealed, webhook_secrets_sealed FROM processor_accounts WHERE tenant_id = $1`, f.tenant).Scan(&sealedKey, &sealedHooks); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{keyTenant, hookNew, hookOld, "tenantsownkey", "whsec_"} {
		if bytes.Contains(sealedKey, []byte(secret)) || bytes.Contains(sealedHooks, []byte(secret)) {
			t.Fatalf("the database holds %q in clear", secret)
		}
	}
	acct, ok, err := f.store.Stripe(ctx, f.tenant)
	if err != nil || !ok || acct.SecretKey != keyTenant || len(acct.WebhookSecrets) != 2 || acct.WebhookSecrets[0] != hookNew {
		t.Fatalf("account %v %v: secret key or webhook secrets differ", ok, err)
	}

	// Another tenant's sealed values do not open for this one.
	other, _, _, err := f.tenants.CreateTenant(ctx, tenancy.CreateTenantParams{Name: "Other", Region: "local"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.shard.Pool.Exec(ctx, `INSERT INTO processor_accounts (tenant_id, processor, secret_key_sealed, secret_key_last4, livemode,
		webhook_secrets_sealed, webhook_secrets_count, created_at, updated_at) SELECT $2, processor, secret_key_sealed, secret_key_last4, livemode,
		webhook_secrets_sealed, webhook_secrets_count, created_at, updated_at FROM processor_accounts WHERE tenant_id = $1`, f.tenant, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.store.Stripe(ctx, other.ID); err == nil {
		t.Fatal("a sealed key copied to another tenant opened")
	}

	// Under another PAYMENTS_ENCRYPTION_KEY, or none, the account is an
	// error, never the platform's processor.
	for name, box := range map[string]*secretbox.Box{"another key": newBox(t, 2), "no key": nil} {
		s := accounts.NewStore(f.router, box, nil)
		if _, _, err := s.Stripe(ctx, f.tenant); err == nil {
			t.Fatalf("%s: the account opened", name)
		} else if bytes.Contains([]byte(err.Error()), []byte("tenantsownkey")) {
			t.Fatalf("%s: the error shows the key: %v", name, err)
		}
	}

	sum2, err := f.store.SetStripe(ctx, f.tenant, keyOther, []string{hookNew})
	if err != nil || !sum2.Livemode || sum2.SecretKeyLast4 != "5678" || sum2.Created != sum.Created {
		t.Fatalf("replaced account %+v %v", sum2, err)
	}
	got, err := f.store.GetStripe(ctx, f.tenant)
	if err != nil || got != sum2 {
		t.Fatalf("get %+v %v, want %+v", got, err, sum2)
	}
	if err := f.store.DeleteStripe(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := f.store.Stripe(ctx, f.tenant); ok || err != nil {
		t.Fatalf("after delete: %v %v", ok, err)
	}
	if err := f.store.DeleteStripe(ctx, f.tenant); !errcode.Is(err, errcode.CodeResourceMissing) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestSetStripeRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, newBox(t, 1))
	for name, c := range map[string]struct {
		key   string
		hooks []string
		param string
	}{
		"publishable key":   {"pk_test_abcdefghijklmnop", []string{hookNew}, "secret_key"},
		"no webhook secret": {keyTenant, nil, "webhook_secrets"},
		"four secrets":      {keyTenant, []string{hookNew, hookNew, hookNew, hookNew}, "webhook_secrets"},
		"bad secret":        {keyTenant, []string{"not-a-secret"}, "webhook_secrets"},
	} {
		_, err := f.store.SetStripe(ctx, f.tenant, c.key, c.hooks)
		e := errcode.As(err)
		if e == nil || e.Param != c.param {
			t.Errorf("%s: %v, want an error about %s", name, err, c.param)
		} else if bytes.Contains([]byte(e.Message), []byte("abcdefghijklmnop")) {
			t.Errorf("%s: the message echoes the key", name)
		}
	}
	if _, err := f.store.SetStripe(ctx, uuid.New(), keyTenant, []string{hookNew}); !errcode.Is(err, errcode.CodeResourceMissing) {
		t.Fatalf("unknown tenant: %v", err)
	}
	noKey := accounts.NewStore(f.router, nil, nil)
	if _, err := noKey.SetStripe(ctx, f.tenant, keyTenant, []string{hookNew}); !errcode.Is(err, accounts.CodeEncryptionNotConfigured) {
		t.Fatalf("without PAYMENTS_ENCRYPTION_KEY: %v", err)
	}
}

func TestResolver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, newBox(t, 1))
	platform, err := sandbox.New(sandbox.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer platform.Close()
	built := map[string]int{}
	r := accounts.NewResolver(f.store, platform, func(key string) (processor.Processor, error) {
		built[key]++
		o := stripe.DefaultOptions()
		o.SecretKey, o.Account = key, stripe.AccountTenant
		return stripe.New(o)
	})
	tenant := ids.Format(ids.PrefixTenant, f.tenant)
	p, err := r.Resolve(ctx, tenant)
	if err != nil || p != processor.Processor(platform) {
		t.Fatalf("tenant without an account: %v %v", p, err)
	}
	if _, err := f.store.SetStripe(ctx, f.tenant, keyTenant, []string{hookNew}); err != nil {
		t.Fatal(err)
	}
	p1, err := r.Resolve(ctx, tenant)
	if err != nil || p1.Name() != stripe.Name {
		t.Fatalf("tenant with an account: %v %v", p1, err)
	}
	p2, _ := r.Resolve(ctx, tenant)
	if p1 != p2 || built[keyTenant] != 1 {
		t.Fatalf("the adapter was rebuilt (%d builds): its breaker would be lost", built[keyTenant])
	}
	if _, err := f.store.SetStripe(ctx, f.tenant, keyOther, []string{hookNew}); err != nil {
		t.Fatal(err)
	}
	if p3, _ := r.Resolve(ctx, tenant); p3 == p1 || built[keyOther] != 1 {
		t.Fatal("a new key did not build a new adapter")
	}
	if err := f.store.DeleteStripe(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	if p4, _ := r.Resolve(ctx, tenant); p4 != processor.Processor(platform) {
		t.Fatal("after delete the tenant is not back on the platform's processor")
	}
	if _, err := r.Resolve(ctx, "ten_bogus"); !errcode.Is(err, errcode.CodeResourceMissing) {
		t.Fatalf("bogus tenant: %v", err)
	}
}
