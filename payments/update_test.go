package payments_test

import (
	"testing"

	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/sandbox"
)

// TestApplyUpdateIsIdempotentAndNeverMovesBackwards delivers processor
// updates directly: a repeated update books the money once, and stale
// updates after the payment succeeded change nothing.
func TestApplyUpdateIsIdempotentAndNeverMovesBackwards(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	// A second sandbox without an update handler computes the processor's
	// answers without delivering them; refs decode in any sandbox.
	opts := sandbox.DefaultOptions()
	opts.FeeBps, opts.FeeFixed = feeBpsTest, feeFixedTest
	quiet, err := sandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = quiet.Close() })
	tenantID, _ := h.newTenant(t)
	sh := h.shardOf(t, tenantID)
	ctx := t.Context()

	p := wantStatus(t, h.create(t, tenantID, sandbox.PaymentMethodThreeDSecure, payments.CaptureAutomatic, 3_300, "eur"), payments.StatusRequiresAction)
	actionRef := *p.ProcessorRef
	approved, err := quiet.CompleteAction(ctx, actionRef)
	if err != nil {
		t.Fatalf("complete 3-D Secure: %v", err)
	}
	if approved.Status != processor.StatusSucceeded || approved.Ref == actionRef {
		t.Fatalf("approval %+v, want succeeded with a new ref", approved)
	}
	update := processor.Update{Ref: actionRef, PaymentID: p.PublicID(), TenantID: ids.Format(ids.PrefixTenant, tenantID), Charge: approved}

	if err := h.svc.ApplyUpdate(ctx, update); err != nil {
		t.Fatalf("apply update: %v", err)
	}
	first := wantStatus(t, h.get(t, tenantID, p.ID), payments.StatusSucceeded)
	if first.Version <= p.Version || first.ProcessorRef == nil || *first.ProcessorRef != approved.Ref {
		t.Fatalf("after the update: version %d (was %d), ref %v; want a higher version and ref %s", first.Version, p.Version, first.ProcessorRef, approved.Ref)
	}
	wantCharged(t, h, first, 3_300)

	// The same update again, directly and through the sandbox's own
	// delivery (CompleteAction on the same ref delivers it again).
	if err := h.svc.ApplyUpdate(ctx, update); err != nil {
		t.Fatalf("apply the update again: %v", err)
	}
	if _, err := h.sb.CompleteAction(ctx, actionRef); err != nil {
		t.Fatalf("deliver the update again: %v", err)
	}
	wantUnchanged(t, first, h.get(t, tenantID, p.ID))
	wantCharged(t, h, first, 3_300)
	evCount := len(eventsOf(t, sh, tenantID, p.ID, ""))

	// Stale updates. The first two carry the refs a processor whose refs
	// never change (Stripe) would send; the last two are the sandbox's
	// own earlier states, known by earlier refs.
	cur := approved.Ref
	stale := map[string]processor.Update{
		"pending_same_ref": {Ref: cur, Charge: processor.Charge{Ref: cur, Status: processor.StatusPending, Amount: 3_300, Currency: "eur"}},
		"requires_action_same_ref": {Ref: cur, Charge: processor.Charge{Ref: cur, Status: processor.StatusRequiresAction, Amount: 3_300, Currency: "eur",
			NextAction: &processor.NextAction{Type: processor.NextActionRedirectToURL, RedirectURL: "https://example.test/3ds"}}},
		"requires_action_old_ref": {Ref: actionRef, Charge: processor.Charge{Ref: actionRef, Status: processor.StatusRequiresAction, Amount: 3_300, Currency: "eur"}},
		"failed_same_ref":         {Ref: cur, Charge: processor.Charge{Ref: cur, Status: processor.StatusFailed, FailureCode: "card_declined", DeclineCode: "generic_decline"}},
		"canceled_same_ref":       {Ref: cur, Charge: processor.Charge{Ref: cur, Status: processor.StatusCanceled}},
		"succeeded_other_amount":  {Ref: cur, Charge: processor.Charge{Ref: cur, Status: processor.StatusSucceeded, Amount: 3_300, AmountCaptured: 1_000, Fee: 59}},
	}
	for name, u := range stale {
		u.PaymentID, u.TenantID = update.PaymentID, update.TenantID
		if err := h.svc.ApplyUpdate(ctx, u); err != nil {
			t.Errorf("%s: apply stale update: %v", name, err)
		}
		wantUnchanged(t, first, h.get(t, tenantID, p.ID))
	}
	wantCharged(t, h, first, 3_300)
	if n := len(eventsOf(t, sh, tenantID, p.ID, "")); n != evCount {
		t.Errorf("%d events after the stale updates, %d before", n, evCount)
	}
}

// TestApplyUpdateDoesNotTakeAStaleRef: an update that names the stored ref
// but reports an earlier state under an earlier ref is stale as a whole;
// it must not replace the stored ref, which later calls (capture, refund)
// are made with.
func TestApplyUpdateDoesNotTakeAStaleRef(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	tenantID, _ := h.newTenant(t)
	ctx := t.Context()
	p := wantStatus(t, h.create(t, tenantID, sandbox.PaymentMethodThreeDSecure, payments.CaptureManual, 3_300, "usd"), payments.StatusRequiresAction)
	actionRef := *p.ProcessorRef
	if _, err := h.sb.CompleteAction(ctx, actionRef); err != nil {
		t.Fatalf("complete 3-D Secure: %v", err)
	}
	authorized := wantStatus(t, h.get(t, tenantID, p.ID), payments.StatusRequiresCapture)
	cur := *authorized.ProcessorRef
	err := h.svc.ApplyUpdate(ctx, processor.Update{
		Ref: cur, PaymentID: p.PublicID(), TenantID: ids.Format(ids.PrefixTenant, tenantID),
		Charge: processor.Charge{Ref: actionRef, Status: processor.StatusRequiresAction, Amount: 3_300, Currency: "usd"},
	})
	if err != nil {
		t.Fatalf("apply stale update: %v", err)
	}
	after := h.get(t, tenantID, p.ID)
	if after.Version != authorized.Version || after.ProcessorRef == nil || *after.ProcessorRef != cur {
		t.Errorf("stale update changed the payment: version %d → %d, processor ref replaced by the stale one: %v",
			authorized.Version, after.Version, after.ProcessorRef != nil && *after.ProcessorRef == actionRef)
	}
	if n := len(eventsOf(t, h.shardOf(t, tenantID), tenantID, p.ID, events.PaymentRequiresAction)); n != 1 {
		t.Errorf("%d payment.requires_action events, want the first one only", n)
	}
	// What the merchant notices: the authorized payment can still be captured.
	got, err := h.svc.Capture(ctx, tenantID, p.ID, 0)
	if err != nil {
		t.Fatalf("capture after a stale update: %v", err)
	}
	wantCharged(t, h, wantStatus(t, got, payments.StatusSucceeded), 3_300)
}

// TestApplyUpdateIgnoresAnotherChargesUpdate: an update whose refs name
// neither the stored charge nor its successor belongs to some other charge
// (a forged or misrouted one) and must not move the payment, even along an
// allowed transition.
func TestApplyUpdateIgnoresAnotherChargesUpdate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	tenantID, _ := h.newTenant(t)
	ctx := t.Context()
	p := wantStatus(t, h.create(t, tenantID, sandbox.PaymentMethodThreeDSecure, payments.CaptureAutomatic, 3_300, "usd"), payments.StatusRequiresAction)
	// The approval of a different charge (another payment's 3-D Secure),
	// addressed to this payment.
	other := wantStatus(t, h.create(t, tenantID, sandbox.PaymentMethodThreeDSecure, payments.CaptureAutomatic, 100, "usd"), payments.StatusRequiresAction)
	quiet, err := sandbox.New(sandbox.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = quiet.Close() })
	approvedOther, err := quiet.CompleteAction(ctx, *other.ProcessorRef)
	if err != nil {
		t.Fatalf("approve the other charge: %v", err)
	}
	before := h.get(t, tenantID, p.ID)
	err = h.svc.ApplyUpdate(ctx, processor.Update{
		Ref: *other.ProcessorRef, PaymentID: p.PublicID(), TenantID: ids.Format(ids.PrefixTenant, tenantID), Charge: approvedOther,
	})
	if err != nil {
		t.Fatalf("apply update: %v", err)
	}
	after := h.get(t, tenantID, p.ID)
	wantUnchanged(t, before, after)
	wantNotCharged(t, h, after)
}
