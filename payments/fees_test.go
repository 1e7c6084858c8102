package payments_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

// webhookSecretTest signs the double's events for ParseWebhook.
const webhookSecretTest = "whsec_paymentsfeestest0123456789"

// stripeUpdate renders the double's event about a PaymentIntent as Stripe
// sends it (signed, no expansions) and decodes it as the webhook route
// does.
func stripeUpdate(tb testing.TB, d *stripetest.Double, typ, pi string) processor.Update {
	tb.Helper()
	payload := d.Event(typ, pi)
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: webhookSecretTest, Timestamp: time.Now()})
	n, err := stripe.ParseWebhook(payload, signed.Header, []string{webhookSecretTest})
	if err != nil || n.Update == nil {
		tb.Fatalf("parse the double's %s event: %v (%+v)", typ, err, n)
	}
	return *n.Update
}

// TestStripeWebhookBooksFeeFromBalanceTransaction: a payment settled by
// payment_intent.succeeded, whose PaymentIntent names its charge only,
// books Stripe's fee and net, read from the charge's balance transaction.
// While Stripe has no balance transaction yet, the event answers
// processor_unavailable and books nothing, so Stripe's redelivery books it.
func TestStripeWebhookBooksFeeFromBalanceTransaction(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t)
	ctx := context.Background()
	tenant, _ := h.newTenant(t)
	const amount = 3100
	pay := wantStatus(t, h.create(t, tenant, stripetest.PaymentMethodProcessing, payments.CaptureAutomatic, amount, "usd"), payments.StatusPending)
	pi := h.d.IntentFor(pay.PublicID())
	h.d.Settle(pi)
	u := stripeUpdate(t, h.d, stripe.EventPaymentIntentSucceeded, pi)
	if !u.Charge.FeeUnknown || u.Charge.Fee != 0 || u.Charge.Status != processor.StatusSucceeded {
		t.Fatalf("the event's charge %+v: want succeeded with the fee unknown (no balance transaction in a webhook)", u.Charge)
	}

	h.d.SetBalanceTransactionsPending(true)
	retrieves := h.d.Requests(stripetest.OpRetrieve)
	wantCode(t, h.svc.ApplyUpdate(ctx, u), payments.CodeProcessorUnavailable, errcode.KindUnavailable)
	if h.d.Requests(stripetest.OpRetrieve) != retrieves+1 {
		t.Fatalf("the fee was not asked of Stripe: %d retrieves, want %d", h.d.Requests(stripetest.OpRetrieve), retrieves+1)
	}
	wantNotCharged(t, h.harness, wantStatus(t, h.get(t, tenant, pay.ID), payments.StatusPending))

	h.d.SetBalanceTransactionsPending(false)
	if err := h.svc.ApplyUpdate(ctx, u); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	got := wantStatus(t, h.get(t, tenant, pay.ID), payments.StatusSucceeded)
	if fee := h.d.Fee(amount); fee == 0 || got.Fee != fee {
		t.Fatalf("fee %d, want Stripe's %d", got.Fee, fee)
	}
	wantCharged(t, h.harness, got, amount)
	// A repeat of the event takes no effect and asks Stripe nothing.
	retrieves = h.d.Requests(stripetest.OpRetrieve)
	if err := h.svc.ApplyUpdate(ctx, u); err != nil || h.d.Requests(stripetest.OpRetrieve) != retrieves {
		t.Fatalf("repeat: %v, %d retrieves (want %d)", err, h.d.Requests(stripetest.OpRetrieve), retrieves)
	}
	wantCharged(t, h.harness, h.get(t, tenant, pay.ID), amount)
}

// TestStripeAnswerWithoutFeeIsFinishedLater: a confirmation Stripe answers
// as succeeded without the balance transaction leaves the payment pending
// (503, nothing booked), and the reconciler books it with Stripe's fee
// once the balance transaction exists, with the one PaymentIntent.
func TestStripeAnswerWithoutFeeIsFinishedLater(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t)
	ctx := context.Background()
	tenant, _ := h.newTenant(t)
	const amount = 2000
	h.d.SetBalanceTransactionsPending(true)
	_, err := h.svc.Create(ctx, tenant, payments.CreateParams{Amount: amount, Currency: "usd", PaymentMethod: stripetest.PaymentMethodVisa})
	wantCode(t, err, payments.CodeProcessorUnavailable, errcode.KindUnavailable)
	pay := onlyPayment(t, h.svc, tenant)
	if pay.Status != payments.StatusPending || pay.Operation != payments.OpAuthorize {
		t.Fatalf("payment %s with operation %q, want pending with its authorization open", pay.Status, pay.Operation)
	}
	wantNotCharged(t, h.harness, pay)

	h.d.SetBalanceTransactionsPending(false)
	if _, err := h.svc.Reconcile(ctx, 0); err != nil {
		t.Fatal(err)
	}
	got := wantStatus(t, h.get(t, tenant, pay.ID), payments.StatusSucceeded)
	if got.Fee != h.d.Fee(amount) {
		t.Fatalf("fee %d, want Stripe's %d", got.Fee, h.d.Fee(amount))
	}
	wantCharged(t, h.harness, got, amount)
	if h.d.CreatedFor(pay.PublicID()) != 1 {
		t.Fatalf("%d PaymentIntents for the payment, want 1", h.d.CreatedFor(pay.PublicID()))
	}
}

// TestReconciliationReportComparesFees: a payment whose booked fee differs
// from Stripe's balance transaction is listed with field fee, not
// repairable (amounts are never repaired).
func TestReconciliationReportComparesFees(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t)
	ctx := context.Background()
	tenant, _ := h.newTenant(t)
	since := time.Now().Add(-time.Hour)
	right := h.create(t, tenant, stripetest.PaymentMethodVisa, payments.CaptureAutomatic, 1000, "usd")
	wrong := h.create(t, tenant, stripetest.PaymentMethodVisa, payments.CaptureAutomatic, 5000, "usd")
	rep, err := h.svc.ReconciliationReport(ctx, tenant, payments.ReportParams{Since: since})
	if err != nil || len(rep.Differences) != 0 || rep.Payments != 2 {
		t.Fatalf("report of agreeing fees: %+v %v", rep, err)
	}
	// Our record of one fee is off by 7 (as a fee booked from an older
	// answer would be).
	sh := h.shardOf(t, tenant)
	if _, err := sh.Pool.Exec(ctx, `UPDATE payments SET fee = fee + 7 WHERE tenant_id = $1 AND id = $2`, tenant, wrong.ID); err != nil {
		t.Fatal(err)
	}
	rep, err = h.svc.ReconciliationReport(ctx, tenant, payments.ReportParams{Since: since, Repair: true})
	if err != nil {
		t.Fatal(err)
	}
	fee := h.d.Fee(5000)
	if len(rep.Differences) != 1 {
		t.Fatalf("differences %+v, want the fee of %s", rep.Differences, wrong.PublicID())
	}
	d := rep.Differences[0]
	if d.ID != wrong.PublicID() || d.Field != payments.FieldFee || d.Ours != strconv.FormatInt(fee+7, 10) ||
		d.Processor != strconv.FormatInt(fee, 10) || d.Repairable || d.Repaired {
		t.Fatalf("difference %+v, want fee ours %d, Stripe's %d, not repairable", d, fee+7, fee)
	}
	if txs := ledgerTxs(t, sh, tenant, &right.ID); len(txs) != 1 || txs[0].Type != ledger.TypeCharge || txs[0].Fee != h.d.Fee(1000) {
		t.Fatalf("ledger of the agreeing payment %+v", txs)
	}
}
