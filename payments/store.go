package payments

import (
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
	"github.com/payments-api/payments/processor"
)

// Querier is a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const paymentColumns = `tenant_id, id, amount, currency, status, capture_method, payment_method, description, customer, metadata,
	location_lat, location_lon, geohash, amount_capturable, amount_captured, amount_refunded, amount_refund_pending, fee,
	processor, processor_ref, operation, operation_started_at, operation_amount, next_action, failure_code, failure_message,
	decline_code, version, created_at, updated_at`

var paymentColumnCount = strings.Count(paymentColumns, ",") + 1

func paymentArgs(p *Payment) ([]any, error) {
	meta, err := json.Marshal(p.Metadata)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	if p.Metadata == nil {
		meta = []byte("{}")
	}
	var lat, lon *float64
	var gh *string
	if p.Location != nil {
		lat, lon, gh = &p.Location.Lat, &p.Location.Lon, &p.Location.Geohash
	}
	var next []byte
	if p.NextAction != nil {
		if next, err = json.Marshal(p.NextAction); err != nil {
			return nil, fmt.Errorf("encode next action: %w", err)
		}
	}
	var op *string
	if p.Operation != OpNone {
		s := string(p.Operation)
		op = &s
	}
	return []any{p.TenantID, p.ID, p.Amount, p.Currency, string(p.Status), p.CaptureMethod, p.PaymentMethod, p.Description, p.Customer, meta,
		lat, lon, gh, p.AmountCapturable, p.AmountCaptured, p.AmountRefunded, p.AmountRefundPending, p.Fee,
		p.Processor, p.ProcessorRef, op, p.OperationStartedAt, p.OperationAmount, next, p.FailureCode, p.FailureMessage,
		p.DeclineCode, p.Version, p.CreatedAt, p.UpdatedAt}, nil
}

// insertPayments writes payments with one multi-row statement, so that
// concurrent creations can be grouped into one transaction (DESIGN.md rule 7).
func insertPayments(ctx context.Context, tx pgx.Tx, ps ...*Payment) error {
	if len(ps) == 0 {
		return nil
	}
	sql, args, err := insertPaymentsSQL(ps)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("insert payments: %w", err)
	}
	return nil
}

// queueInsertPayments queues the statement of insertPayments into b.
func queueInsertPayments(b *pgx.Batch, ps []*Payment) error {
	if len(ps) == 0 {
		return nil
	}
	sql, args, err := insertPaymentsSQL(ps)
	if err != nil {
		return err
	}
	b.Queue(sql, args...).Exec(func(pgconn.CommandTag) error { return nil })
	return nil
}

func insertPaymentsSQL(ps []*Payment) (string, []any, error) {
	var sb strings.Builder
	sb.WriteString("INSERT INTO payments (" + paymentColumns + ") VALUES ")
	args := make([]any, 0, len(ps)*paymentColumnCount)
	for i, p := range ps {
		a, err := paymentArgs(p)
		if err != nil {
			return "", nil, err
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(")
		for j := range a {
			if j > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "$%d", len(args)+j+1)
		}
		sb.WriteString(")")
		args = append(args, a...)
	}
	return sb.String(), args, nil
}

// updatePaymentSQL is the UPDATE of every mutable column, guarded by the
// version the writer read; it is built once.
var updatePaymentSQL = func() string {
	var sets []string
	for i, c := range strings.Split(paymentColumns, ",") {
		c = strings.TrimSpace(c)
		if c == "tenant_id" || c == "id" {
			continue
		}
		sets = append(sets, fmt.Sprintf("%s = $%d", c, i+1))
	}
	return "UPDATE payments SET " + strings.Join(sets, ", ") +
		fmt.Sprintf(" WHERE tenant_id = $1 AND id = $2 AND version = $%d", paymentColumnCount+1)
}()

// bumpVersion advances p to the version its update writes and returns the
// arguments of updatePaymentSQL, guarded by the version p had.
func bumpVersion(p *Payment, now time.Time) ([]any, error) {
	readVersion := p.Version
	p.Version++
	p.UpdatedAt = now
	a, err := paymentArgs(p)
	if err != nil {
		p.Version--
		return nil, err
	}
	return append(a, readVersion), nil
}

// updatePayment writes every mutable column of p, guarded by the version
// the caller read, and bumps the version.
func updatePayment(ctx context.Context, tx pgx.Tx, p *Payment, now time.Time) error {
	a, err := bumpVersion(p, now)
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, updatePaymentSQL, a...)
	if err != nil {
		return fmt.Errorf("update payment: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("update payment %s: version %d is no longer current", p.PublicID(), p.Version-1)
	}
	return nil
}

func scanPayment(row pgx.Row) (Payment, error) {
	var p Payment
	var status, op *string
	var meta, next []byte
	var lat, lon *float64
	var gh *string
	err := row.Scan(&p.TenantID, &p.ID, &p.Amount, &p.Currency, &status, &p.CaptureMethod, &p.PaymentMethod, &p.Description, &p.Customer, &meta,
		&lat, &lon, &gh, &p.AmountCapturable, &p.AmountCaptured, &p.AmountRefunded, &p.AmountRefundPending, &p.Fee,
		&p.Processor, &p.ProcessorRef, &op, &p.OperationStartedAt, &p.OperationAmount, &next, &p.FailureCode, &p.FailureMessage,
		&p.DeclineCode, &p.Version, &p.CreatedAt, &p.UpdatedAt)
	if err != nil {
		return p, err
	}
	p.Status = Status(*status)
	if op != nil {
		p.Operation = Operation(*op)
	}
	if err := json.Unmarshal(meta, &p.Metadata); err != nil {
		return p, fmt.Errorf("decode metadata: %w", err)
	}
	if lat != nil && lon != nil && gh != nil {
		p.Location = &Location{Lat: *lat, Lon: *lon, Geohash: *gh}
	}
	if len(next) > 0 {
		p.NextAction = &processor.NextAction{}
		if err := json.Unmarshal(next, p.NextAction); err != nil {
			return p, fmt.Errorf("decode next action: %w", err)
		}
	}
	return p, nil
}

func getPayment(ctx context.Context, q Querier, tenantID, id uuid.UUID) (Payment, error) {
	p, err := scanPayment(q.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Payment{}, errcode.NotFound("payment", ids.Format(ids.PrefixPayment, id))
	}
	if err != nil {
		return Payment{}, fmt.Errorf("read payment: %w", err)
	}
	return p, nil
}

// ListParams selects payments.
type ListParams struct {
	listing.Page
	Status     Status
	Customer   string
	CreatedGTE *time.Time
	CreatedLTE *time.Time
}

func listPayments(ctx context.Context, q Querier, tenantID uuid.UUID, p ListParams) ([]Payment, bool, error) {
	sql := `SELECT ` + paymentColumns + ` FROM payments WHERE tenant_id = $1`
	args := []any{tenantID}
	if p.Status != "" {
		args = append(args, string(p.Status))
		sql += fmt.Sprintf(" AND status = $%d", len(args))
	}
	if p.Customer != "" {
		args = append(args, p.Customer)
		sql += fmt.Sprintf(" AND customer = $%d", len(args))
	}
	if p.CreatedGTE != nil {
		args = append(args, *p.CreatedGTE)
		sql += fmt.Sprintf(" AND created_at >= $%d", len(args))
	}
	if p.CreatedLTE != nil {
		args = append(args, *p.CreatedLTE)
		sql += fmt.Sprintf(" AND created_at <= $%d", len(args))
	}
	return listing.Query(ctx, q, "payments", sql, args, p.Page, scanPayment)
}
