package payments_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor/sandbox"
)

// allowedTransitions is the state machine as the API promises it, written
// out independently of the package's table.
var allowedTransitions = map[payments.Status][]payments.Status{
	payments.StatusPending: {payments.StatusRequiresAction, payments.StatusRequiresCapture,
		payments.StatusSucceeded, payments.StatusFailed, payments.StatusCanceled},
	payments.StatusRequiresAction:  {payments.StatusRequiresCapture, payments.StatusSucceeded, payments.StatusFailed, payments.StatusCanceled},
	payments.StatusRequiresCapture: {payments.StatusSucceeded, payments.StatusCanceled, payments.StatusFailed},
	payments.StatusSucceeded:       nil,
	payments.StatusFailed:          nil,
	payments.StatusCanceled:        nil,
}

func TestCanTransitionMatchesTheSpecifiedTable(t *testing.T) {
	t.Parallel()
	all := []payments.Status{payments.StatusPending, payments.StatusRequiresAction, payments.StatusRequiresCapture,
		payments.StatusSucceeded, payments.StatusFailed, payments.StatusCanceled}
	if !slices.Equal(payments.Statuses, all) {
		t.Fatalf("Statuses = %v, want exactly %v", payments.Statuses, all)
	}
	for _, from := range all {
		for _, to := range all {
			want := slices.Contains(allowedTransitions[from], to)
			t.Run(fmt.Sprintf("%s_to_%s", from, to), func(t *testing.T) {
				t.Parallel()
				if got := payments.CanTransition(from, to); got != want {
					t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
				}
			})
		}
		if got, want := from.Final(), len(allowedTransitions[from]) == 0; got != want {
			t.Errorf("%s.Final() = %v, want %v", from, got, want)
		}
	}
	// Unknown statuses go nowhere and nothing reaches them.
	if payments.CanTransition("bogus", payments.StatusSucceeded) || payments.CanTransition(payments.StatusPending, "bogus") {
		t.Error("CanTransition allows a transition involving an unknown status")
	}
}

// stateMaker brings a new payment of the tenant into one status.
type stateMaker func(tb testing.TB, h *harness, tenantID uuid.UUID) payments.Payment

func wantStatus(tb testing.TB, p payments.Payment, want payments.Status) payments.Payment {
	tb.Helper()
	if p.Status != want {
		tb.Fatalf("payment %s is %s, want %s", p.PublicID(), p.Status, want)
	}
	if p.Operation != payments.OpNone {
		tb.Fatalf("payment %s has operation %q left open", p.PublicID(), p.Operation)
	}
	return p
}

var stateMakers = map[payments.Status]stateMaker{
	payments.StatusSucceeded: func(tb testing.TB, h *harness, tenantID uuid.UUID) payments.Payment {
		return wantStatus(tb, h.create(tb, tenantID, sandbox.PaymentMethodVisa, payments.CaptureAutomatic, 1_000, "usd"), payments.StatusSucceeded)
	},
	payments.StatusFailed: func(tb testing.TB, h *harness, tenantID uuid.UUID) payments.Payment {
		return wantStatus(tb, h.create(tb, tenantID, sandbox.PaymentMethodDeclined, payments.CaptureAutomatic, 1_000, "usd"), payments.StatusFailed)
	},
	payments.StatusRequiresCapture: func(tb testing.TB, h *harness, tenantID uuid.UUID) payments.Payment {
		return wantStatus(tb, h.create(tb, tenantID, sandbox.PaymentMethodMastercard, payments.CaptureManual, 1_000, "eur"), payments.StatusRequiresCapture)
	},
	payments.StatusCanceled: func(tb testing.TB, h *harness, tenantID uuid.UUID) payments.Payment {
		tb.Helper()
		p := wantStatus(tb, h.create(tb, tenantID, sandbox.PaymentMethodVisa, payments.CaptureManual, 1_000, "usd"), payments.StatusRequiresCapture)
		p, err := h.svc.Cancel(context.Background(), tenantID, p.ID)
		if err != nil {
			tb.Fatalf("cancel: %v", err)
		}
		return wantStatus(tb, p, payments.StatusCanceled)
	},
	payments.StatusRequiresAction: func(tb testing.TB, h *harness, tenantID uuid.UUID) payments.Payment {
		return wantStatus(tb, h.create(tb, tenantID, sandbox.PaymentMethodThreeDSecure, payments.CaptureAutomatic, 1_000, "usd"), payments.StatusRequiresAction)
	},
	// pending needs a harness whose settle delay outlasts the test.
	payments.StatusPending: func(tb testing.TB, h *harness, tenantID uuid.UUID) payments.Payment {
		return wantStatus(tb, h.create(tb, tenantID, sandbox.PaymentMethodProcessing, payments.CaptureAutomatic, 1_000, "usd"), payments.StatusPending)
	},
}

// TestRefusedActionsChangeNothing drives every action the state machine
// refuses through the service and checks the answer and that the payment,
// its events, its ledger and its refunds are untouched.
func TestRefusedActionsChangeNothing(t *testing.T) {
	t.Parallel()
	// Processing charges must stay pending for the whole test.
	h := newHarness(t, harnessOptions{SettleDelay: time.Hour})
	tenantID, _ := h.newTenant(t)
	sh := h.shardOf(t, tenantID)

	capture := func(amount int64) func(ctx context.Context, p payments.Payment) error {
		return func(ctx context.Context, p payments.Payment) error {
			_, err := h.svc.Capture(ctx, tenantID, p.ID, amount)
			return err
		}
	}
	cancel := func(ctx context.Context, p payments.Payment) error {
		_, err := h.svc.Cancel(ctx, tenantID, p.ID)
		return err
	}
	refund := func(amount int64) func(ctx context.Context, p payments.Payment) error {
		return func(ctx context.Context, p payments.Payment) error {
			_, err := h.svc.CreateRefund(ctx, tenantID, payments.CreateRefundParams{Payment: p.ID, Amount: amount})
			return err
		}
	}
	type refused struct {
		action string
		from   payments.Status
		do     func(ctx context.Context, p payments.Payment) error
		code   string
		kind   errcode.Kind
	}
	var cases []refused
	for _, from := range []payments.Status{payments.StatusSucceeded, payments.StatusFailed, payments.StatusCanceled,
		payments.StatusRequiresAction, payments.StatusPending} {
		cases = append(cases,
			refused{"capture", from, capture(0), payments.CodeInvalidState, errcode.KindConflict},
			refused{"capture_partial", from, capture(1), payments.CodeInvalidState, errcode.KindConflict})
	}
	for _, from := range []payments.Status{payments.StatusSucceeded, payments.StatusFailed, payments.StatusCanceled} {
		cases = append(cases, refused{"cancel", from, cancel, payments.CodeInvalidState, errcode.KindConflict})
	}
	for _, from := range []payments.Status{payments.StatusRequiresCapture, payments.StatusFailed, payments.StatusCanceled,
		payments.StatusRequiresAction, payments.StatusPending} {
		cases = append(cases,
			refused{"refund", from, refund(0), payments.CodeInvalidState, errcode.KindConflict},
			refused{"refund_partial", from, refund(1), payments.CodeInvalidState, errcode.KindConflict})
	}
	cases = append(cases,
		refused{"capture_more_than_authorized", payments.StatusRequiresCapture, capture(1_001), payments.CodeAmountExceedsCapturable, errcode.KindInvalid},
		refused{"refund_more_than_captured", payments.StatusSucceeded, refund(1_001), payments.CodeAmountExceedsRefundable, errcode.KindInvalid},
	)

	for _, c := range cases {
		t.Run(c.action+"_from_"+string(c.from), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			p := stateMakers[c.from](t, h, tenantID)
			before := h.get(t, tenantID, p.ID)
			evsBefore := len(eventsOf(t, sh, tenantID, p.ID, ""))
			ledgerBefore := len(ledgerTxs(t, sh, tenantID, &p.ID))

			err := c.do(ctx, before)
			e := wantCode(t, err, c.code, c.kind)
			if e.Payment != p.PublicID() {
				t.Errorf("error names payment %q, want %q", e.Payment, p.PublicID())
			}
			wantUnchanged(t, before, h.get(t, tenantID, p.ID))
			if n := len(eventsOf(t, sh, tenantID, p.ID, "")); n != evsBefore {
				t.Errorf("%d events after the refused %s, %d before", n, c.action, evsBefore)
			}
			if n := len(ledgerTxs(t, sh, tenantID, &p.ID)); n != ledgerBefore {
				t.Errorf("%d ledger transactions after the refused %s, %d before", n, c.action, ledgerBefore)
			}
			if rs := refundsOf(t, h.svc, tenantID, p.ID); len(rs) != 0 {
				t.Errorf("refused %s left refunds: %+v", c.action, rs)
			}
		})
	}
}

// wantCharged asserts a payment's captured amount and fee and that the
// ledger booked exactly one matching charge for it.
func wantCharged(tb testing.TB, h *harness, p payments.Payment, captured int64) {
	tb.Helper()
	fee := expectedFee(captured)
	if p.AmountCaptured != captured || p.Fee != fee || p.AmountCapturable != 0 {
		tb.Fatalf("captured %d fee %d capturable %d, want %d, %d, 0", p.AmountCaptured, p.Fee, p.AmountCapturable, captured, fee)
	}
	txs := ledgerTxs(tb, h.shardOf(tb, p.TenantID), p.TenantID, &p.ID)
	if len(txs) != 1 {
		tb.Fatalf("%d ledger transactions for %s, want one charge: %+v", len(txs), p.PublicID(), txs)
	}
	tx := txs[0]
	if tx.Type != ledger.TypeCharge || tx.Amount != captured || tx.Fee != fee || tx.Net != captured-fee || tx.Currency != p.Currency {
		tb.Fatalf("ledger transaction %+v, want a %s charge of %d with fee %d", tx, p.Currency, captured, fee)
	}
	if n := len(eventsOf(tb, h.shardOf(tb, p.TenantID), p.TenantID, p.ID, events.PaymentSucceeded)); n != 1 {
		tb.Fatalf("%d payment.succeeded events, want 1", n)
	}
}

func wantNotCharged(tb testing.TB, h *harness, p payments.Payment) {
	tb.Helper()
	if p.AmountCaptured != 0 || p.Fee != 0 {
		tb.Fatalf("payment %s captured %d with fee %d, want nothing", p.PublicID(), p.AmountCaptured, p.Fee)
	}
	if txs := ledgerTxs(tb, h.shardOf(tb, p.TenantID), p.TenantID, &p.ID); len(txs) != 0 {
		tb.Fatalf("ledger has %d transactions for %s, want none", len(txs), p.PublicID())
	}
}

func TestAllowedTransitions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	tenantID, _ := h.newTenant(t)
	sh := h.shardOf(t, tenantID)

	t.Run("capture_full_from_requires_capture", func(t *testing.T) {
		t.Parallel()
		p := wantStatus(t, h.create(t, tenantID, sandbox.PaymentMethodVisa, payments.CaptureManual, 12_345, "jpy"), payments.StatusRequiresCapture)
		if p.AmountCapturable != 12_345 {
			t.Fatalf("capturable %d, want 12345", p.AmountCapturable)
		}
		wantNotCharged(t, h, p)
		got, err := h.svc.Capture(t.Context(), tenantID, p.ID, 0)
		if err != nil {
			t.Fatalf("capture: %v", err)
		}
		wantStatus(t, got, payments.StatusSucceeded)
		if got.Version <= p.Version {
			t.Errorf("version %d after capture, was %d", got.Version, p.Version)
		}
		wantCharged(t, h, got, 12_345)
		if n := len(eventsOf(t, sh, tenantID, p.ID, events.PaymentCaptured)); n != 1 {
			t.Errorf("%d payment.captured events, want 1", n)
		}
		// Nothing leaves succeeded.
		_, err = h.svc.Capture(t.Context(), tenantID, p.ID, 0)
		wantCode(t, err, payments.CodeInvalidState, errcode.KindConflict)
	})

	t.Run("capture_partial_from_requires_capture", func(t *testing.T) {
		t.Parallel()
		p := wantStatus(t, h.create(t, tenantID, sandbox.PaymentMethodAmex, payments.CaptureManual, 1_000, "eur"), payments.StatusRequiresCapture)
		got, err := h.svc.Capture(t.Context(), tenantID, p.ID, 600)
		if err != nil {
			t.Fatalf("capture 600: %v", err)
		}
		wantStatus(t, got, payments.StatusSucceeded)
		if got.Amount != 1_000 {
			t.Errorf("amount %d, want the authorized 1000", got.Amount)
		}
		wantCharged(t, h, got, 600)
		// Only what was captured can be refunded.
		_, err = h.svc.CreateRefund(t.Context(), tenantID, payments.CreateRefundParams{Payment: p.ID, Amount: 601})
		wantCode(t, err, payments.CodeAmountExceedsRefundable, errcode.KindInvalid)
		r, err := h.svc.CreateRefund(t.Context(), tenantID, payments.CreateRefundParams{Payment: p.ID})
		if err != nil {
			t.Fatalf("refund the rest: %v", err)
		}
		if r.Amount != 600 || r.Status != payments.RefundSucceeded {
			t.Fatalf("refund %+v, want 600 succeeded", r)
		}
		if got := h.get(t, tenantID, p.ID); got.AmountRefunded != 600 || got.AmountRefundPending != 0 {
			t.Fatalf("refunded %d pending %d, want 600 and 0", got.AmountRefunded, got.AmountRefundPending)
		}
	})

	t.Run("cancel_from_requires_capture", func(t *testing.T) {
		t.Parallel()
		p := stateMakers[payments.StatusCanceled](t, h, tenantID)
		if p.AmountCapturable != 0 {
			t.Errorf("capturable %d after cancel, want 0", p.AmountCapturable)
		}
		wantNotCharged(t, h, p)
		if n := len(eventsOf(t, sh, tenantID, p.ID, events.PaymentCanceled)); n != 1 {
			t.Errorf("%d payment.canceled events, want 1", n)
		}
	})

	t.Run("cancel_from_requires_action", func(t *testing.T) {
		t.Parallel()
		p := stateMakers[payments.StatusRequiresAction](t, h, tenantID)
		if p.NextAction == nil || p.NextAction.RedirectURL == "" {
			t.Fatalf("requires_action payment without a next action: %+v", p.NextAction)
		}
		actionRef := *p.ProcessorRef
		got, err := h.svc.Cancel(t.Context(), tenantID, p.ID)
		if err != nil {
			t.Fatalf("cancel: %v", err)
		}
		wantStatus(t, got, payments.StatusCanceled)
		if got.NextAction != nil {
			t.Errorf("canceled payment keeps next action %+v", got.NextAction)
		}
		// The customer finishing 3-D Secure afterwards must not revive it.
		if _, err := h.sb.CompleteAction(t.Context(), actionRef); err != nil {
			t.Fatalf("late 3-D Secure completion: %v", err)
		}
		after := h.get(t, tenantID, p.ID)
		wantStatus(t, after, payments.StatusCanceled)
		wantNotCharged(t, h, after)
	})

	for _, capture := range []string{payments.CaptureAutomatic, payments.CaptureManual} {
		t.Run("three_d_secure_completed_"+capture, func(t *testing.T) {
			t.Parallel()
			p := wantStatus(t, h.create(t, tenantID, sandbox.PaymentMethodThreeDSecure, capture, 2_500, "usd"), payments.StatusRequiresAction)
			wantNotCharged(t, h, p)
			if _, err := h.sb.CompleteAction(t.Context(), *p.ProcessorRef); err != nil {
				t.Fatalf("complete 3-D Secure: %v", err)
			}
			got := h.get(t, tenantID, p.ID)
			if got.NextAction != nil {
				t.Errorf("next action %+v kept after completion", got.NextAction)
			}
			if capture == payments.CaptureAutomatic {
				wantStatus(t, got, payments.StatusSucceeded)
				wantCharged(t, h, got, 2_500)
				return
			}
			wantStatus(t, got, payments.StatusRequiresCapture)
			if got.AmountCapturable != 2_500 {
				t.Fatalf("capturable %d, want 2500", got.AmountCapturable)
			}
			wantNotCharged(t, h, got)
			got, err := h.svc.Capture(t.Context(), tenantID, p.ID, 0)
			if err != nil {
				t.Fatalf("capture after 3-D Secure: %v", err)
			}
			wantStatus(t, got, payments.StatusSucceeded)
			wantCharged(t, h, got, 2_500)
		})
	}

	for _, capture := range []string{payments.CaptureAutomatic, payments.CaptureManual} {
		t.Run("processing_settles_"+capture, func(t *testing.T) {
			t.Parallel()
			p := wantStatus(t, h.create(t, tenantID, sandbox.PaymentMethodProcessing, capture, 4_200, "eur"), payments.StatusPending)
			got := h.waitStatus(t, tenantID, p.ID, payments.StatusPending)
			if capture == payments.CaptureAutomatic {
				wantStatus(t, got, payments.StatusSucceeded)
				wantCharged(t, h, got, 4_200)
				return
			}
			wantStatus(t, got, payments.StatusRequiresCapture)
			wantNotCharged(t, h, got)
			got, err := h.svc.Capture(t.Context(), tenantID, p.ID, 4_000)
			if err != nil {
				t.Fatalf("capture settled payment: %v", err)
			}
			wantCharged(t, h, got, 4_000)
		})
	}

	t.Run("decline_is_failed_with_codes", func(t *testing.T) {
		t.Parallel()
		for token, decline := range map[string]string{
			sandbox.PaymentMethodDeclined:          "generic_decline",
			sandbox.PaymentMethodInsufficientFunds: "insufficient_funds",
			sandbox.PaymentMethodFraudulent:        "fraudulent",
		} {
			p, err := h.svc.Create(t.Context(), tenantID, payments.CreateParams{Amount: 700, Currency: "usd", PaymentMethod: token})
			e := wantCode(t, err, payments.CodeCardDeclined, errcode.KindPaymentRequired)
			if e.DeclineCode != decline || e.Payment != p.PublicID() {
				t.Errorf("%s: decline code %q payment %q, want %q and %q", token, e.DeclineCode, e.Payment, decline, p.PublicID())
			}
			got := wantStatus(t, h.get(t, tenantID, p.ID), payments.StatusFailed)
			if got.DeclineCode == nil || *got.DeclineCode != decline || got.FailureCode == nil || *got.FailureCode != payments.CodeCardDeclined {
				t.Errorf("%s: stored failure %v / %v", token, got.FailureCode, got.DeclineCode)
			}
			wantNotCharged(t, h, got)
		}
	})
}
