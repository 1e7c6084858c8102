package payments_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/listing"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/sandbox"
)

// TestTenantsCannotReachEachOthersPayments: every use case that names a
// payment or refund answers resource_missing to another tenant, whether
// that tenant lives on the same shard or the other one, and changes
// nothing.
func TestTenantsCannotReachEachOthersPayments(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	owner, ownerShard := h.newTenant(t)
	other := "s0"
	if ownerShard == "s0" {
		other = "s1"
	}
	intruders := map[string]uuid.UUID{
		"same_shard":  h.tenantOn(t, ownerShard),
		"other_shard": h.tenantOn(t, other),
	}

	succeeded := wantStatus(t, h.create(t, owner, sandbox.PaymentMethodVisa, payments.CaptureAutomatic, 5_000, "usd"), payments.StatusSucceeded)
	authorized := wantStatus(t, h.create(t, owner, sandbox.PaymentMethodVisa, payments.CaptureManual, 5_000, "usd"), payments.StatusRequiresCapture)
	refund, err := h.svc.CreateRefund(t.Context(), owner, payments.CreateRefundParams{Payment: succeeded.ID, Amount: 1_000})
	if err != nil {
		t.Fatalf("owner's refund: %v", err)
	}

	for name, intruder := range intruders {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			before := map[uuid.UUID]payments.Payment{
				succeeded.ID:  h.get(t, owner, succeeded.ID),
				authorized.ID: h.get(t, owner, authorized.ID),
			}
			for _, id := range []uuid.UUID{succeeded.ID, authorized.ID} {
				_, err := h.svc.Get(ctx, intruder, id)
				wantCode(t, err, errcode.CodeResourceMissing, errcode.KindNotFound)
				_, err = h.svc.Capture(ctx, intruder, id, 0)
				wantCode(t, err, errcode.CodeResourceMissing, errcode.KindNotFound)
				_, err = h.svc.Cancel(ctx, intruder, id)
				wantCode(t, err, errcode.CodeResourceMissing, errcode.KindNotFound)
				_, err = h.svc.CreateRefund(ctx, intruder, payments.CreateRefundParams{Payment: id, Amount: 100})
				if e := wantCode(t, err, errcode.CodeResourceMissing, errcode.KindNotFound); e.Param != "payment" {
					t.Errorf("refund of another tenant's payment: param %q, want payment", e.Param)
				}
				// A forged processor update naming the intruder.
				err = h.svc.ApplyUpdate(ctx, processor.Update{
					PaymentID: ids.Format(ids.PrefixPayment, id), TenantID: ids.Format(ids.PrefixTenant, intruder),
					Charge: processor.Charge{Status: processor.StatusCanceled},
				})
				wantCode(t, err, errcode.CodeResourceMissing, errcode.KindNotFound)
			}
			_, err := h.svc.GetRefund(ctx, intruder, refund.ID)
			wantCode(t, err, errcode.CodeResourceMissing, errcode.KindNotFound)
			rs, _, err := h.svc.ListRefunds(ctx, intruder, payments.RefundListParams{Payment: &succeeded.ID})
			if err != nil || len(rs) != 0 {
				t.Errorf("intruder lists refunds of the owner's payment: %+v, %v", rs, err)
			}
			ps, _, err := h.svc.List(ctx, intruder, payments.ListParams{Page: listing.Page{Limit: listing.LimitMax}})
			if err != nil || len(ps) != 0 {
				t.Errorf("intruder lists %d payments (%v), want none", len(ps), err)
			}
			for id, p := range before {
				wantUnchanged(t, p, h.get(t, owner, id))
			}
		})
	}
	// The owner still reaches everything.
	t.Cleanup(func() {
		if got := refundsOf(t, h.svc, owner, succeeded.ID); len(got) != 1 || got[0].ID != refund.ID {
			t.Errorf("owner's refunds: %+v", got)
		}
		if got := allPayments(t, h.svc, owner); len(got) != 2 {
			t.Errorf("owner lists %d payments, want 2", len(got))
		}
	})
}
