package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/listing"
)

// PayoutStatus is a payout's state.
type PayoutStatus string

// Payout statuses.
const (
	// PayoutPending: the amount left the balance; the payout is not sent
	// yet and may still be canceled.
	PayoutPending PayoutStatus = "pending"
	// PayoutInTransit: sent; the funds are on their way.
	PayoutInTransit PayoutStatus = "in_transit"
	// PayoutPaid: the funds reached the destination.
	PayoutPaid PayoutStatus = "paid"
	// PayoutFailed: the payout bounced or was refused; the amount is back
	// on the balance.
	PayoutFailed PayoutStatus = "failed"
	// PayoutCanceled: canceled before it was sent; the amount is back on
	// the balance.
	PayoutCanceled PayoutStatus = "canceled"
)

// payoutTransitions is the one table of a payout's allowed status changes;
// a status absent as a key is final.
var payoutTransitions = map[PayoutStatus][]PayoutStatus{
	PayoutPending: {PayoutInTransit, PayoutPaid, PayoutFailed, PayoutCanceled},
	// A processor may cancel a payout it has not sent on (Stripe's
	// pending payouts).
	PayoutInTransit: {PayoutPaid, PayoutFailed, PayoutCanceled},
}

// PayoutStatuses lists every payout status.
var PayoutStatuses = []PayoutStatus{PayoutPending, PayoutInTransit, PayoutPaid, PayoutFailed, PayoutCanceled}

// CanPayoutTransition reports whether the table allows from → to.
func CanPayoutTransition(from, to PayoutStatus) bool {
	for _, s := range payoutTransitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Codes of payouts.
const (
	// CodeBalanceInsufficient (400, param amount): the payout's amount
	// exceeds the available balance in its currency.
	CodeBalanceInsufficient = "balance_insufficient"
	// CodeBalanceNegative (409): the balance in the payout's currency is
	// below zero (refunds or disputes took more than was left), so no
	// payout of any amount can be made until it recovers.
	CodeBalanceNegative = "balance_negative"
	// CodePayoutInvalidState (409): the payout's status does not allow
	// the request (canceling a payout that was sent).
	CodePayoutInvalidState = "payout_invalid_state"
	// CodePayoutDestinationMissing (409): payouts go to a Stripe
	// connected account and the tenant has none; set it through the
	// admin API.
	CodePayoutDestinationMissing = "payout_destination_missing"
)

// Payout moves money from a merchant's balance to its bank or connected
// account.
type Payout struct {
	ID          uuid.UUID
	TenantID    uuid.UUID
	Amount      int64
	Currency    string
	Status      PayoutStatus
	Description *string
	Metadata    map[string]string
	// Processor is the payout adapter's name; Destination where it sends
	// (a Stripe connected account), nil for the sandbox.
	Processor    string
	Destination  *string
	TransferRef  *string
	ProcessorRef *string
	// SendingSince is set while the send call is in flight.
	SendingSince *time.Time
	// SentAt is when the processor accepted the payout.
	SentAt         *time.Time
	FailureCode    *string
	FailureMessage *string
	Version        int
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// PublicID is the payout's API identifier ("po_...").
func (p Payout) PublicID() string { return ids.Format(ids.PrefixPayout, p.ID) }

// processorKey is the idempotency key of the payout's processor calls;
// adapters derive one key per request from it.
func (p Payout) processorKey() string { return p.PublicID() }

// PayoutView is the public JSON shape of a payout.
type PayoutView struct {
	ID             string            `json:"id" doc:"Unique identifier, prefixed po_." example:"po_06h17frpsdzff29kp8gyg5mc4w"`
	Object         string            `json:"object" enum:"payout" doc:"Always payout."`
	Amount         int64             `json:"amount" doc:"Amount paid out, in the currency's minor unit." example:"5000"`
	Currency       string            `json:"currency" doc:"Three-letter ISO 4217 code, lowercase." example:"usd"`
	Status         string            `json:"status" enum:"pending,in_transit,paid,failed,canceled" doc:"pending until sent (cancelable), in_transit once sent, then paid, or failed with the amount returned to the balance; canceled returns it too." example:"pending"`
	Description    *string           `json:"description" doc:"Your description of the payout." example:"Weekly payout"`
	Metadata       map[string]string `json:"metadata" doc:"Your key-value pairs." example:"{\"week\":\"2026-48\"}"`
	Destination    *string           `json:"destination" doc:"Where the payout goes: the Stripe connected account, or null for the sandbox." example:"acct_1Nv0FGQ9RKHgCVdK"`
	FailureCode    *string           `json:"failure_code" doc:"Why the payout failed, such as account_closed." example:"account_closed"`
	FailureMessage *string           `json:"failure_message" doc:"Why the payout failed, in words."`
	Version        int               `json:"version" doc:"Increases with every change." example:"1"`
	Created        int64             `json:"created" doc:"Creation time, Unix seconds." example:"1764090000"`
}

// ToView renders the payout's public shape.
func (p Payout) ToView() PayoutView {
	meta := p.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	return PayoutView{
		ID: p.PublicID(), Object: "payout", Amount: p.Amount, Currency: p.Currency, Status: string(p.Status),
		Description: p.Description, Metadata: meta, Destination: p.Destination, FailureCode: p.FailureCode,
		FailureMessage: p.FailureMessage, Version: p.Version, Created: p.CreatedAt.Unix(),
	}
}

func (p Payout) snapshot() json.RawMessage {
	b, _ := json.Marshal(p.ToView())
	return b
}

func payoutInvalidState(p Payout, action string) *errcode.Error {
	return errcode.New(errcode.KindConflict, CodePayoutInvalidState, "payout %s is %s, which does not allow %s", p.PublicID(), p.Status, action)
}

const payoutColumns = `tenant_id, id, amount, currency, status, description, metadata, processor, destination, transfer_ref,
	processor_ref, sending_since, sent_at, failure_code, failure_message, version, created_at, updated_at`

func insertPayout(ctx context.Context, tx pgx.Tx, p *Payout) error {
	meta, err := json.Marshal(p.Metadata)
	if err != nil {
		return fmt.Errorf("encode metadata: %w", err)
	}
	if p.Metadata == nil {
		meta = []byte("{}")
	}
	_, err = tx.Exec(ctx, `INSERT INTO payouts (`+payoutColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		p.TenantID, p.ID, p.Amount, p.Currency, string(p.Status), p.Description, meta, p.Processor, p.Destination, p.TransferRef,
		p.ProcessorRef, p.SendingSince, p.SentAt, p.FailureCode, p.FailureMessage, p.Version, p.CreatedAt, p.UpdatedAt)
	if err != nil {
		return fmt.Errorf("insert payout: %w", err)
	}
	return nil
}

// updatePayout writes p's mutable fields, guarded by the version it was
// read at, and bumps the version.
func updatePayout(ctx context.Context, tx pgx.Tx, p *Payout, now time.Time) error {
	read := p.Version
	p.Version++
	p.UpdatedAt = now
	tag, err := tx.Exec(ctx, `UPDATE payouts SET status = $3, transfer_ref = $4, processor_ref = $5, sending_since = $6,
	sent_at = $7, failure_code = $8, failure_message = $9, version = $10, updated_at = $11
WHERE tenant_id = $1 AND id = $2 AND version = $12`,
		p.TenantID, p.ID, string(p.Status), p.TransferRef, p.ProcessorRef, p.SendingSince, p.SentAt, p.FailureCode, p.FailureMessage,
		p.Version, p.UpdatedAt, read)
	if err != nil {
		return fmt.Errorf("update payout: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("update payout %s: version %d is no longer current", p.PublicID(), read)
	}
	return nil
}

func scanPayout(row pgx.Row) (Payout, error) {
	var p Payout
	var status string
	var meta []byte
	err := row.Scan(&p.TenantID, &p.ID, &p.Amount, &p.Currency, &status, &p.Description, &meta, &p.Processor, &p.Destination,
		&p.TransferRef, &p.ProcessorRef, &p.SendingSince, &p.SentAt, &p.FailureCode, &p.FailureMessage, &p.Version, &p.CreatedAt, &p.UpdatedAt)
	if err != nil {
		return p, err
	}
	p.Status = PayoutStatus(status)
	if len(meta) > 0 {
		if err := json.Unmarshal(meta, &p.Metadata); err != nil {
			return p, fmt.Errorf("decode metadata: %w", err)
		}
	}
	return p, nil
}

func getPayout(ctx context.Context, q Querier, tenantID, id uuid.UUID) (Payout, error) {
	return getOne(ctx, q, `SELECT `+payoutColumns+` FROM payouts WHERE tenant_id = $1 AND id = $2`, "payout", ids.PrefixPayout, scanPayout, tenantID, id)
}

// PayoutListParams selects payouts.
type PayoutListParams struct {
	listing.Page
	Status     PayoutStatus // optional
	CreatedGTE *time.Time   // optional
	CreatedLTE *time.Time   // optional
}

func listPayouts(ctx context.Context, q Querier, tenantID uuid.UUID, p PayoutListParams) ([]Payout, bool, error) {
	sql := `SELECT ` + payoutColumns + ` FROM payouts WHERE tenant_id = $1`
	args := []any{tenantID}
	if p.Status != "" {
		args = append(args, string(p.Status))
		sql += fmt.Sprintf(" AND status = $%d", len(args))
	}
	if p.CreatedGTE != nil {
		args = append(args, *p.CreatedGTE)
		sql += fmt.Sprintf(" AND created_at >= $%d", len(args))
	}
	if p.CreatedLTE != nil {
		args = append(args, *p.CreatedLTE)
		sql += fmt.Sprintf(" AND created_at <= $%d", len(args))
	}
	return listing.Query(ctx, q, "payouts", sql, args, p.Page, scanPayout)
}

// payoutDestination reads the tenant's Stripe connected account, "" when
// it has none.
func payoutDestination(ctx context.Context, q Querier, tenantID uuid.UUID) (string, error) {
	var acct string
	err := q.QueryRow(ctx, `SELECT stripe_account FROM payout_accounts WHERE tenant_id = $1`, tenantID).Scan(&acct)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read payout account: %w", err)
	}
	return acct, nil
}
