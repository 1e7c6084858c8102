// Package risk holds tenants' location risk rules: their types and limits,
// their SQL (on the tenant's shard), a short in-memory cache of each
// tenant's rules, and the Redis side of their evaluation, a Lua fragment
// that the rate limiter runs in the same script and round trip as the
// tenant's rate limit (tenancy.RateLimiter.AllowPayment).
package risk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/sharding"
)

// Kinds of rules.
const (
	KindVelocity         = "velocity"
	KindImpossibleTravel = "impossible_travel"
)

// Actions of rules.
const (
	ActionBlock  = "block"
	ActionReview = "review"
)

// Limits of rules.
const (
	RulesPerTenantMax   = 20
	PrecisionMin        = 4
	PrecisionMax        = 7
	MaxPaymentsMax      = 100_000
	WindowSecondsMax    = 86_400
	SpeedKmhMax         = 100_000
	RulesCacheTTL       = 5 * time.Second
	CodeRulesLimit      = "risk_rules_limit_reached"
	CodeRiskRuleMissing = errcode.CodeResourceMissing
)

// Rule is one location risk rule of a tenant.
type Rule struct {
	ID         uuid.UUID
	TenantID   uuid.UUID
	Kind       string
	Action     string
	FailClosed bool
	// Velocity: more than MaxPayments payments in one geohash cell of
	// Precision characters within WindowSeconds.
	Precision     int
	MaxPayments   int
	WindowSeconds int
	// Impossible travel: the same customer at two places whose implied
	// speed exceeds SpeedKmh.
	SpeedKmh  int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PublicID is the rule's API identifier ("rr_...").
func (r Rule) PublicID() string { return ids.Format(ids.PrefixRiskRule, r.ID) }

// Validate checks a rule's fields against its kind and the limits. Errors:
// parameter_invalid or parameter_missing with the field as param.
func (r Rule) Validate() error {
	switch r.Kind {
	case KindVelocity:
		if r.Precision < PrecisionMin || r.Precision > PrecisionMax {
			return errcode.Invalid(errcode.CodeParameterInvalid, "geohash_precision", "geohash_precision must be %d to %d", PrecisionMin, PrecisionMax)
		}
		if r.MaxPayments < 1 || r.MaxPayments > MaxPaymentsMax {
			return errcode.Invalid(errcode.CodeParameterInvalid, "max_payments", "max_payments must be 1 to %d", MaxPaymentsMax)
		}
		if r.WindowSeconds < 1 || r.WindowSeconds > WindowSecondsMax {
			return errcode.Invalid(errcode.CodeParameterInvalid, "window_seconds", "window_seconds must be 1 to %d", WindowSecondsMax)
		}
		if r.SpeedKmh != 0 {
			return errcode.Invalid(errcode.CodeParameterInvalid, "speed_kmh", "speed_kmh applies to impossible_travel rules only")
		}
	case KindImpossibleTravel:
		if r.SpeedKmh < 1 || r.SpeedKmh > SpeedKmhMax {
			return errcode.Invalid(errcode.CodeParameterInvalid, "speed_kmh", "speed_kmh must be 1 to %d", SpeedKmhMax)
		}
		if r.Precision != 0 || r.MaxPayments != 0 || r.WindowSeconds != 0 {
			return errcode.Invalid(errcode.CodeParameterInvalid, "geohash_precision", "geohash_precision, max_payments and window_seconds apply to velocity rules only")
		}
	case "":
		return errcode.Invalid(errcode.CodeParameterMissing, "kind", "kind is required: velocity or impossible_travel")
	default:
		return errcode.Invalid(errcode.CodeParameterInvalid, "kind", "kind must be velocity or impossible_travel")
	}
	switch r.Action {
	case ActionBlock, ActionReview:
	case "":
		return errcode.Invalid(errcode.CodeParameterMissing, "action", "action is required: block or review")
	default:
		return errcode.Invalid(errcode.CodeParameterInvalid, "action", "action must be block or review")
	}
	return nil
}

// Service stores rules and caches each tenant's for RulesCacheTTL, so that
// a payment reads them from memory. A change made through this process is
// seen at once; one made through another replica within RulesCacheTTL.
type Service struct {
	router *sharding.Router
	now    func() time.Time

	mu    sync.Mutex
	cache map[uuid.UUID]cached

	failedOpen prometheus.Counter
}

type cached struct {
	rules []Rule
	at    time.Time
}

// NewService returns the service; now is the clock of the rules' windows.
func NewService(router *sharding.Router, now func() time.Time, reg prometheus.Registerer) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{router: router, now: now, cache: map[uuid.UUID]cached{},
		failedOpen: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payments_risk_rules_failed_open_total",
			Help: "Risk rule evaluations skipped because Redis did not answer (the payment went through; fail_closed rules are not counted).",
		})}
	if reg != nil {
		reg.MustRegister(s.failedOpen)
	}
	return s
}

// Now is the rules' clock.
func (s *Service) Now() time.Time { return s.now() }

// CountFailedOpen counts n rules that could not be evaluated and let the
// payment through.
func (s *Service) CountFailedOpen(n int) {
	if n > 0 {
		s.failedOpen.Add(float64(n))
	}
}

const ruleColumns = `tenant_id, id, kind, action, fail_closed, geohash_precision, max_payments, window_seconds, speed_kmh_max, created_at, updated_at`

func scanRule(row pgx.Row) (Rule, error) {
	var r Rule
	var prec, maxp, win, speed *int32
	if err := row.Scan(&r.TenantID, &r.ID, &r.Kind, &r.Action, &r.FailClosed, &prec, &maxp, &win, &speed, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return r, err
	}
	deref := func(p *int32) int {
		if p == nil {
			return 0
		}
		return int(*p)
	}
	r.Precision, r.MaxPayments, r.WindowSeconds, r.SpeedKmh = deref(prec), deref(maxp), deref(win), deref(speed)
	return r, nil
}

func nullable(v int) *int32 {
	if v == 0 {
		return nil
	}
	n := int32(v)
	return &n
}

// Create stores a new rule. Errors: the validation codes,
// risk_rules_limit_reached (400) beyond RulesPerTenantMax.
func (s *Service) Create(ctx context.Context, tenantID uuid.UUID, r Rule) (Rule, error) {
	if err := r.Validate(); err != nil {
		return Rule{}, err
	}
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return Rule{}, err
	}
	now := s.now()
	r.ID, r.TenantID, r.CreatedAt, r.UpdatedAt = ids.New(), tenantID, now, now
	err = sh.Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM risk_rules WHERE tenant_id = $1`, tenantID).Scan(&n); err != nil {
			return fmt.Errorf("count risk rules: %w", err)
		}
		if n >= RulesPerTenantMax {
			return errcode.Invalid(CodeRulesLimit, "kind", "an account may have at most %d risk rules; delete one first", RulesPerTenantMax)
		}
		_, err := tx.Exec(ctx, `INSERT INTO risk_rules (`+ruleColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			r.TenantID, r.ID, r.Kind, r.Action, r.FailClosed, nullable(r.Precision), nullable(r.MaxPayments), nullable(r.WindowSeconds), nullable(r.SpeedKmh), r.CreatedAt, r.UpdatedAt)
		if err != nil {
			return fmt.Errorf("insert risk rule: %w", err)
		}
		return nil
	})
	if err != nil {
		return Rule{}, err
	}
	s.forget(tenantID)
	return r, nil
}

// List answers the tenant's rules, oldest first, from the database.
func (s *Service) List(ctx context.Context, tenantID uuid.UUID) ([]Rule, error) {
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	rows, err := sh.Pool.Query(ctx, `SELECT `+ruleColumns+` FROM risk_rules WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2`, tenantID, RulesPerTenantMax+1)
	if err != nil {
		return nil, fmt.Errorf("list risk rules: %w", err)
	}
	defer rows.Close()
	out := []Rule{}
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, fmt.Errorf("list risk rules: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Get answers one rule. Errors: resource_missing.
func (s *Service) Get(ctx context.Context, tenantID, id uuid.UUID) (Rule, error) {
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return Rule{}, err
	}
	r, err := scanRule(sh.Pool.QueryRow(ctx, `SELECT `+ruleColumns+` FROM risk_rules WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Rule{}, errcode.NotFound("risk_rule", ids.Format(ids.PrefixRiskRule, id))
	}
	if err != nil {
		return Rule{}, fmt.Errorf("read risk rule: %w", err)
	}
	return r, nil
}

// Update changes a rule with change, which receives the stored rule and
// may refuse; the result is validated again. Errors: resource_missing, the validation
// codes.
func (s *Service) Update(ctx context.Context, tenantID, id uuid.UUID, change func(*Rule) error) (Rule, error) {
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return Rule{}, err
	}
	var out Rule
	err = sh.Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
		r, err := scanRule(tx.QueryRow(ctx, `SELECT `+ruleColumns+` FROM risk_rules WHERE tenant_id = $1 AND id = $2`, tenantID, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return errcode.NotFound("risk_rule", ids.Format(ids.PrefixRiskRule, id))
		}
		if err != nil {
			return fmt.Errorf("read risk rule: %w", err)
		}
		if err := change(&r); err != nil {
			return err
		}
		r.ID, r.TenantID = id, tenantID
		if err := r.Validate(); err != nil {
			return err
		}
		r.UpdatedAt = s.now()
		_, err = tx.Exec(ctx, `UPDATE risk_rules SET kind = $3, action = $4, fail_closed = $5, geohash_precision = $6, max_payments = $7,
			window_seconds = $8, speed_kmh_max = $9, updated_at = $10 WHERE tenant_id = $1 AND id = $2`,
			tenantID, id, r.Kind, r.Action, r.FailClosed, nullable(r.Precision), nullable(r.MaxPayments), nullable(r.WindowSeconds), nullable(r.SpeedKmh), r.UpdatedAt)
		if err != nil {
			return fmt.Errorf("update risk rule: %w", err)
		}
		out = r
		return nil
	})
	if err != nil {
		return Rule{}, err
	}
	s.forget(tenantID)
	return out, nil
}

// Delete removes a rule. Errors: resource_missing.
func (s *Service) Delete(ctx context.Context, tenantID, id uuid.UUID) error {
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return err
	}
	tag, err := sh.Pool.Exec(ctx, `DELETE FROM risk_rules WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	if err != nil {
		return fmt.Errorf("delete risk rule: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errcode.NotFound("risk_rule", ids.Format(ids.PrefixRiskRule, id))
	}
	s.forget(tenantID)
	return nil
}

// Rules answers the tenant's rules through the cache.
func (s *Service) Rules(ctx context.Context, tenantID uuid.UUID) ([]Rule, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[tenantID]
	s.mu.Unlock()
	if ok && now.Sub(c.at) < RulesCacheTTL && !now.Before(c.at) {
		return c.rules, nil
	}
	rules, err := s.List(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.cache[tenantID] = cached{rules: rules, at: now}
	s.mu.Unlock()
	return rules, nil
}

func (s *Service) forget(tenantID uuid.UUID) {
	s.mu.Lock()
	delete(s.cache, tenantID)
	s.mu.Unlock()
}
