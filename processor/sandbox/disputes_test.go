package sandbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/sandbox"
)

// TestCreateDisputeToken: the charge succeeds, and after the delay one
// dispute opens with its funds and the configured fee withdrawn; evidence
// with the test texts closes it won or lost.
func TestCreateDisputeToken(t *testing.T) {
	t.Parallel()
	got := make(chan processor.DisputeUpdate, 4)
	sb := newSandbox(t, func(o *sandbox.Options) {
		o.DisputeDelay, o.DisputeFee = 10*time.Millisecond, 1234
		o.DisputeHandler = func(_ context.Context, u processor.DisputeUpdate) error { got <- u; return nil }
	})
	ctx := context.Background()
	ch, err := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodCreateDispute, nil))
	if err != nil || ch.Status != processor.StatusSucceeded {
		t.Fatalf("authorize: %+v %v", ch, err)
	}
	// A retry of the same authorization schedules no second dispute.
	if _, err := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodCreateDispute, nil)); err != nil {
		t.Fatal(err)
	}
	var u processor.DisputeUpdate
	select {
	case u = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no dispute opened")
	}
	ref := sandbox.DisputeRef("ten_1", "pay_1")
	if u.TenantID != "ten_1" || u.PaymentID != "pay_1" || u.PaymentRef != ch.Ref || u.Dispute.Ref != ref ||
		u.Dispute.Status != processor.DisputeNeedsResponse || u.Dispute.Amount != 1000 || u.Dispute.Withdrawal == nil ||
		u.Dispute.Withdrawal.Fee != 1234 || !u.Dispute.Withdrawal.FeeKnown || u.EventCreated.IsZero() || u.Dispute.EvidenceDueBy.IsZero() {
		t.Fatalf("dispute %+v", u)
	}
	select {
	case again := <-got:
		t.Fatalf("a second dispute: %+v", again)
	case <-time.After(50 * time.Millisecond):
	}
	req := processor.DisputeRequest{Ref: ref, TenantID: "ten_1", PaymentID: "pay_1", Amount: 1000, Currency: "usd", IdempotencyKey: "k"}
	d, err := sb.SubmitDisputeEvidence(ctx, req, processor.DisputeEvidence{"uncategorized_text": "this is winning_evidence"})
	if err != nil || d.Status != processor.DisputeUnderReview {
		t.Fatalf("evidence: %+v %v", d, err)
	}
	won := <-got
	if won.Dispute.Status != processor.DisputeWon || won.Dispute.Reinstatement == nil || won.Dispute.Reinstatement.Amount != 1000 || won.Funds != processor.FundsReinstated {
		t.Fatalf("won %+v", won)
	}
	if _, err := sb.SubmitDisputeEvidence(ctx, req, processor.DisputeEvidence{"uncategorized_text": "losing_evidence"}); err != nil {
		t.Fatal(err)
	}
	if lost := <-got; lost.Dispute.Status != processor.DisputeLost || lost.Dispute.Reinstatement != nil {
		t.Fatalf("lost %+v", lost)
	}
	if _, err := sb.SubmitDisputeEvidence(ctx, req, processor.DisputeEvidence{"product_description": "a lamp"}); err != nil {
		t.Fatal(err)
	}
	select {
	case u := <-got:
		t.Fatalf("evidence without a test text closed the dispute: %+v", u)
	case <-time.After(50 * time.Millisecond):
	}
	if d, err := sb.CloseDispute(ctx, req); err != nil || d.Status != processor.DisputeLost {
		t.Fatalf("close: %+v %v", d, err)
	}
	other := req
	other.PaymentID = "pay_2"
	if _, err := sb.CloseDispute(ctx, other); !errcode.Is(err, errcode.CodeResourceMissing) {
		t.Fatalf("a dispute the sandbox did not open: %v", err)
	}
}

func TestNewRefusesBadDisputeOptions(t *testing.T) {
	t.Parallel()
	for name, edit := range map[string]func(*sandbox.Options){
		"negative delay": func(o *sandbox.Options) { o.DisputeDelay = -time.Second },
		"delay too long": func(o *sandbox.Options) { o.DisputeDelay = 25 * time.Hour },
		"negative fee":   func(o *sandbox.Options) { o.DisputeFee = -1 },
	} {
		o := sandbox.DefaultOptions()
		edit(&o)
		if sb, err := sandbox.New(o); err == nil {
			_ = sb.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestDisputeNotificationsAreRetried: a notification the handler refuses
// comes again, with the same event time, up to DisputeAttemptsMax times.
func TestDisputeNotificationsAreRetried(t *testing.T) {
	t.Parallel()
	type attempt struct {
		at time.Time
		n  int
	}
	got := make(chan attempt, sandbox.DisputeAttemptsMax+1)
	n := 0
	sb := newSandbox(t, func(o *sandbox.Options) {
		o.DisputeDelay = time.Millisecond
		o.DisputeHandler = func(_ context.Context, u processor.DisputeUpdate) error {
			n++
			got <- attempt{u.EventCreated, n}
			if n < 3 {
				return errcode.New(errcode.KindUnavailable, "processor_update_deferred", "later")
			}
			return nil
		}
	})
	if _, err := sb.Authorize(context.Background(), authorizeRequest(sandbox.PaymentMethodCreateDispute, nil)); err != nil {
		t.Fatal(err)
	}
	first := <-got
	for want := 2; want <= 3; want++ {
		a := <-got
		if a.n != want || !a.at.Equal(first.at) {
			t.Fatalf("attempt %+v, want %d at %v", a, want, first.at)
		}
	}
	select {
	case a := <-got:
		t.Fatalf("delivered again after it was accepted: %+v", a)
	case <-time.After(50 * time.Millisecond):
	}
}
