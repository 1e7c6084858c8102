package payments

import (
	"context"
	"testing"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/sandbox"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/tenancy"
)

// TestOutcomeOfAPaymentThatMovedOnIsWrittenOnce records a capture's
// outcome for a payment whose version changed after the capture started:
// the batch's guarded multi-row update skips it, and its slow path reads
// the stored payment and applies the outcome there. The outcome's events
// and ledger posting must be written once, by the slow path alone.
func TestOutcomeOfAPaymentThatMovedOnIsWrittenOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, err := sharding.Open(ctx, []sharding.Config{{Name: "s0", Region: "local", DSN: dbtest.NewDatabase(t)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	router := sharding.NewRouter(m)
	ten, _, _, err := tenancy.NewService(router, tenancy.RateLimitDefaults{}, nil, nil).
		CreateTenant(ctx, tenancy.CreateTenantParams{Name: "merchant", Region: "local"})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(sandbox.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	s := NewService(Options{Router: router, Processor: sb})
	defer s.Close()

	p, err := s.Create(ctx, ten.ID, CreateParams{Amount: 1000, Currency: "usd", PaymentMethod: sandbox.PaymentMethodVisa, CaptureMethod: CaptureManual})
	if err != nil || p.Status != StatusRequiresCapture {
		t.Fatalf("create: %v %v", p.Status, err)
	}
	sh, started, _, err := s.startOperation(ctx, ten.ID, p.ID, OpCapture, func(p *Payment) error {
		a := p.AmountCapturable
		p.OperationAmount = &a
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The payment moves on after the operation started, as when another
	// writer touched it: the version the outcome holds is stale.
	if _, err := sh.Pool.Exec(ctx, `UPDATE payments SET version = version + 1 WHERE tenant_id = $1 AND id = $2`, ten.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	ch := processor.Charge{Status: processor.Status(StatusSucceeded), Ref: *started.ProcessorRef, AmountCaptured: 1000, Fee: 59}
	u := &writeUnit{outcome: &started, ch: ch}
	if err := s.write(ctx, sh, ten.ID, u); err != nil || u.refused != nil {
		t.Fatalf("record outcome: %v %v", err, u.refused)
	}
	if u.out.Status != StatusSucceeded || u.out.Version != started.Version+2 {
		t.Fatalf("outcome %s version %d, want succeeded at version %d", u.out.Status, u.out.Version, started.Version+2)
	}
	var succeeded, captured, postings int
	if err := sh.Pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM events WHERE tenant_id = $1 AND object_id = $2 AND type = 'payment.succeeded'),
			(SELECT count(*) FROM events WHERE tenant_id = $1 AND object_id = $2 AND type = 'payment.captured'),
			(SELECT count(*) FROM ledger_transactions WHERE tenant_id = $1 AND source_id = $2)`, ten.ID, p.ID).
		Scan(&succeeded, &captured, &postings); err != nil {
		t.Fatal(err)
	}
	if succeeded != 1 || captured != 1 || postings != 1 {
		t.Errorf("payment.succeeded %d, payment.captured %d, ledger transactions %d; want 1 each", succeeded, captured, postings)
	}
}
