package payments_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor/payout"
	"github.com/payments-api/payments/processor/sandbox"
)

// ---- Payouts in the property test (issue 14) ----
//
// TestPropertyPayoutsKeepTheBooks runs the property test's payment
// operations (propertyRun: creates, captures, cancels, 3-D Secure,
// refunds) interleaved with payout operations (create, cancel, a pass of
// the driver that sends and then pays or fails them), and checks every
// payout's answer against a model of the balance: exactly the payouts that
// fit succeed, a negative balance refuses every amount, and the balance is
// never below zero after a payout. At the end the ledger sums to zero per
// tenant and currency, the auditor finds every balance equal to its
// postings, and the balance and the payout accounts equal the model.

const propertyPayoutOps = 600

// modelPayout is the test's account of one payout.
type modelPayout struct {
	tenant   uuid.UUID
	id       uuid.UUID
	currency string
	amount   int64
	fails    bool
	status   payments.PayoutStatus
}

type payoutRun struct {
	*propertyRun
	payouts []*modelPayout
}

func TestPropertyPayoutsKeepTheBooks(t *testing.T) {
	t.Parallel()
	seed := propertySeed(t)
	t.Logf("seed %d (replay with %s=%d)", seed, propertySeedEnv, seed)
	sp, err := sandbox.NewPayouts(sandbox.PayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{Payouts: []payout.Processor{sp}})
	r := &payoutRun{propertyRun: &propertyRun{
		h:       h,
		rng:     rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d)),
		tenants: h.tenantsOnBothShards(t, propertyTenants),
		m:       model{byID: map[uuid.UUID]*modelPayment{}},
		counts:  map[string]int{},
	}}
	for range propertyPayoutOps {
		switch n := r.rng.IntN(100); {
		case n < 30 || len(r.m.payments) == 0:
			r.create(t)
		case n < 38:
			r.capture(t)
		case n < 42:
			r.cancel(t)
		case n < 45:
			r.completeAction(t)
		case n < 60:
			r.refund(t)
		case n < 80:
			r.createPayout(t)
		case n < 90:
			r.cancelPayout(t)
		default:
			r.drive(t)
		}
	}
	r.settleAll(t)
	r.drive(t)
	r.drive(t)
	t.Logf("operations: %v", r.counts)
	for _, path := range []string{"payout", "payout_insufficient", "payout_negative", "payout_cancel", "payout_cancel_refused",
		"payout_paid", "payout_failed", "refund"} {
		if r.counts[path] == 0 {
			t.Errorf("the run never exercised %s; the property test checks less than it claims", path)
		}
	}
	for _, tenantID := range r.tenants {
		r.checkPayoutBooks(t, tenantID)
	}
}

// settleAll lets every processing charge settle, so that the model's
// balance is the ledger's.
func (r *payoutRun) settleAll(tb testing.TB) {
	tb.Helper()
	for _, mp := range r.m.payments {
		if mp.status == payments.StatusPending {
			r.sync(tb, mp)
		}
	}
}

// modelAvailable is captured - refunded - fee of the tenant's payments in
// the currency, less the payouts that are not failed or canceled.
func (r *payoutRun) modelAvailable(tenant uuid.UUID, currency string) int64 {
	var v int64
	for _, mp := range r.m.payments {
		if mp.tenant == tenant && mp.currency == currency {
			v += mp.captured - mp.refunded - mp.fee
		}
	}
	for _, mo := range r.payouts {
		if mo.tenant == tenant && mo.currency == currency && mo.status != payments.PayoutFailed && mo.status != payments.PayoutCanceled {
			v -= mo.amount
		}
	}
	return v
}

func (r *payoutRun) createPayout(tb testing.TB) {
	tb.Helper()
	r.settleAll(tb)
	tenant := r.tenants[r.rng.IntN(len(r.tenants))]
	currency := propertyCurrencies[r.rng.IntN(len(propertyCurrencies))]
	avail := r.modelAvailable(tenant, currency)
	amount := 1 + r.rng.Int64N(max(avail+avail/4, 100))
	if r.rng.IntN(6) == 0 && avail > 0 {
		amount = avail // exactly all of it
	}
	mo := &modelPayout{tenant: tenant, currency: currency, amount: amount, fails: r.rng.IntN(4) == 0, status: payments.PayoutPending}
	p := payments.PayoutParams{Amount: amount, Currency: currency}
	if mo.fails {
		d := sandbox.DescriptionPayoutFails
		p.Description = &d
	}
	got, err := r.h.svc.CreatePayout(context.Background(), tenant, p)
	switch {
	case avail < 0:
		wantCode(tb, err, payments.CodeBalanceNegative, errcode.KindConflict)
		r.counts["payout_negative"]++
		return
	case amount > avail:
		wantCode(tb, err, payments.CodeBalanceInsufficient, errcode.KindInvalid)
		r.counts["payout_insufficient"]++
		return
	case err != nil:
		tb.Fatalf("payout of %d %s with %d available: %v", amount, currency, avail, err)
	}
	if got.Status != payments.PayoutPending || got.Amount != amount || got.Currency != currency {
		tb.Fatalf("payout %+v", got)
	}
	mo.id = got.ID
	r.payouts = append(r.payouts, mo)
	// The balance is never below zero after a payout.
	left, err := ledger.Available(context.Background(), r.h.shardOf(tb, tenant).Pool, tenant, currency)
	if err != nil {
		tb.Fatal(err)
	}
	if left < 0 || left != avail-amount {
		tb.Fatalf("balance %d %s after a payout of %d from %d", left, currency, amount, avail)
	}
	r.counts["payout"]++
}

func (r *payoutRun) cancelPayout(tb testing.TB) {
	tb.Helper()
	if len(r.payouts) == 0 {
		r.createPayout(tb)
		return
	}
	mo := r.payouts[r.rng.IntN(len(r.payouts))]
	if r.rng.IntN(4) > 0 {
		// Mostly one that can be canceled, when there is one.
		for _, c := range r.payouts {
			if c.status == payments.PayoutPending {
				mo = c
				break
			}
		}
	}
	got, err := r.h.svc.CancelPayout(context.Background(), mo.tenant, mo.id)
	if mo.status != payments.PayoutPending {
		wantCode(tb, err, payments.CodePayoutInvalidState, errcode.KindConflict)
		r.counts["payout_cancel_refused"]++
		return
	}
	if err != nil || got.Status != payments.PayoutCanceled {
		tb.Fatalf("cancel %s: %+v %v", got.PublicID(), got, err)
	}
	mo.status = payments.PayoutCanceled
	r.counts["payout_cancel"]++
}

// drive runs one pass of the driver: payouts in transit before it end
// (paid, or failed by the description rule), pending ones are sent.
func (r *payoutRun) drive(tb testing.TB) {
	tb.Helper()
	var sends, ends int
	for _, mo := range r.payouts {
		switch mo.status {
		case payments.PayoutInTransit:
			ends++
			mo.status = payments.PayoutPaid
			if mo.fails {
				mo.status = payments.PayoutFailed
			}
			r.counts[string("payout_"+mo.status)]++
		case payments.PayoutPending:
			sends++
			mo.status = payments.PayoutInTransit
		}
	}
	st, err := r.h.svc.DrivePayouts(context.Background(), driveNow)
	if err != nil || st.Sent != sends || st.Retrieved != ends || st.Errors != 0 {
		tb.Fatalf("driver pass %+v %v; the model expects %d sends and %d ends", st, err, sends, ends)
	}
	for _, mo := range r.payouts {
		got, err := r.h.svc.GetPayout(context.Background(), mo.tenant, mo.id)
		if err != nil || got.Status != mo.status {
			tb.Fatalf("payout %s is %s, the model says %s (%v)", got.PublicID(), got.Status, mo.status, err)
		}
	}
	r.counts["drive"]++
}

// checkPayoutBooks checks one tenant's ledger against itself and the model.
func (r *payoutRun) checkPayoutBooks(tb testing.TB, tenantID uuid.UUID) {
	tb.Helper()
	ctx := context.Background()
	sh := r.h.shardOf(tb, tenantID)
	sums, err := ledger.Sums(ctx, sh.Pool, tenantID)
	if err != nil {
		tb.Fatal(err)
	}
	for cur, s := range sums {
		if s != 0 {
			tb.Errorf("tenant %v: ledger entries in %s sum to %d, want 0", tenantID, cur, s)
		}
	}
	findings, err := ledger.Verify(ctx, sh.Pool, tenantID)
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range findings {
		tb.Errorf("audit: %s", f)
	}
	for _, cur := range propertyCurrencies {
		got, err := ledger.Available(ctx, sh.Pool, tenantID, cur)
		if err != nil {
			tb.Fatal(err)
		}
		if want := r.modelAvailable(tenantID, cur); got != want {
			tb.Errorf("tenant %v: available %d %s, the model says %d", tenantID, got, cur, want)
		}
		var inTransit, paid int64
		for _, mo := range r.payouts {
			if mo.tenant != tenantID || mo.currency != cur {
				continue
			}
			switch mo.status {
			case payments.PayoutPending, payments.PayoutInTransit:
				inTransit += mo.amount
			case payments.PayoutPaid:
				paid += mo.amount
			}
		}
		var gotTransit, gotPaid int64
		if err := sh.Pool.QueryRow(ctx, `SELECT
    coalesce(sum(amount) FILTER (WHERE account = 'payouts_in_transit'), 0)::BIGINT,
    coalesce(sum(amount) FILTER (WHERE account = 'payouts_paid'), 0)::BIGINT
FROM ledger_entries WHERE tenant_id = $1 AND currency = $2`, tenantID, cur).Scan(&gotTransit, &gotPaid); err != nil {
			tb.Fatal(err)
		}
		if gotTransit != inTransit || gotPaid != paid {
			tb.Errorf("tenant %v %s: in transit %d, paid out %d; the model says %d and %d", tenantID, cur, gotTransit, gotPaid, inTransit, paid)
		}
	}
}

// ---- end of payouts in the property test ----
