// Package accounts owns tenants' own processor accounts and decides which
// processor serves each tenant.
//
// A tenant may bring its own Stripe account: its secret key and webhook
// signing secrets are stored on the tenant's shard (table
// processor_accounts), each sealed with AES-256-GCM under
// PAYMENTS_ENCRYPTION_KEY and bound to the tenant and the field (package
// secretbox). They are never answered by any API and never logged; the
// admin API shows only that a key is set, its last four characters and its
// mode. The tenant's shard rather than the directory keeps the rule that a
// tenant's data lives with the tenant (and moves with it), and every read
// is on the path of a payment that is routed to that shard already.
//
// The Resolver picks the processor of a tenant: its own Stripe account
// when it has one, else the platform's processor (the platform Stripe
// account when STRIPE_SECRET_KEY is set, else the sandbox).
package accounts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/secretbox"
	"github.com/payments-api/payments/sharding"
)

// Limits.
const (
	// CacheTTL is how long a decrypted account stays cached in a process.
	// A change made through another replica takes effect within it.
	CacheTTL = 10 * time.Second
	// CacheEntriesMax bounds the cache; it is emptied when full.
	CacheEntriesMax = 100_000
)

// Codes of this package.
const (
	// CodeEncryptionNotConfigured: storing a key needs
	// PAYMENTS_ENCRYPTION_KEY.
	CodeEncryptionNotConfigured = "encryption_not_configured"
)

// processorStripe is the processor column of Stripe accounts.
const processorStripe = "stripe"

// Stripe is a tenant's own Stripe account, decrypted. It must never be
// logged or answered.
type Stripe struct {
	SecretKey string
	// WebhookSecrets are the signing secrets of the tenant's webhook
	// endpoint, the current one first.
	WebhookSecrets []string
}

// StripeSummary is what may be shown of a tenant's Stripe account.
type StripeSummary struct {
	Tenant         string `json:"tenant" doc:"The tenant." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	Object         string `json:"object" enum:"stripe_account" doc:"Always stripe_account."`
	SecretKeySet   bool   `json:"secret_key_set" doc:"Always true: the tenant's payments go to its own Stripe account."`
	SecretKeyLast4 string `json:"secret_key_last4" doc:"The last four characters of the secret key, to recognize it." example:"4242"`
	Livemode       bool   `json:"livemode" doc:"Whether the key is a live key (sk_live_ or rk_live_)."`
	WebhookSecrets int    `json:"webhook_secrets" doc:"How many webhook signing secrets are set (more than one during a rotation)." example:"1"`
	Created        int64  `json:"created" doc:"When the account was first set, Unix seconds." example:"1764090000"`
	Updated        int64  `json:"updated" doc:"When the account was last set, Unix seconds." example:"1764090000"`
}

// Store keeps tenants' processor accounts. It is safe for concurrent use.
type Store struct {
	router *sharding.Router
	box    *secretbox.Box
	now    func() time.Time

	mu    sync.Mutex
	cache map[uuid.UUID]cached
}

type cached struct {
	acct    *Stripe // nil: the tenant has none
	fetched time.Time
}

// NewStore returns a Store. box is nil when PAYMENTS_ENCRYPTION_KEY is not
// set: then no account can be stored, and a tenant that has one stored
// gets an error rather than the platform's processor. now is nil for
// time.Now.
func NewStore(router *sharding.Router, box *secretbox.Box, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{router: router, box: box, now: now, cache: map[uuid.UUID]cached{}}
}

func adSecretKey(tenantID uuid.UUID) []byte {
	return []byte("processor_accounts/stripe/secret_key/" + tenantID.String())
}

func adWebhookSecrets(tenantID uuid.UUID) []byte {
	return []byte("processor_accounts/stripe/webhook_secrets/" + tenantID.String())
}

// SetStripe stores (or replaces) the tenant's own Stripe account. Errors:
// resource_missing (tenant), parameter_invalid (secret_key,
// webhook_secrets; the messages never echo a secret),
// encryption_not_configured (409).
func (s *Store) SetStripe(ctx context.Context, tenantID uuid.UUID, secretKey string, webhookSecrets []string) (StripeSummary, error) {
	if err := stripe.ValidateSecretKey(secretKey); err != nil {
		return StripeSummary{}, errcode.Invalid(errcode.CodeParameterInvalid, "secret_key", "%s", err.Error())
	}
	if len(webhookSecrets) < 1 || len(webhookSecrets) > stripe.WebhookSecretsMax {
		return StripeSummary{}, errcode.Invalid(errcode.CodeParameterInvalid, "webhook_secrets", "give 1 to %d webhook signing secrets, the current one first", stripe.WebhookSecretsMax)
	}
	for _, w := range webhookSecrets {
		if err := stripe.ValidateWebhookSecret(w); err != nil {
			return StripeSummary{}, errcode.Invalid(errcode.CodeParameterInvalid, "webhook_secrets", "%s", err.Error())
		}
	}
	if s.box == nil {
		return StripeSummary{}, errcode.New(errcode.KindConflict, CodeEncryptionNotConfigured,
			"the server has no PAYMENTS_ENCRYPTION_KEY, so it cannot store a tenant's processor keys")
	}
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return StripeSummary{}, notFound(err, tenantID)
	}
	sealedKey, err := s.box.Seal([]byte(secretKey), adSecretKey(tenantID))
	if err != nil {
		return StripeSummary{}, err
	}
	sealedHooks, err := s.box.Seal([]byte(strings.Join(webhookSecrets, "\n")), adWebhookSecrets(tenantID))
	if err != nil {
		return StripeSummary{}, err
	}
	now := s.now()
	last4 := secretKey[len(secretKey)-4:]
	live := strings.Contains(secretKey[:8], "_live_")
	var sum StripeSummary
	err = sh.Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1)`, tenantID).Scan(&exists); err != nil {
			return fmt.Errorf("look up tenant: %w", err)
		}
		if !exists {
			return errcode.NotFound("tenant", ids.Format(ids.PrefixTenant, tenantID))
		}
		row := tx.QueryRow(ctx, `INSERT INTO processor_accounts (tenant_id, processor, secret_key_sealed, secret_key_last4, livemode,
				webhook_secrets_sealed, webhook_secrets_count, version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)
			ON CONFLICT (tenant_id, processor) DO UPDATE SET secret_key_sealed = excluded.secret_key_sealed,
				secret_key_last4 = excluded.secret_key_last4, livemode = excluded.livemode,
				webhook_secrets_sealed = excluded.webhook_secrets_sealed, webhook_secrets_count = excluded.webhook_secrets_count,
				version = processor_accounts.version + 1, updated_at = excluded.updated_at
			RETURNING `+summaryColumns,
			tenantID, processorStripe, sealedKey, last4, live, sealedHooks, len(webhookSecrets), now)
		sum, err = scanSummary(row)
		return err
	})
	if err != nil {
		return StripeSummary{}, err
	}
	s.forget(tenantID)
	return sum, nil
}

const summaryColumns = `tenant_id, secret_key_last4, livemode, webhook_secrets_count, created_at, updated_at`

func scanSummary(row pgx.Row) (StripeSummary, error) {
	var sum StripeSummary
	var tenantID uuid.UUID
	var created, updated time.Time
	err := row.Scan(&tenantID, &sum.SecretKeyLast4, &sum.Livemode, &sum.WebhookSecrets, &created, &updated)
	if err != nil {
		return sum, err
	}
	sum.Tenant, sum.Object, sum.SecretKeySet = ids.Format(ids.PrefixTenant, tenantID), "stripe_account", true
	sum.Created, sum.Updated = created.Unix(), updated.Unix()
	return sum, nil
}

// GetStripe answers what may be shown of the tenant's Stripe account.
// Errors: resource_missing (tenant, or no account).
func (s *Store) GetStripe(ctx context.Context, tenantID uuid.UUID) (StripeSummary, error) {
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return StripeSummary{}, notFound(err, tenantID)
	}
	sum, err := scanSummary(sh.Pool.QueryRow(ctx, `SELECT `+summaryColumns+` FROM processor_accounts WHERE tenant_id = $1 AND processor = $2`, tenantID, processorStripe))
	if errors.Is(err, pgx.ErrNoRows) {
		return StripeSummary{}, errcode.NotFound("stripe account of tenant", ids.Format(ids.PrefixTenant, tenantID))
	}
	if err != nil {
		return StripeSummary{}, fmt.Errorf("read stripe account: %w", err)
	}
	return sum, nil
}

// DeleteStripe removes the tenant's own Stripe account; its payments go to
// the platform's processor again. Errors: resource_missing.
func (s *Store) DeleteStripe(ctx context.Context, tenantID uuid.UUID) error {
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return notFound(err, tenantID)
	}
	tag, err := sh.Pool.Exec(ctx, `DELETE FROM processor_accounts WHERE tenant_id = $1 AND processor = $2`, tenantID, processorStripe)
	if err != nil {
		return fmt.Errorf("delete stripe account: %w", err)
	}
	s.forget(tenantID)
	if tag.RowsAffected() == 0 {
		return errcode.NotFound("stripe account of tenant", ids.Format(ids.PrefixTenant, tenantID))
	}
	return nil
}

// Stripe returns the tenant's own Stripe account, decrypted, and whether
// it has one; answers are cached for CacheTTL. A stored account that cannot
// be decrypted (no or another PAYMENTS_ENCRYPTION_KEY) is an error, never a
// silent fall back to the platform's account.
func (s *Store) Stripe(ctx context.Context, tenantID uuid.UUID) (Stripe, bool, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[tenantID]
	s.mu.Unlock()
	if ok && now.Sub(c.fetched) < CacheTTL {
		if c.acct == nil {
			return Stripe{}, false, nil
		}
		return *c.acct, true, nil
	}
	acct, err := s.load(ctx, tenantID)
	if err != nil {
		return Stripe{}, false, err
	}
	s.mu.Lock()
	if len(s.cache) >= CacheEntriesMax {
		s.cache = map[uuid.UUID]cached{}
	}
	s.cache[tenantID] = cached{acct: acct, fetched: now}
	s.mu.Unlock()
	if acct == nil {
		return Stripe{}, false, nil
	}
	return *acct, true, nil
}

func (s *Store) load(ctx context.Context, tenantID uuid.UUID) (*Stripe, error) {
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	var sealedKey, sealedHooks []byte
	err = sh.Pool.QueryRow(ctx, `SELECT secret_key_sealed, webhook_secrets_sealed FROM processor_accounts WHERE tenant_id = $1 AND processor = $2`,
		tenantID, processorStripe).Scan(&sealedKey, &sealedHooks)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read stripe account: %w", err)
	}
	if s.box == nil {
		return nil, fmt.Errorf("tenant %s has its own Stripe account, but PAYMENTS_ENCRYPTION_KEY is not set", ids.Format(ids.PrefixTenant, tenantID))
	}
	key, err := s.box.Open(sealedKey, adSecretKey(tenantID))
	if err != nil {
		return nil, fmt.Errorf("open the Stripe key of tenant %s: %w", ids.Format(ids.PrefixTenant, tenantID), err)
	}
	hooks, err := s.box.Open(sealedHooks, adWebhookSecrets(tenantID))
	if err != nil {
		return nil, fmt.Errorf("open the webhook secrets of tenant %s: %w", ids.Format(ids.PrefixTenant, tenantID), err)
	}
	return &Stripe{SecretKey: string(key), WebhookSecrets: strings.Split(string(hooks), "\n")}, nil
}

// forget drops the tenant's cached account in this process.
func (s *Store) forget(tenantID uuid.UUID) {
	s.mu.Lock()
	delete(s.cache, tenantID)
	s.mu.Unlock()
}

// notFound keeps the router's resource_missing (an unknown tenant) and
// passes other errors on.
func notFound(err error, tenantID uuid.UUID) error {
	if errcode.Is(err, errcode.CodeResourceMissing) {
		return errcode.NotFound("tenant", ids.Format(ids.PrefixTenant, tenantID))
	}
	return err
}
