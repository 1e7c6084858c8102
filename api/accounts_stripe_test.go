package api_test

import (
	"net/http"
	"testing"

	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

// TestOperationsGoToThePaymentsAccount: captures and refunds go to the
// Stripe account that holds the payment's charge, whatever account the
// tenant has now. A payment made on the platform account is captured and
// refunded there after the tenant set its own account; one made on the
// tenant's own account answers 409 processor_account_missing while that
// account is removed, and is captured there once it is set again.
func TestOperationsGoToThePaymentsAccount(t *testing.T) {
	t.Parallel()
	own := stripetest.New(t)
	h := newStripeHarness(t, nil, harnessOptions{NewTenantStripe: func(key string) (processor.Processor, error) {
		o := stripe.DefaultOptions()
		o.SecretKey, o.APIBase, o.Account = key, own.URL, stripe.AccountTenant
		return stripe.New(o)
	}})
	ten := h.createTenant("Two accounts", nil)
	manual := func(amount int) map[string]any { return with(visa(amount), "capture_method", "manual") }
	created := func(r response) string {
		t.Helper()
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		return r.json(t)["id"].(string)
	}
	onPlatform := created(h.pay(ten.Secret, manual(1000)))
	if h.d.IntentFor(onPlatform) == "" {
		t.Fatal("the first payment did not go to the platform account")
	}

	path := "/v1/admin/tenants/" + ten.ID + "/stripe_account"
	setOwn := func() {
		t.Helper()
		if r := h.do("POST", path, adminToken, map[string]any{"secret_key": tenantStripeKey, "webhook_secrets": []string{tenantWebhookSecret}}); r.Status != http.StatusOK {
			t.Fatalf("set the tenant's account: %d %s", r.Status, r.Body)
		}
	}
	setOwn()
	onOwn := created(h.pay(ten.Secret, manual(2000)))
	if own.IntentFor(onOwn) == "" || h.d.IntentFor(onOwn) != "" {
		t.Fatal("the second payment did not go to the tenant's account")
	}

	if r := h.do("POST", "/v1/payments/"+onPlatform+"/capture", ten.Secret, nil); r.Status != http.StatusOK || r.json(t)["status"] != "succeeded" {
		t.Fatalf("capture of the platform payment: %d %s", r.Status, r.Body)
	}
	if h.d.Status(h.d.IntentFor(onPlatform)) != "succeeded" || own.Requests(stripetest.OpCapture) != 0 {
		t.Fatalf("the capture did not go to the platform account (own account saw %d captures)", own.Requests(stripetest.OpCapture))
	}
	r := h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": onPlatform, "amount": 300})
	if r.Status != http.StatusCreated {
		t.Fatalf("refund of the platform payment: %d %s", r.Status, r.Body)
	}
	if h.d.RefundFor(r.json(t)["id"].(string)) == "" || own.Requests(stripetest.OpRefund) != 0 {
		t.Fatal("the refund did not go to the platform account")
	}

	if r := h.do("DELETE", path, adminToken, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	expectProblem(t, h.do("POST", "/v1/payments/"+onOwn+"/capture", ten.Secret, nil), http.StatusConflict, processor.CodeAccountMissing)
	if h.d.Requests(stripetest.OpCapture) != 1 {
		t.Fatalf("the capture of the tenant-account payment reached the platform account (%d captures)", h.d.Requests(stripetest.OpCapture))
	}
	if got := h.do("GET", "/v1/payments/"+onOwn, ten.Secret, nil).json(t); got["status"] != "requires_capture" {
		t.Fatalf("after the refused capture: %v", got)
	}
	setOwn()
	if r := h.do("POST", "/v1/payments/"+onOwn+"/capture", ten.Secret, nil); r.Status != http.StatusOK || r.json(t)["status"] != "succeeded" {
		t.Fatalf("capture on the tenant's account again: %d %s", r.Status, r.Body)
	}
	if own.Status(own.IntentFor(onOwn)) != "succeeded" {
		t.Fatal("the capture did not reach the tenant's account")
	}
}
