package payments_test

// The dispute block of the property test: random payments, refunds and
// disputes across tenants and currencies, with each dispute's processor
// notifications delivered in random order and repeatedly, evidence and
// acceptance in between. At the end every tenant's book sums to zero per
// currency, each balance equals its postings, and the balance is what the
// model says: captured - refunded - fee - withdrawn - dispute fees +
// reinstated.

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/sandbox"
)

// propertyDisputeOps is the number of random operations of the block.
const propertyDisputeOps = 600

// modelDispute is the test's account of one dispute.
type modelDispute struct {
	pay        *modelPayment
	ref        string
	amount     int64
	fee        int64
	withdrawn  bool
	reinstated bool
	status     processor.DisputeStatus
	submitted  bool
	// inbox holds the notifications the processor has sent, each of which
	// may still be delivered (again): Stripe delivers at least once, in
	// any order.
	inbox []processor.DisputeUpdate
	// seen are the notifications delivered so far.
	seen []string
}

type disputeRun struct {
	h        *harness
	rng      *rand.Rand
	tenants  []uuid.UUID
	pays     []*modelPayment
	disputed map[uuid.UUID]*modelDispute
	list     []*modelDispute
	counts   map[string]int
	clock    time.Time
}

func TestPropertyDisputesKeepTheBooks(t *testing.T) {
	t.Parallel()
	seed := propertySeed(t)
	t.Logf("seed %d (replay with %s=%d)", seed, propertySeedEnv, seed)
	h := newHarness(t, harnessOptions{})
	r := &disputeRun{
		h: h, rng: rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)), tenants: h.tenantsOnBothShards(t, propertyTenants),
		disputed: map[uuid.UUID]*modelDispute{}, counts: map[string]int{}, clock: time.Now().Add(-time.Hour),
	}
	for range propertyDisputeOps {
		switch n := r.rng.IntN(100); {
		case n < 20 || len(r.pays) == 0:
			r.create(t)
		case n < 30:
			r.refund(t)
		case n < 45:
			r.open(t)
		case n < 80:
			r.deliver(t)
		case n < 90:
			r.evidence(t)
		default:
			r.accept(t)
		}
	}
	// Deliver what is left, each at least once more.
	for _, d := range r.list {
		for _, u := range d.inbox {
			r.apply(t, d, u)
		}
	}
	t.Logf("operations: %v", r.counts)
	for _, path := range []string{"create", "refund", "refund_disputed", "open", "deliver", "deliver_again", "out_of_order",
		"evidence", "evidence_refused", "accept", "accept_refused", "won", "lost"} {
		if r.counts[path] == 0 {
			t.Errorf("the run never exercised %s; the property test checks less than it claims", path)
		}
	}
	for _, tenantID := range r.tenants {
		r.checkBooks(t, tenantID)
	}
}

func (r *disputeRun) create(tb testing.TB) {
	tb.Helper()
	mp := &modelPayment{
		tenant:   r.tenants[r.rng.IntN(len(r.tenants))],
		currency: propertyCurrencies[r.rng.IntN(len(propertyCurrencies))],
		amount:   1 + r.rng.Int64N(100_000),
	}
	p := r.h.create(tb, mp.tenant, sandbox.PaymentMethodVisa, payments.CaptureAutomatic, mp.amount, mp.currency)
	mp.id = p.ID
	mp.approve()
	mp.check(tb, p)
	r.pays = append(r.pays, mp)
	r.counts["create"]++
}

func (r *disputeRun) refund(tb testing.TB) {
	tb.Helper()
	mp := r.pays[r.rng.IntN(len(r.pays))]
	left := mp.captured - mp.refunded
	amount := 1 + r.rng.Int64N(max(left/2, 1))
	_, err := r.h.svc.CreateRefund(context.Background(), mp.tenant, payments.CreateRefundParams{Payment: mp.id, Amount: amount})
	switch {
	case r.disputed[mp.id] != nil && len(r.disputed[mp.id].seen) > 0:
		wantCode(tb, err, payments.CodeChargeDisputed, errcode.KindConflict)
		r.counts["refund_disputed"]++
	case amount > left:
		wantCode(tb, err, payments.CodeAmountExceedsRefundable, errcode.KindInvalid)
	case err != nil:
		tb.Fatalf("refund %d of %v: %v", amount, mp.id, err)
	default:
		mp.refunded += amount
		mp.refunds++
		r.counts["refund"]++
	}
}

// next advances the processor's clock: each notification is newer than
// the ones sent before it.
func (r *disputeRun) next() time.Time {
	r.clock = r.clock.Add(time.Second)
	return r.clock
}

// open has the processor open a dispute of an undisputed payment: its
// notifications (created; funds withdrawn; maybe closed won with the
// reinstatement, or lost) go into its inbox, to be delivered in any order.
func (r *disputeRun) open(tb testing.TB) {
	tb.Helper()
	var free []*modelPayment
	for _, mp := range r.pays {
		if r.disputed[mp.id] == nil {
			free = append(free, mp)
		}
	}
	if len(free) == 0 {
		r.create(tb)
		return
	}
	mp := free[r.rng.IntN(len(free))]
	tenant, payment := ids.Format(ids.PrefixTenant, mp.tenant), ids.Format(ids.PrefixPayment, mp.id)
	d := &modelDispute{
		pay: mp, ref: sandbox.DisputeRef(tenant, payment), amount: 1 + r.rng.Int64N(mp.captured), fee: r.rng.Int64N(2_000),
		status: processor.DisputeNeedsResponse,
	}
	pd := processor.Dispute{Ref: d.ref, Status: processor.DisputeNeedsResponse, Amount: d.amount, Currency: mp.currency, Reason: "fraudulent",
		EvidenceDueBy: time.Now().Add(7 * 24 * time.Hour).Truncate(time.Second)}
	withdrawal := &processor.DisputeFunds{Ref: d.ref + "_w", Amount: d.amount, Fee: d.fee, FeeKnown: true}
	pd.Withdrawal = withdrawal
	u := func(id string, pd processor.Dispute, funds string) processor.DisputeUpdate {
		return processor.DisputeUpdate{TenantID: tenant, PaymentID: payment, Dispute: pd, EventID: d.ref + ":" + id, EventCreated: r.next(), Funds: funds}
	}
	created := pd
	created.Withdrawal = nil
	d.inbox = append(d.inbox, u("created", created, ""), u("withdrawn", pd, processor.FundsWithdrawn))
	switch r.rng.IntN(3) {
	case 0:
		won := pd
		won.Status, won.Reinstatement = processor.DisputeWon, &processor.DisputeFunds{Ref: d.ref + "_r", Amount: d.amount}
		d.inbox = append(d.inbox, u("closed", won, ""), u("reinstated", won, processor.FundsReinstated))
	case 1:
		lost := pd
		lost.Status = processor.DisputeLost
		d.inbox = append(d.inbox, u("closed", lost, ""))
	}
	r.disputed[mp.id] = d
	r.list = append(r.list, d)
	r.counts["open"]++
}

// deliver sends one notification of a random dispute, and keeps it in the
// inbox half the time: it may come again.
func (r *disputeRun) deliver(tb testing.TB) {
	tb.Helper()
	if len(r.list) == 0 {
		r.open(tb)
		return
	}
	d := r.list[r.rng.IntN(len(r.list))]
	if len(d.inbox) == 0 {
		return
	}
	i := r.rng.IntN(len(d.inbox))
	u := d.inbox[i]
	if i > 0 {
		r.counts["out_of_order"]++
	}
	if r.rng.IntN(2) == 0 {
		d.inbox = append(d.inbox[:i], d.inbox[i+1:]...)
	}
	r.apply(tb, d, u)
}

// apply delivers u, with a fresh event ID half the time (a retry of the
// processor's own, which the ledger's source key still books once), and
// moves the model.
func (r *disputeRun) apply(tb testing.TB, d *modelDispute, u processor.DisputeUpdate) {
	tb.Helper()
	if r.rng.IntN(2) == 0 {
		u.EventID += ":" + uuid.NewString()
	}
	if err := r.h.svc.ApplyDisputeUpdate(context.Background(), u); err != nil {
		tb.Fatalf("deliver %s: %v", u.EventID, err)
	}
	if d.delivered(u) {
		r.counts["deliver_again"]++
	}
	r.counts["deliver"]++
	pd := u.Dispute
	if pd.Withdrawal != nil || u.Funds != "" || pd.Reinstatement != nil {
		d.withdrawn = true
	}
	if (pd.Reinstatement != nil || u.Funds == processor.FundsReinstated) && !d.reinstated {
		d.reinstated = true
	}
	if !d.status.Final() && rank(pd.Status) > rank(d.status) {
		d.status = pd.Status
		r.counts[string(pd.Status)]++
	}
}

// delivered remembers each notification and reports whether it came before.
func (d *modelDispute) delivered(u processor.DisputeUpdate) bool {
	key := u.Dispute.Ref + string(u.Dispute.Status) + u.Funds
	for _, s := range d.seen {
		if s == key {
			return true
		}
	}
	d.seen = append(d.seen, key)
	return false
}

func rank(s processor.DisputeStatus) int {
	switch s {
	case processor.DisputeWarningNeedsResponse:
		return 0
	case processor.DisputeNeedsResponse:
		return 1
	case processor.DisputeUnderReview:
		return 2
	}
	return 3
}

// stored answers the dispute as stored, or false when no notification of
// it was delivered yet.
func (r *disputeRun) stored(tb testing.TB, d *modelDispute) (payments.Dispute, bool) {
	tb.Helper()
	ds, _, err := r.h.svc.ListDisputes(context.Background(), d.pay.tenant, payments.DisputeListParams{Payment: &d.pay.id})
	if err != nil {
		tb.Fatal(err)
	}
	if len(ds) == 0 {
		return payments.Dispute{}, false
	}
	return ds[0], true
}

func (r *disputeRun) pickStored(tb testing.TB) (*modelDispute, payments.Dispute, bool) {
	tb.Helper()
	if len(r.list) == 0 {
		return nil, payments.Dispute{}, false
	}
	d := r.list[r.rng.IntN(len(r.list))]
	got, ok := r.stored(tb, d)
	return d, got, ok
}

func (r *disputeRun) evidence(tb testing.TB) {
	tb.Helper()
	d, got, ok := r.pickStored(tb)
	if !ok {
		r.deliver(tb)
		return
	}
	out, err := r.h.svc.SubmitDisputeEvidence(context.Background(), d.pay.tenant, got.ID, map[string]string{"product_description": "a lamp"})
	switch {
	case d.status.Final():
		wantCode(tb, err, payments.CodeDisputeClosed, errcode.KindConflict)
		r.counts["evidence_refused"]++
	case d.submitted:
		wantCode(tb, err, payments.CodeDisputeEvidenceSubmitted, errcode.KindConflict)
		r.counts["evidence_refused"]++
	case err != nil:
		tb.Fatalf("evidence for %s: %v", got.PublicID(), err)
	default:
		if out.Status != processor.DisputeUnderReview || out.EvidenceSubmittedAt == nil {
			tb.Fatalf("after evidence: %+v", out)
		}
		d.submitted, d.status = true, processor.DisputeUnderReview
		r.counts["evidence"]++
	}
}

// accept closes a dispute as lost; the processor then sends no verdict of
// its own, so the dispute's undelivered closing notifications are dropped.
func (r *disputeRun) accept(tb testing.TB) {
	tb.Helper()
	d, got, ok := r.pickStored(tb)
	if !ok {
		r.deliver(tb)
		return
	}
	out, err := r.h.svc.CloseDispute(context.Background(), d.pay.tenant, got.ID)
	if d.status.Final() {
		wantCode(tb, err, payments.CodeDisputeClosed, errcode.KindConflict)
		r.counts["accept_refused"]++
		return
	}
	if err != nil || out.Status != processor.DisputeLost {
		tb.Fatalf("accept %s: %+v %v", got.PublicID(), out, err)
	}
	d.status = processor.DisputeLost
	var keep []processor.DisputeUpdate
	for _, u := range d.inbox {
		if !u.Dispute.Status.Final() && u.Funds != processor.FundsReinstated {
			keep = append(keep, u)
		}
	}
	d.inbox = keep
	r.counts["accept"]++
	r.counts["lost"]++
}

func (r *disputeRun) checkBooks(tb testing.TB, tenantID uuid.UUID) {
	tb.Helper()
	ctx := context.Background()
	sh := r.h.shardOf(tb, tenantID)
	want := map[string]int64{}
	for _, mp := range r.pays {
		if mp.tenant != tenantID {
			continue
		}
		want[mp.currency] += mp.captured - mp.refunded - mp.fee
		p := r.h.get(tb, tenantID, mp.id)
		d := r.disputed[mp.id]
		got, stored := payments.Dispute{}, false
		if d != nil {
			got, stored = r.stored(tb, d)
		}
		if p.Disputed != stored || p.AmountRefunded != mp.refunded {
			tb.Fatalf("%s: disputed %v refunded %d, model: dispute stored %v, refunded %d", p.PublicID(), p.Disputed, p.AmountRefunded, stored, mp.refunded)
		}
		if !stored {
			continue
		}
		if got.Status != d.status || got.FundsWithdrawn != d.withdrawn || got.FundsReinstated != d.reinstated || got.Amount != d.amount {
			tb.Fatalf("dispute %s: %s withdrawn %v reinstated %v amount %d; model %s %v %v %d",
				got.PublicID(), got.Status, got.FundsWithdrawn, got.FundsReinstated, got.Amount, d.status, d.withdrawn, d.reinstated, d.amount)
		}
		if d.withdrawn {
			want[mp.currency] -= d.amount + d.fee
			if got.AmountWithdrawn != d.amount || got.Fee != d.fee {
				tb.Fatalf("dispute %s withdrew %d + %d, model %d + %d", got.PublicID(), got.AmountWithdrawn, got.Fee, d.amount, d.fee)
			}
		}
		if d.reinstated {
			want[mp.currency] += d.amount
		}
		for typ, n := range map[events.Type]int{events.DisputeCreated: 1, events.DisputeFundsWithdrawn: b2i(d.withdrawn),
			events.DisputeFundsReinstated: b2i(d.reinstated), events.DisputeClosed: b2i(d.status.Final())} {
			if got := len(eventsOf(tb, sh, tenantID, got.ID, typ)); got != n {
				tb.Fatalf("dispute %s: %d %s events, want %d", d.ref, got, typ, n)
			}
		}
		var withdrawals, reversals int
		for _, tx := range ledgerTxs(tb, sh, tenantID, &mp.id) {
			switch tx.Type {
			case ledger.TypeDispute:
				withdrawals++
			case ledger.TypeDisputeReversal:
				reversals++
			}
		}
		if withdrawals != b2i(d.withdrawn) || reversals != b2i(d.reinstated) {
			tb.Fatalf("dispute %s: %d withdrawals and %d reversals booked", d.ref, withdrawals, reversals)
		}
	}
	sums, err := ledger.Sums(ctx, sh.Pool, tenantID)
	if err != nil {
		tb.Fatal(err)
	}
	for cur, s := range sums {
		if s != 0 {
			tb.Errorf("tenant %v: ledger entries in %s sum to %d, want 0", tenantID, cur, s)
		}
	}
	balances, err := ledger.Balances(ctx, sh.Pool, tenantID)
	if err != nil {
		tb.Fatal(err)
	}
	postings := map[string]int64{}
	rows, err := sh.Pool.Query(ctx, `SELECT currency, sum(amount) FROM ledger_entries WHERE tenant_id = $1 AND account = 'merchant_balance' GROUP BY currency`, tenantID)
	if err != nil {
		tb.Fatal(err)
	}
	for rows.Next() {
		var cur string
		var sum int64
		if err := rows.Scan(&cur, &sum); err != nil {
			tb.Fatal(err)
		}
		postings[cur] = sum
	}
	rows.Close()
	for _, b := range balances {
		if b.Available+b.Pending != postings[b.Currency] {
			tb.Errorf("tenant %v: balance %d %s, its postings sum to %d", tenantID, b.Available+b.Pending, b.Currency, postings[b.Currency])
		}
		if b.Available != want[b.Currency] {
			tb.Errorf("tenant %v: available %d %s, the model says %d", tenantID, b.Available, b.Currency, want[b.Currency])
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
