package payments

import (
	"context"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

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

// Limits of disputes.
const (
	// DisputeRefLengthMax bounds a processor's dispute ID.
	DisputeRefLengthMax = 255
	// DisputeReasonLengthMax bounds the issuer's reason as stored.
	DisputeReasonLengthMax = 64
	// EvidenceShortLengthMax bounds the short evidence fields (names,
	// addresses, dates, tracking numbers), in characters.
	EvidenceShortLengthMax = 500
	// EvidenceTextLengthMax bounds the long evidence fields (descriptions,
	// explanations, logs), in characters.
	EvidenceTextLengthMax = 10_000
	// EvidenceLengthMax bounds all evidence of one dispute together, in
	// characters (Stripe accepts 150,000; the request body bounds it
	// first).
	EvidenceLengthMax = 50_000
)

// EvidenceFields lists the text evidence fields (Stripe's names) with
// their length limits in characters. Stripe's file fields (receipts,
// customer communication, shipping documentation) are not taken: the
// service stores no files.
var EvidenceFields = map[string]int{
	"access_activity_log":            EvidenceTextLengthMax,
	"billing_address":                EvidenceShortLengthMax,
	"cancellation_policy_disclosure": EvidenceTextLengthMax,
	"cancellation_rebuttal":          EvidenceTextLengthMax,
	"customer_email_address":         EvidenceShortLengthMax,
	"customer_name":                  EvidenceShortLengthMax,
	"customer_purchase_ip":           EvidenceShortLengthMax,
	"duplicate_charge_explanation":   EvidenceTextLengthMax,
	"duplicate_charge_id":            EvidenceShortLengthMax,
	"product_description":            EvidenceTextLengthMax,
	"refund_policy_disclosure":       EvidenceTextLengthMax,
	"refund_refusal_explanation":     EvidenceTextLengthMax,
	"service_date":                   EvidenceShortLengthMax,
	"shipping_address":               EvidenceShortLengthMax,
	"shipping_carrier":               EvidenceShortLengthMax,
	"shipping_date":                  EvidenceShortLengthMax,
	"shipping_tracking_number":       EvidenceShortLengthMax,
	"uncategorized_text":             EvidenceTextLengthMax,
}

// ValidateEvidence checks the merchant's evidence: known fields, each
// within its limit, not all empty, all together within EvidenceLengthMax.
// Empty fields are dropped. Errors: parameter_invalid and
// parameter_missing with param evidence or evidence.<field>.
func ValidateEvidence(ev map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(ev))
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	total := 0
	for _, k := range keys {
		v := ev[k]
		limit, ok := EvidenceFields[k]
		if !ok {
			return nil, errcode.Invalid(errcode.CodeParameterInvalid, "evidence."+k, "unknown evidence field %q", k)
		}
		n := utf8.RuneCountInString(v)
		if !utf8.ValidString(v) || n > limit {
			return nil, errcode.Invalid(errcode.CodeParameterInvalid, "evidence."+k, "evidence.%s must be at most %d characters", k, limit)
		}
		if strings.TrimSpace(v) == "" {
			continue
		}
		total += n
		out[k] = v
	}
	if len(out) == 0 {
		return nil, errcode.Invalid(errcode.CodeParameterMissing, "evidence", "evidence needs at least one non-empty field")
	}
	if total > EvidenceLengthMax {
		return nil, errcode.Invalid(errcode.CodeParameterInvalid, "evidence", "evidence must be at most %d characters in all", EvidenceLengthMax)
	}
	return out, nil
}

func disputeEvent(t events.Type, d Dispute, now time.Time) events.Event {
	return event(t, d.TenantID, "dispute", d.ID, d.Version, d.snapshot(), now)
}

// GetDispute reads a dispute. Errors: resource_missing.
func (s *Service) GetDispute(ctx context.Context, tenantID, id uuid.UUID) (Dispute, error) {
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return Dispute{}, err
	}
	return getDispute(ctx, sh.Pool, tenantID, id)
}

// ListDisputes lists disputes newest first. Errors: parameter_invalid.
func (s *Service) ListDisputes(ctx context.Context, tenantID uuid.UUID, p DisputeListParams) ([]Dispute, bool, error) {
	if err := p.Page.Validate(); err != nil {
		return nil, false, err
	}
	if p.Status != "" && !p.Status.Valid() {
		return nil, false, errcode.Invalid(errcode.CodeParameterInvalid, "status", "unknown dispute status %q", p.Status)
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return nil, false, err
	}
	return listDisputes(ctx, sh.Pool, tenantID, p)
}

// checkDisputeUpdate refuses notifications that cannot be about a
// dispute of ours (KindInvalid: the webhook edge answers 2xx and ignores
// them).
func checkDisputeUpdate(u processor.DisputeUpdate) error {
	d := u.Dispute
	switch {
	case d.Ref == "" || len(d.Ref) > DisputeRefLengthMax:
		return errcode.Invalid(errcode.CodeParameterInvalid, "dispute", "dispute update without a valid processor dispute ID")
	case !d.Status.Valid():
		return errcode.Invalid(errcode.CodeParameterInvalid, "status", "unknown dispute status %q", d.Status)
	case d.Amount <= 0:
		return errcode.Invalid(errcode.CodeParameterInvalid, "amount", "dispute amount %d", d.Amount)
	}
	return nil
}

// ApplyDisputeUpdate applies a dispute's change the processor reported
// (Stripe's charge.dispute.* webhooks, the sandbox): it opens the dispute
// on its first notification, moves its status forward by rank (see
// disputeRank), books the withdrawal and reinstatement of its funds once
// each (the ledger's source key, and the dispute's flags), marks the
// payment disputed, and appends the events, in one transaction of the
// payment write path. Each EventID takes effect once. A notification
// about a payment whose operation is in flight, or that is not succeeded
// yet, answers processor_update_deferred (KindUnavailable), so that the
// processor delivers it again later.
func (s *Service) ApplyDisputeUpdate(ctx context.Context, u processor.DisputeUpdate) error {
	if err := checkDisputeUpdate(u); err != nil {
		return err
	}
	if u.TenantID == "" || u.PaymentID == "" {
		tenant, payment, err := s.locatePayment(ctx, u)
		if err != nil {
			return err
		}
		if u.TenantID != "" && u.TenantID != tenant {
			return errcode.Invalid(errcode.CodeParameterInvalid, "payment", "the disputed charge belongs to another tenant")
		}
		u.TenantID, u.PaymentID = tenant, payment
	}
	tenantID, ok1 := ids.Parse(ids.PrefixTenant, u.TenantID)
	paymentID, ok2 := ids.Parse(ids.PrefixPayment, u.PaymentID)
	if !ok1 || !ok2 {
		return errcode.Invalid(errcode.CodeParameterInvalid, "payment", "dispute update names no known payment")
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return err
	}
	var outPay *Payment
	var deferred bool
	err = s.run(ctx, sh, tenantID, func(ctx context.Context, tx pgx.Tx) error {
		outPay, deferred = nil, false
		pay, err := getPayment(ctx, tx, tenantID, paymentID)
		if err != nil {
			return err
		}
		if u.PaymentRef != "" && (pay.ProcessorRef == nil || *pay.ProcessorRef != u.PaymentRef) {
			s.log.Info("dispute update ignored: charge reference does not match", "payment", pay.PublicID())
			return nil
		}
		if pay.Operation != OpNone || pay.Status != StatusSucceeded {
			// The payment's own outcome comes first; the notification is
			// not marked as seen, so its redelivery applies.
			deferred = true
			return nil
		}
		if u.Dispute.Amount > pay.AmountCaptured || !strings.EqualFold(u.Dispute.Currency, pay.Currency) {
			s.log.Warn("dispute update ignored: amount or currency does not fit the payment", "payment", pay.PublicID(),
				"amount", u.Dispute.Amount, "currency", u.Dispute.Currency)
			return nil
		}
		if first, err := firstDelivery(ctx, tx, tenantID, pay.Processor, u.EventID); err != nil || !first {
			return err
		}
		now := s.now()
		d, found, err := getDisputeByRef(ctx, tx, tenantID, pay.Processor, u.Dispute.Ref)
		if err != nil {
			return err
		}
		if !found {
			reason := u.Dispute.Reason
			if reason == "" {
				reason = "general"
			}
			if len(reason) > DisputeReasonLengthMax {
				reason = reason[:DisputeReasonLengthMax]
			}
			d = Dispute{
				ID: ids.New(), TenantID: tenantID, PaymentID: pay.ID, Processor: pay.Processor, ProcessorRef: u.Dispute.Ref,
				Amount: u.Dispute.Amount, Currency: pay.Currency, Reason: reason, Status: u.Dispute.Status,
				Evidence: map[string]string{}, Version: 1, CreatedAt: now, UpdatedAt: now,
			}
			if !u.Dispute.EvidenceDueBy.IsZero() {
				due := u.Dispute.EvidenceDueBy
				d.EvidenceDueBy = &due
			}
			if !u.EventCreated.IsZero() {
				at := u.EventCreated
				d.ProcessorUpdatedAt = &at
			}
		}
		types, postings, dirty, err := applyDisputeState(&d, u, !found)
		if err != nil {
			return err
		}
		if found && !dirty {
			return nil
		}
		if found {
			if err := updateDispute(ctx, tx, &d, now); err != nil {
				return err
			}
		} else {
			types = append([]events.Type{events.DisputeCreated}, types...)
			if err := insertDispute(ctx, tx, &d); err != nil {
				return err
			}
		}
		if !pay.Disputed {
			pay.Disputed = true
			if err := updatePayment(ctx, tx, &pay, now); err != nil {
				return err
			}
			outPay = &pay
		}
		if err := ledger.Post(ctx, tx, postings...); err != nil {
			return err
		}
		evs := make([]events.Event, 0, len(types))
		for _, t := range types {
			evs = append(evs, disputeEvent(t, d, now))
		}
		return events.Append(ctx, tx, evs...)
	})
	if err != nil {
		return err
	}
	if outPay != nil {
		s.cachePut(ctx, *outPay)
	}
	if deferred {
		e := errcode.New(errcode.KindUnavailable, CodeUpdateDeferred, "the disputed payment is not settled here yet; deliver the notification again later")
		e.Payment = u.PaymentID
		return e
	}
	return nil
}

// locatePayment asks the processor which of our payments a dispute
// notification's charge is.
func (s *Service) locatePayment(ctx context.Context, u processor.DisputeUpdate) (string, string, error) {
	if u.PaymentRef == "" {
		return "", "", errcode.Invalid(errcode.CodeParameterInvalid, "payment", "dispute update names no charge")
	}
	account := processor.AccountPlatform
	if u.TenantID != "" {
		account = processor.AccountTenant
	}
	proc, _, err := s.procs(ctx, u.TenantID, account)
	if err != nil {
		return "", "", err
	}
	loc, ok := proc.(processor.PaymentLocator)
	if !ok {
		return "", "", errcode.Invalid(errcode.CodeParameterInvalid, "payment", "processor %s cannot locate a charge", proc.Name())
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tenant, payment, err := loc.LocatePayment(cctx, u.PaymentRef)
	if err != nil {
		if errcode.As(err) != nil {
			return "", "", err
		}
		return "", "", unavailable(nil, err)
	}
	return tenant, payment, nil
}

// applyDisputeState applies a notification to d: the status by rank, the
// reason and due date when the notification is not older than the last
// applied, and the movements of funds not booked yet. It returns the
// events (without dispute.created) and postings, and whether d changed.
func applyDisputeState(d *Dispute, u processor.DisputeUpdate, fresh bool) ([]events.Type, []ledger.Transaction, bool, error) {
	pd := u.Dispute
	var types []events.Type
	var postings []ledger.Transaction
	dirty, visible := false, false
	at := u.EventCreated
	newer := d.ProcessorUpdatedAt == nil || at.IsZero() || !at.Before(*d.ProcessorUpdatedAt)
	closed := false
	if !d.Status.Final() {
		if disputeRank(pd.Status) > disputeRank(d.Status) {
			d.Status, dirty, visible = pd.Status, true, true
			closed = d.Status.Final()
		}
		if newer && !fresh {
			if pd.Reason != "" && pd.Reason != d.Reason && len(pd.Reason) <= DisputeReasonLengthMax {
				d.Reason, dirty, visible = pd.Reason, true, true
			}
			if !pd.EvidenceDueBy.IsZero() && (d.EvidenceDueBy == nil || !d.EvidenceDueBy.Equal(pd.EvidenceDueBy)) {
				due := pd.EvidenceDueBy
				d.EvidenceDueBy, dirty, visible = &due, true, true
			}
		}
	}
	if newer && !at.IsZero() && (d.ProcessorUpdatedAt == nil || !d.ProcessorUpdatedAt.Equal(at)) {
		d.ProcessorUpdatedAt, dirty = &at, true
	}
	wd := pd.Withdrawal
	if wd == nil && (u.Funds != "" || pd.Reinstatement != nil) {
		// Funds that come back were withdrawn first.
		wd = &processor.DisputeFunds{Amount: d.Amount}
	}
	if wd != nil && !d.FundsWithdrawn {
		amount := wd.Amount
		if amount <= 0 || amount > d.Amount {
			amount = d.Amount
		}
		fee := DisputeFeeDefault(d.Currency)
		if wd.FeeKnown {
			fee = wd.Fee
		}
		t, err := ledger.DisputeWithdrawal(d.TenantID, d.Currency, d.ID, d.PaymentID, amount, fee)
		if err != nil {
			return nil, nil, false, err
		}
		postings = append(postings, t)
		d.FundsWithdrawn, d.AmountWithdrawn, d.Fee, dirty = true, amount, fee, true
		types = append(types, events.DisputeFundsWithdrawn)
	}
	rs := pd.Reinstatement
	if rs == nil && u.Funds == processor.FundsReinstated {
		rs = &processor.DisputeFunds{Amount: d.AmountWithdrawn}
	}
	if rs != nil && !d.FundsReinstated && d.FundsWithdrawn {
		amount := rs.Amount
		if amount <= 0 || amount > d.AmountWithdrawn {
			amount = d.AmountWithdrawn
		}
		t, err := ledger.DisputeReinstatement(d.TenantID, d.Currency, d.ID, d.PaymentID, amount)
		if err != nil {
			return nil, nil, false, err
		}
		postings = append(postings, t)
		d.FundsReinstated, d.AmountReinstated, dirty = true, amount, true
		types = append(types, events.DisputeFundsReinstated)
	}
	switch {
	case fresh:
	case closed:
		types = append(types, events.DisputeClosed)
	case visible:
		types = append(types, events.DisputeUpdated)
	}
	if fresh && d.Status.Final() {
		types = append(types, events.DisputeClosed)
	}
	return types, postings, dirty, nil
}

// SubmitDisputeEvidence sends the merchant's text evidence to the
// processor and submits it: the dispute goes under review, and the
// evidence cannot change afterwards. The intent is recorded first, the
// processor is called outside any transaction (idempotent by the
// dispute's ID and version), and the outcome is recorded after.
//
// Errors: the validation codes (400), resource_missing, dispute_closed,
// dispute_evidence_submitted, dispute_operation_in_progress,
// dispute_processor_unsupported (409), processor_unavailable (503; retry
// with the same Idempotency-Key).
func (s *Service) SubmitDisputeEvidence(ctx context.Context, tenantID, id uuid.UUID, evidence map[string]string) (Dispute, error) {
	ev, err := ValidateEvidence(evidence)
	if err != nil {
		return Dispute{}, err
	}
	return s.disputeOperation(ctx, tenantID, id, DisputeOpSubmitEvidence, func(d *Dispute) error {
		if d.EvidenceSubmittedAt != nil {
			return errcode.New(errcode.KindConflict, CodeDisputeEvidenceSubmitted, "evidence for dispute %s was submitted already and cannot change", d.PublicID())
		}
		d.Evidence = ev
		return nil
	})
}

// CloseDispute accepts the dispute: the processor closes it as lost, and
// the withdrawn funds stay withdrawn. Errors: resource_missing,
// dispute_closed, dispute_operation_in_progress,
// dispute_processor_unsupported (409), processor_unavailable (503).
func (s *Service) CloseDispute(ctx context.Context, tenantID, id uuid.UUID) (Dispute, error) {
	return s.disputeOperation(ctx, tenantID, id, DisputeOpClose, func(*Dispute) error { return nil })
}

// disputeOperation records the intent of op, calls the processor and
// records the outcome; check refuses what the dispute's state forbids.
func (s *Service) disputeOperation(ctx context.Context, tenantID, id uuid.UUID, op DisputeOperation, check func(*Dispute) error) (Dispute, error) {
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return Dispute{}, err
	}
	idem := idempotency.From(ctx)
	var d Dispute
	err = s.run(ctx, sh, tenantID, func(ctx context.Context, tx pgx.Tx) error {
		resumed := false
		if idem != nil {
			r, err := idem.Claim(ctx, tx)
			if err != nil {
				return err
			}
			resumed = r != nil
		}
		cur, err := getDispute(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		if resumed {
			d = cur
			return nil
		}
		now := s.now()
		if cur.Status.Final() {
			return errcode.New(errcode.KindConflict, CodeDisputeClosed, "dispute %s is %s: it is closed", cur.PublicID(), cur.Status)
		}
		if cur.Operation != DisputeOpNone && cur.OperationStartedAt != nil && now.Sub(*cur.OperationStartedAt) < s.RequestDurationMax() {
			return errcode.New(errcode.KindConflict, CodeDisputeOperationInProgress, "another call (%s) on dispute %s is in progress; retry later", cur.Operation, cur.PublicID())
		}
		if err := check(&cur); err != nil {
			return err
		}
		cur.Operation, cur.OperationStartedAt = op, &now
		if err := updateDispute(ctx, tx, &cur, now); err != nil {
			return err
		}
		if idem != nil {
			if err := idem.SetResource(ctx, tx, cur.ID); err != nil {
				return err
			}
		}
		d = cur
		return nil
	})
	if err != nil {
		return Dispute{}, err
	}
	dctx, cancel := s.detached(ctx)
	defer cancel()
	return s.finishDisputeOperation(dctx, sh, d, idem)
}

// finishDisputeOperation makes (or repeats, with the same idempotency key)
// the processor call of d's started operation and records the outcome.
func (s *Service) finishDisputeOperation(ctx context.Context, sh *sharding.Shard, d Dispute, idem *idempotency.Request) (Dispute, error) {
	var res processor.Dispute
	var callErr error
	op, started := d.Operation, d.Version
	if op != DisputeOpNone {
		pay, err := getPayment(ctx, sh.Pool, d.TenantID, d.PaymentID)
		if err != nil {
			return d, err
		}
		proc, err := s.processorOf(ctx, pay)
		if err != nil {
			return d, err
		}
		dp, ok := proc.(processor.Disputes)
		if !ok {
			callErr = errcode.New(errcode.KindConflict, CodeDisputesUnsupported, "processor %s takes no dispute responses", proc.Name())
		} else {
			req := processor.DisputeRequest{
				Ref: d.ProcessorRef, TenantID: ids.Format(ids.PrefixTenant, d.TenantID), PaymentID: pay.PublicID(), DisputeID: d.PublicID(),
				Amount: d.Amount, Currency: d.Currency, IdempotencyKey: d.processorKey(op, started),
			}
			cctx, cancel := context.WithTimeout(ctx, s.timeout)
			if op == DisputeOpSubmitEvidence {
				res, callErr = dp.SubmitDisputeEvidence(cctx, req, processor.DisputeEvidence(d.Evidence))
			} else {
				res, callErr = dp.CloseDispute(cctx, req)
			}
			cancel()
		}
		if callErr != nil && errcode.As(callErr) == nil {
			if idem != nil {
				if err := idem.Release(ctx, sh.Pool); err != nil {
					s.log.Warn("release idempotency key", "error", err.Error())
				}
			}
			e := unavailable(nil, callErr)
			return d, e
		}
	}
	var out Dispute
	var resultErr error
	err := s.run(ctx, sh, d.TenantID, func(ctx context.Context, tx pgx.Tx) error {
		resultErr = nil
		cur, err := getDispute(ctx, tx, d.TenantID, d.ID)
		if err != nil {
			return err
		}
		out = cur
		if op != DisputeOpNone && cur.Operation == op && cur.Version == started {
			now := s.now()
			cur.Operation, cur.OperationStartedAt = DisputeOpNone, nil
			var types []events.Type
			if callErr != nil {
				resultErr = callErr
			} else {
				if op == DisputeOpSubmitEvidence {
					cur.EvidenceSubmittedAt = &now
					types = append(types, events.DisputeUpdated)
				}
				to := res.Status
				if op == DisputeOpClose {
					to = processor.DisputeLost
				} else if !to.Valid() {
					to = processor.DisputeUnderReview
				}
				if !cur.Status.Final() && disputeRank(to) > disputeRank(cur.Status) {
					cur.Status = to
					if to.Final() {
						types = []events.Type{events.DisputeClosed}
					} else if len(types) == 0 {
						types = append(types, events.DisputeUpdated)
					}
				}
			}
			if err := updateDispute(ctx, tx, &cur, now); err != nil {
				return err
			}
			evs := make([]events.Event, 0, len(types))
			for _, t := range types {
				evs = append(evs, disputeEvent(t, cur, now))
			}
			if err := events.Append(ctx, tx, evs...); err != nil {
				return err
			}
			out = cur
		}
		if idem != nil && idem.Claimed() {
			return idem.Complete(ctx, tx, out, resultErr)
		}
		return nil
	})
	if err != nil {
		return d, err
	}
	if resultErr != nil {
		return out, resultErr
	}
	return out, nil
}
