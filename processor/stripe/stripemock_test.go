package stripe_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

// TestEveryCallAgainstStripeMock sends every request the adapter makes to
// stripe-mock, which checks each against Stripe's OpenAPI specification
// (paths, parameter names, types and enums) and answers 400 otherwise.
// stripe-mock answers fixtures and keeps no state, so only acceptance is
// asserted here; the flows are tested against the scripted double.
func TestEveryCallAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := stripetest.MockURL(t)
	o := stripe.DefaultOptions()
	o.SecretKey, o.APIBase, o.NetworkRetries = "sk_test_123456789012345678901234", base, 0
	a, err := stripe.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, capture := range []string{processor.CaptureAutomatic, processor.CaptureManual} {
		ch, err := a.Authorize(ctx, processor.AuthorizeRequest{
			TenantID: "ten_06f0kb9t5q3e3bq4b7bw0vq2rc", PaymentID: "pay_06f0kb9t5q3e3bq4b7bw0vq2rc", Amount: 2000, Currency: "usd",
			PaymentMethod: "pm_card_visa", CaptureMethod: capture, IdempotencyKey: "pay_06f0kb9t5q3e3bq4b7bw0vq2rc:authorize:" + capture,
			Metadata: map[string]string{"order": "1234"},
		})
		if err != nil {
			t.Fatalf("authorize (%s): %v", capture, err)
		}
		if !strings.HasPrefix(ch.Ref, "pi_") {
			t.Fatalf("authorize (%s): ref %q", capture, ch.Ref)
		}
	}
	const pi = "pi_1PgafyB7WZ01zgkWSjxsAJo3"
	if _, err := a.Capture(ctx, processor.CaptureRequest{Ref: pi, Amount: 1500, IdempotencyKey: "pay_x:capture"}); err != nil {
		t.Fatalf("partial capture: %v", err)
	}
	if _, err := a.Capture(ctx, processor.CaptureRequest{Ref: pi, IdempotencyKey: "pay_y:capture"}); err != nil {
		t.Fatalf("capture: %v", err)
	}
	if _, err := a.Cancel(ctx, processor.CancelRequest{Ref: pi, IdempotencyKey: "pay_x:cancel"}); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	r, err := a.Refund(ctx, processor.RefundRequest{Ref: pi, TenantID: "ten_x", PaymentID: "pay_x", RefundID: "re_x", Amount: 500, IdempotencyKey: "re_x:create"})
	if err != nil {
		t.Fatalf("refund: %v", err)
	}
	if _, err := a.Retrieve(ctx, pi); err != nil {
		t.Fatalf("retrieve: %v", err)
	}
	if _, err := a.RetrieveRefund(ctx, r.Ref); err != nil {
		t.Fatalf("retrieve refund: %v", err)
	}
	// The fee is read from the charge's balance transaction, expanded:
	// stripe-mock's fixture transaction has amount 100, fee 0, net 100.
	fee, err := a.RetrieveFee(ctx, pi)
	if err != nil {
		t.Fatalf("retrieve fee: %v", err)
	}
	if fee.Net != 100 || fee.Amount != 0 || fee.Currency != "usd" {
		t.Fatalf("fee %+v, want stripe-mock's balance transaction (fee 0, net 100, usd)", fee)
	}

	// The validation is real: a parameter outside the specification is
	// refused, so the calls above were checked.
	form := url.Values{"amount": {"2000"}, "currency": {"usd"}, "no_such_parameter": {"1"}}
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/payment_intents", strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", "Bearer "+o.SecretKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("stripe-mock answered %d to an unknown parameter, want 400", res.StatusCode)
	}
}
