package payments_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/sandbox"
)

// newLossyHarness is a harness whose processor can lose answers.
func newLossyHarness(tb testing.TB) (*harness, *lossyProcessor) {
	tb.Helper()
	var lossy *lossyProcessor
	h := newHarness(tb, harnessOptions{Wrap: func(p processor.Processor) processor.Processor {
		lossy = newLossyProcessor(p)
		return lossy
	}})
	return h, lossy
}

// wantLost asserts the answer a caller gets when the processor's answer
// was lost: processor_unavailable, wrapping processor.ErrUnavailable.
func wantLost(tb testing.TB, err error) {
	tb.Helper()
	wantCode(tb, err, payments.CodeProcessorUnavailable, errcode.KindUnavailable)
	if !errors.Is(err, processor.ErrUnavailable) {
		tb.Errorf("error %v does not wrap processor.ErrUnavailable", err)
	}
}

// reconcile runs one pass with age 0 and returns its counts.
func reconcile(tb testing.TB, h *harness) payments.ReconcileStats {
	tb.Helper()
	st, err := h.svc.Reconcile(context.Background(), 0)
	if err != nil {
		tb.Fatalf("reconcile: %v", err)
	}
	if st.Errors != 0 {
		tb.Fatalf("reconcile reported %d errors: %+v", st.Errors, st)
	}
	return st
}

// wantOneKey asserts that every call of method for the object carried the
// same idempotency key, the expected one, and that there were calls calls.
func wantOneKey(tb testing.TB, lossy *lossyProcessor, method, object, key string, calls int) {
	tb.Helper()
	keys := lossy.keys(method, object)
	if len(keys) != 1 || keys[key] != calls {
		tb.Fatalf("%s of %s: idempotency keys sent %v, want only %q, %d times", method, object, keys, key, calls)
	}
}

// wantSettledOnce checks the outcome of a payment whose capture reached
// the ledger through the reconciler: one charge, one event of each type.
func wantSettledOnce(tb testing.TB, h *harness, p payments.Payment, captured int64, evTypes ...events.Type) {
	tb.Helper()
	wantStatus(tb, p, payments.StatusSucceeded)
	wantCharged(tb, h, p, captured)
	sh := h.shardOf(tb, p.TenantID)
	for _, typ := range evTypes {
		if n := len(eventsOf(tb, sh, p.TenantID, p.ID, typ)); n != 1 {
			tb.Fatalf("%d %s events, want 1", n, typ)
		}
	}
}

// snapshotOf is what a second reconciliation pass must leave unchanged.
type snapshotOf struct {
	payment payments.Payment
	events  int
	ledger  int
	refunds []payments.Refund
}

func snapshot(tb testing.TB, h *harness, tenantID, id uuid.UUID) snapshotOf {
	tb.Helper()
	sh := h.shardOf(tb, tenantID)
	return snapshotOf{
		payment: h.get(tb, tenantID, id),
		events:  len(eventsOf(tb, sh, tenantID, id, "")),
		ledger:  len(ledgerTxs(tb, sh, tenantID, &id)),
		refunds: refundsOf(tb, h.svc, tenantID, id),
	}
}

func wantSameSnapshot(tb testing.TB, before, after snapshotOf) {
	tb.Helper()
	wantUnchanged(tb, before.payment, after.payment)
	if before.events != after.events || before.ledger != after.ledger || len(before.refunds) != len(after.refunds) {
		tb.Fatalf("events %d→%d, ledger %d→%d, refunds %d→%d", before.events, after.events, before.ledger, after.ledger,
			len(before.refunds), len(after.refunds))
	}
	for i := range before.refunds {
		if before.refunds[i].Version != after.refunds[i].Version || before.refunds[i].Status != after.refunds[i].Status {
			tb.Fatalf("refund %s changed: %+v → %+v", before.refunds[i].PublicID(), before.refunds[i], after.refunds[i])
		}
	}
}

// TestReconcileFinishesLostAnswers: the processor acted but its answer was
// lost. The caller is told processor_unavailable, the intent stays
// recorded, and the reconciler finishes it by repeating the identical call,
// booking the money exactly once. A second pass changes nothing.
func TestReconcileFinishesLostAnswers(t *testing.T) {
	t.Parallel()

	t.Run("authorize", func(t *testing.T) {
		t.Parallel()
		h, lossy := newLossyHarness(t)
		tenantID, _ := h.newTenant(t)
		lossy.loseNext("authorize")
		p, err := h.svc.Create(t.Context(), tenantID, payments.CreateParams{Amount: 5_000, Currency: "usd", PaymentMethod: sandbox.PaymentMethodVisa})
		wantLost(t, err)
		if p.ID == uuid.Nil {
			t.Fatal("create with a lost answer returned no payment")
		}
		pending := h.get(t, tenantID, p.ID)
		if pending.Status != payments.StatusPending || pending.Operation != payments.OpAuthorize {
			t.Fatalf("after the lost answer: status %s operation %q, want pending and authorize", pending.Status, pending.Operation)
		}
		wantNotCharged(t, h, pending)

		st := reconcile(t, h)
		if st.Operations != 1 {
			t.Errorf("reconcile finished %d operations, want 1", st.Operations)
		}
		got := h.get(t, tenantID, p.ID)
		if got.Operation != payments.OpNone {
			t.Fatalf("operation %q left after reconcile", got.Operation)
		}
		wantSettledOnce(t, h, got, 5_000, events.PaymentSucceeded)
		wantOneKey(t, lossy, "authorize", p.PublicID(), p.PublicID()+":authorize", 2)

		before := snapshot(t, h, tenantID, p.ID)
		if st := reconcile(t, h); st != (payments.ReconcileStats{}) {
			t.Errorf("second pass did %+v, want nothing", st)
		}
		wantSameSnapshot(t, before, snapshot(t, h, tenantID, p.ID))
		wantOneKey(t, lossy, "authorize", p.PublicID(), p.PublicID()+":authorize", 2)
	})

	t.Run("authorize_decline", func(t *testing.T) {
		t.Parallel()
		h, lossy := newLossyHarness(t)
		tenantID, _ := h.newTenant(t)
		lossy.loseNext("authorize")
		p, err := h.svc.Create(t.Context(), tenantID, payments.CreateParams{Amount: 5_000, Currency: "eur", PaymentMethod: sandbox.PaymentMethodInsufficientFunds})
		wantLost(t, err)
		st := reconcile(t, h)
		if st.Operations != 1 {
			t.Errorf("reconcile finished %d operations, want 1 (a decline is an outcome, not an error)", st.Operations)
		}
		got := wantStatus(t, h.get(t, tenantID, p.ID), payments.StatusFailed)
		if got.DeclineCode == nil || *got.DeclineCode != "insufficient_funds" {
			t.Errorf("decline code %v, want insufficient_funds", got.DeclineCode)
		}
		wantNotCharged(t, h, got)
		if n := len(eventsOf(t, h.shardOf(t, tenantID), tenantID, p.ID, events.PaymentFailed)); n != 1 {
			t.Errorf("%d payment.failed events, want 1", n)
		}
		wantOneKey(t, lossy, "authorize", p.PublicID(), p.PublicID()+":authorize", 2)
	})

	t.Run("capture", func(t *testing.T) {
		t.Parallel()
		h, lossy := newLossyHarness(t)
		tenantID, _ := h.newTenant(t)
		p := wantStatus(t, h.create(t, tenantID, sandbox.PaymentMethodVisa, payments.CaptureManual, 8_000, "eur"), payments.StatusRequiresCapture)
		lossy.loseNext("capture")
		_, err := h.svc.Capture(t.Context(), tenantID, p.ID, 7_000)
		wantLost(t, err)
		open := h.get(t, tenantID, p.ID)
		if open.Status != payments.StatusRequiresCapture || open.Operation != payments.OpCapture ||
			open.OperationAmount == nil || *open.OperationAmount != 7_000 {
			t.Fatalf("after the lost answer: status %s operation %q amount %v, want requires_capture, capture, 7000",
				open.Status, open.Operation, open.OperationAmount)
		}
		wantNotCharged(t, h, open)
		// The recorded intent blocks other operations until it is finished.
		_, err = h.svc.Cancel(t.Context(), tenantID, p.ID)
		wantCode(t, err, payments.CodeOperationInProgress, errcode.KindConflict)
		_, err = h.svc.Capture(t.Context(), tenantID, p.ID, 0)
		wantCode(t, err, payments.CodeOperationInProgress, errcode.KindConflict)
		wantUnchanged(t, open, h.get(t, tenantID, p.ID))

		if st := reconcile(t, h); st.Operations != 1 {
			t.Errorf("reconcile finished %d operations, want 1", st.Operations)
		}
		got := h.get(t, tenantID, p.ID)
		if got.Operation != payments.OpNone || got.OperationAmount != nil {
			t.Fatalf("operation %q amount %v left after reconcile", got.Operation, got.OperationAmount)
		}
		wantSettledOnce(t, h, got, 7_000, events.PaymentSucceeded, events.PaymentCaptured)
		wantOneKey(t, lossy, "capture", p.PublicID(), p.PublicID()+":capture", 2)

		before := snapshot(t, h, tenantID, p.ID)
		if st := reconcile(t, h); st != (payments.ReconcileStats{}) {
			t.Errorf("second pass did %+v, want nothing", st)
		}
		wantSameSnapshot(t, before, snapshot(t, h, tenantID, p.ID))
		wantOneKey(t, lossy, "capture", p.PublicID(), p.PublicID()+":capture", 2)
	})

	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		h, lossy := newLossyHarness(t)
		tenantID, _ := h.newTenant(t)
		p := wantStatus(t, h.create(t, tenantID, sandbox.PaymentMethodVisa, payments.CaptureManual, 3_000, "usd"), payments.StatusRequiresCapture)
		lossy.loseNext("cancel")
		_, err := h.svc.Cancel(t.Context(), tenantID, p.ID)
		wantLost(t, err)
		if open := h.get(t, tenantID, p.ID); open.Status != payments.StatusRequiresCapture || open.Operation != payments.OpCancel {
			t.Fatalf("after the lost answer: status %s operation %q, want requires_capture and cancel", open.Status, open.Operation)
		}
		if st := reconcile(t, h); st.Operations != 1 {
			t.Errorf("reconcile finished %d operations, want 1", st.Operations)
		}
		got := wantStatus(t, h.get(t, tenantID, p.ID), payments.StatusCanceled)
		wantNotCharged(t, h, got)
		if n := len(eventsOf(t, h.shardOf(t, tenantID), tenantID, p.ID, events.PaymentCanceled)); n != 1 {
			t.Errorf("%d payment.canceled events, want 1", n)
		}
		wantOneKey(t, lossy, "cancel", p.PublicID(), p.PublicID()+":cancel", 2)
		before := snapshot(t, h, tenantID, p.ID)
		if st := reconcile(t, h); st != (payments.ReconcileStats{}) {
			t.Errorf("second pass did %+v, want nothing", st)
		}
		wantSameSnapshot(t, before, snapshot(t, h, tenantID, p.ID))
	})

	t.Run("refund", func(t *testing.T) {
		t.Parallel()
		h, lossy := newLossyHarness(t)
		tenantID, _ := h.newTenant(t)
		sh := h.shardOf(t, tenantID)
		p := wantStatus(t, h.create(t, tenantID, sandbox.PaymentMethodVisa, payments.CaptureAutomatic, 10_000, "usd"), payments.StatusSucceeded)
		lossy.loseNext("refund")
		_, err := h.svc.CreateRefund(t.Context(), tenantID, payments.CreateRefundParams{Payment: p.ID, Amount: 4_000})
		wantLost(t, err)
		rs := refundsOf(t, h.svc, tenantID, p.ID)
		if len(rs) != 1 || rs[0].Status != payments.RefundPending || rs[0].Amount != 4_000 {
			t.Fatalf("refunds after the lost answer: %+v, want one pending of 4000", rs)
		}
		ref := rs[0]
		open := h.get(t, tenantID, p.ID)
		if open.AmountRefundPending != 4_000 || open.AmountRefunded != 0 {
			t.Fatalf("refund pending %d refunded %d, want 4000 and 0", open.AmountRefundPending, open.AmountRefunded)
		}
		// The pending refund's amount is reserved: 6001 more would exceed
		// the 10000 captured.
		_, err = h.svc.CreateRefund(t.Context(), tenantID, payments.CreateRefundParams{Payment: p.ID, Amount: 6_001})
		wantCode(t, err, payments.CodeAmountExceedsRefundable, errcode.KindInvalid)
		wantUnchanged(t, open, h.get(t, tenantID, p.ID))
		if n := len(ledgerTxs(t, sh, tenantID, &p.ID)); n != 1 {
			t.Fatalf("%d ledger transactions before the refund finished, want only the charge", n)
		}

		if st := reconcile(t, h); st.Refunds != 1 || st.Operations != 0 {
			t.Errorf("reconcile did %+v, want one refund", st)
		}
		got, err := h.svc.GetRefund(t.Context(), tenantID, ref.ID)
		if err != nil {
			t.Fatalf("get refund: %v", err)
		}
		if got.Status != payments.RefundSucceeded || got.ProcessorRef == nil {
			t.Fatalf("refund after reconcile: %+v, want succeeded with a processor ref", got)
		}
		pay := h.get(t, tenantID, p.ID)
		if pay.AmountRefunded != 4_000 || pay.AmountRefundPending != 0 || pay.Status != payments.StatusSucceeded {
			t.Fatalf("payment refunded %d pending %d status %s, want 4000, 0, succeeded", pay.AmountRefunded, pay.AmountRefundPending, pay.Status)
		}
		var refundTxs []ledger.Transaction
		for _, tx := range ledgerTxs(t, sh, tenantID, &p.ID) {
			if tx.Type == ledger.TypeRefund {
				refundTxs = append(refundTxs, tx)
			}
		}
		if len(refundTxs) != 1 || refundTxs[0].Amount != -4_000 || refundTxs[0].SourceID != ref.ID {
			t.Fatalf("refund ledger transactions %+v, want one of -4000 for %s", refundTxs, ref.PublicID())
		}
		if n := len(eventsOf(t, sh, tenantID, ref.ID, events.RefundSucceeded)); n != 1 {
			t.Errorf("%d refund.succeeded events, want 1", n)
		}
		wantOneKey(t, lossy, "refund", ref.PublicID(), ref.PublicID()+":create", 2)

		before := snapshot(t, h, tenantID, p.ID)
		if st := reconcile(t, h); st != (payments.ReconcileStats{}) {
			t.Errorf("second pass did %+v, want nothing", st)
		}
		wantSameSnapshot(t, before, snapshot(t, h, tenantID, p.ID))
		wantOneKey(t, lossy, "refund", ref.PublicID(), ref.PublicID()+":create", 2)

		// The rest can still be refunded, exactly.
		r2, err := h.svc.CreateRefund(t.Context(), tenantID, payments.CreateRefundParams{Payment: p.ID})
		if err != nil || r2.Amount != 6_000 || r2.Status != payments.RefundSucceeded {
			t.Fatalf("refund the rest: %+v, %v; want 6000 succeeded", r2, err)
		}
	})

	t.Run("processing_update_missed", func(t *testing.T) {
		t.Parallel()
		// A processing charge whose authorize answer was lost: its
		// settlement update finds the authorize still open and is left to
		// it, so the reconciler finishes the authorize and the payment
		// still settles, booked once.
		h, lossy := newLossyHarness(t)
		tenantID, _ := h.newTenant(t)
		lossy.loseNext("authorize")
		p, err := h.svc.Create(t.Context(), tenantID, payments.CreateParams{Amount: 900, Currency: "jpy", PaymentMethod: sandbox.PaymentMethodProcessing})
		wantLost(t, err)
		got := h.waitStatus(t, tenantID, p.ID, payments.StatusPending)
		wantSettledOnce(t, h, got, 900, events.PaymentSucceeded)
		wantOneKey(t, lossy, "authorize", p.PublicID(), p.PublicID()+":authorize", 2)
	})
}
