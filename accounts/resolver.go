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

// Resolve implements processor.Resolver.
func (r *Resolver) Resolve(ctx context.Context, tenant string) (processor.Processor, error) {
	if r.store == nil {
		return r.platform, nil
	}
	id, ok := ids.Parse(ids.PrefixTenant, tenant)
	if !ok {
		return nil, errcode.NotFound("tenant", tenant)
	}
	acct, own, err := r.store.Stripe(ctx, id)
	if err != nil {
		return nil, err
	}
	if !own {
		r.drop(id)
		return r.platform, nil
	}
	sum := sha256.Sum256([]byte(acct.SecretKey))
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.adapters[id]; ok && a.key == sum {
		return a.proc, nil
	}
	var p processor.Processor
	if r.newTenant != nil {
		p, err = r.newTenant(tenant, acct.SecretKey)
	} else {
		p, err = r.newStripe(acct.SecretKey)
	}
	if err != nil {
		return nil, err
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
	return p, nil
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
