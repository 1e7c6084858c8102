package webhooks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/idempotency"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/listing"
)

// Limits of delivery records.
const (
	// ResponseBodyBytesMax is how much of a receiver's answer is read and
	// stored per attempt.
	ResponseBodyBytesMax = 64 << 10
	// ErrorLengthMax bounds the stored error of an attempt, in bytes.
	ErrorLengthMax = 1000
	// AttemptsListedMax bounds the attempts shown per delivery in a list
	// (the newest ones).
	AttemptsListedMax = 20
	// ListBodyBytesMax bounds the response bodies of one list answer; past
	// it, bodies are left out (response_body_omitted) so a page of 100
	// deliveries stays small.
	ListBodyBytesMax = 1 << 20
)

// DeliveryStatus is a delivery's state.
type DeliveryStatus string

// Delivery statuses.
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliverySucceeded DeliveryStatus = "succeeded"
	DeliveryFailed    DeliveryStatus = "failed"
)

// Delivery is one event on its way to one endpoint.
type Delivery struct {
	ID             uuid.UUID
	TenantID       uuid.UUID
	EventID        uuid.UUID
	EndpointID     uuid.UUID
	EventType      string
	Status         DeliveryStatus
	Attempts       int
	NextAttemptAt  *time.Time
	LastStatusCode *int
	LastError      *string
	CreatedAt      time.Time
	CompletedAt    *time.Time
	// AttemptLog holds the newest attempts first (filled by lists).
	AttemptLog []Attempt
}

// Attempt is one HTTP request of a delivery.
type Attempt struct {
	At         time.Time
	StatusCode *int
	Latency    time.Duration
	Error      *string
	Body       []byte
	// BodyTruncated: the answer was longer than ResponseBodyBytesMax.
	BodyTruncated bool
	// BodyOmitted: the body was left out of this list answer to respect
	// ListBodyBytesMax.
	BodyOmitted bool
}

// DeliveryView is the public JSON shape of a delivery.
type DeliveryView struct {
	ID             string        `json:"id" doc:"Unique identifier, prefixed whd_." example:"whd_06h17frpsdzff29kp8gyg5mc4w"`
	Object         string        `json:"object" enum:"webhook_delivery" doc:"Always webhook_delivery."`
	Event          string        `json:"event" doc:"The event delivered." example:"evt_06h17frpsdzff29kp8gyg5mc4w"`
	EventType      string        `json:"event_type" doc:"The event's type." example:"payment.succeeded"`
	Endpoint       string        `json:"endpoint" doc:"The endpoint it is delivered to." example:"we_06h17frpsdzff29kp8gyg5mc4w"`
	Status         string        `json:"status" enum:"pending,succeeded,failed" doc:"pending until an attempt gets a 2xx answer (succeeded) or the retries end (failed)." example:"succeeded"`
	AttemptCount   int           `json:"attempt_count" doc:"Attempts started in the current delivery cycle (a redelivery starts a new one)." example:"1"`
	NextAttempt    *int64        `json:"next_attempt" doc:"When the next attempt is due, Unix seconds; null once finished." example:"1764090060"`
	LastStatusCode *int          `json:"last_status_code" doc:"The HTTP status of the last answer, null when there was none." example:"200"`
	LastError      *string       `json:"last_error" doc:"Why the last attempt failed, when it did." example:"status 500"`
	Created        int64         `json:"created" doc:"Creation time, Unix seconds." example:"1764090000"`
	Completed      *int64        `json:"completed" doc:"When it succeeded or was given up, Unix seconds." example:"1764090001"`
	Attempts       []AttemptView `json:"attempts" doc:"The newest attempts first (at most 20)."`
}

// AttemptView is one attempt as the API shows it.
type AttemptView struct {
	Attempted             int64   `json:"attempted" doc:"When the request was sent, Unix seconds." example:"1764090000"`
	StatusCode            *int    `json:"status_code" doc:"The HTTP status of the answer; null when none came (timeout, refused connection)." example:"500"`
	LatencyMS             int64   `json:"latency_ms" doc:"How long the answer took, milliseconds." example:"84"`
	Error                 *string `json:"error" doc:"Why the attempt failed; null when it succeeded." example:"status 500"`
	ResponseBody          string  `json:"response_body" doc:"The start of the answer's body (at most 64 KiB, invalid UTF-8 replaced)." example:"ok"`
	ResponseBodyTruncated bool    `json:"response_body_truncated" doc:"Whether the answer was longer than 64 KiB."`
	ResponseBodyOmitted   bool    `json:"response_body_omitted" doc:"Whether the body was left out of this page to keep it under 1 MiB; list a smaller page to see it."`
}

func unixPtr(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	u := t.Unix()
	return &u
}

// ToView renders the delivery's public shape.
func (d Delivery) ToView() DeliveryView {
	v := DeliveryView{
		ID: ids.Format(ids.PrefixDelivery, d.ID), Object: "webhook_delivery",
		Event: ids.Format(ids.PrefixEvent, d.EventID), EventType: d.EventType,
		Endpoint: ids.Format(ids.PrefixWebhook, d.EndpointID), Status: string(d.Status), AttemptCount: d.Attempts,
		NextAttempt: unixPtr(d.NextAttemptAt), LastStatusCode: d.LastStatusCode, LastError: d.LastError,
		Created: d.CreatedAt.Unix(), Completed: unixPtr(d.CompletedAt), Attempts: []AttemptView{},
	}
	for _, a := range d.AttemptLog {
		v.Attempts = append(v.Attempts, AttemptView{
			Attempted: a.At.Unix(), StatusCode: a.StatusCode, LatencyMS: a.Latency.Milliseconds(), Error: a.Error,
			ResponseBody: strings.ToValidUTF8(string(a.Body), "\uFFFD"), ResponseBodyTruncated: a.BodyTruncated, ResponseBodyOmitted: a.BodyOmitted,
		})
	}
	return v
}

const selectDelivery = `SELECT tenant_id, id, event_id, endpoint_id, event_type, status, attempts, next_attempt_at,
	last_status_code, last_error, created_at, completed_at FROM webhook_deliveries`

func scanDelivery(row pgx.Row) (Delivery, error) {
	var d Delivery
	err := row.Scan(&d.TenantID, &d.ID, &d.EventID, &d.EndpointID, &d.EventType, &d.Status, &d.Attempts, &d.NextAttemptAt,
		&d.LastStatusCode, &d.LastError, &d.CreatedAt, &d.CompletedAt)
	return d, err
}

// ListDeliveries answers an endpoint's deliveries newest first, each with
// its newest attempts. Errors: resource_missing (the endpoint),
// parameter_invalid.
func (s *Service) ListDeliveries(ctx context.Context, tenantID, endpointID uuid.UUID, page listing.Page) ([]Delivery, bool, error) {
	if err := page.Validate(); err != nil {
		return nil, false, err
	}
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return nil, false, err
	}
	if _, err := s.sealer.getEndpoint(ctx, sh.Pool, tenantID, endpointID); err != nil {
		return nil, false, err
	}
	out, more, err := listing.Query(ctx, sh.Pool, "webhook deliveries", selectDelivery+` WHERE tenant_id = $1 AND endpoint_id = $2`,
		[]any{tenantID, endpointID}, page, scanDelivery)
	if err != nil {
		return nil, false, err
	}
	if err := attachAttempts(ctx, sh.Pool, tenantID, out); err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// attachAttempts reads the newest AttemptsListedMax attempts of each
// delivery. The database leaves out every body past ListBodyBytesMax in the
// answer's order (a running sum), so the bodies it sends are bounded too.
func attachAttempts(ctx context.Context, q Querier, tenantID uuid.UUID, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	idList := make([]uuid.UUID, len(ds))
	at := make(map[uuid.UUID]int, len(ds))
	for i, d := range ds {
		idList[i] = d.ID
		at[d.ID] = i
	}
	rows, err := q.Query(ctx, `SELECT delivery_id, attempted_at, status_code, latency_ms, error,
			CASE WHEN body_total <= $4 THEN response_body END, response_truncated
		FROM (
			SELECT r.*, sum(length(r.response_body)) OVER (ORDER BY r.delivery_id DESC, r.id DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS body_total
			FROM (
				SELECT a.*, row_number() OVER (PARTITION BY a.delivery_id ORDER BY a.id DESC) AS n
				FROM webhook_attempts a WHERE a.tenant_id = $1 AND a.delivery_id = ANY($2::UUID[])
			) r WHERE r.n <= $3
		) x ORDER BY delivery_id DESC, id DESC`, tenantID, idList, AttemptsListedMax, ListBodyBytesMax)
	if err != nil {
		return fmt.Errorf("list webhook attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var a Attempt
		var ms int64
		if err := rows.Scan(&id, &a.At, &a.StatusCode, &ms, &a.Error, &a.Body, &a.BodyTruncated); err != nil {
			return fmt.Errorf("scan webhook attempt: %w", err)
		}
		a.Latency = time.Duration(ms) * time.Millisecond
		a.BodyOmitted = a.Body == nil
		i := at[id]
		ds[i].AttemptLog = append(ds[i].AttemptLog, a)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list webhook attempts: %w", err)
	}
	return nil
}

// Redeliver sends an event again: to one endpoint, or to every enabled
// endpoint subscribed to its type. Each delivery starts a new cycle with the
// full retry schedule (its earlier attempts stay listed); a delivery still
// in flight is fenced off (its lease version changes), so its outcome is
// discarded and the event is sent again. Errors: resource_missing (the
// event or the endpoint), webhook_endpoint_disabled (409), idempotency codes.
func (s *Service) Redeliver(ctx context.Context, tenantID, eventID uuid.UUID, endpointID *uuid.UUID) ([]Delivery, error) {
	sh, err := s.router.ForTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	idem := idempotency.From(ctx)
	var out []Delivery
	err = sh.Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
		out = nil
		if idem != nil {
			if _, err := idem.Claim(ctx, tx); err != nil {
				return err
			}
		}
		ev, err := events.Get(ctx, tx, tenantID, eventID)
		if err != nil {
			return err
		}
		var targets []Endpoint
		if endpointID != nil {
			e, err := s.sealer.getEndpoint(ctx, tx, tenantID, *endpointID)
			if err != nil {
				if ce := errcode.As(err); ce != nil && ce.Code == errcode.CodeResourceMissing {
					ce.Param = "endpoint"
				}
				return err
			}
			if e.Status != StatusEnabled {
				return &errcode.Error{Kind: errcode.KindConflict, Code: CodeEndpointDisabled, Param: "endpoint",
					Message: "the endpoint is disabled; enable it before redelivering"}
			}
			targets = append(targets, e)
		} else {
			rows, err := tx.Query(ctx, selectEndpoint+` WHERE tenant_id = $1 AND deleted_at IS NULL AND status = 'enabled' ORDER BY id`, tenantID)
			if err != nil {
				return fmt.Errorf("read webhook endpoints: %w", err)
			}
			all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Endpoint, error) { return s.sealer.scanEndpoint(r) })
			if err != nil {
				return fmt.Errorf("read webhook endpoints: %w", err)
			}
			for _, e := range all {
				if e.Subscribes(string(ev.Type)) {
					targets = append(targets, e)
				}
			}
		}
		now := s.now()
		for _, e := range targets {
			d, err := scanDelivery(tx.QueryRow(ctx, `INSERT INTO webhook_deliveries
				(tenant_id, id, event_id, endpoint_id, event_type, event_created_at, status, attempts, started_at, next_attempt_at, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7, $7, $7)
				ON CONFLICT (tenant_id, event_id, endpoint_id) DO UPDATE SET status = 'pending', attempts = 0, started_at = $7,
					next_attempt_at = $7, lease_owner = NULL, lease_expires_at = NULL,
					lease_version = webhook_deliveries.lease_version + 1, completed_at = NULL, updated_at = $7
				RETURNING tenant_id, id, event_id, endpoint_id, event_type, status, attempts, next_attempt_at,
					last_status_code, last_error, created_at, completed_at`,
				tenantID, ids.New(), ev.ID, e.ID, string(ev.Type), ev.CreatedAt, now))
			if err != nil {
				return fmt.Errorf("schedule redelivery: %w", err)
			}
			out = append(out, d)
		}
		if idem != nil {
			return idem.Complete(ctx, tx, out, nil)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
