package stripe_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

const (
	secretTest = "whsec_test_0123456789abcdef"
	secretOld  = "whsec_old_0123456789abcdef"
)

func sign(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}

// paymentEvent authorizes a 3-D Secure payment at the double and renders
// an event about it.
func paymentEvent(tb testing.TB, f fixture, typ string) ([]byte, string) {
	tb.Helper()
	ch, err := f.a.Authorize(context.Background(), authorize(stripetest.PaymentMethodThreeDSecure, "", 2000, "pay_webhook"))
	if err != nil {
		tb.Fatal(err)
	}
	return f.d.Event(typ, ch.Ref), ch.Ref
}

func TestParseWebhookSignatures(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	payload, ref := paymentEvent(t, f, stripe.EventPaymentIntentRequiresAction)
	now := time.Now()

	n, err := stripe.ParseWebhook(payload, sign(payload, secretTest, now), []string{secretTest})
	if err != nil {
		t.Fatalf("valid signature: %v", err)
	}
	u := n.Update
	if u == nil || u.Ref != ref || u.PaymentID != "pay_webhook" || u.TenantID != "ten_test" || u.EventID != n.EventID ||
		u.Charge.Status != processor.StatusRequiresAction || n.TenantID != "ten_test" {
		t.Fatalf("notification %+v update %+v", n, u)
	}

	changed := append([]byte(nil), payload...)
	changed[len(changed)/2] ^= 1
	rotation := sign(payload, secretOld, now) + ",v1=" + hex.EncodeToString(webhook.ComputeSignature(now, payload, secretTest))
	for name, c := range map[string]struct {
		payload []byte
		header  string
		secrets []string
		ok      bool
	}{
		"wrong secret":                 {payload, sign(payload, "whsec_wrong_0123456789", now), []string{secretTest}, false},
		"one byte changed":             {changed, sign(payload, secretTest, now), []string{secretTest}, false},
		"timestamp 301 s old":          {payload, sign(payload, secretTest, now.Add(-301*time.Second)), []string{secretTest}, false},
		"timestamp 299 s old":          {payload, sign(payload, secretTest, now.Add(-299*time.Second)), []string{secretTest}, true},
		"no header":                    {payload, "", []string{secretTest}, false},
		"garbage header":               {payload, "t=abc,v1", []string{secretTest}, false},
		"no secret configured":         {payload, sign(payload, secretTest, now), nil, false},
		"two v1 values, new secret":    {payload, rotation, []string{secretTest}, true},
		"two v1 values, old secret":    {payload, rotation, []string{secretOld}, true},
		"old and new secrets, old sig": {payload, sign(payload, secretOld, now), []string{secretTest, secretOld}, true},
	} {
		_, err := stripe.ParseWebhook(c.payload, c.header, c.secrets)
		if c.ok && err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
		if !c.ok && !errors.Is(err, stripe.ErrSignature) {
			t.Errorf("%s: %v, want ErrSignature", name, err)
		}
	}
}

func TestParseWebhookEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	ch, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 5000, "pay_events"))
	if err != nil {
		t.Fatal(err)
	}
	f.d.SetRefundStatus("pending")
	var refs []string
	for i := range 2 {
		r, err := f.a.Refund(ctx, processor.RefundRequest{Ref: ch.Ref, TenantID: "ten_test", PaymentID: "pay_events",
			RefundID: fmt.Sprintf("re_%d", i), Amount: 1000, IdempotencyKey: fmt.Sprintf("re_%d:create", i)})
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, r.Ref)
	}
	f.d.FinishRefund(refs[0], "succeeded")
	parse := func(payload []byte) stripe.Notification {
		t.Helper()
		n, err := stripe.ParseWebhook(payload, sign(payload, secretTest, time.Now()), []string{secretTest})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	n := parse(f.d.Event(stripe.EventPaymentIntentSucceeded, ch.Ref))
	if n.Update == nil || n.Update.Charge.Status != processor.StatusSucceeded || n.Update.Charge.AmountCaptured != 5000 || n.Update.Charge.Fee != 0 {
		t.Fatalf("payment_intent.succeeded: %+v (the fee is not in webhook payloads)", n.Update)
	}
	for _, typ := range []string{stripe.EventChargeRefundUpdated, stripe.EventRefundUpdated} {
		n = parse(f.d.Event(typ, refs[0]))
		if len(n.RefundUpdates) != 1 || n.RefundUpdates[0].RefundID != "re_0" || n.RefundUpdates[0].Refund.Status != processor.RefundSucceeded ||
			n.RefundUpdates[0].EventID != n.EventID {
			t.Fatalf("%s: %+v", typ, n.RefundUpdates)
		}
	}
	n = parse(f.d.Event(stripe.EventChargeRefunded, ch.Ref))
	if len(n.RefundUpdates) != 2 || n.RefundUpdates[0].EventID == n.RefundUpdates[1].EventID {
		t.Fatalf("charge.refunded: %+v, want two refunds with distinct effect keys", n.RefundUpdates)
	}
	n = parse([]byte(`{"id":"evt_1","object":"event","type":"customer.created","data":{"object":{"id":"cus_1","object":"customer"}}}`))
	if n.Update != nil || n.RefundUpdates != nil || n.EventID != "evt_1" {
		t.Fatalf("unused event type: %+v", n)
	}
	n = parse([]byte(`{"id":"evt_created","object":"event","type":"payment_intent.created","data":{"object":{"id":"pi_1","object":"payment_intent","status":"requires_payment_method","metadata":{"tenant_id":"ten_test","payment_id":"pay_events"}}}}`))
	if n.Update != nil {
		t.Fatalf("payment_intent.created, whose object may predate the confirmation, must change nothing: %+v", n.Update)
	}
	n = parse([]byte(`{"id":"evt_2","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","object":"payment_intent","status":"succeeded","metadata":{}}}}`))
	if n.Update != nil {
		t.Fatalf("PaymentIntent without our metadata: %+v", n.Update)
	}
	for _, bad := range []string{`not json`, `{"id":"evt_3","type":"payment_intent.succeeded","data":{"object":[]}}`, `{}`} {
		if _, err := stripe.ParseWebhook([]byte(bad), sign([]byte(bad), secretTest, time.Now()), []string{secretTest}); err == nil || errors.Is(err, stripe.ErrSignature) {
			t.Errorf("payload %q: %v, want a decoding error", bad, err)
		}
	}
}

// FuzzParseWebhook: whatever arrives, ParseWebhook answers without
// panicking, and accepts nothing that the secret did not sign.
func FuzzParseWebhook(f *testing.F) {
	f.Add([]byte(`{"id":"evt_1","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","status":"succeeded","metadata":{"tenant_id":"ten_1","payment_id":"pay_1"}}}}`), "t=1,v1=00", true)
	f.Add([]byte(`{"id":"evt_2","type":"charge.refunded","data":{"object":{"id":"ch_1","refunds":{"data":[null,{"id":"re_1"}]}}}}`), "", true)
	f.Add([]byte(`{"data":null}`), "t=,v1=,v1=zz", false)
	f.Add([]byte(`{"id":"evt_3","type":"charge.dispute.funds_reinstated","created":1,"data":{"object":{"id":"du_1","amount":2000,"currency":"usd","status":"won","payment_intent":"pi_1","balance_transactions":[null,{"id":"txn_1","amount":-2000,"fee":1500,"currency":"usd"},{"id":"txn_2","amount":2000,"currency":"eur"}]}}}`), "", true)
	f.Fuzz(func(t *testing.T, payload []byte, header string, signIt bool) {
		if signIt {
			header = sign(payload, secretTest, time.Now())
		}
		n, err := stripe.ParseWebhook(payload, header, []string{secretTest})
		if err == nil && !signIt && header != sign(payload, secretTest, time.Now()) {
			if webhook.ValidatePayload(payload, header, secretTest) != nil {
				t.Fatalf("accepted an unsigned payload: %+v", n)
			}
		}
	})
}
