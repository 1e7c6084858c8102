package payments

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/idempotency"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/sharding"
)

// CreateRefundParams are the inputs of CreateRefund.
type CreateRefundParams struct {
	Payment uuid.UUID
	// Amount is what to refund; 0 refunds everything that is left.
	Amount int64
	Reason *string
}

func refundEvent(t events.Type, r Refund, now time.Time) events.Event {
	return event(t, r.TenantID, "refund", r.ID, r.Version, r.snapshot(), now)
}

// CreateRefund refunds part or all of a captured payment. The amount is
// reserved on the payment in the first transaction, so refunds that race
// can never together exceed what was captured: of two that would, one
// answers amount_exceeds_refundable.
//
// Errors: resource_missing, payment_invalid_state (409), charge_disputed (409),
// amount_exceeds_refundable (400), parameter_invalid, processor_unavailable.
func (s *Service) CreateRefund(ctx context.Context, tenantID uuid.UUID, p CreateRefundParams) (Refund, error) {
	if p.Amount < 0 {
		return Refund{}, errcode.Invalid("amount_too_small", "amount", "amount must be at least 1")
	}
	if p.Reason != nil && !refundReasons[*p.Reason] {
		return Refund{}, errcode.Invalid(errcode.CodeParameterInvalid, "reason", "reason must be duplicate, fraudulent or requested_by_customer")
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return Refund{}, err
	}
	idem := idempotency.From(ctx)
	var ref Refund
	var reserved *Payment
	var resume *uuid.UUID
	err = s.run(ctx, sh, tenantID, func(ctx context.Context, tx pgx.Tx) error {
		resume, reserved = nil, nil
		if idem != nil {
			r, err := idem.Claim(ctx, tx)
			if err != nil {
				return err
			}
			if r != nil {
				resume = r
				return nil
			}
		}
		pay, err := getPayment(ctx, tx, tenantID, p.Payment)
		if err != nil {
			if errcode.Is(err, errcode.CodeResourceMissing) {
				e := errcode.NotFound("payment", ids.Format(ids.PrefixPayment, p.Payment))
				e.Param = "payment"
				return e
			}
			return err
		}
		if pay.Status != StatusSucceeded {
			return invalidState(pay, "refunds")
		}
		if pay.Disputed {
			e := errcode.New(errcode.KindConflict, CodeChargeDisputed, "this payment is disputed: it cannot be refunded; respond to the dispute instead (GET /v1/disputes?payment=%s)", pay.PublicID())
			e.Payment = pay.PublicID()
			return e
		}
		amount := p.Amount
		left := pay.Refundable()
		if amount == 0 {
			amount = left
		}
		if amount == 0 || amount > left {
			e := errcode.Invalid(CodeAmountExceedsRefundable, "amount", "the refund amount %d exceeds what is left to refund (%d)", amount, left)
			e.Payment = pay.PublicID()
			return e
		}
		now := s.now()
		ref = Refund{
			ID: ids.New(), TenantID: tenantID, PaymentID: pay.ID, Amount: amount, Currency: pay.Currency,
			Status: RefundPending, Reason: p.Reason, Version: 1, CreatedAt: now, UpdatedAt: now,
		}
		pay.AmountRefundPending += amount
		if err := updatePayment(ctx, tx, &pay, now); err != nil {
			return err
		}
		reserved = &pay
		if err := insertRefund(ctx, tx, &ref); err != nil {
			return err
		}
		if err := events.Append(ctx, tx, refundEvent(events.RefundCreated, ref, now)); err != nil {
			return err
		}
		if idem != nil {
			return idem.SetResource(ctx, tx, ref.ID)
		}
		return nil
	})
	if err != nil {
		return Refund{}, err
	}
	if reserved != nil {
		s.cachePut(ctx, *reserved)
	}
	if resume != nil {
		if ref, err = getRefund(ctx, sh.Pool, tenantID, *resume); err != nil {
			return Refund{}, err
		}
	}
	dctx, cancel := s.detached(ctx)
	defer cancel()
	return s.finishRefund(dctx, sh, ref, idem)
}

// finishRefund makes (or repeats, with the same idempotency key) the
// processor's refund call for a pending refund and records the outcome.
func (s *Service) finishRefund(ctx context.Context, sh *sharding.Shard, ref Refund, idem *idempotency.Request) (Refund, error) {
	var res processor.Refund
	var callErr error
	if ref.Status == RefundPending {
		pay, err := getPayment(ctx, sh.Pool, ref.TenantID, ref.PaymentID)
		if err != nil {
			return ref, err
		}
		if pay.ProcessorRef == nil {
			return ref, fmt.Errorf("payment %s has no processor reference", pay.PublicID())
		}
		proc, err := s.processorOf(ctx, pay)
		if err != nil {
			return ref, err
		}
		cctx, end := ctx, endNothing
		if s.traced(ctx) {
			cctx, end = s.startProcessorSpan(ctx, "refund", proc.Name(), ref.PublicID())
		}
		cctx, cancel := context.WithTimeout(cctx, s.timeout)
		if rr, ok := proc.(processor.RefundRetriever); ok && ref.ProcessorRef != nil {
			// The processor answered before and the refund is still
			// pending there: repeating the creation would replay that
			// first answer, so ask for the refund's state.
			res, callErr = rr.RetrieveRefund(cctx, *ref.ProcessorRef)
		} else {
			res, callErr = proc.Refund(cctx, processor.RefundRequest{
				Ref: *pay.ProcessorRef, TenantID: ids.Format(ids.PrefixTenant, ref.TenantID), PaymentID: pay.PublicID(),
				RefundID: ref.PublicID(), Amount: ref.Amount, Currency: ref.Currency, IdempotencyKey: ref.processorKey(),
			})
		}
		cancel()
		end(callErr)
		if callErr != nil && errcode.As(callErr) == nil {
			if idem != nil {
				if err := idem.Release(ctx, sh.Pool); err != nil {
					s.log.Warn("release idempotency key", "error", err.Error())
				}
			}
			return ref, unavailable(nil, callErr)
		}
		if callErr != nil {
			res = processor.Refund{Status: processor.RefundFailed, FailureReason: errcode.As(callErr).Message}
		}
	}
	var out Refund
	var outPay *Payment
	err := s.run(ctx, sh, ref.TenantID, func(ctx context.Context, tx pgx.Tx) error {
		outPay = nil
		cur, err := getRefund(ctx, tx, ref.TenantID, ref.ID)
		if err != nil {
			return err
		}
		out = cur
		if cur.Status == RefundPending && ref.Status == RefundPending && res.Status != "" {
			p, changed, err := s.applyRefund(ctx, tx, &cur, res)
			if err != nil {
				return err
			}
			// cur carries what applyRefund wrote, such as the
			// processor's reference of a refund still pending there.
			out = cur
			if changed {
				outPay = p
			}
		}
		if idem != nil && idem.Claimed() {
			return idem.Complete(ctx, tx, out, nil)
		}
		return nil
	})
	if err != nil {
		return ref, err
	}
	if outPay != nil {
		s.cachePut(ctx, *outPay)
	}
	return out, nil
}

// applyRefund records a processor's refund result on a pending refund and
// its payment, with the ledger posting and the event, inside tx.
func (s *Service) applyRefund(ctx context.Context, tx pgx.Tx, r *Refund, res processor.Refund) (*Payment, bool, error) {
	to := RefundStatus(res.Status)
	if to == RefundPending || to == r.Status {
		if res.Ref != "" && (r.ProcessorRef == nil || *r.ProcessorRef != res.Ref) {
			rf := res.Ref
			r.ProcessorRef = &rf
			return nil, false, updateRefund(ctx, tx, r, s.now())
		}
		return nil, false, nil
	}
	pay, err := getPayment(ctx, tx, r.TenantID, r.PaymentID)
	if err != nil {
		return nil, false, err
	}
	now := s.now()
	if res.Ref != "" {
		rf := res.Ref
		r.ProcessorRef = &rf
	}
	pay.AmountRefundPending -= r.Amount
	var evType events.Type
	switch to {
	case RefundSucceeded:
		r.Status = RefundSucceeded
		pay.AmountRefunded += r.Amount
		t, err := ledger.Refund(r.TenantID, r.Currency, r.ID, r.PaymentID, r.Amount)
		if err != nil {
			return nil, false, err
		}
		if err := ledger.Post(ctx, tx, t); err != nil {
			return nil, false, err
		}
		evType = events.RefundSucceeded
	case RefundFailed, RefundCanceled:
		r.Status = to
		if res.FailureReason != "" {
			fr := res.FailureReason
			r.FailureReason = &fr
		}
		evType = events.RefundFailed
		if to == RefundCanceled {
			evType = events.RefundCanceled
		}
	default:
		return nil, false, fmt.Errorf("unknown refund status %q", res.Status)
	}
	if pay.AmountRefundPending < 0 || pay.AmountRefunded > pay.AmountCaptured {
		return nil, false, fmt.Errorf("refund %s would break the refund bound of %s", r.PublicID(), pay.PublicID())
	}
	if err := updateRefund(ctx, tx, r, now); err != nil {
		return nil, false, err
	}
	if err := updatePayment(ctx, tx, &pay, now); err != nil {
		return nil, false, err
	}
	if err := events.Append(ctx, tx, refundEvent(evType, *r, now)); err != nil {
		return nil, false, err
	}
	return &pay, true, nil
}

// GetRefund reads a refund. Errors: resource_missing.
func (s *Service) GetRefund(ctx context.Context, tenantID, id uuid.UUID) (Refund, error) {
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return Refund{}, err
	}
	return getRefund(ctx, sh.Pool, tenantID, id)
}

// ListRefunds lists refunds newest first, optionally of one payment.
func (s *Service) ListRefunds(ctx context.Context, tenantID uuid.UUID, p RefundListParams) ([]Refund, bool, error) {
	if err := p.Page.Validate(); err != nil {
		return nil, false, err
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return nil, false, err
	}
	return listRefunds(ctx, sh.Pool, tenantID, p)
}

// ApplyRefundUpdate applies a refund's status change that the processor
// reported on its own. It is idempotent, takes effect once per EventID, and
// never moves a finished refund.
func (s *Service) ApplyRefundUpdate(ctx context.Context, u processor.RefundUpdate) error {
	tenantID, ok1 := ids.Parse(ids.PrefixTenant, u.TenantID)
	id, ok2 := ids.Parse(ids.PrefixRefund, u.RefundID)
	if !ok1 || !ok2 {
		return errcode.Invalid(errcode.CodeParameterInvalid, "refund", "update names no known refund")
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return err
	}
	var outPay *Payment
	err = s.run(ctx, sh, tenantID, func(ctx context.Context, tx pgx.Tx) error {
		outPay = nil
		cur, err := getRefund(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		if cur.Status != RefundPending {
			return nil
		}
		pay, err := getPayment(ctx, tx, tenantID, cur.PaymentID)
		if err != nil {
			return err
		}
		if first, err := firstDelivery(ctx, tx, tenantID, pay.Processor, u.EventID); err != nil || !first {
			return err
		}
		p, _, err := s.applyRefund(ctx, tx, &cur, u.Refund)
		outPay = p
		return err
	})
	if err == nil && outPay != nil {
		s.cachePut(ctx, *outPay)
	}
	return err
}
