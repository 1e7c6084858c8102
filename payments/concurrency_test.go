package payments_test

import (
	"context"
	"sync"
	"testing"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor/sandbox"
)

// racersCount is how many requests race on one payment.
const racersCount = 8

// race runs f racersCount times at once and returns the errors.
func race(f func(i int) error) []error {
	errs := make([]error, racersCount)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racersCount {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// TestRacingRefundsNeverExceedTheCapture: refunds that race on one payment
// are reserved one at a time, so of eight refunds of 300 on 1000 captured
// exactly three succeed and the others answer amount_exceeds_refundable.
func TestRacingRefundsNeverExceedTheCapture(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	tenantID, _ := h.newTenant(t)
	p := wantStatus(t, h.create(t, tenantID, sandbox.PaymentMethodVisa, payments.CaptureAutomatic, 1_000, "usd"), payments.StatusSucceeded)
	errs := race(func(int) error {
		_, err := h.svc.CreateRefund(context.Background(), tenantID, payments.CreateRefundParams{Payment: p.ID, Amount: 300})
		return err
	})
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantCode(t, err, payments.CodeAmountExceedsRefundable, errcode.KindInvalid)
	}
	if ok != 3 {
		t.Errorf("%d of %d refunds of 300 on 1000 succeeded, want 3", ok, racersCount)
	}
	got := h.get(t, tenantID, p.ID)
	if got.AmountRefunded != int64(ok)*300 || got.AmountRefundPending != 0 {
		t.Errorf("refunded %d pending %d after %d refunds of 300", got.AmountRefunded, got.AmountRefundPending, ok)
	}
	if rs := refundsOf(t, h.svc, tenantID, p.ID); len(rs) != ok {
		t.Errorf("%d refunds stored, %d succeeded", len(rs), ok)
	}
	refundTxs := 0
	for _, tx := range ledgerTxs(t, h.shardOf(t, tenantID), tenantID, &p.ID) {
		if tx.Type == ledger.TypeRefund {
			refundTxs++
		}
	}
	if refundTxs != ok {
		t.Errorf("%d refund transactions booked, %d refunds succeeded", refundTxs, ok)
	}
}

// TestRacingCapturesAndCancelsHaveOneWinner: captures and cancels racing on
// one authorized payment: exactly one takes effect, the others are refused
// with a conflict, and the money is booked at most once.
func TestRacingCapturesAndCancelsHaveOneWinner(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	tenantID, _ := h.newTenant(t)
	p := wantStatus(t, h.create(t, tenantID, sandbox.PaymentMethodVisa, payments.CaptureManual, 1_000, "eur"), payments.StatusRequiresCapture)
	errs := race(func(i int) error {
		var err error
		if i%2 == 0 {
			_, err = h.svc.Capture(context.Background(), tenantID, p.ID, 0)
		} else {
			_, err = h.svc.Cancel(context.Background(), tenantID, p.ID)
		}
		return err
	})
	winners := 0
	for i, err := range errs {
		if err == nil {
			winners++
			continue
		}
		e := errcode.As(err)
		if e == nil || e.Kind != errcode.KindConflict ||
			(e.Code != payments.CodeInvalidState && e.Code != payments.CodeOperationInProgress) {
			t.Errorf("racer %d: %v, want payment_invalid_state or payment_operation_in_progress", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d racers succeeded, want exactly 1", winners)
	}
	got := h.get(t, tenantID, p.ID)
	if got.Operation != payments.OpNone {
		t.Fatalf("operation %q left open", got.Operation)
	}
	switch got.Status {
	case payments.StatusSucceeded:
		wantCharged(t, h, got, 1_000)
	case payments.StatusCanceled:
		wantNotCharged(t, h, got)
	default:
		t.Fatalf("status %s after the race, want succeeded or canceled", got.Status)
	}
}
