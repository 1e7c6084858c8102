package accounts

import (
	"context"
	"crypto/sha256"
	"sync"

	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/processor"
)

// AdaptersMax bounds the tenant adapters a Resolver keeps; beyond it one
// is dropped (and rebuilt on its tenant's next payment).
const AdaptersMax = 10_000

// NewStripeFunc builds the processor of a tenant's own Stripe account from
// its secret key.
type NewStripeFunc func(secretKey string) (processor.Processor, error)

// NewTenantStripeFunc is NewStripeFunc told whose account it is (the
// tenant's ID, ten_...), for metrics that name the account.
type NewTenantStripeFunc func(tenant, secretKey string) (processor.Processor, error)

// Resolver picks each tenant's processor: its own Stripe account when the
// Store has one, else the platform's. Tenant adapters are kept per tenant
// and rebuilt only when the key changes, so each keeps its circuit
// breaker. It is safe for concurrent use.
type Resolver struct {
	store     *Store
	platform  processor.Processor
	newStripe NewStripeFunc
	newTenant NewTenantStripeFunc

	mu       sync.Mutex
	adapters map[uuid.UUID]tenantAdapter
}

type tenantAdapter struct {
	key  [32]byte // SHA-256 of the secret key, to notice a change
	proc processor.Processor
}

// closer is implemented by adapters with resources to release (the Stripe
// adapter's breaker gauge).
type closer interface{ Close() }

// NewResolver returns a Resolver. store may be nil (no tenant accounts).
func NewResolver(store *Store, platform processor.Processor, newStripe NewStripeFunc) *Resolver {
	return &Resolver{store: store, platform: platform, newStripe: newStripe, adapters: map[uuid.UUID]tenantAdapter{}}
}

// NewTenantResolver is NewResolver with a factory that is told the tenant.
func NewTenantResolver(store *Store, platform processor.Processor, newTenant NewTenantStripeFunc) *Resolver {
	r := NewResolver(store, platform, nil)
	r.newTenant = newTenant
	return r
}

// Platform returns the platform's processor.
func (r *Resolver) Platform() processor.Processor { return r.platform }

// CodeAccountMissing answers an operation on a payment made on the
// tenant's own Stripe account after that account was removed: only that
// account holds the charge.
const CodeAccountMissing = processor.CodeAccountMissing

// Resolve implements processor.Resolver: the processor of the tenant's new
// payments.
func (r *Resolver) Resolve(ctx context.Context, tenant string) (processor.Processor, error) {
	p, _, err := r.ForAccount(ctx, tenant, "")
	return p, err
}

// ForAccount implements processor.AccountResolver. Account "" resolves the
// tenant's current account (its own when it has one); AccountPlatform the
// platform's processor, whatever the tenant has now; AccountTenant the
// tenant's own account, with its current key (a rotated key of the same
// Stripe account reaches the same charges). Errors: resource_missing
// (tenant), processor_account_missing (409) when the tenant's own account
// was removed, parameter_invalid for an unknown account.
func (r *Resolver) ForAccount(ctx context.Context, tenant, account string) (processor.Processor, string, error) {
	switch account {
	case processor.AccountPlatform:
		return r.platform, processor.AccountPlatform, nil
	case "", processor.AccountTenant:
	default:
		return nil, "", errcode.Invalid(errcode.CodeParameterInvalid, "account", "unknown processor account %q", account)
	}
	if r.store == nil {
		if account == processor.AccountTenant {
			return nil, "", accountMissing()
		}
		return r.platform, processor.AccountPlatform, nil
	}
	id, ok := ids.Parse(ids.PrefixTenant, tenant)
	if !ok {
		return nil, "", errcode.NotFound("tenant", tenant)
	}
	p, own, err := r.own(ctx, id)
	switch {
	case err != nil:
		return nil, "", err
	case own:
		return p, processor.AccountTenant, nil
	case account == processor.AccountTenant:
		return nil, "", accountMissing()
	default:
		return r.platform, processor.AccountPlatform, nil
	}
}

func accountMissing() error {
	return errcode.New(errcode.KindConflict, CodeAccountMissing,
		"the payment was made on the tenant's own Stripe account, which is no longer configured; set it again to operate on the payment")
}

// own returns the adapter of the tenant's own account, and false when it
// has none.
func (r *Resolver) own(ctx context.Context, id uuid.UUID) (processor.Processor, bool, error) {
	acct, own, err := r.store.Stripe(ctx, id)
	if err != nil {
		return nil, false, err
	}
	if !own {
		r.drop(id)
		return nil, false, nil
	}
	sum := sha256.Sum256([]byte(acct.SecretKey))
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.adapters[id]; ok && a.key == sum {
		return a.proc, true, nil
	}
	var p processor.Processor
	if r.newTenant != nil {
		p, err = r.newTenant(ids.Format(ids.PrefixTenant, id), acct.SecretKey)
	} else {
		p, err = r.newStripe(acct.SecretKey)
	}
	if err != nil {
		return nil, false, err
	}
	if old, ok := r.adapters[id]; ok {
		closeProc(old.proc)
	} else if len(r.adapters) >= AdaptersMax {
		for k, a := range r.adapters {
			closeProc(a.proc)
			delete(r.adapters, k)
			break
		}
	}
	r.adapters[id] = tenantAdapter{key: sum, proc: p}
	return p, true, nil
}

// drop forgets a tenant's adapter after its account was removed.
func (r *Resolver) drop(id uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.adapters[id]; ok {
		closeProc(a.proc)
		delete(r.adapters, id)
	}
}

func closeProc(p processor.Processor) {
	if c, ok := p.(closer); ok {
		c.Close()
	}
}
