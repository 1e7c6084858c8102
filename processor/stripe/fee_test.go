package stripe_test

import (
	"context"
	"testing"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

// TestRetrieveFeeFromBalanceTransaction: RetrieveFee answers the fee and
// net of the charge's balance transaction; an answer without one (not
// created yet) marks the fee unknown, and RetrieveFee then answers
// unavailable rather than a fee of 0.
func TestRetrieveFeeFromBalanceTransaction(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	ch, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, processor.CaptureAutomatic, 4200, "pay_fee1"))
	if err != nil || ch.Status != processor.StatusSucceeded || ch.FeeUnknown || ch.Fee != f.d.Fee(4200) {
		t.Fatalf("authorize: %+v %v, want succeeded with Stripe's fee %d", ch, err, f.d.Fee(4200))
	}
	fee, err := f.a.RetrieveFee(ctx, ch.Ref)
	if err != nil || fee.Amount != f.d.Fee(4200) || fee.Net != 4200-f.d.Fee(4200) || fee.Currency != "usd" {
		t.Fatalf("retrieve fee: %+v %v", fee, err)
	}

	f.d.SetBalanceTransactionsPending(true)
	ch, err = f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, processor.CaptureAutomatic, 1000, "pay_fee2"))
	if err != nil || ch.Status != processor.StatusSucceeded || !ch.FeeUnknown || ch.Fee != 0 {
		t.Fatalf("authorize without a balance transaction: %+v %v, want succeeded with the fee unknown", ch, err)
	}
	_, err = f.a.RetrieveFee(ctx, ch.Ref)
	wantUnavailable(t, err)
	if _, err := f.a.RetrieveFee(ctx, "pi_missing"); !errcode.Is(err, errcode.CodeResourceMissing) {
		t.Fatalf("fee of an unknown PaymentIntent: %v, want resource_missing", err)
	}
	if _, err := f.a.RetrieveFee(ctx, "pi_1/../x"); !errcode.Is(err, errcode.CodeResourceMissing) {
		t.Fatalf("fee of a malformed reference: %v, want resource_missing", err)
	}
}
