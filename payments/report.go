package payments

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/sharding"
)

// Limits of a reconciliation report.
const (
	// ReportObjectsMax bounds the payments, and separately the refunds, one
	// report compares; each costs one processor call.
	ReportObjectsMax = 10_000
	// ReportDifferencesMax bounds the differences one report lists.
	ReportDifferencesMax = 10_000
)

// Fields a Difference names.
const (
	// FieldStatus: the statuses differ.
	FieldStatus = "status"
	// FieldAmount: the authorized (or refund) amounts differ.
	FieldAmount = "amount"
	// FieldAmountReceived: both say succeeded, with different captured
	// amounts.
	FieldAmountReceived = "amount_received"
	// FieldProcessorObject: the processor does not know the object, or we
	// never learned its reference (a crash before the answer).
	FieldProcessorObject = "processor_object"
	// FieldFee: both say succeeded, and the processor's fee on the
	// charge differs from the fee we booked.
	FieldFee = "fee"
	// FieldDisputeFunds: the processor withdrew or reinstated a dispute's
	// funds that our ledger has not booked.
	FieldDisputeFunds = "dispute_funds"
)

// ParseSince reads the start of a report: a date (YYYY-MM-DD, midnight
// UTC) or an RFC 3339 time. Errors: parameter_invalid (param "since").
func ParseSince(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, errcode.Invalid(errcode.CodeParameterInvalid, "since", "since must be a date such as 2026-11-01 or an RFC 3339 time such as 2026-11-01T00:00:00Z")
}

// ReportParams select what a report compares.
type ReportParams struct {
	// Since: objects created at or after it.
	Since time.Time
	// Limit bounds the payments and the refunds compared, each; 0 means
	// ReportObjectsMax.
	Limit int
	// Repair applies the processor's state where our state may still move
	// to it (a pending payment the processor settled, a crash-interrupted
	// operation, a pending refund the processor finished), through the
	// same state machine, ledger and events as notifications. Without it
	// the report changes nothing.
	Repair bool
}

// Difference is one disagreement between our record and the processor's.
type Difference struct {
	Object       string `json:"object" enum:"payment,refund,dispute" doc:"Which kind of object differs."`
	ID           string `json:"id" doc:"Our ID of the object." example:"pay_06h17frpsdzff29kp8gyg5mc4w"`
	ProcessorRef string `json:"processor_ref,omitempty" doc:"The processor's ID of the object (a PaymentIntent or refund ID)." example:"pi_3PgafyB7WZ01zgkW0xQm9a1b"`
	Field        string `json:"field" enum:"status,amount,amount_received,processor_object,fee,dispute_funds" doc:"What differs." example:"status"`
	Ours         string `json:"ours" doc:"Our value." example:"pending"`
	Processor    string `json:"processor" doc:"The processor's value; missing when it does not know the object, unknown when we never learned its reference." example:"succeeded"`
	// Repairable: our state may still move to the processor's (never
	// backwards, never an amount).
	Repairable bool `json:"repairable" doc:"Whether repair can apply the processor's state: only forward moves of a status, never amounts."`
	Repaired   bool `json:"repaired" doc:"Whether this report's repair applied it."`
}

// Report is the outcome of comparing a tenant's payments and refunds with
// the processor's objects.
type Report struct {
	Tenant    string `json:"tenant" doc:"The tenant." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	Processor string `json:"processor" doc:"The tenant's processor now." example:"stripe"`
	Since     int64  `json:"since" doc:"Objects created at or after this time (Unix seconds) were compared." example:"1793491200"`
	Payments  int    `json:"payments_compared" doc:"Payments compared."`
	Refunds   int    `json:"refunds_compared" doc:"Refunds compared."`
	Disputes  int    `json:"disputes_compared" doc:"Disputes compared."`
	// Skipped counts objects that cannot be compared: made with another
	// processor than their account's now (such as sandbox payments before
	// Stripe was configured), on an account the tenant no longer has, and
	// refunds when the processor cannot retrieve refunds.
	Skipped     int          `json:"skipped" doc:"Objects not compared: made with another processor than their account's now, on an account the tenant removed, or refunds the processor cannot look up."`
	Truncated   bool         `json:"truncated" doc:"Whether more objects matched than the limit allowed; run again with a later since."`
	Repair      bool         `json:"repair" doc:"Whether repairs were asked for."`
	Repaired    int          `json:"repaired" doc:"Differences repaired."`
	Differences []Difference `json:"differences" doc:"Every difference found, oldest object first."`
}

// ReconciliationReport compares the tenant's payments and refunds created
// since p.Since with the processor's view of each (one Retrieve or
// RetrieveRefund per object) and lists every difference in status or
// amount. With p.Repair it also applies what may be applied (see
// ReportParams.Repair). Errors: resource_missing (tenant),
// processor_unavailable (503) when the processor cannot be asked, so a
// report is never silently partial.
func (s *Service) ReconciliationReport(ctx context.Context, tenantID uuid.UUID, p ReportParams) (Report, error) {
	if p.Limit <= 0 || p.Limit > ReportObjectsMax {
		p.Limit = ReportObjectsMax
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return Report{}, err
	}
	proc, _, err := s.processorFor(ctx, tenantID)
	if err != nil {
		return Report{}, err
	}
	rep := Report{
		Tenant: ids.Format(ids.PrefixTenant, tenantID), Processor: proc.Name(), Since: p.Since.Unix(),
		Repair: p.Repair, Differences: []Difference{},
	}
	procs := reportProcessors{s: s, byAccount: map[string]processor.Processor{}}
	if err := s.reportPayments(ctx, sh, &procs, tenantID, p, &rep); err != nil {
		return rep, err
	}
	if err := s.reportRefunds(ctx, sh, &procs, tenantID, p, &rep); err != nil {
		return rep, err
	}
	if err := s.reportDisputes(ctx, sh, &procs, tenantID, p, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// reportProcessors resolves, once per account, the processor that holds
// each payment of a report: the account the payment was made on.
type reportProcessors struct {
	s         *Service
	byAccount map[string]processor.Processor
}

// of answers the processor of pay's account, or nil when pay was made with
// another processor than that account's (such as sandbox payments made
// before Stripe was configured) or on an account the tenant no longer has:
// then it cannot be compared.
func (r *reportProcessors) of(ctx context.Context, pay Payment) (processor.Processor, error) {
	proc, ok := r.byAccount[pay.ProcessorAccount]
	if !ok {
		var err error
		proc, err = r.s.processorOf(ctx, pay)
		if errcode.Is(err, processor.CodeAccountMissing) {
			proc, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
		r.byAccount[pay.ProcessorAccount] = proc
	}
	if proc == nil || proc.Name() != pay.Processor {
		return nil, nil
	}
	return proc, nil
}

// add records a difference, within ReportDifferencesMax.
func (r *Report) add(d Difference) *Difference {
	if len(r.Differences) >= ReportDifferencesMax {
		r.Truncated = true
		return &Difference{}
	}
	r.Differences = append(r.Differences, d)
	return &r.Differences[len(r.Differences)-1]
}

// askErr turns a failed processor question into the report's error, or nil
// when the answer is "no such object".
func askErr(err error) error {
	if errcode.Is(err, errcode.CodeResourceMissing) {
		return nil
	}
	if errors.Is(err, processor.ErrUnavailable) {
		return unavailable(nil, err)
	}
	return err
}

func (s *Service) reportPayments(ctx context.Context, sh *sharding.Shard, procs *reportProcessors, tenantID uuid.UUID, p ReportParams, rep *Report) error {
	rows, err := sh.Pool.Query(ctx, `SELECT `+paymentColumns+` FROM payments WHERE tenant_id = $1 AND created_at >= $2 ORDER BY created_at, id LIMIT $3`,
		tenantID, p.Since, p.Limit+1)
	if err != nil {
		return fmt.Errorf("list payments to reconcile: %w", err)
	}
	var pays []Payment
	for rows.Next() {
		pay, err := scanPayment(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("scan payment: %w", err)
		}
		pays = append(pays, pay)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list payments to reconcile: %w", err)
	}
	if len(pays) > p.Limit {
		pays, rep.Truncated = pays[:p.Limit], true
	}
	for _, pay := range pays {
		proc, err := procs.of(ctx, pay)
		if err != nil {
			return err
		}
		if proc == nil {
			rep.Skipped++
			continue
		}
		rep.Payments++
		if pay.ProcessorRef == nil {
			if pay.Operation == OpAuthorize {
				// A crash before the processor's answer: only repeating
				// the call can tell.
				d := rep.add(Difference{Object: "payment", ID: pay.PublicID(), Field: FieldProcessorObject, Ours: string(pay.Status), Processor: "unknown", Repairable: true})
				if p.Repair {
					d.Repaired = s.repairOperation(ctx, sh, pay)
				}
			}
			continue
		}
		ref := *pay.ProcessorRef
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		ch, err := proc.Retrieve(cctx, ref)
		cancel()
		if err != nil {
			if err := askErr(err); err != nil {
				return err
			}
			rep.add(Difference{Object: "payment", ID: pay.PublicID(), ProcessorRef: ref, Field: FieldProcessorObject, Ours: string(pay.Status), Processor: "missing"})
			continue
		}
		s.comparePayment(ctx, sh, pay, ch, p.Repair, rep)
	}
	return nil
}

// comparePayment lists the differences of one payment and repairs its
// status when asked and allowed.
func (s *Service) comparePayment(ctx context.Context, sh *sharding.Shard, pay Payment, ch processor.Charge, repair bool, rep *Report) {
	ref := *pay.ProcessorRef
	theirs := Status(ch.Status)
	if ch.Amount != 0 && ch.Amount != pay.Amount {
		rep.add(Difference{Object: "payment", ID: pay.PublicID(), ProcessorRef: ref, Field: FieldAmount,
			Ours: strconv.FormatInt(pay.Amount, 10), Processor: strconv.FormatInt(ch.Amount, 10)})
	}
	if theirs == StatusSucceeded && pay.Status == StatusSucceeded && ch.AmountCaptured != pay.AmountCaptured {
		rep.add(Difference{Object: "payment", ID: pay.PublicID(), ProcessorRef: ref, Field: FieldAmountReceived,
			Ours: strconv.FormatInt(pay.AmountCaptured, 10), Processor: strconv.FormatInt(ch.AmountCaptured, 10)})
	}
	if theirs == StatusSucceeded && pay.Status == StatusSucceeded && !ch.FeeUnknown && ch.Fee != pay.Fee {
		// Retrieve reads the fee from the processor's own record (Stripe's
		// balance transaction); a charge settled in another currency
		// reports no fee here and is not compared.
		rep.add(Difference{Object: "payment", ID: pay.PublicID(), ProcessorRef: ref, Field: FieldFee,
			Ours: strconv.FormatInt(pay.Fee, 10), Processor: strconv.FormatInt(ch.Fee, 10)})
	}
	if theirs == pay.Status {
		return
	}
	d := rep.add(Difference{Object: "payment", ID: pay.PublicID(), ProcessorRef: ref, Field: FieldStatus, Ours: string(pay.Status),
		Processor: string(theirs), Repairable: CanTransition(pay.Status, theirs) || pay.Operation != OpNone})
	if !repair || !d.Repairable {
		return
	}
	if pay.Operation != OpNone {
		d.Repaired = s.repairOperation(ctx, sh, pay)
	} else {
		err := s.ApplyUpdate(ctx, processor.Update{Ref: ref, PaymentID: pay.PublicID(), TenantID: ids.Format(ids.PrefixTenant, pay.TenantID), Charge: ch})
		d.Repaired = err == nil && s.statusIs(ctx, sh, pay, theirs)
		if err != nil {
			s.log.Warn("repair payment", "payment", pay.PublicID(), "error", err.Error())
		}
	}
	if d.Repaired {
		rep.Repaired++
	}
}

// repairOperation finishes a payment's interrupted operation the way the
// reconciler does, and reports whether it is finished now.
func (s *Service) repairOperation(ctx context.Context, sh *sharding.Shard, pay Payment) bool {
	out, err := s.finishOperation(ctx, sh, pay, nil, nil)
	if err != nil && !isOutcome(err) {
		s.log.Warn("repair payment operation", "payment", pay.PublicID(), "error", err.Error())
		return false
	}
	return out.Operation == OpNone
}

func (s *Service) statusIs(ctx context.Context, sh *sharding.Shard, pay Payment, want Status) bool {
	cur, err := getPayment(ctx, sh.Pool, pay.TenantID, pay.ID)
	return err == nil && cur.Status == want
}

func (s *Service) reportRefunds(ctx context.Context, sh *sharding.Shard, procs *reportProcessors, tenantID uuid.UUID, p ReportParams, rep *Report) error {
	rows, err := sh.Pool.Query(ctx, `SELECT `+refundColumns+` FROM refunds WHERE tenant_id = $1 AND created_at >= $2 ORDER BY created_at, id LIMIT $3`,
		tenantID, p.Since, p.Limit+1)
	if err != nil {
		return fmt.Errorf("list refunds to reconcile: %w", err)
	}
	var refs []Refund
	for rows.Next() {
		r, err := scanRefund(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("scan refund: %w", err)
		}
		refs = append(refs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list refunds to reconcile: %w", err)
	}
	if len(refs) > p.Limit {
		refs, rep.Truncated = refs[:p.Limit], true
	}
	for _, r := range refs {
		if r.ProcessorRef == nil {
			if r.Status == RefundPending {
				rep.Refunds++
				d := rep.add(Difference{Object: "refund", ID: r.PublicID(), Field: FieldProcessorObject, Ours: string(r.Status), Processor: "unknown", Repairable: true})
				if p.Repair {
					out, err := s.finishRefund(ctx, sh, r, nil)
					d.Repaired = err == nil && out.Status != RefundPending
					if d.Repaired {
						rep.Repaired++
					}
				}
			}
			continue
		}
		pay, err := getPayment(ctx, sh.Pool, r.TenantID, r.PaymentID)
		if err != nil {
			return fmt.Errorf("payment of refund %s: %w", r.PublicID(), err)
		}
		proc, err := procs.of(ctx, pay)
		if err != nil {
			return err
		}
		rr, canAsk := proc.(processor.RefundRetriever)
		if !canAsk {
			rep.Skipped++
			continue
		}
		rep.Refunds++
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		res, err := rr.RetrieveRefund(cctx, *r.ProcessorRef)
		cancel()
		if err != nil {
			if err := askErr(err); err != nil {
				return err
			}
			rep.add(Difference{Object: "refund", ID: r.PublicID(), ProcessorRef: *r.ProcessorRef, Field: FieldProcessorObject, Ours: string(r.Status), Processor: "missing"})
			continue
		}
		if res.Amount != r.Amount {
			rep.add(Difference{Object: "refund", ID: r.PublicID(), ProcessorRef: *r.ProcessorRef, Field: FieldAmount,
				Ours: strconv.FormatInt(r.Amount, 10), Processor: strconv.FormatInt(res.Amount, 10)})
		}
		theirs := RefundStatus(res.Status)
		if theirs == r.Status {
			continue
		}
		d := rep.add(Difference{Object: "refund", ID: r.PublicID(), ProcessorRef: *r.ProcessorRef, Field: FieldStatus,
			Ours: string(r.Status), Processor: string(theirs), Repairable: r.Status == RefundPending})
		if p.Repair && d.Repairable {
			err := s.ApplyRefundUpdate(ctx, processor.RefundUpdate{TenantID: ids.Format(ids.PrefixTenant, r.TenantID), RefundID: r.PublicID(), Refund: res})
			if err == nil {
				cur, gerr := getRefund(ctx, sh.Pool, r.TenantID, r.ID)
				d.Repaired = gerr == nil && cur.Status == theirs
			}
			if d.Repaired {
				rep.Repaired++
			}
		}
	}
	return nil
}

// reportDisputes compares the tenant's disputes opened since p.Since with
// the processor's (one RetrieveDispute each): status, amount, and funds the
// processor moved that the ledger has not booked. A repair applies the
// processor's dispute through ApplyDisputeUpdate, the path of webhooks:
// forward by rank only, each movement of funds booked once. Disputes of a
// processor that cannot be asked (the sandbox, which keeps no record) are
// skipped.
func (s *Service) reportDisputes(ctx context.Context, sh *sharding.Shard, procs *reportProcessors, tenantID uuid.UUID, p ReportParams, rep *Report) error {
	rows, err := sh.Pool.Query(ctx, `SELECT `+disputeColumns+` FROM disputes WHERE tenant_id = $1 AND created_at >= $2 ORDER BY created_at, id LIMIT $3`,
		tenantID, p.Since, p.Limit+1)
	if err != nil {
		return fmt.Errorf("list disputes to reconcile: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Dispute, error) { return scanDispute(r) })
	if err != nil {
		return fmt.Errorf("list disputes to reconcile: %w", err)
	}
	if len(ds) > p.Limit {
		ds, rep.Truncated = ds[:p.Limit], true
	}
	for _, d := range ds {
		pay, err := getPayment(ctx, sh.Pool, d.TenantID, d.PaymentID)
		if err != nil {
			return fmt.Errorf("payment of dispute %s: %w", d.PublicID(), err)
		}
		proc, err := procs.of(ctx, pay)
		if err != nil {
			return err
		}
		dr, canAsk := proc.(processor.DisputeRetriever)
		if !canAsk {
			rep.Skipped++
			continue
		}
		rep.Disputes++
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		theirs, err := dr.RetrieveDispute(cctx, d.ProcessorRef)
		cancel()
		if err != nil {
			if err := askErr(err); err != nil {
				return err
			}
			rep.add(Difference{Object: "dispute", ID: d.PublicID(), ProcessorRef: d.ProcessorRef, Field: FieldProcessorObject, Ours: string(d.Status), Processor: "missing"})
			continue
		}
		if theirs.Amount != d.Amount {
			rep.add(Difference{Object: "dispute", ID: d.PublicID(), ProcessorRef: d.ProcessorRef, Field: FieldAmount,
				Ours: strconv.FormatInt(d.Amount, 10), Processor: strconv.FormatInt(theirs.Amount, 10)})
		}
		var found []Difference
		if theirs.Status != d.Status {
			found = append(found, Difference{Object: "dispute", ID: d.PublicID(), ProcessorRef: d.ProcessorRef, Field: FieldStatus,
				Ours: string(d.Status), Processor: string(theirs.Status),
				Repairable: !d.Status.Final() && disputeRank(theirs.Status) > disputeRank(d.Status)})
		}
		if theirs.Withdrawal != nil && !d.FundsWithdrawn {
			found = append(found, Difference{Object: "dispute", ID: d.PublicID(), ProcessorRef: d.ProcessorRef, Field: FieldDisputeFunds,
				Ours: "not_withdrawn", Processor: "withdrawn", Repairable: true})
		}
		if theirs.Reinstatement != nil && !d.FundsReinstated {
			found = append(found, Difference{Object: "dispute", ID: d.PublicID(), ProcessorRef: d.ProcessorRef, Field: FieldDisputeFunds,
				Ours: "not_reinstated", Processor: "reinstated", Repairable: true})
		}
		repairable := false
		for _, f := range found {
			repairable = repairable || f.Repairable
		}
		if p.Repair && repairable {
			err := s.ApplyDisputeUpdate(ctx, processor.DisputeUpdate{
				TenantID: ids.Format(ids.PrefixTenant, d.TenantID), PaymentID: ids.Format(ids.PrefixPayment, d.PaymentID), Dispute: theirs,
			})
			cur, gerr := getDispute(ctx, sh.Pool, d.TenantID, d.ID)
			for i := range found {
				f := &found[i]
				if !f.Repairable || err != nil || gerr != nil {
					continue
				}
				switch f.Processor {
				case "withdrawn":
					f.Repaired = cur.FundsWithdrawn
				case "reinstated":
					f.Repaired = cur.FundsReinstated
				default:
					f.Repaired = cur.Status == theirs.Status
				}
				if f.Repaired {
					rep.Repaired++
				}
			}
		}
		for _, f := range found {
			rep.add(f)
		}
	}
	return nil
}
