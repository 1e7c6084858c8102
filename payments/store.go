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
	decline_code, version, created_at, updated_at, processor_account, risk_rule, disputed`

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
	var account *string
	if p.ProcessorAccount != "" {
		account = &p.ProcessorAccount
	}
	return []any{p.TenantID, p.ID, p.Amount, p.Currency, string(p.Status), p.CaptureMethod, p.PaymentMethod, p.Description, p.Customer, meta,
		lat, lon, gh, p.AmountCapturable, p.AmountCaptured, p.AmountRefunded, p.AmountRefundPending, p.Fee,
		p.Processor, p.ProcessorRef, op, p.OperationStartedAt, p.OperationAmount, next, p.FailureCode, p.FailureMessage,
		p.DeclineCode, p.Version, p.CreatedAt, p.UpdatedAt, account, p.RiskRule, p.Disputed}, nil
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

// updateOutcomesSQL writes the columns an operation's outcome changes
// (transition) for many payments in one statement, each guarded by the
// version it was read at; it answers the payments it updated. Its text is
// the same for any number of rows: one prepared statement.
const updateOutcomesSQL = `UPDATE payments AS p SET
    status = u.status, amount_capturable = u.amount_capturable, amount_captured = u.amount_captured, fee = u.fee,
    processor_ref = u.processor_ref, operation = u.operation, operation_started_at = u.operation_started_at,
    operation_amount = u.operation_amount, next_action = u.next_action::JSONB, failure_code = u.failure_code,
    failure_message = u.failure_message, decline_code = u.decline_code, version = u.version, updated_at = u.updated_at
FROM unnest($1::UUID[], $2::UUID[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[], $7::TEXT[], $8::TEXT[],
            $9::TIMESTAMPTZ[], $10::BIGINT[], $11::TEXT[], $12::TEXT[], $13::TEXT[], $14::TEXT[], $15::INT[],
            $16::TIMESTAMPTZ[], $17::INT[])
    AS u (tenant_id, id, status, amount_capturable, amount_captured, fee, processor_ref, operation,
          operation_started_at, operation_amount, next_action, failure_code, failure_message, decline_code, version,
          updated_at, read_version)
WHERE p.tenant_id = u.tenant_id AND p.id = u.id AND p.version = u.read_version
RETURNING p.id`

// outcomeRows collects the arguments of updateOutcomesSQL.
type outcomeRows struct {
	tenantIDs, ids                  []uuid.UUID
	statuses                        []string
	capturable, captured, fees      []int64
	refs, ops                       []*string
	opStarted                       []*time.Time
	opAmounts                       []*int64
	nextActions                     []*string
	failureCodes, failureMsgs, decl []*string
	versions, readVersions          []int32
	updatedAt                       []time.Time
}

// add appends p, already advanced by bumpOutcome, updated from readVersion.
func (r *outcomeRows) add(p *Payment, readVersion int) error {
	var next *string
	if p.NextAction != nil {
		b, err := json.Marshal(p.NextAction)
		if err != nil {
			return fmt.Errorf("encode next action: %w", err)
		}
		s := string(b)
		next = &s
	}
	var op *string
	if p.Operation != OpNone {
		s := string(p.Operation)
		op = &s
	}
	r.tenantIDs, r.ids = append(r.tenantIDs, p.TenantID), append(r.ids, p.ID)
	r.statuses = append(r.statuses, string(p.Status))
	r.capturable, r.captured, r.fees = append(r.capturable, p.AmountCapturable), append(r.captured, p.AmountCaptured), append(r.fees, p.Fee)
	r.refs, r.ops = append(r.refs, p.ProcessorRef), append(r.ops, op)
	r.opStarted, r.opAmounts = append(r.opStarted, p.OperationStartedAt), append(r.opAmounts, p.OperationAmount)
	r.nextActions = append(r.nextActions, next)
	r.failureCodes, r.failureMsgs, r.decl = append(r.failureCodes, p.FailureCode), append(r.failureMsgs, p.FailureMessage), append(r.decl, p.DeclineCode)
	r.versions, r.readVersions = append(r.versions, int32(p.Version)), append(r.readVersions, int32(readVersion))
	r.updatedAt = append(r.updatedAt, p.UpdatedAt)
	return nil
}

// queue queues the statement into b; updated receives the IDs it wrote.
func (r *outcomeRows) queue(b *pgx.Batch, updated map[uuid.UUID]bool) {
	if len(r.ids) == 0 {
		return
	}
	b.Queue(updateOutcomesSQL, r.tenantIDs, r.ids, r.statuses, r.capturable, r.captured, r.fees, r.refs, r.ops,
		r.opStarted, r.opAmounts, r.nextActions, r.failureCodes, r.failureMsgs, r.decl, r.versions,
		r.updatedAt, r.readVersions).Query(func(rows pgx.Rows) error {
		var id uuid.UUID
		_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
			updated[id] = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("update payment outcomes: %w", err)
		}
		return nil
	})
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
	noteChange(ctx, p)
	return nil
}

func scanPayment(row pgx.Row) (Payment, error) {
	var p Payment
	var status, op *string
	var meta, next []byte
	var lat, lon *float64
	var gh, account *string
	err := row.Scan(&p.TenantID, &p.ID, &p.Amount, &p.Currency, &status, &p.CaptureMethod, &p.PaymentMethod, &p.Description, &p.Customer, &meta,
		&lat, &lon, &gh, &p.AmountCapturable, &p.AmountCaptured, &p.AmountRefunded, &p.AmountRefundPending, &p.Fee,
		&p.Processor, &p.ProcessorRef, &op, &p.OperationStartedAt, &p.OperationAmount, &next, &p.FailureCode, &p.FailureMessage,
		&p.DeclineCode, &p.Version, &p.CreatedAt, &p.UpdatedAt, &account, &p.RiskRule, &p.Disputed)
	if err != nil {
		return p, err
	}
	if account != nil {
		p.ProcessorAccount = *account
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
	return getOne(ctx, q, `SELECT `+paymentColumns+` FROM payments WHERE tenant_id = $1 AND id = $2`, "payment", ids.PrefixPayment, scanPayment, tenantID, id)
}

// getOne reads one row by its key (tenantID, id) with query and scan; a
// missing row answers resource_missing, naming noun and the prefixed ID.
func getOne[T any](ctx context.Context, q Querier, query, noun, prefix string, scan func(pgx.Row) (T, error), tenantID, id uuid.UUID) (T, error) {
	v, err := scan(q.QueryRow(ctx, query, tenantID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		var zero T
		return zero, errcode.NotFound(noun, ids.Format(prefix, id))
	}
	if err != nil {
		var zero T
		return zero, fmt.Errorf("read %s: %w", noun, err)
	}
	return v, nil
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
