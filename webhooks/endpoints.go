package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/idempotency"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/listing"
	"github.com/payments-api/payments/secretbox"
	"github.com/payments-api/payments/sharding"
)

// Limits of endpoints.
const (
	// EndpointsPerTenantMax bounds a tenant's endpoints (Stripe allows 16),
	// and so the fan-out of one event.
	EndpointsPerTenantMax = 16
	// DescriptionLengthMax bounds an endpoint's description, in characters.
	DescriptionLengthMax = 1000
	// EnabledEventsMax bounds the list of event types.
	EnabledEventsMax = 64
	// AllEvents subscribes an endpoint to every event type, present and future.
	AllEvents = "*"
)

// Codes of this package besides the URL codes.
const (
	// CodeEndpointLimit: the tenant has EndpointsPerTenantMax endpoints.
	CodeEndpointLimit = "webhook_endpoint_limit_reached"
	// CodeEndpointDisabled: a redelivery names a disabled endpoint.
	CodeEndpointDisabled = "webhook_endpoint_disabled"
)

// Status is an endpoint's state.
type Status string

// Endpoint statuses.
const (
	StatusEnabled  Status = "enabled"
	StatusDisabled Status = "disabled"
)

// Reasons an endpoint is disabled.
const (
	DisabledRequested = "requested" // the merchant disabled it
	DisabledFailing   = "failing"   // every delivery failed for the retry span
)

// Endpoint is a merchant's webhook endpoint.
type Endpoint struct {
	ID             uuid.UUID
	TenantID       uuid.UUID
	URL            string
	Description    *string
	EnabledEvents  []string
	Status         Status
	DisabledReason *string
	Secret         Secret
	// PreviousSecret keeps signing until PreviousSecretExpiresAt after a
	// rotation.
	PreviousSecret          *Secret
	PreviousSecretExpiresAt *time.Time
	FailingSince            *time.Time
	Version                 int
	CreatedAt               time.Time
	UpdatedAt               time.Time
	Deleted                 bool
}

// PublicID is the endpoint's API identifier ("we_...").
func (e Endpoint) PublicID() string { return ids.Format(ids.PrefixWebhook, e.ID) }

// Subscribes reports whether the endpoint wants events of type t.
func (e Endpoint) Subscribes(t string) bool {
	for _, s := range e.EnabledEvents {
		if s == AllEvents || s == t {
			return true
		}
	}
	return false
}

// signingSecrets answers the secrets that sign a delivery at now: the
// current one, then the previous one while it is valid.
func (e Endpoint) signingSecrets(now time.Time) []Secret {
	out := []Secret{e.Secret}
	if e.PreviousSecret != nil && e.PreviousSecretExpiresAt != nil && now.Before(*e.PreviousSecretExpiresAt) {
		out = append(out, *e.PreviousSecret)
	}
	return out
}

// EndpointView is the public JSON shape of an endpoint. The secret is
// present only in the answers of creation and rotation.
type EndpointView struct {
	ID             string   `json:"id" doc:"Unique identifier, prefixed we_." example:"we_06h17frpsdzff29kp8gyg5mc4w"`
	Object         string   `json:"object" enum:"webhook_endpoint" doc:"Always webhook_endpoint."`
	URL            string   `json:"url" doc:"Where events are sent." example:"https://example.com/webhooks"`
	Description    *string  `json:"description" doc:"Your description of the endpoint." example:"Order fulfilment"`
	EnabledEvents  []string `json:"enabled_events" doc:"The event types sent to the endpoint, or [\"*\"] for all." example:"[\"payment.succeeded\",\"refund.succeeded\"]"`
	Status         string   `json:"status" enum:"enabled,disabled" doc:"Whether events are sent." example:"enabled"`
	DisabledReason *string  `json:"disabled_reason" doc:"Why the endpoint is disabled: requested (by you) or failing (every delivery failed for 3 days)." example:"failing"`
	Secret         string   `json:"secret,omitempty" doc:"The signing secret. Shown only when the endpoint is created and when its secret is rotated: store it then." example:"whsec_0bYq3ZJ5m2cQ8tVf1xKpL7nR4sWd9hAeG6uTzNoMiEy"`
	Created        int64    `json:"created" doc:"Creation time, Unix seconds." example:"1764090000"`
	Version        int      `json:"version" doc:"Increases with every change of the endpoint's settings or status." example:"1"`
}

// ToView renders the endpoint without its secret.
func (e Endpoint) ToView() EndpointView {
	return EndpointView{
		ID: e.PublicID(), Object: "webhook_endpoint", URL: e.URL, Description: e.Description,
		EnabledEvents: append([]string{}, e.EnabledEvents...), Status: string(e.Status), DisabledReason: e.DisabledReason,
		Created: e.CreatedAt.Unix(), Version: e.Version,
	}
}

// ToViewWithSecret renders the endpoint with its current secret, for the
// answers of creation and rotation only.
func (e Endpoint) ToViewWithSecret() EndpointView {
	v := e.ToView()
	v.Secret = e.Secret.Reveal()
	return v
}

// DeletedView is the answer of a deletion.
type DeletedView struct {
	ID      string `json:"id" doc:"The deleted endpoint's ID." example:"we_06h17frpsdzff29kp8gyg5mc4w"`
	Object  string `json:"object" enum:"webhook_endpoint" doc:"Always webhook_endpoint."`
	Deleted bool   `json:"deleted" doc:"Always true."`
}

// Options configures a Service.
type Options struct {
	Router *sharding.Router
	// Guard checks endpoint URLs; nil refuses private networks and http.
	Guard *Guard
	// Box seals signing secrets at rest; nil stores them in the clear.
	Box    *secretbox.Box
	Now    func() time.Time
	Logger *slog.Logger
}

// Service implements the endpoint and delivery use cases of the API.
type Service struct {
	router *sharding.Router
	guard  *Guard
	sealer sealer
	now    func() time.Time
	log    *slog.Logger
}

// NewService returns the service.
func NewService(o Options) *Service {
	if o.Guard == nil {
		o.Guard = &Guard{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{router: o.Router, guard: o.Guard, sealer: sealer{box: o.Box}, now: o.Now, log: o.Logger}
}

// CreateParams are the inputs of CreateEndpoint.
type CreateParams struct {
	URL           string
	EnabledEvents []string
	Description   *string
}

// UpdateParams are the inputs of UpdateEndpoint; nil leaves a field as is.
type UpdateParams struct {
	URL           *string
	EnabledEvents []string
	Description   *string
	Disabled      *bool
}

// validateEvents checks and de-duplicates a list of event types.
func validateEvents(list []string) ([]string, error) {
	if len(list) == 0 || len(list) > EnabledEventsMax {
		return nil, errcode.Invalid(errcode.CodeParameterInvalid, "enabled_events", "enabled_events must list 1 to %d event types, or [\"*\"] for all", EnabledEventsMax)
	}
	seen := map[string]bool{}
	var out []string
	for _, t := range list {
		if t == AllEvents {
			if len(list) != 1 {
				return nil, errcode.Invalid(errcode.CodeParameterInvalid, "enabled_events", "\"*\" subscribes to every event type and must be alone: [\"*\"]")
			}
		} else if !events.Known(events.Type(t)) {
			return nil, errcode.Invalid(errcode.CodeParameterInvalid, "enabled_events", "unknown event type %q", t)
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, nil
}

func validateDescription(d *string) error {
	if d != nil && utf8.RuneCountInString(*d) > DescriptionLengthMax {
		return errcode.Invalid(errcode.CodeParameterInvalid, "description", "description must be at most %d characters", DescriptionLengthMax)
	}
	return nil
}

// CreateEndpoint registers an endpoint with a fresh secret; the answer is
// the only one that shows the secret besides RotateSecret's. The URL is
// checked (and its name resolved) before the transaction. Errors:
// url_invalid, url_not_allowed, parameter_invalid (400),
// webhook_endpoint_limit_reached (400), idempotency codes.
func (s *Service) CreateEndpoint(ctx context.Context, tenantID uuid.UUID, p CreateParams) (Endpoint, error) {
	evs, err := validateEvents(p.EnabledEvents)
	if err != nil {
		return Endpoint{}, err
	}
	if err := validateDescription(p.Description); err != nil {
		return Endpoint{}, err
	}
	u, err := s.guard.CheckURL(ctx, p.URL)
	if err != nil {
		return Endpoint{}, err
	}
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return Endpoint{}, err
	}
	now := s.now()
	ep := Endpoint{
		ID: ids.New(), TenantID: tenantID, URL: u, Description: p.Description, EnabledEvents: evs,
		Status: StatusEnabled, Secret: NewSecret(), Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	idem := idempotency.From(ctx)
	s.sealer.sealAnswer(idem)
	err = sh.Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if idem != nil {
			if _, err := idem.Claim(ctx, tx); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $1 AND deleted_at IS NULL`, tenantID).Scan(&n); err != nil {
			return fmt.Errorf("count webhook endpoints: %w", err)
		}
		if n >= EndpointsPerTenantMax {
			return errcode.Invalid(CodeEndpointLimit, "url", "an account may have at most %d webhook endpoints; delete one first", EndpointsPerTenantMax)
		}
		clear, sealed, err := s.sealer.seal(tenantID, "secret", ep.Secret)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_endpoints
			(tenant_id, id, url, description, enabled_events, status, secret, secret_sealed, version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, 'enabled', $6, $7, 1, $8, $8)`,
			tenantID, ep.ID, ep.URL, ep.Description, ep.EnabledEvents, clear, sealed, now); err != nil {
			return fmt.Errorf("insert webhook endpoint: %w", err)
		}
		if idem != nil {
			return idem.Complete(ctx, tx, ep, nil)
		}
		return nil
	})
	if err != nil {
		return Endpoint{}, err
	}
	return ep, nil
}

// endpointColumns are read by every query of endpoints, in scan order.
const endpointColumns = `tenant_id, id, url, description, enabled_events, status, disabled_reason, secret,
	previous_secret, previous_secret_expires_at, failing_since, version, created_at, updated_at, deleted_at IS NOT NULL,
	secret_sealed, previous_secret_sealed`

const selectEndpoint = `SELECT ` + endpointColumns + ` FROM webhook_endpoints`

// scanEndpoint reads a row of endpointColumns and opens its secrets.
func (sl sealer) scanEndpoint(row pgx.Row) (Endpoint, error) {
	var e Endpoint
	var secret, prev *string
	var secretSealed, prevSealed []byte
	err := row.Scan(&e.TenantID, &e.ID, &e.URL, &e.Description, &e.EnabledEvents, &e.Status, &e.DisabledReason, &secret,
		&prev, &e.PreviousSecretExpiresAt, &e.FailingSince, &e.Version, &e.CreatedAt, &e.UpdatedAt, &e.Deleted,
		&secretSealed, &prevSealed)
	if err != nil {
		return e, err
	}
	if e.Secret, err = sl.open(e.TenantID, "secret", secret, secretSealed); err != nil {
		return e, err
	}
	if prev != nil || prevSealed != nil {
		p, err := sl.open(e.TenantID, "previous_secret", prev, prevSealed)
		if err != nil {
			return e, err
		}
		e.PreviousSecret = &p
	}
	return e, nil
}

// Querier is a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (sl sealer) getEndpoint(ctx context.Context, q Querier, tenantID, id uuid.UUID) (Endpoint, error) {
	e, err := sl.scanEndpoint(q.QueryRow(ctx, selectEndpoint+` WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`, tenantID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Endpoint{}, errcode.NotFound("webhook endpoint", ids.Format(ids.PrefixWebhook, id))
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("read webhook endpoint: %w", err)
	}
	return e, nil
}

// GetEndpoint reads one endpoint. Errors: resource_missing (also for
// another tenant's or a deleted one).
func (s *Service) GetEndpoint(ctx context.Context, tenantID, id uuid.UUID) (Endpoint, error) {
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return Endpoint{}, err
	}
	return s.sealer.getEndpoint(ctx, sh.Pool, tenantID, id)
}

// ListEndpoints answers endpoints newest first. Errors: parameter_invalid.
func (s *Service) ListEndpoints(ctx context.Context, tenantID uuid.UUID, page listing.Page) ([]Endpoint, bool, error) {
	if err := page.Validate(); err != nil {
		return nil, false, err
	}
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return nil, false, err
	}
	return listing.Query(ctx, sh.Pool, "webhook endpoints", selectEndpoint+` WHERE tenant_id = $1 AND deleted_at IS NULL`,
		[]any{tenantID}, page, s.sealer.scanEndpoint)
}

// UpdateEndpoint changes the URL, the event types, the description or
// whether the endpoint is disabled. Enabling an endpoint clears its failure
// record. Errors: resource_missing, url_invalid, url_not_allowed,
// parameter_invalid, idempotency codes.
func (s *Service) UpdateEndpoint(ctx context.Context, tenantID, id uuid.UUID, p UpdateParams) (Endpoint, error) {
	var evs []string
	var err error
	if p.EnabledEvents != nil {
		if evs, err = validateEvents(p.EnabledEvents); err != nil {
			return Endpoint{}, err
		}
	}
	if err := validateDescription(p.Description); err != nil {
		return Endpoint{}, err
	}
	var u string
	if p.URL != nil {
		if u, err = s.guard.CheckURL(ctx, *p.URL); err != nil {
			return Endpoint{}, err
		}
	}
	return s.change(ctx, tenantID, id, func(ctx context.Context, tx pgx.Tx, e *Endpoint, now time.Time) error {
		if p.URL != nil {
			e.URL = u
		}
		if evs != nil {
			e.EnabledEvents = evs
		}
		if p.Description != nil {
			e.Description = p.Description
		}
		if p.Disabled != nil {
			if *p.Disabled && e.Status == StatusEnabled {
				reason := DisabledRequested
				e.Status, e.DisabledReason = StatusDisabled, &reason
			} else if !*p.Disabled && e.Status == StatusDisabled {
				e.Status, e.DisabledReason, e.FailingSince = StatusEnabled, nil, nil
			}
		}
		e.Version++
		e.UpdatedAt = now
		if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET url = $3, enabled_events = $4, description = $5, status = $6,
			disabled_reason = $7, failing_since = $8, version = $9, updated_at = $10 WHERE tenant_id = $1 AND id = $2`,
			tenantID, id, e.URL, e.EnabledEvents, e.Description, string(e.Status), e.DisabledReason, e.FailingSince, e.Version, now); err != nil {
			return fmt.Errorf("update webhook endpoint: %w", err)
		}
		return nil
	})
}

// DeleteEndpoint deletes an endpoint: it answers 404 from then on and gets
// no more deliveries (pending ones end as failed). Errors: resource_missing,
// idempotency codes.
func (s *Service) DeleteEndpoint(ctx context.Context, tenantID, id uuid.UUID) (Endpoint, error) {
	return s.change(ctx, tenantID, id, func(ctx context.Context, tx pgx.Tx, e *Endpoint, now time.Time) error {
		if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2`, tenantID, id, now); err != nil {
			return fmt.Errorf("delete webhook endpoint: %w", err)
		}
		e.Deleted = true
		return nil
	})
}

// RotateSecret gives the endpoint a new secret and keeps the current one
// signing alongside it for PreviousSecretLifetime, so receivers can switch
// without losing a delivery. Rotating again within that time retires the
// older previous secret at once. Errors: resource_missing, idempotency codes.
func (s *Service) RotateSecret(ctx context.Context, tenantID, id uuid.UUID) (Endpoint, error) {
	s.sealer.sealAnswer(idempotency.From(ctx))
	return s.change(ctx, tenantID, id, func(ctx context.Context, tx pgx.Tx, e *Endpoint, now time.Time) error {
		prev, expires := e.Secret, now.Add(PreviousSecretLifetime)
		e.PreviousSecret, e.PreviousSecretExpiresAt = &prev, &expires
		e.Secret = NewSecret()
		e.UpdatedAt = now
		clear, sealed, err := s.sealer.seal(tenantID, "secret", e.Secret)
		if err != nil {
			return err
		}
		prevClear, prevSealed, err := s.sealer.seal(tenantID, "previous_secret", prev)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET secret = $3, secret_sealed = $4, previous_secret = $5, previous_secret_sealed = $6,
			previous_secret_expires_at = $7, updated_at = $8
			WHERE tenant_id = $1 AND id = $2`, tenantID, id, clear, sealed, prevClear, prevSealed, expires, now); err != nil {
			return fmt.Errorf("rotate webhook secret: %w", err)
		}
		return nil
	})
}

// change runs f on an endpoint inside one transaction that also claims and
// completes the request's Idempotency-Key; the endpoint as f left it is the
// answer. Errors: resource_missing, idempotency codes, and f's.
func (s *Service) change(ctx context.Context, tenantID, id uuid.UUID, f func(ctx context.Context, tx pgx.Tx, e *Endpoint, now time.Time) error) (Endpoint, error) {
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return Endpoint{}, err
	}
	idem := idempotency.From(ctx)
	var out Endpoint
	err = sh.Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if idem != nil {
			if _, err := idem.Claim(ctx, tx); err != nil {
				return err
			}
		}
		e, err := s.sealer.getEndpoint(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		now := s.now()
		if err := f(ctx, tx, &e, now); err != nil {
			return err
		}
		out = e
		if idem != nil {
			return idem.Complete(ctx, tx, e, nil)
		}
		return nil
	})
	if err != nil {
		return Endpoint{}, err
	}
	return out, nil
}

// snapshot is the endpoint as events carry it: the public view, without
// the secret.
func (e Endpoint) snapshot() json.RawMessage {
	b, _ := json.Marshal(e.ToView())
	return b
}
