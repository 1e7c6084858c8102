package sandbox_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/payout"
	"github.com/payments-api/payments/processor/sandbox"
)

func TestSandboxPayouts(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_764_090_000, 0)
	p, err := sandbox.NewPayouts(sandbox.PayoutOptions{Delay: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := payout.Request{TenantID: "ten_x", PayoutID: "po_x", Amount: 500, Currency: "usd", IdempotencyKey: "po_x"}
	a, err := p.Send(ctx, req)
	if err != nil || a.Status != payout.StatusInTransit || a.Ref == "" {
		t.Fatalf("send %+v %v", a, err)
	}
	// The same key answers the same reference, in any process.
	other, _ := sandbox.NewPayouts(sandbox.PayoutOptions{})
	if b, err := other.Send(ctx, req); err != nil || b != a {
		t.Fatalf("repeated send %+v %v, want %+v", b, err, a)
	}
	req2 := req
	req2.IdempotencyKey = "po_y"
	if c, _ := p.Send(ctx, req2); c.Ref == a.Ref {
		t.Fatal("two keys share a reference")
	}
	req.Ref, req.SentAt = a.Ref, now.Add(-30*time.Second)
	if r, err := p.Retrieve(ctx, req); err != nil || r.Status != payout.StatusInTransit {
		t.Fatalf("before the delay %+v %v", r, err)
	}
	req.SentAt = now.Add(-time.Minute)
	if r, err := p.Retrieve(ctx, req); err != nil || r.Status != payout.StatusPaid {
		t.Fatalf("after the delay %+v %v", r, err)
	}
	req.Description = "please " + sandbox.DescriptionPayoutFails
	if r, err := p.Retrieve(ctx, req); err != nil || r.Status != payout.StatusFailed || r.FailureCode != sandbox.PayoutFailureCode || r.FailureMessage == "" {
		t.Fatalf("failing description %+v %v", r, err)
	}
	req.Ref = "po_stripe"
	if _, err := p.Retrieve(ctx, req); !errcode.Is(err, errcode.CodeResourceMissing) {
		t.Fatalf("unknown reference: %v", err)
	}
	for _, bad := range []payout.Request{
		{PayoutID: "po_x", Amount: 0, Currency: "usd", IdempotencyKey: "k"},
		{PayoutID: "po_x", Amount: 5, Currency: "US", IdempotencyKey: "k"},
		{PayoutID: "po_x", Amount: 5, Currency: "usd"},
	} {
		if _, err := p.Send(ctx, bad); errcode.As(err) == nil || errcode.As(err).Kind != errcode.KindInvalid {
			t.Errorf("send %+v: %v", bad, err)
		}
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Send(done, req); !errors.Is(err, processor.ErrUnavailable) {
		t.Fatalf("canceled context: %v", err)
	}
	if _, err := sandbox.NewPayouts(sandbox.PayoutOptions{Delay: -time.Second}); err == nil {
		t.Fatal("negative delay accepted")
	}
	if !payout.StatusPaid.Final() || payout.StatusInTransit.Final() || payout.Status("sent").Valid() {
		t.Fatal("status predicates")
	}
}
