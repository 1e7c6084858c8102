package payments

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/listing"
)

// RefundStatus is a refund's state.
type RefundStatus string

// Refund statuses.
const (
	RefundPending   RefundStatus = "pending"
	RefundSucceeded RefundStatus = "succeeded"
	RefundFailed    RefundStatus = "failed"
	// RefundCanceled: the processor canceled the refund before making it;
	// the amount is refundable again.
	RefundCanceled RefundStatus = "canceled"
)

// Refund reasons a merchant may give.
var refundReasons = map[string]bool{"duplicate": true, "fraudulent": true, "requested_by_customer": true}

// Refund returns captured money to the customer.
type Refund struct {
	ID            uuid.UUID
	TenantID      uuid.UUID
	PaymentID     uuid.UUID
	Amount        int64
	Currency      string
	Status        RefundStatus
	Reason        *string
	ProcessorRef  *string
	FailureReason *string
	Version       int
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// PublicID is the refund's API identifier ("re_...").
func (r Refund) PublicID() string { return ids.Format(ids.PrefixRefund, r.ID) }

func (r Refund) processorKey() string { return r.PublicID() + ":create" }

// RefundView is the public JSON shape of a refund.
type RefundView struct {
	ID            string  `json:"id" doc:"Unique identifier, prefixed re_." example:"re_06h17frpsdzff29kp8gyg5mc4w"`
	Object        string  `json:"object" enum:"refund" doc:"Always refund."`
	Payment       string  `json:"payment" doc:"The refunded payment." example:"pay_06h17frpsdzff29kp8gyg5mc4w"`
	Amount        int64   `json:"amount" doc:"Amount refunded, in the currency's minor unit." example:"500"`
	Currency      string  `json:"currency" doc:"The payment's currency." example:"usd"`
	Status        string  `json:"status" enum:"pending,succeeded,failed,canceled" doc:"The refund's state. failed and canceled return the amount to what may be refunded." example:"succeeded"`
	Reason        *string `json:"reason" enum:"duplicate,fraudulent,requested_by_customer" doc:"Why the merchant refunded."`
	FailureReason *string `json:"failure_reason" doc:"Why the refund failed."`
	Version       int     `json:"version" doc:"Increases with every change." example:"2"`
	Created       int64   `json:"created" doc:"Creation time, Unix seconds." example:"1764090000"`
}

// ToView renders the refund's public shape.
func (r Refund) ToView() RefundView {
	return RefundView{
		ID: r.PublicID(), Object: "refund", Payment: ids.Format(ids.PrefixPayment, r.PaymentID), Amount: r.Amount,
		Currency: r.Currency, Status: string(r.Status), Reason: r.Reason, FailureReason: r.FailureReason,
		Version: r.Version, Created: r.CreatedAt.Unix(),
	}
}

func (r Refund) snapshot() json.RawMessage {
	b, _ := json.Marshal(r.ToView())
	return b
}

const refundColumns = `tenant_id, id, payment_id, amount, currency, status, reason, processor_ref, failure_reason, version, created_at, updated_at`

func insertRefund(ctx context.Context, tx pgx.Tx, r *Refund) error {
	_, err := tx.Exec(ctx, `INSERT INTO refunds (`+refundColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		r.TenantID, r.ID, r.PaymentID, r.Amount, r.Currency, string(r.Status), r.Reason, r.ProcessorRef, r.FailureReason, r.Version, r.CreatedAt, r.UpdatedAt)
	if err != nil {
		return fmt.Errorf("insert refund: %w", err)
	}
	return nil
}

func updateRefund(ctx context.Context, tx pgx.Tx, r *Refund, now time.Time) error {
	read := r.Version
	r.Version++
	r.UpdatedAt = now
	tag, err := tx.Exec(ctx, `UPDATE refunds SET status = $3, processor_ref = $4, failure_reason = $5, version = $6, updated_at = $7
		WHERE tenant_id = $1 AND id = $2 AND version = $8`, r.TenantID, r.ID, string(r.Status), r.ProcessorRef, r.FailureReason, r.Version, r.UpdatedAt, read)
	if err != nil {
		return fmt.Errorf("update refund: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("update refund %s: version %d is no longer current", r.PublicID(), read)
	}
	return nil
}

func scanRefund(row pgx.Row) (Refund, error) {
	var r Refund
	var status string
	err := row.Scan(&r.TenantID, &r.ID, &r.PaymentID, &r.Amount, &r.Currency, &status, &r.Reason, &r.ProcessorRef, &r.FailureReason, &r.Version, &r.CreatedAt, &r.UpdatedAt)
	r.Status = RefundStatus(status)
	return r, err
}

func getRefund(ctx context.Context, q Querier, tenantID, id uuid.UUID) (Refund, error) {
	return getOne(ctx, q, `SELECT `+refundColumns+` FROM refunds WHERE tenant_id = $1 AND id = $2`, "refund", ids.PrefixRefund, scanRefund, tenantID, id)
}

// RefundListParams selects refunds.
type RefundListParams struct {
	listing.Page
	Payment *uuid.UUID
}

func listRefunds(ctx context.Context, q Querier, tenantID uuid.UUID, p RefundListParams) ([]Refund, bool, error) {
	sql := `SELECT ` + refundColumns + ` FROM refunds WHERE tenant_id = $1`
	args := []any{tenantID}
	if p.Payment != nil {
		args = append(args, *p.Payment)
		sql += fmt.Sprintf(" AND payment_id = $%d", len(args))
	}
	return listing.Query(ctx, q, "refunds", sql, args, p.Page, scanRefund)
}
