package payments_test

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor/sandbox"
)

// Sizes of the property test.
const (
	propertyOps     = 1_000
	propertyTenants = 3
	// propertySeedEnv names the variable that replays a logged seed.
	propertySeedEnv = "PAYMENTS_PROPERTY_SEED"
)

var propertyCurrencies = []string{"usd", "eur", "jpy"}

// tokenOutcome is what the sandbox does with a token, as the model knows it.
type tokenOutcome struct {
	token   string
	weight  int
	decline string // decline code; "" when approved
	action  bool   // 3-D Secure first
	settles bool   // pending, settles after the delay
}

var propertyTokens = []tokenOutcome{
	{token: sandbox.PaymentMethodVisa, weight: 6},
	{token: sandbox.PaymentMethodMastercard, weight: 3},
	{token: sandbox.PaymentMethodAmex, weight: 2},
	{token: sandbox.PaymentMethodDeclined, weight: 1, decline: "generic_decline"},
	{token: sandbox.PaymentMethodInsufficientFunds, weight: 1, decline: "insufficient_funds"},
	{token: sandbox.PaymentMethodFraudulent, weight: 1, decline: "fraudulent"},
	{token: sandbox.PaymentMethodThreeDSecure, weight: 2, action: true},
	{token: sandbox.PaymentMethodProcessing, weight: 2, settles: true},
}

// modelPayment is the test's own account of one payment.
type modelPayment struct {
	tenant     uuid.UUID
	id         uuid.UUID
	currency   string
	amount     int64
	manual     bool
	status     payments.Status
	capturable int64
	captured   int64
	fee        int64
	refunded   int64
	refunds    int // succeeded refunds
	actionRef  string
}

// model holds the expected state of every payment the test created.
type model struct {
	payments []*modelPayment
	byID     map[uuid.UUID]*modelPayment
}

// approve applies an approval to the model: captured at once, or held.
func (mp *modelPayment) approve() {
	if mp.manual {
		mp.status, mp.capturable = payments.StatusRequiresCapture, mp.amount
		return
	}
	mp.capture(mp.amount)
}

func (mp *modelPayment) capture(amount int64) {
	mp.status, mp.capturable, mp.captured, mp.fee = payments.StatusSucceeded, 0, amount, expectedFee(amount)
}

// check compares a stored payment with the model.
func (mp *modelPayment) check(tb testing.TB, p payments.Payment) {
	tb.Helper()
	if p.Status != mp.status || p.AmountCapturable != mp.capturable || p.AmountCaptured != mp.captured ||
		p.Fee != mp.fee || p.AmountRefunded != mp.refunded || p.AmountRefundPending != 0 ||
		p.Operation != payments.OpNone || p.Amount != mp.amount || p.Currency != mp.currency {
		tb.Fatalf("payment %s is %s capturable %d captured %d fee %d refunded %d pending %d op %q;\nmodel: %+v",
			p.PublicID(), p.Status, p.AmountCapturable, p.AmountCaptured, p.Fee, p.AmountRefunded, p.AmountRefundPending, p.Operation, *mp)
	}
}

func propertySeed(tb testing.TB) uint64 {
	tb.Helper()
	if s := os.Getenv(propertySeedEnv); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			tb.Fatalf("%s=%q: %v", propertySeedEnv, s, err)
		}
		return seed
	}
	return rand.Uint64()
}

// propertyRun carries the state of one run of the property test.
type propertyRun struct {
	h       *harness
	rng     *rand.Rand
	tenants []uuid.UUID
	m       model
	// counts of what happened, to show the run exercised every path
	counts map[string]int
}

// TestPropertyRandomOperationsKeepTheBooks runs random creates, captures,
// cancels, 3-D Secure completions and refunds across tenants, currencies
// and both shards, checks each outcome against a model, and at the end
// checks the ledger against the payments and refunds.
func TestPropertyRandomOperationsKeepTheBooks(t *testing.T) {
	t.Parallel()
	seed := propertySeed(t)
	t.Logf("seed %d (replay with %s=%d)", seed, propertySeedEnv, seed)
	h := newHarness(t, harnessOptions{})
	r := &propertyRun{
		h:       h,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		tenants: h.tenantsOnBothShards(t, propertyTenants),
		m:       model{byID: map[uuid.UUID]*modelPayment{}},
		counts:  map[string]int{},
	}
	for range propertyOps {
		switch n := r.rng.IntN(100); {
		case n < 30 || len(r.m.payments) == 0:
			r.create(t)
		case n < 50:
			r.capture(t)
		case n < 60:
			r.cancel(t)
		case n < 70:
			r.completeAction(t)
		default:
			r.refund(t)
		}
	}
	// Let every processing charge settle before reading the books.
	for _, mp := range r.m.payments {
		if mp.status == payments.StatusPending {
			r.sync(t, mp)
		}
	}
	if st := reconcile(t, h); st != (payments.ReconcileStats{}) {
		t.Errorf("reconciler found work after every operation finished: %+v", st)
	}
	t.Logf("operations: %v", r.counts)
	for _, path := range []string{"create", "declined", "capture", "capture_partial", "capture_refused", "capture_too_much",
		"cancel", "cancel_refused", "three_d_secure", "settled", "refund", "refund_too_much", "refund_refused"} {
		if r.counts[path] == 0 {
			t.Errorf("the run never exercised %s; the property test checks less than it claims", path)
		}
	}
	for _, tenantID := range r.tenants {
		r.checkBooks(t, tenantID)
	}
}

// pick returns a random payment of the model, preferring one in status
// when that is set and one exists.
func (r *propertyRun) pick(prefer payments.Status) *modelPayment {
	if prefer != "" && r.rng.IntN(4) > 0 {
		var in []*modelPayment
		for _, mp := range r.m.payments {
			if mp.status == prefer {
				in = append(in, mp)
			}
		}
		if len(in) > 0 {
			return in[r.rng.IntN(len(in))]
		}
	}
	return r.m.payments[r.rng.IntN(len(r.m.payments))]
}

// sync waits for a processing payment to settle and brings the model up
// to date, checking that it settled the way an approval does.
func (r *propertyRun) sync(tb testing.TB, mp *modelPayment) {
	tb.Helper()
	p := r.h.waitStatus(tb, mp.tenant, mp.id, payments.StatusPending)
	mp.approve()
	mp.check(tb, p)
	r.counts["settled"]++
}

func (r *propertyRun) create(tb testing.TB) {
	tb.Helper()
	total := 0
	for _, o := range propertyTokens {
		total += o.weight
	}
	n := r.rng.IntN(total)
	var tok tokenOutcome
	for _, o := range propertyTokens {
		if n < o.weight {
			tok = o
			break
		}
		n -= o.weight
	}
	mp := &modelPayment{
		tenant:   r.tenants[r.rng.IntN(len(r.tenants))],
		currency: propertyCurrencies[r.rng.IntN(len(propertyCurrencies))],
		amount:   1 + r.rng.Int64N(100_000),
		manual:   r.rng.IntN(5) < 2,
	}
	capture := payments.CaptureAutomatic
	if mp.manual {
		capture = payments.CaptureManual
	}
	p, err := r.h.svc.Create(context.Background(), mp.tenant, payments.CreateParams{
		Amount: mp.amount, Currency: mp.currency, PaymentMethod: tok.token, CaptureMethod: capture,
	})
	switch {
	case tok.decline != "":
		e := wantCode(tb, err, payments.CodeCardDeclined, errcode.KindPaymentRequired)
		if e.DeclineCode != tok.decline {
			tb.Fatalf("%s declined with %q, want %q", tok.token, e.DeclineCode, tok.decline)
		}
		mp.status = payments.StatusFailed
		r.counts["declined"]++
	case err != nil:
		tb.Fatalf("create %s: %v", tok.token, err)
	case tok.action:
		mp.status = payments.StatusRequiresAction
		if p.ProcessorRef == nil {
			tb.Fatalf("requires_action payment %s has no processor ref", p.PublicID())
		}
		mp.actionRef = *p.ProcessorRef
	case tok.settles:
		mp.status = payments.StatusPending
	default:
		mp.approve()
	}
	mp.id = p.ID
	// Check the answer, not a later read: a processing charge may settle
	// at any moment after Create returns.
	mp.check(tb, p)
	r.m.payments = append(r.m.payments, mp)
	r.m.byID[mp.id] = mp
	r.counts["create"]++
}

// before reads the payment before an operation, after letting a
// processing charge settle so that nothing changes it underneath.
func (r *propertyRun) before(tb testing.TB, mp *modelPayment) payments.Payment {
	tb.Helper()
	if mp.status == payments.StatusPending {
		r.sync(tb, mp)
	}
	p := r.h.get(tb, mp.tenant, mp.id)
	mp.check(tb, p)
	return p
}

func (r *propertyRun) capture(tb testing.TB) {
	tb.Helper()
	mp := r.pick(payments.StatusRequiresCapture)
	before := r.before(tb, mp)
	var amount int64 // 0 captures everything
	if r.rng.IntN(3) > 0 {
		amount = 1 + r.rng.Int64N(mp.amount+mp.amount/4)
	}
	got, err := r.h.svc.Capture(context.Background(), mp.tenant, mp.id, amount)
	switch {
	case mp.status != payments.StatusRequiresCapture:
		wantCode(tb, err, payments.CodeInvalidState, errcode.KindConflict)
		wantUnchanged(tb, before, r.h.get(tb, mp.tenant, mp.id))
		r.counts["capture_refused"]++
		return
	case amount > mp.capturable:
		wantCode(tb, err, payments.CodeAmountExceedsCapturable, errcode.KindInvalid)
		wantUnchanged(tb, before, r.h.get(tb, mp.tenant, mp.id))
		r.counts["capture_too_much"]++
		return
	case err != nil:
		tb.Fatalf("capture %d of %s: %v", amount, before.PublicID(), err)
	}
	if amount == 0 || amount == mp.capturable {
		r.counts["capture"]++
		amount = mp.capturable
	} else {
		r.counts["capture_partial"]++
	}
	mp.capture(amount)
	mp.check(tb, got)
	mp.check(tb, r.h.get(tb, mp.tenant, mp.id))
}

func (r *propertyRun) cancel(tb testing.TB) {
	tb.Helper()
	mp := r.pick(payments.StatusRequiresCapture)
	before := r.before(tb, mp)
	got, err := r.h.svc.Cancel(context.Background(), mp.tenant, mp.id)
	if mp.status != payments.StatusRequiresCapture && mp.status != payments.StatusRequiresAction {
		wantCode(tb, err, payments.CodeInvalidState, errcode.KindConflict)
		wantUnchanged(tb, before, r.h.get(tb, mp.tenant, mp.id))
		r.counts["cancel_refused"]++
		return
	}
	if err != nil {
		tb.Fatalf("cancel %s from %s: %v", before.PublicID(), mp.status, err)
	}
	mp.status, mp.capturable = payments.StatusCanceled, 0
	mp.check(tb, got)
	r.counts["cancel"]++
}

func (r *propertyRun) completeAction(tb testing.TB) {
	tb.Helper()
	var waiting []*modelPayment
	for _, mp := range r.m.payments {
		if mp.status == payments.StatusRequiresAction {
			waiting = append(waiting, mp)
		}
	}
	if len(waiting) == 0 {
		r.create(tb)
		return
	}
	mp := waiting[r.rng.IntN(len(waiting))]
	if _, err := r.h.sb.CompleteAction(context.Background(), mp.actionRef); err != nil {
		tb.Fatalf("complete 3-D Secure of %v: %v", mp.id, err)
	}
	mp.approve()
	mp.check(tb, r.h.get(tb, mp.tenant, mp.id))
	r.counts["three_d_secure"]++
}

func (r *propertyRun) refund(tb testing.TB) {
	tb.Helper()
	mp := r.pick(payments.StatusSucceeded)
	before := r.before(tb, mp)
	refundsBefore := len(refundsOf(tb, r.h.svc, mp.tenant, mp.id))
	var amount int64 // 0 refunds what is left
	if r.rng.IntN(5) > 0 {
		amount = 1 + r.rng.Int64N(max(mp.captured/2, 1))
		if r.rng.IntN(4) == 0 {
			amount += mp.captured - mp.refunded // beyond what is left
		}
	}
	got, err := r.h.svc.CreateRefund(context.Background(), mp.tenant, payments.CreateRefundParams{Payment: mp.id, Amount: amount})
	left := mp.captured - mp.refunded
	refusal := ""
	switch {
	case mp.status != payments.StatusSucceeded:
		wantCode(tb, err, payments.CodeInvalidState, errcode.KindConflict)
		refusal = "refund_refused"
	case amount > left || left == 0:
		wantCode(tb, err, payments.CodeAmountExceedsRefundable, errcode.KindInvalid)
		refusal = "refund_too_much"
	case err != nil:
		tb.Fatalf("refund %d of %s (left %d): %v", amount, before.PublicID(), left, err)
	}
	if refusal != "" {
		wantUnchanged(tb, before, r.h.get(tb, mp.tenant, mp.id))
		if n := len(refundsOf(tb, r.h.svc, mp.tenant, mp.id)); n != refundsBefore {
			tb.Fatalf("refused refund left a refund: %d before, %d after", refundsBefore, n)
		}
		r.counts[refusal]++
		return
	}
	if amount == 0 {
		amount = left
	}
	if got.Status != payments.RefundSucceeded || got.Amount != amount || got.PaymentID != mp.id || got.Currency != mp.currency {
		tb.Fatalf("refund %+v, want %d %s succeeded for %v", got, amount, mp.currency, mp.id)
	}
	mp.refunded += amount
	mp.refunds++
	mp.check(tb, r.h.get(tb, mp.tenant, mp.id))
	r.counts["refund"]++
}

// checkBooks checks one tenant's payments, refunds, ledger and events
// against each other and against the model.
func (r *propertyRun) checkBooks(tb testing.TB, tenantID uuid.UUID) {
	tb.Helper()
	ctx := context.Background()
	sh := r.h.shardOf(tb, tenantID)
	stored := allPayments(tb, r.h.svc, tenantID)
	modelled := 0
	for _, mp := range r.m.payments {
		if mp.tenant == tenantID {
			modelled++
		}
	}
	if len(stored) != modelled {
		tb.Fatalf("tenant %v lists %d payments, the model has %d", tenantID, len(stored), modelled)
	}

	available := map[string]int64{} // currency → captured - refunded - fee
	var charges, refunds int
	refundAmount := map[uuid.UUID]int64{} // refund → amount, for the ledger check
	for _, p := range stored {
		mp := r.m.byID[p.ID]
		if mp == nil || mp.tenant != tenantID {
			tb.Fatalf("payment %s of tenant %v is not in the model", p.PublicID(), tenantID)
		}
		mp.check(tb, p)
		var sum int64
		succeeded := 0
		for _, rf := range refundsOf(tb, r.h.svc, tenantID, p.ID) {
			switch rf.Status {
			case payments.RefundSucceeded:
				sum += rf.Amount
				succeeded++
				refundAmount[rf.ID] = rf.Amount
			default:
				tb.Fatalf("refund %s of %s is %s after every operation finished", rf.PublicID(), p.PublicID(), rf.Status)
			}
		}
		if p.AmountRefunded != sum || succeeded != mp.refunds {
			tb.Fatalf("%s: amount_refunded %d, its %d succeeded refunds sum to %d (model: %d refunds)",
				p.PublicID(), p.AmountRefunded, succeeded, sum, mp.refunds)
		}
		if p.AmountRefunded > p.AmountCaptured {
			tb.Fatalf("%s refunded %d of %d captured", p.PublicID(), p.AmountRefunded, p.AmountCaptured)
		}
		wantSucceededEvents := 0
		if p.AmountCaptured > 0 {
			available[p.Currency] += p.AmountCaptured - p.AmountRefunded - p.Fee
			charges++
			wantSucceededEvents = 1
		}
		if n := len(eventsOf(tb, sh, tenantID, p.ID, events.PaymentSucceeded)); n != wantSucceededEvents {
			tb.Fatalf("%s (%s): %d payment.succeeded events, want %d", p.PublicID(), p.Status, n, wantSucceededEvents)
		}
		refunds += succeeded
	}

	sums, err := ledger.Sums(ctx, sh.Pool, tenantID)
	if err != nil {
		tb.Fatalf("ledger sums: %v", err)
	}
	for cur, s := range sums {
		if s != 0 {
			tb.Errorf("tenant %v: ledger entries in %s sum to %d, want 0", tenantID, cur, s)
		}
	}
	balances, err := ledger.Balances(ctx, sh.Pool, tenantID)
	if err != nil {
		tb.Fatalf("ledger balances: %v", err)
	}
	got := map[string]int64{}
	for _, b := range balances {
		got[b.Currency] = b.Available
		if b.Pending != 0 {
			tb.Errorf("tenant %v: pending balance %d %s, want 0", tenantID, b.Pending, b.Currency)
		}
	}
	if len(got) != len(available) {
		tb.Errorf("tenant %v: balances in %v, payments captured in %v", tenantID, got, available)
	}
	for cur, want := range available {
		if got[cur] != want {
			tb.Errorf("tenant %v: available %d %s, payments say captured - refunded - fee = %d", tenantID, got[cur], cur, want)
		}
	}

	txs := ledgerTxs(tb, sh, tenantID, nil)
	var gotCharges, gotRefunds int
	for _, tx := range txs {
		switch tx.Type {
		case ledger.TypeCharge:
			gotCharges++
			mp := r.m.byID[tx.SourceID]
			if mp == nil || tx.Amount != mp.captured || tx.Fee != mp.fee || tx.Currency != mp.currency {
				tb.Errorf("charge %+v matches no captured payment of the model", tx)
			}
		case ledger.TypeRefund:
			gotRefunds++
			if amount, ok := refundAmount[tx.SourceID]; !ok || tx.Amount != -amount {
				tb.Errorf("refund transaction %+v matches no succeeded refund", tx)
			}
		default:
			tb.Errorf("unexpected ledger transaction %+v", tx)
		}
	}
	if gotCharges != charges || gotRefunds != refunds || len(txs) != charges+refunds {
		tb.Errorf("tenant %v: %d balance transactions (%d charges, %d refunds), want %d captures + %d succeeded refunds",
			tenantID, len(txs), gotCharges, gotRefunds, charges, refunds)
	}
	tb.Logf("tenant %v on %s: %d payments, %d charges, %d refunds, balances %v", tenantID, sh.Name, len(stored), charges, refunds, got)
}
