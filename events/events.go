// Package events is the outbox: every change to a payment or refund appends
// an event in the same database transaction as the change (DESIGN.md rule
// 6), so nothing is announced that did not commit and nothing that
// committed goes unannounced. Each event carries a snapshot of the object
// and the object's version, so a receiver can drop an older update that
// arrives after a newer one.
package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/listing"
)

// Type names what happened.
type Type string

// Event types.
const (
	PaymentCreated         Type = "payment.created"
	PaymentRequiresAction  Type = "payment.requires_action"
	PaymentRequiresCapture Type = "payment.requires_capture"
	PaymentSucceeded       Type = "payment.succeeded"
	PaymentFailed          Type = "payment.failed"
	PaymentCanceled        Type = "payment.canceled"
	PaymentCaptured        Type = "payment.captured"
	// PaymentReviewOpened records that a location risk rule with action
	// review matched a payment, which proceeded.
	PaymentReviewOpened Type = "payment.review_opened"
	RefundCreated       Type = "refund.created"
	RefundSucceeded     Type = "refund.succeeded"
	RefundFailed        Type = "refund.failed"
	RefundCanceled      Type = "refund.canceled"
	// WebhookEndpointDisabled records that an endpoint was disabled because
	// its deliveries failed for the whole retry span.
	WebhookEndpointDisabled Type = "webhook_endpoint.disabled"
	// Dispute events: a dispute was opened, changed (status, evidence,
	// due date), closed (won or lost), and its funds left or came back to
	// the merchant's balance.
	DisputeCreated         Type = "dispute.created"
	DisputeUpdated         Type = "dispute.updated"
	DisputeClosed          Type = "dispute.closed"
	DisputeFundsWithdrawn  Type = "dispute.funds_withdrawn"
	DisputeFundsReinstated Type = "dispute.funds_reinstated"
	// Payouts: created (pending, its amount left the balance), paid (the
	// funds reached the destination), failed and canceled (the amount
	// returned to the balance).
	PayoutCreated  Type = "payout.created"
	PayoutPaid     Type = "payout.paid"
	PayoutFailed   Type = "payout.failed"
	PayoutCanceled Type = "payout.canceled"
)

// Types lists every event type, for validation and documentation.
var Types = []Type{
	PaymentCreated, PaymentRequiresAction, PaymentRequiresCapture, PaymentSucceeded, PaymentFailed,
	PaymentCanceled, PaymentCaptured, RefundCreated, RefundSucceeded, RefundFailed, RefundCanceled,
	WebhookEndpointDisabled, PaymentReviewOpened,
	DisputeCreated, DisputeUpdated, DisputeClosed, DisputeFundsWithdrawn, DisputeFundsReinstated,
	PayoutCreated, PayoutPaid, PayoutFailed, PayoutCanceled,
}

// Known reports whether t is one of Types.
func Known(t Type) bool {
	for _, k := range Types {
		if k == t {
			return true
		}
	}
	return false
}

// Event is one recorded change.
type Event struct {
	ID            uuid.UUID
	TenantID      uuid.UUID
	Type          Type
	ObjectType    string
	ObjectID      uuid.UUID
	ObjectVersion int
	// Data is the JSON snapshot of the object after the change, in the
	// same shape the API answers for that object.
	Data      json.RawMessage
	CreatedAt time.Time
}

// PublicID is the event's API identifier ("evt_...").
func (e Event) PublicID() string { return ids.Format(ids.PrefixEvent, e.ID) }

// EventView is an event as the API answers it and as webhooks send it. It
// is named EventView rather than View because the OpenAPI schema takes the Go
// type's name, and "View" is already the payment's.
type EventView struct {
	ID       string        `json:"id" doc:"Unique identifier, prefixed evt_." example:"evt_06h17frpsdzff29kp8gyg5mc4w"`
	Object   string        `json:"object" enum:"event" doc:"Always event."`
	Type     string        `json:"type" doc:"What happened, such as payment.succeeded." example:"payment.succeeded"`
	Sequence int           `json:"sequence" doc:"The object's version after the change. An update with a lower sequence than one already seen for the same object is older and can be dropped." example:"3"`
	Created  int64         `json:"created" doc:"When the change happened, Unix seconds." example:"1764090000"`
	Data     EventDataView `json:"data"`
}

// EventDataView holds the event's snapshot.
type EventDataView struct {
	Object json.RawMessage `json:"object" doc:"The object after the change (a payment, a refund, a dispute or a webhook endpoint), as the API answers it."`
}

// View returns the event's public shape.
func (e Event) View() EventView {
	return EventView{
		ID: e.PublicID(), Object: "event", Type: string(e.Type), Sequence: e.ObjectVersion,
		Created: e.CreatedAt.Unix(), Data: EventDataView{Object: e.Data},
	}
}

// Render encodes the event exactly as the API answers GET /v1/events/{id}
// (the HTTP edge's encoder: no HTML escaping, a trailing newline), so the
// body a webhook signs is byte for byte the body a merchant can fetch.
func Render(e Event) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e.View()); err != nil {
		return nil, fmt.Errorf("render event: %w", err)
	}
	return buf.Bytes(), nil
}

// Querier is what reads need: a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Append writes events inside the caller's transaction with one multi-row
// statement.
func Append(ctx context.Context, tx pgx.Tx, evs ...Event) error {
	if len(evs) == 0 {
		return nil
	}
	sql, args := appendSQL(evs)
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	return nil
}

// QueueAppend queues the multi-row statement of Append into b, so that a
// batch of writes reaches the database in one round trip.
func QueueAppend(b *pgx.Batch, evs ...Event) {
	if len(evs) == 0 {
		return
	}
	sql, args := appendSQL(evs)
	b.Queue(sql, args...).Exec(func(pgconn.CommandTag) error { return nil })
}

// appendSQL is one statement that inserts the events and their outbox
// rows, which the webhook fan-out consumes.
func appendSQL(evs []Event) (string, []any) {
	var sb strings.Builder
	sb.WriteString(`WITH e AS (INSERT INTO events (tenant_id, id, type, object_type, object_id, object_version, data, created_at) VALUES `)
	args := make([]any, 0, len(evs)*8)
	for i, e := range evs {
		if i > 0 {
			sb.WriteString(", ")
		}
		n := i * 8
		fmt.Fprintf(&sb, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8)
		args = append(args, e.TenantID, e.ID, string(e.Type), e.ObjectType, e.ObjectID, e.ObjectVersion, []byte(e.Data), e.CreatedAt)
	}
	sb.WriteString(` RETURNING tenant_id, id, created_at) INSERT INTO event_outbox (tenant_id, event_id, created_at) SELECT tenant_id, id, created_at FROM e`)
	return sb.String(), args
}

const selectEvent = `SELECT id, tenant_id, type, object_type, object_id, object_version, data, created_at FROM events`

func scan(row pgx.Row) (Event, error) {
	var e Event
	var data []byte
	err := row.Scan(&e.ID, &e.TenantID, &e.Type, &e.ObjectType, &e.ObjectID, &e.ObjectVersion, &data, &e.CreatedAt)
	e.Data = data
	return e, err
}

// Get reads one event. Errors: resource_missing (also for another tenant's).
func Get(ctx context.Context, q Querier, tenantID, id uuid.UUID) (Event, error) {
	e, err := scan(q.QueryRow(ctx, selectEvent+` WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Event{}, errcode.NotFound("event", ids.Format(ids.PrefixEvent, id))
	}
	if err != nil {
		return Event{}, fmt.Errorf("read event: %w", err)
	}
	return e, nil
}

// GetMany reads the events (tenantIDs[i], ids[i]) in one statement, for
// the webhook worker; missing events are absent from the answer. The pairs
// are matched exactly, so the plan is one index lookup per pair.
func GetMany(ctx context.Context, q Querier, tenantIDs, ids []uuid.UUID) ([]Event, error) {
	rows, err := q.Query(ctx, selectEvent+` WHERE (tenant_id, id) IN (SELECT t, e FROM unnest($1::UUID[], $2::UUID[]) AS d (t, e))`, tenantIDs, ids)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) { return scan(r) })
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// ListParams selects events.
type ListParams struct {
	listing.Page
	Type   Type       // optional
	Object *uuid.UUID // optional: events of one object
}

// List answers events newest first. Errors: parameter_invalid.
func List(ctx context.Context, q Querier, tenantID uuid.UUID, p ListParams) ([]Event, bool, error) {
	if err := p.Page.Validate(); err != nil {
		return nil, false, err
	}
	sql := selectEvent + ` WHERE tenant_id = $1`
	args := []any{tenantID}
	if p.Type != "" {
		args = append(args, string(p.Type))
		sql += fmt.Sprintf(" AND type = $%d", len(args))
	}
	if p.Object != nil {
		args = append(args, *p.Object)
		sql += fmt.Sprintf(" AND object_id = $%d", len(args))
	}
	return listing.Query(ctx, q, "events", sql, args, p.Page, scan)
}
