package stripe

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	gostripe "github.com/stripe/stripe-go/v76"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/processor"
)

// Dispute events. Each carries the dispute object, whose status and
// balance transactions say what changed.
const (
	EventChargeDisputeCreated         = "charge.dispute.created"
	EventChargeDisputeUpdated         = "charge.dispute.updated"
	EventChargeDisputeClosed          = "charge.dispute.closed"
	EventChargeDisputeFundsWithdrawn  = "charge.dispute.funds_withdrawn"
	EventChargeDisputeFundsReinstated = "charge.dispute.funds_reinstated"
)

var disputeEvents = map[string]string{
	EventChargeDisputeCreated: "", EventChargeDisputeUpdated: "", EventChargeDisputeClosed: "",
	EventChargeDisputeFundsWithdrawn: processor.FundsWithdrawn, EventChargeDisputeFundsReinstated: processor.FundsReinstated,
}

func disputeEventType(t string) bool {
	_, ok := disputeEvents[t]
	return ok
}

var (
	_ processor.Disputes         = (*Adapter)(nil)
	_ processor.DisputeRetriever = (*Adapter)(nil)
	_ processor.PaymentLocator   = (*Adapter)(nil)
)

// disputeStatusOf maps Stripe's dispute statuses onto ours. An inquiry
// under review is under review; an inquiry closed without becoming a
// chargeback (warning_closed) left the merchant its money: won. Unknown
// statuses map to "", which the payments core refuses.
func disputeStatusOf(s gostripe.DisputeStatus) processor.DisputeStatus {
	switch string(s) {
	case "warning_needs_response":
		return processor.DisputeWarningNeedsResponse
	case "warning_under_review", "under_review":
		return processor.DisputeUnderReview
	case "needs_response":
		return processor.DisputeNeedsResponse
	case "won", "warning_closed":
		return processor.DisputeWon
	case "lost":
		return processor.DisputeLost
	}
	return ""
}

// disputeOf maps Stripe's dispute. Its balance transactions are the
// movements of its funds: the negative one the withdrawal (whose fee is
// the dispute fee), the positive one the reinstatement. A transaction in
// another currency than the dispute's (an account that settles in another
// currency) gives no amounts: the ledger books the dispute's own amount
// and the default fee then.
func disputeOf(d *gostripe.Dispute) processor.Dispute {
	out := processor.Dispute{
		Ref: d.ID, Status: disputeStatusOf(d.Status), Amount: d.Amount, Currency: strings.ToLower(string(d.Currency)),
		Reason: string(d.Reason),
	}
	if d.EvidenceDetails != nil && d.EvidenceDetails.DueBy > 0 {
		out.EvidenceDueBy = time.Unix(d.EvidenceDetails.DueBy, 0).UTC()
	}
	for _, bt := range d.BalanceTransactions {
		if bt == nil || bt.Amount == 0 {
			continue
		}
		f := &processor.DisputeFunds{Ref: bt.ID}
		if strings.EqualFold(string(bt.Currency), out.Currency) && bt.Fee >= 0 {
			f.Amount, f.Fee, f.FeeKnown = abs(bt.Amount), bt.Fee, bt.Object != ""
		}
		if bt.Amount < 0 && out.Withdrawal == nil {
			out.Withdrawal = f
		} else if bt.Amount > 0 && out.Reinstatement == nil {
			f.Fee, f.FeeKnown = 0, false
			out.Reinstatement = f
		}
	}
	return out
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// disputeUpdateOf is the DisputeUpdate of a charge.dispute.* event.
func disputeUpdateOf(evt *gostripe.Event, d *gostripe.Dispute) *processor.DisputeUpdate {
	u := &processor.DisputeUpdate{Dispute: disputeOf(d), EventID: evt.ID, Funds: disputeEvents[string(evt.Type)]}
	if evt.Created > 0 {
		u.EventCreated = time.Unix(evt.Created, 0).UTC()
	}
	if d.PaymentIntent != nil {
		u.PaymentRef = d.PaymentIntent.ID
	}
	// A dispute's metadata is the merchant's, empty unless set; ours,
	// when present, names the payment without a lookup.
	u.TenantID, u.PaymentID = d.Metadata[MetadataTenantID], d.Metadata[MetadataPaymentID]
	return u
}

// evidenceParams turns the evidence into Stripe's parameters, in key
// order so that a retry sends the same request.
func evidenceParams(ev processor.DisputeEvidence) (*gostripe.DisputeEvidenceParams, error) {
	p := &gostripe.DisputeEvidenceParams{}
	fields := map[string]**string{
		"access_activity_log": &p.AccessActivityLog, "billing_address": &p.BillingAddress,
		"cancellation_policy_disclosure": &p.CancellationPolicyDisclosure, "cancellation_rebuttal": &p.CancellationRebuttal,
		"customer_email_address": &p.CustomerEmailAddress, "customer_name": &p.CustomerName, "customer_purchase_ip": &p.CustomerPurchaseIP,
		"duplicate_charge_explanation": &p.DuplicateChargeExplanation, "duplicate_charge_id": &p.DuplicateChargeID,
		"product_description": &p.ProductDescription, "refund_policy_disclosure": &p.RefundPolicyDisclosure,
		"refund_refusal_explanation": &p.RefundRefusalExplanation, "service_date": &p.ServiceDate,
		"shipping_address": &p.ShippingAddress, "shipping_carrier": &p.ShippingCarrier, "shipping_date": &p.ShippingDate,
		"shipping_tracking_number": &p.ShippingTrackingNumber, "uncategorized_text": &p.UncategorizedText,
	}
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := fields[k]
		if !ok {
			return nil, errcode.Invalid(errcode.CodeParameterInvalid, "evidence."+k, "unknown evidence field %q", k)
		}
		*f = gostripe.String(ev[k])
	}
	return p, nil
}

// SubmitDisputeEvidence implements processor.Disputes with Update
// Dispute: the evidence and submit=true, idempotent by the request's key.
func (a *Adapter) SubmitDisputeEvidence(ctx context.Context, req processor.DisputeRequest, ev processor.DisputeEvidence) (processor.Dispute, error) {
	if err := checkRef(req.Ref); err != nil {
		return processor.Dispute{}, err
	}
	if err := requireKey("submit_dispute_evidence", req.IdempotencyKey); err != nil {
		return processor.Dispute{}, err
	}
	evp, err := evidenceParams(ev)
	if err != nil {
		return processor.Dispute{}, err
	}
	p := &gostripe.DisputeParams{Evidence: evp, Submit: gostripe.Bool(true)}
	p.IdempotencyKey = gostripe.String(req.IdempotencyKey)
	var d *gostripe.Dispute
	err = a.do(ctx, "submit_dispute_evidence", func(ctx context.Context) error {
		p.Context = ctx
		var err error
		d, err = a.disputes.Update(req.Ref, p)
		return err
	})
	if err != nil {
		return processor.Dispute{}, err
	}
	return disputeOf(d), nil
}

// CloseDispute implements processor.Disputes with Close Dispute.
func (a *Adapter) CloseDispute(ctx context.Context, req processor.DisputeRequest) (processor.Dispute, error) {
	if err := checkRef(req.Ref); err != nil {
		return processor.Dispute{}, err
	}
	if err := requireKey("close_dispute", req.IdempotencyKey); err != nil {
		return processor.Dispute{}, err
	}
	p := &gostripe.DisputeParams{}
	p.IdempotencyKey = gostripe.String(req.IdempotencyKey)
	var d *gostripe.Dispute
	err := a.do(ctx, "close_dispute", func(ctx context.Context) error {
		p.Context = ctx
		var err error
		d, err = a.disputes.Close(req.Ref, p)
		return err
	})
	if err != nil {
		return processor.Dispute{}, err
	}
	return disputeOf(d), nil
}

// RetrieveDispute implements processor.DisputeRetriever.
func (a *Adapter) RetrieveDispute(ctx context.Context, ref string) (processor.Dispute, error) {
	if err := checkRef(ref); err != nil {
		return processor.Dispute{}, err
	}
	p := &gostripe.DisputeParams{}
	var d *gostripe.Dispute
	err := a.do(ctx, "retrieve_dispute", func(ctx context.Context) error {
		p.Context = ctx
		var err error
		d, err = a.disputes.Get(ref, p)
		return err
	})
	if err != nil {
		return processor.Dispute{}, err
	}
	return disputeOf(d), nil
}

// LocatePayment implements processor.PaymentLocator: the PaymentIntent's
// metadata names our tenant and payment.
func (a *Adapter) LocatePayment(ctx context.Context, ref string) (string, string, error) {
	if err := checkRef(ref); err != nil {
		return "", "", err
	}
	p := &gostripe.PaymentIntentParams{}
	var pi *gostripe.PaymentIntent
	err := a.do(ctx, "locate_payment", func(ctx context.Context) error {
		p.Context = ctx
		var err error
		pi, err = a.intents.Get(ref, p)
		return err
	})
	if err != nil {
		return "", "", err
	}
	tenant, payment := pi.Metadata[MetadataTenantID], pi.Metadata[MetadataPaymentID]
	if tenant == "" || payment == "" {
		return "", "", errcode.NotFound("payment of charge", fmt.Sprintf("%.64s", ref))
	}
	return tenant, payment, nil
}
