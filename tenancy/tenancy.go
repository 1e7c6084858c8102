// Package tenancy owns tenants (the merchants), their secret API keys,
// authentication of every request, and per-tenant rate limits.
//
// Where things live: a tenant's account row is on the tenant's own shard;
// the directory (tenant → shard) and the API keys are on the directory
// shard, because a request is authenticated before its tenant is known.
package tenancy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/sharding"
)

// Limits on client-controlled input and on memory.
const (
	NameLengthMax         = 200
	SecretBytes           = 32 // 256 random bits per key
	AuthCacheTTL          = 5 * time.Second
	AuthCacheEntriesMax   = 100_000
	RateLimitPerSecondMax = 1_000_000
	ListLimitMax          = 100
)

// Status of a tenant.
type Status string

// Tenant statuses.
const (
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
)

// Mode of an API key: test keys and live keys.
type Mode string

// Key modes.
const (
	ModeTest Mode = "test"
	ModeLive Mode = "live"
)

// Tenant is a merchant account.
type Tenant struct {
	ID                 uuid.UUID
	Name               string
	Region             string
	Shard              string
	Status             Status
	RateLimitPerSecond int
	RateLimitBurst     int
	CreatedAt          time.Time
}

// PublicID is the tenant's API identifier ("ten_...").
func (t Tenant) PublicID() string { return ids.Format(ids.PrefixTenant, t.ID) }

// APIKey describes a key without its secret.
type APIKey struct {
	ID        uuid.UUID
	TenantID  uuid.UUID
	Display   string // the prefix and last four characters, for humans
	Mode      Mode
	ReadOnly  bool
	CreatedAt time.Time
	RevokedAt *time.Time
}

// PublicID is the key's API identifier ("key_...").
func (k APIKey) PublicID() string { return ids.Format(ids.PrefixAPIKey, k.ID) }

// Principal is the authenticated caller of a request.
type Principal struct {
	TenantID           uuid.UUID
	KeyID              uuid.UUID
	Mode               Mode
	ReadOnly           bool
	Shard              *sharding.Shard
	RateLimitPerSecond int
	RateLimitBurst     int
}

// Service implements the tenancy use cases.
type Service struct {
	router   *sharding.Router
	now      func() time.Time
	log      *slog.Logger
	defaults RateLimitDefaults

	mu    sync.Mutex
	cache map[[32]byte]cachedAuth
	// refused is the negative cache: keys that answered unauthenticated
	// or tenant_disabled, bounded apart from cache.
	refused   map[[32]byte]cachedAuth
	addresses addressLimiter
}

// RateLimitDefaults apply to tenants created without explicit limits.
type RateLimitDefaults struct {
	PerSecond int
	Burst     int
}

type cachedAuth struct {
	principal Principal
	err       error
	expires   time.Time
}

// NewService returns the tenancy service. now may be nil for time.Now.
func NewService(router *sharding.Router, defaults RateLimitDefaults, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if defaults.PerSecond <= 0 {
		defaults.PerSecond = 100
	}
	if defaults.Burst <= 0 {
		defaults.Burst = 2 * defaults.PerSecond
	}
	return &Service{router: router, now: now, log: log, defaults: defaults, cache: map[[32]byte]cachedAuth{}, refused: map[[32]byte]cachedAuth{}}
}

// CreateTenantParams are the inputs of CreateTenant.
type CreateTenantParams struct {
	Name               string
	Region             string
	RateLimitPerSecond int // 0: the default
	RateLimitBurst     int // 0: the default
	KeyMode            Mode
	// Finish, when set, runs inside the directory transaction that makes
	// the tenant reachable, so that what it writes (the Idempotency-Key's
	// stored answer) commits with the tenant or not at all.
	Finish func(ctx context.Context, tx pgx.Tx, t Tenant, secret string, key APIKey) error
}

// CreateTenant places a new tenant on a shard of its region, writes its
// account there, records the placement and issues its first secret key. The
// secret is returned once and stored only as a hash.
//
// Errors: parameter_invalid, region_unavailable.
func (s *Service) CreateTenant(ctx context.Context, p CreateTenantParams) (Tenant, string, APIKey, error) {
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" || utf8.RuneCountInString(p.Name) > NameLengthMax {
		return Tenant{}, "", APIKey{}, errcode.Invalid(errcode.CodeParameterInvalid, "name", "name must be 1 to %d characters", NameLengthMax)
	}
	if p.RateLimitPerSecond == 0 {
		p.RateLimitPerSecond = s.defaults.PerSecond
	}
	if p.RateLimitBurst == 0 {
		p.RateLimitBurst = max(s.defaults.Burst, p.RateLimitPerSecond)
	}
	if err := validateRateLimit(p.RateLimitPerSecond, p.RateLimitBurst); err != nil {
		return Tenant{}, "", APIKey{}, err
	}
	if p.KeyMode == "" {
		p.KeyMode = ModeTest
	}
	id := ids.New()
	shard, err := s.router.Map().Place(id, p.Region)
	if err != nil {
		return Tenant{}, "", APIKey{}, err
	}
	t := Tenant{
		ID: id, Name: p.Name, Region: p.Region, Shard: shard.Name, Status: StatusActive,
		RateLimitPerSecond: p.RateLimitPerSecond, RateLimitBurst: p.RateLimitBurst,
	}
	// The account row goes first: if the process dies before the directory
	// write, an orphan row that no key reaches is left, never a key that
	// points at no account.
	err = shard.Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO tenants (tenant_id, name, region, shard, status, rate_limit_per_second, rate_limit_burst)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at`,
			t.ID, t.Name, t.Region, t.Shard, t.Status, t.RateLimitPerSecond, t.RateLimitBurst).Scan(&t.CreatedAt)
	})
	if err != nil {
		return Tenant{}, "", APIKey{}, fmt.Errorf("insert tenant: %w", err)
	}
	secret, key, hash, err := newKey(id, p.KeyMode, false)
	if err != nil {
		return Tenant{}, "", APIKey{}, err
	}
	key.CreatedAt = t.CreatedAt
	dir := s.router.Map().Directory()
	err = dir.Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := s.router.Record(ctx, tx, id, shard); err != nil {
			return err
		}
		if err := insertKey(ctx, tx, key, hash); err != nil {
			return err
		}
		if p.Finish != nil {
			return p.Finish(ctx, tx, t, secret, key)
		}
		return nil
	})
	if err != nil {
		return Tenant{}, "", APIKey{}, fmt.Errorf("record tenant: %w", err)
	}
	return t, secret, key, nil
}

func validateRateLimit(perSecond, burst int) error {
	if perSecond < 1 || perSecond > RateLimitPerSecondMax {
		return errcode.Invalid(errcode.CodeParameterInvalid, "rate_limit_per_second", "rate_limit_per_second must be 1 to %d", RateLimitPerSecondMax)
	}
	if burst < 1 || burst > RateLimitPerSecondMax {
		return errcode.Invalid(errcode.CodeParameterInvalid, "rate_limit_burst", "rate_limit_burst must be 1 to %d", RateLimitPerSecondMax)
	}
	return nil
}

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newKey mints a secret "sk_test_..." or "sk_live_..." with 256 random bits.
// The read-only flag lives in the database, not in the key's text.
func newKey(tenantID uuid.UUID, mode Mode, readOnly bool) (string, APIKey, [32]byte, error) {
	b := make([]byte, SecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", APIKey{}, [32]byte{}, fmt.Errorf("random key: %w", err)
	}
	// Base62 of 256 bits is 43 characters.
	n := new(big.Int).SetBytes(b)
	var sb strings.Builder
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := 0; i < 43; i++ {
		n.DivMod(n, base, mod)
		sb.WriteByte(alphabet[mod.Int64()])
	}
	secret := "sk_" + string(mode) + "_" + sb.String()
	key := APIKey{
		ID: ids.New(), TenantID: tenantID, Mode: mode, ReadOnly: readOnly,
		Display: secret[:len("sk_")+len(mode)+1] + "..." + secret[len(secret)-4:],
	}
	return secret, key, sha256.Sum256([]byte(secret)), nil
}

func insertKey(ctx context.Context, tx pgx.Tx, key APIKey, hash [32]byte) error {
	_, err := tx.Exec(ctx, `INSERT INTO api_keys (tenant_id, id, key_hash, display, mode, read_only) VALUES ($1, $2, $3, $4, $5, $6)`,
		key.TenantID, key.ID, hash[:], key.Display, key.Mode, key.ReadOnly)
	if err != nil {
		return fmt.Errorf("insert api key: %w", err)
	}
	return nil
}

// GetTenant returns a tenant's account. Errors: resource_missing.
func (s *Service) GetTenant(ctx context.Context, id uuid.UUID) (Tenant, error) {
	shard, err := s.router.ForTenant(ctx, id)
	if err != nil {
		return Tenant{}, err
	}
	t, err := scanTenant(shard.Pool.QueryRow(ctx, selectTenant+` WHERE tenant_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Tenant{}, errcode.NotFound("tenant", ids.Format(ids.PrefixTenant, id))
	}
	return t, err
}

const selectTenant = `SELECT tenant_id, name, region, shard, status, rate_limit_per_second, rate_limit_burst, created_at FROM tenants`

func scanTenant(row pgx.Row) (Tenant, error) {
	var t Tenant
	err := row.Scan(&t.ID, &t.Name, &t.Region, &t.Shard, &t.Status, &t.RateLimitPerSecond, &t.RateLimitBurst, &t.CreatedAt)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("read tenant: %w", err)
	}
	return t, err
}

// ListTenants answers tenants newest first across every shard, with cursor
// pagination by tenant ID. It returns at most limit tenants and whether more
// exist.
func (s *Service) ListTenants(ctx context.Context, limit int, startingAfter *uuid.UUID) ([]Tenant, bool, error) {
	if limit < 1 || limit > ListLimitMax {
		return nil, false, errcode.Invalid(errcode.CodeParameterInvalid, "limit", "limit must be 1 to %d", ListLimitMax)
	}
	var all []Tenant
	for _, shard := range s.router.Map().All() {
		q := selectTenant + ` WHERE ($1::UUID IS NULL OR tenant_id < $1) ORDER BY tenant_id DESC LIMIT $2`
		rows, err := shard.Pool.Query(ctx, q, startingAfter, limit+1)
		if err != nil {
			return nil, false, fmt.Errorf("list tenants on %s: %w", shard.Name, err)
		}
		for rows.Next() {
			t, err := scanTenant(rows)
			if err != nil {
				rows.Close()
				return nil, false, err
			}
			all = append(all, t)
		}
		if err := rows.Err(); err != nil {
			return nil, false, fmt.Errorf("list tenants on %s: %w", shard.Name, err)
		}
	}
	// Merge: IDs are UUIDv7, so ID order is creation order across shards.
	sortTenantsDesc(all)
	more := len(all) > limit
	if more {
		all = all[:limit]
	}
	return all, more, nil
}

func sortTenantsDesc(ts []Tenant) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && lessUUID(ts[j-1].ID, ts[j].ID); j-- {
			ts[j-1], ts[j] = ts[j], ts[j-1]
		}
	}
}

func lessUUID(a, b uuid.UUID) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// UpdateTenantParams changes a tenant; nil fields stay as they are.
type UpdateTenantParams struct {
	Status             *Status
	RateLimitPerSecond *int
	RateLimitBurst     *int
}

// UpdateTenant changes a tenant's status or limits. The change reaches
// authentication within AuthCacheTTL. Errors: resource_missing,
// parameter_invalid.
func (s *Service) UpdateTenant(ctx context.Context, id uuid.UUID, p UpdateTenantParams) (Tenant, error) {
	if p.Status != nil && *p.Status != StatusActive && *p.Status != StatusDisabled {
		return Tenant{}, errcode.Invalid(errcode.CodeParameterInvalid, "status", "status must be 'active' or 'disabled'")
	}
	shard, err := s.router.ForTenant(ctx, id)
	if err != nil {
		return Tenant{}, err
	}
	var t Tenant
	err = shard.Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
		cur, err := scanTenant(tx.QueryRow(ctx, selectTenant+` WHERE tenant_id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return errcode.NotFound("tenant", ids.Format(ids.PrefixTenant, id))
		}
		if err != nil {
			return err
		}
		if p.Status != nil {
			cur.Status = *p.Status
		}
		if p.RateLimitPerSecond != nil {
			cur.RateLimitPerSecond = *p.RateLimitPerSecond
		}
		if p.RateLimitBurst != nil {
			cur.RateLimitBurst = *p.RateLimitBurst
		}
		if err := validateRateLimit(cur.RateLimitPerSecond, cur.RateLimitBurst); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE tenants SET status = $2, rate_limit_per_second = $3, rate_limit_burst = $4, updated_at = now() WHERE tenant_id = $1`,
			id, cur.Status, cur.RateLimitPerSecond, cur.RateLimitBurst)
		t = cur
		return err
	})
	return t, err
}

// CreateKey issues another secret key for a tenant; the secret is returned
// once. Errors: resource_missing.
func (s *Service) CreateKey(ctx context.Context, tenantID uuid.UUID, mode Mode, readOnly bool) (string, APIKey, error) {
	return s.CreateKeyThen(ctx, tenantID, mode, readOnly, nil)
}

// CreateKeyThen is CreateKey with finish, when not nil, run inside the
// directory transaction that inserts the key, so that what it writes (the
// Idempotency-Key's stored answer) commits with the key or not at all.
func (s *Service) CreateKeyThen(ctx context.Context, tenantID uuid.UUID, mode Mode, readOnly bool,
	finish func(ctx context.Context, tx pgx.Tx, secret string, key APIKey) error) (string, APIKey, error) {
	if mode == "" {
		mode = ModeTest
	}
	if mode != ModeTest && mode != ModeLive {
		return "", APIKey{}, errcode.Invalid(errcode.CodeParameterInvalid, "mode", "mode must be 'test' or 'live'")
	}
	if _, err := s.GetTenant(ctx, tenantID); err != nil {
		return "", APIKey{}, err
	}
	secret, key, hash, err := newKey(tenantID, mode, readOnly)
	if err != nil {
		return "", APIKey{}, err
	}
	err = s.router.Map().Directory().Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := insertKey(ctx, tx, key, hash); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT created_at FROM api_keys WHERE tenant_id = $1 AND id = $2`, tenantID, key.ID).Scan(&key.CreatedAt); err != nil {
			return err
		}
		if finish != nil {
			return finish(ctx, tx, secret, key)
		}
		return nil
	})
	if err != nil {
		return "", APIKey{}, err
	}
	return secret, key, nil
}

// ListKeys lists a tenant's keys, newest first, without secrets.
func (s *Service) ListKeys(ctx context.Context, tenantID uuid.UUID) ([]APIKey, error) {
	if _, err := s.GetTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	rows, err := s.router.Map().Directory().Pool.Query(ctx, `SELECT id, tenant_id, display, mode, read_only, created_at, revoked_at
		FROM api_keys WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1000`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		var k APIKey
		if err := rows.Scan(&k.ID, &k.TenantID, &k.Display, &k.Mode, &k.ReadOnly, &k.CreatedAt, &k.RevokedAt); err != nil {
			return nil, fmt.Errorf("scan key: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeKey revokes a key; it stops authenticating within AuthCacheTTL.
// Revoking twice is not an error. Errors: resource_missing.
func (s *Service) RevokeKey(ctx context.Context, tenantID, keyID uuid.UUID) (APIKey, error) {
	var k APIKey
	err := s.router.Map().Directory().Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE tenant_id = $1 AND id = $2
			RETURNING id, tenant_id, display, mode, read_only, created_at, revoked_at`, tenantID, keyID).
			Scan(&k.ID, &k.TenantID, &k.Display, &k.Mode, &k.ReadOnly, &k.CreatedAt, &k.RevokedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return errcode.NotFound("api key", ids.Format(ids.PrefixAPIKey, keyID))
		}
		return err
	})
	return k, err
}

var (
	errUnauthenticated = errcode.New(errcode.KindUnauthenticated, errcode.CodeUnauthenticated,
		"invalid API key: send 'Authorization: Bearer sk_test_...' with an active secret key")
	errDisabled = errcode.New(errcode.KindForbidden, errcode.CodeTenantDisabled, "this account is disabled")
)

// SecretLengthMax bounds what Authenticate will hash.
const SecretLengthMax = 128

// Authenticate resolves a secret key to its principal. Results, including
// refusals, are cached for AuthCacheTTL, which bounds how long a revoked key
// or a disabled tenant keeps working. Errors: unauthenticated (unknown,
// malformed or revoked key), tenant_disabled.
func (s *Service) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if len(secret) > SecretLengthMax || !(strings.HasPrefix(secret, "sk_test_") || strings.HasPrefix(secret, "sk_live_")) {
		return Principal{}, errUnauthenticated
	}
	hash := sha256.Sum256([]byte(secret))
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[hash]
	if !ok {
		c, ok = s.refused[hash]
	}
	s.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.principal, c.err
	}
	p, err := s.lookup(ctx, hash)
	if err != nil && errcode.As(err) == nil {
		return Principal{}, err // database trouble: do not cache
	}
	s.mu.Lock()
	cache, limit := s.cache, AuthCacheEntriesMax
	if err != nil {
		cache, limit = s.refused, RefusalCacheEntriesMax
	}
	if len(cache) >= limit {
		clear(cache)
	}
	delete(s.cache, hash)
	delete(s.refused, hash)
	cache[hash] = cachedAuth{principal: p, err: err, expires: now.Add(AuthCacheTTL)}
	s.mu.Unlock()
	return p, err
}

// cachedGood answers a key that authenticated within AuthCacheTTL.
func (s *Service) cachedGood(secret string) (Principal, bool) {
	if len(secret) > SecretLengthMax {
		return Principal{}, false
	}
	hash := sha256.Sum256([]byte(secret))
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[hash]
	s.mu.Unlock()
	if !ok || c.err != nil || !now.Before(c.expires) {
		return Principal{}, false
	}
	return c.principal, true
}

func (s *Service) lookup(ctx context.Context, hash [32]byte) (Principal, error) {
	var p Principal
	var stored []byte
	var revoked *time.Time
	err := s.router.Map().Directory().Pool.QueryRow(ctx,
		`SELECT tenant_id, id, key_hash, mode, read_only, revoked_at FROM api_keys WHERE key_hash = $1`, hash[:]).
		Scan(&p.TenantID, &p.KeyID, &stored, &p.Mode, &p.ReadOnly, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, errUnauthenticated
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up api key: %w", err)
	}
	// The index lookup already matched; the constant-time comparison keeps
	// the final decision free of timing differences.
	if subtle.ConstantTimeCompare(stored, hash[:]) != 1 || revoked != nil {
		return Principal{}, errUnauthenticated
	}
	shard, err := s.router.ForTenant(ctx, p.TenantID)
	if err != nil {
		if errcode.Is(err, errcode.CodeResourceMissing) {
			return Principal{}, errUnauthenticated
		}
		return Principal{}, err
	}
	p.Shard = shard
	var status Status
	err = shard.Pool.QueryRow(ctx, `SELECT status, rate_limit_per_second, rate_limit_burst FROM tenants WHERE tenant_id = $1`, p.TenantID).
		Scan(&status, &p.RateLimitPerSecond, &p.RateLimitBurst)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, errUnauthenticated
	}
	if err != nil {
		return Principal{}, fmt.Errorf("read tenant status: %w", err)
	}
	if status != StatusActive {
		return Principal{}, errDisabled
	}
	return p, nil
}
