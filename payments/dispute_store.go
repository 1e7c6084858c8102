package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/listing"
)

const disputeColumns = `tenant_id, id, payment_id, processor, processor_dispute_id, amount, currency, reason, status,
	evidence_due_by, evidence, evidence_submitted_at, operation, operation_started_at, funds_withdrawn, funds_reinstated,
	amount_withdrawn, fee, amount_reinstated, processor_updated_at, version, created_at, updated_at`

func disputeArgs(d *Dispute) ([]any, error) {
	ev := d.Evidence
	if ev == nil {
		ev = map[string]string{}
	}
	evidence, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode evidence: %w", err)
	}
	var op *string
	if d.Operation != DisputeOpNone {
		s := string(d.Operation)
		op = &s
	}
	return []any{d.TenantID, d.ID, d.PaymentID, d.Processor, d.ProcessorRef, d.Amount, d.Currency, d.Reason, string(d.Status),
		d.EvidenceDueBy, evidence, d.EvidenceSubmittedAt, op, d.OperationStartedAt, d.FundsWithdrawn, d.FundsReinstated,
		d.AmountWithdrawn, d.Fee, d.AmountReinstated, d.ProcessorUpdatedAt, d.Version, d.CreatedAt, d.UpdatedAt}, nil
}

func insertDispute(ctx context.Context, tx pgx.Tx, d *Dispute) error {
	a, err := disputeArgs(d)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO disputes (`+disputeColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
		$13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`, a...); err != nil {
		return fmt.Errorf("insert dispute: %w", err)
	}
	return nil
}

// updateDispute writes every mutable column of d, guarded by the version
// the caller read, and bumps the version.
func updateDispute(ctx context.Context, tx pgx.Tx, d *Dispute, now time.Time) error {
	ev := d.Evidence
	if ev == nil {
		ev = map[string]string{}
	}
	evidence, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode evidence: %w", err)
	}
	var op *string
	if d.Operation != DisputeOpNone {
		s := string(d.Operation)
		op = &s
	}
	read := d.Version
	tag, err := tx.Exec(ctx, `UPDATE disputes SET reason = $3, status = $4, evidence_due_by = $5, evidence = $6,
		evidence_submitted_at = $7, operation = $8, operation_started_at = $9, funds_withdrawn = $10, funds_reinstated = $11,
		amount_withdrawn = $12, fee = $13, amount_reinstated = $14, processor_updated_at = $15, version = $16, updated_at = $17
		WHERE tenant_id = $1 AND id = $2 AND version = $18`,
		d.TenantID, d.ID, d.Reason, string(d.Status), d.EvidenceDueBy, evidence, d.EvidenceSubmittedAt, op, d.OperationStartedAt,
		d.FundsWithdrawn, d.FundsReinstated, d.AmountWithdrawn, d.Fee, d.AmountReinstated, d.ProcessorUpdatedAt, read+1, now, read)
	if err != nil {
		return fmt.Errorf("update dispute: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("update dispute %s: version %d is no longer current", d.PublicID(), read)
	}
	d.Version, d.UpdatedAt = read+1, now
	return nil
}

func scanDispute(row pgx.Row) (Dispute, error) {
	var d Dispute
	var status string
	var op *string
	var evidence []byte
	err := row.Scan(&d.TenantID, &d.ID, &d.PaymentID, &d.Processor, &d.ProcessorRef, &d.Amount, &d.Currency, &d.Reason, &status,
		&d.EvidenceDueBy, &evidence, &d.EvidenceSubmittedAt, &op, &d.OperationStartedAt, &d.FundsWithdrawn, &d.FundsReinstated,
		&d.AmountWithdrawn, &d.Fee, &d.AmountReinstated, &d.ProcessorUpdatedAt, &d.Version, &d.CreatedAt, &d.UpdatedAt)
	if err != nil {
		return d, err
	}
	d.Status = DisputeStatus(status)
	if op != nil {
		d.Operation = DisputeOperation(*op)
	}
	if err := json.Unmarshal(evidence, &d.Evidence); err != nil {
		return d, fmt.Errorf("decode evidence: %w", err)
	}
	return d, nil
}

func getDispute(ctx context.Context, q Querier, tenantID, id uuid.UUID) (Dispute, error) {
	return getOne(ctx, q, `SELECT `+disputeColumns+` FROM disputes WHERE tenant_id = $1 AND id = $2`, "dispute", ids.PrefixDispute, scanDispute, tenantID, id)
}

// getDisputeByRef reads the dispute the processor knows as ref; found is
// false when there is none.
func getDisputeByRef(ctx context.Context, q Querier, tenantID uuid.UUID, proc, ref string) (Dispute, bool, error) {
	d, err := scanDispute(q.QueryRow(ctx, `SELECT `+disputeColumns+` FROM disputes WHERE tenant_id = $1 AND processor = $2 AND processor_dispute_id = $3`,
		tenantID, proc, ref))
	if errors.Is(err, pgx.ErrNoRows) {
		return Dispute{}, false, nil
	}
	if err != nil {
		return Dispute{}, false, fmt.Errorf("read dispute: %w", err)
	}
	return d, true, nil
}

// DisputeListParams selects disputes.
type DisputeListParams struct {
	listing.Page
	Payment    *uuid.UUID
	Status     DisputeStatus
	CreatedGTE *time.Time
	CreatedLTE *time.Time
}

func listDisputes(ctx context.Context, q Querier, tenantID uuid.UUID, p DisputeListParams) ([]Dispute, bool, error) {
	sql := `SELECT ` + disputeColumns + ` FROM disputes WHERE tenant_id = $1`
	args := []any{tenantID}
	if p.Payment != nil {
		args = append(args, *p.Payment)
		sql += fmt.Sprintf(" AND payment_id = $%d", len(args))
	}
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
	return listing.Query(ctx, q, "disputes", sql, args, p.Page, scanDispute)
}
