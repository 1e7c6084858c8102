package stripe_test

import (
	"context"
	"testing"
	"time"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

// TestDisputeCallsAgainstStripeMock sends each dispute request of the
// adapter to stripe-mock, which refuses a request outside Stripe's
// specification: the evidence with submit=true, the close, the retrieve
// and the PaymentIntent lookup.
func TestDisputeCallsAgainstStripeMock(t *testing.T) {
	t.Parallel()
	o := stripe.DefaultOptions()
	o.SecretKey, o.APIBase, o.NetworkRetries = "sk_test_123456789012345678901234", stripetest.MockURL(t), 0
	a, err := stripe.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const dp = "dp_1PgafyB7WZ01zgkWq1c3Xb7d"
	req := processor.DisputeRequest{Ref: dp, IdempotencyKey: "dp_x:submit_evidence:2"}
	ev := processor.DisputeEvidence{}
	for _, f := range []string{"access_activity_log", "billing_address", "cancellation_policy_disclosure", "cancellation_rebuttal",
		"customer_email_address", "customer_name", "customer_purchase_ip", "duplicate_charge_explanation", "duplicate_charge_id",
		"product_description", "refund_policy_disclosure", "refund_refusal_explanation", "service_date", "shipping_address",
		"shipping_carrier", "shipping_date", "shipping_tracking_number", "uncategorized_text"} {
		ev[f] = "text of " + f
	}
	d, err := a.SubmitDisputeEvidence(ctx, req, ev)
	if err != nil {
		t.Fatalf("submit evidence: %v", err)
	}
	if d.Ref == "" || d.Amount <= 0 || !d.Status.Valid() {
		t.Fatalf("submit evidence answered %+v", d)
	}
	if _, err := a.CloseDispute(ctx, processor.DisputeRequest{Ref: dp, IdempotencyKey: "dp_x:close:2"}); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := a.RetrieveDispute(ctx, dp); err != nil {
		t.Fatalf("retrieve: %v", err)
	}
	// stripe-mock's PaymentIntent fixture carries no metadata of ours:
	// the lookup reaches Stripe and answers that it names no payment.
	if _, _, err := a.LocatePayment(ctx, "pi_1PgafyB7WZ01zgkWSjxsAJo3"); !errcode.Is(err, errcode.CodeResourceMissing) {
		t.Fatalf("locate: %v, want resource_missing", err)
	}
	if _, err := a.SubmitDisputeEvidence(ctx, processor.DisputeRequest{Ref: dp}, ev); err == nil {
		t.Fatal("submit without an idempotency key was sent")
	}
	if _, err := a.SubmitDisputeEvidence(ctx, req, processor.DisputeEvidence{"receipt": "file_1"}); !errcode.Is(err, errcode.CodeParameterInvalid) {
		t.Fatalf("unknown evidence field: %v", err)
	}
}

// TestDisputeFlowAtTheDouble submits evidence and closes disputes at the
// scripted double, and decodes its dispute events.
func TestDisputeFlowAtTheDouble(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	ch, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_dispute"))
	if err != nil {
		t.Fatal(err)
	}
	tenant, payment, err := f.a.LocatePayment(ctx, ch.Ref)
	if err != nil || tenant != "ten_test" || payment != "pay_dispute" {
		t.Fatalf("locate: %q %q %v", tenant, payment, err)
	}
	id := f.d.OpenDispute(ch.Ref, 1500)
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	payload := f.d.DisputeEvent(stripe.EventChargeDisputeFundsWithdrawn, id, at)
	n, err := stripe.ParseWebhook(payload, sign(payload, secretTest, time.Now()), []string{secretTest})
	if err != nil {
		t.Fatal(err)
	}
	u := n.DisputeUpdate
	if u == nil || u.PaymentRef != ch.Ref || u.Dispute.Ref != id || u.Dispute.Status != processor.DisputeNeedsResponse ||
		u.Dispute.Amount != 2000 || u.Funds != processor.FundsWithdrawn || !u.EventCreated.Equal(at) || u.EventID == "" ||
		u.Dispute.Withdrawal == nil || u.Dispute.Withdrawal.Amount != 2000 || u.Dispute.Withdrawal.Fee != 1500 || !u.Dispute.Withdrawal.FeeKnown ||
		u.Dispute.Reinstatement != nil || u.Dispute.EvidenceDueBy.IsZero() {
		t.Fatalf("decoded %+v", u)
	}
	req := processor.DisputeRequest{Ref: id, IdempotencyKey: "dp_a:submit_evidence:2"}
	d, err := f.a.SubmitDisputeEvidence(ctx, req, processor.DisputeEvidence{"product_description": "a lamp", "uncategorized_text": "receipt"})
	if err != nil || d.Status != processor.DisputeUnderReview {
		t.Fatalf("submit: %+v %v", d, err)
	}
	// A retry with the same key is answered from Stripe's cache.
	if d, err := f.a.SubmitDisputeEvidence(ctx, req, processor.DisputeEvidence{"product_description": "a lamp", "uncategorized_text": "receipt"}); err != nil || d.Status != processor.DisputeUnderReview {
		t.Fatalf("retry: %+v %v", d, err)
	}
	ev, submissions := f.d.DisputeEvidence(id)
	if submissions != 1 || ev["product_description"] != "a lamp" || ev["uncategorized_text"] != "receipt" {
		t.Fatalf("the double received %v in %d submissions", ev, submissions)
	}
	f.d.SetDisputeStatus(id, "won")
	payload = f.d.DisputeEvent(stripe.EventChargeDisputeClosed, id, time.Now())
	n, err = stripe.ParseWebhook(payload, sign(payload, secretTest, time.Now()), []string{secretTest})
	if err != nil {
		t.Fatal(err)
	}
	if u := n.DisputeUpdate; u.Dispute.Status != processor.DisputeWon || u.Dispute.Reinstatement == nil || u.Dispute.Reinstatement.Amount != 2000 {
		t.Fatalf("closed: %+v", u)
	}
	got, err := f.a.RetrieveDispute(ctx, id)
	if err != nil || got.Status != processor.DisputeWon {
		t.Fatalf("retrieve: %+v %v", got, err)
	}
	if _, err := f.a.CloseDispute(ctx, processor.DisputeRequest{Ref: id, IdempotencyKey: "dp_a:close:3"}); !errcode.Is(err, errcode.CodeParameterInvalid) {
		t.Fatalf("closing a won dispute: %v, want the processor's refusal", err)
	}
}
