package payments_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/listing"
	"github.com/payments-api/payments/money"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/payout"
	"github.com/payments-api/payments/processor/sandbox"
)

// driveNow sends every pending payout and retrieves every payout in
// transit, with no waiting age; a send is never repeated.
var driveNow = payments.PayoutDriveOptions{RetryAfter: time.Hour}

// newPayoutHarness is the harness with the sandbox's payouts, paid (or
// failed) as soon as they are retrieved.
func newPayoutHarness(tb testing.TB, wrap func(payout.Processor) payout.Processor) *harness {
	tb.Helper()
	sp, err := sandbox.NewPayouts(sandbox.PayoutOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	var p payout.Processor = sp
	if wrap != nil {
		p = wrap(sp)
	}
	return newHarness(tb, harnessOptions{Payouts: []payout.Processor{p}})
}

// fund makes the tenant's usd balance grow by a captured payment and
// returns the available balance after it.
func (h *harness) fund(tb testing.TB, tenantID uuid.UUID, amount int64) int64 {
	tb.Helper()
	h.create(tb, tenantID, sandbox.PaymentMethodVisa, payments.CaptureAutomatic, amount, "usd")
	return h.available(tb, tenantID)
}

// available reads the tenant's usd merchant balance from the ledger.
func (h *harness) available(tb testing.TB, tenantID uuid.UUID) int64 {
	tb.Helper()
	v, err := ledger.Available(context.Background(), h.shardOf(tb, tenantID).Pool, tenantID, "usd")
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// drive runs one pass of the payout driver.
func (h *harness) drive(tb testing.TB, o payments.PayoutDriveOptions) payments.PayoutDriveStats {
	tb.Helper()
	st, err := h.svc.DrivePayouts(context.Background(), o)
	if err != nil {
		tb.Fatalf("drive payouts: %v", err)
	}
	return st
}

func (h *harness) payout(tb testing.TB, tenantID, id uuid.UUID) payments.Payout {
	tb.Helper()
	p, err := h.svc.GetPayout(context.Background(), tenantID, id)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// accountTotals sums the tenant's usd ledger entries per account, from the
// entries themselves (not the running totals).
func accountTotals(tb testing.TB, h *harness, tenantID uuid.UUID) map[ledger.Account]int64 {
	tb.Helper()
	out := map[ledger.Account]int64{}
	rows, err := h.shardOf(tb, tenantID).Pool.Query(context.Background(),
		`SELECT account, sum(amount)::BIGINT FROM ledger_entries WHERE tenant_id = $1 AND currency = 'usd' GROUP BY account`, tenantID)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var a string
		var v int64
		if err := rows.Scan(&a, &v); err != nil {
			tb.Fatal(err)
		}
		out[ledger.Account(a)] = v
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// checkBook asserts what every test of payouts must leave: the book sums
// to zero, and the auditor finds nothing (each balance equals its
// postings).
func checkBook(tb testing.TB, h *harness, tenantID uuid.UUID) {
	tb.Helper()
	sh := h.shardOf(tb, tenantID)
	sums, err := ledger.Sums(context.Background(), sh.Pool, tenantID)
	if err != nil {
		tb.Fatal(err)
	}
	for c, v := range sums {
		if v != 0 {
			tb.Errorf("%s book sums to %d", c, v)
		}
	}
	findings, err := ledger.Verify(context.Background(), sh.Pool, tenantID)
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range findings {
		tb.Errorf("audit: %s", f)
	}
}

func payoutEventTypes(tb testing.TB, h *harness, tenantID, id uuid.UUID) []string {
	tb.Helper()
	evs, _, err := events.List(context.Background(), h.shardOf(tb, tenantID).Pool, tenantID, events.ListParams{Object: &id})
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		out = append(out, string(evs[i].Type))
	}
	return out
}

func TestPayoutLifecycleSandboxPaid(t *testing.T) {
	t.Parallel()
	h := newPayoutHarness(t, nil)
	ctx := context.Background()
	ten, _ := h.newTenant(t)
	before := h.fund(t, ten, 10_000)

	p, err := h.svc.CreatePayout(ctx, ten, payments.PayoutParams{Amount: 4_000, Currency: "usd", Metadata: map[string]string{"week": "48"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != payments.PayoutPending || p.Processor != sandbox.Name || !strings.HasPrefix(p.PublicID(), "po_") {
		t.Fatalf("created %+v", p)
	}
	if got := h.available(t, ten); got != before-4_000 {
		t.Fatalf("balance after create %d, want %d", got, before-4_000)
	}
	if st := h.drive(t, driveNow); st.Sent != 1 || st.Errors != 0 {
		t.Fatalf("first pass %+v, want one send", st)
	}
	if got := h.payout(t, ten, p.ID); got.Status != payments.PayoutInTransit || got.ProcessorRef == nil || got.SentAt == nil {
		t.Fatalf("after the send %+v", got)
	}
	if st := h.drive(t, driveNow); st.Retrieved != 1 {
		t.Fatalf("second pass %+v, want one retrieval", st)
	}
	got := h.payout(t, ten, p.ID)
	if got.Status != payments.PayoutPaid || got.FailureCode != nil {
		t.Fatalf("after the retrieval %+v", got)
	}
	// A finished payout is never driven again.
	if st := h.drive(t, driveNow); st.Sent+st.Retrieved != 0 {
		t.Fatalf("third pass %+v, want nothing", st)
	}
	if got := h.available(t, ten); got != before-4_000 {
		t.Fatalf("balance after paid %d, want %d", got, before-4_000)
	}
	tot := accountTotals(t, h, ten)
	if tot[ledger.AccountPayoutsPaid] != 4_000 || tot[ledger.AccountPayoutsInTransit] != 0 {
		t.Fatalf("ledger totals %v: want 4000 paid out, nothing in transit", tot)
	}
	if evs := payoutEventTypes(t, h, ten, p.ID); fmt.Sprint(evs) != "[payout.created payout.paid]" {
		t.Fatalf("events %v", evs)
	}
	checkBook(t, h, ten)
}

func TestPayoutLifecycleSandboxFailed(t *testing.T) {
	t.Parallel()
	h := newPayoutHarness(t, nil)
	ctx := context.Background()
	ten, _ := h.newTenant(t)
	before := h.fund(t, ten, 10_000)
	desc := "test " + sandbox.DescriptionPayoutFails
	p, err := h.svc.CreatePayout(ctx, ten, payments.PayoutParams{Amount: 3_000, Currency: "usd", Description: &desc})
	if err != nil {
		t.Fatal(err)
	}
	h.drive(t, driveNow)
	h.drive(t, driveNow)
	got := h.payout(t, ten, p.ID)
	if got.Status != payments.PayoutFailed || got.FailureCode == nil || *got.FailureCode != sandbox.PayoutFailureCode {
		t.Fatalf("payout %+v, want failed with %s", got, sandbox.PayoutFailureCode)
	}
	if got := h.available(t, ten); got != before {
		t.Fatalf("balance after the failure %d, want it back at %d", got, before)
	}
	tot := accountTotals(t, h, ten)
	if tot[ledger.AccountPayoutsPaid] != 0 || tot[ledger.AccountPayoutsInTransit] != 0 {
		t.Fatalf("ledger totals %v", tot)
	}
	if evs := payoutEventTypes(t, h, ten, p.ID); fmt.Sprint(evs) != "[payout.created payout.failed]" {
		t.Fatalf("events %v", evs)
	}
	checkBook(t, h, ten)
}

func TestPayoutCancel(t *testing.T) {
	t.Parallel()
	h := newPayoutHarness(t, nil)
	ctx := context.Background()
	ten, _ := h.newTenant(t)
	before := h.fund(t, ten, 10_000)
	p, err := h.svc.CreatePayout(ctx, ten, payments.PayoutParams{Amount: 1_000, Currency: "usd"})
	if err != nil {
		t.Fatal(err)
	}
	// Not due yet: the send delay keeps it pending and cancelable.
	if st := h.drive(t, payments.PayoutDriveOptions{SendAfter: time.Hour, RetryAfter: time.Hour}); st.Sent != 0 {
		t.Fatalf("sent before its delay: %+v", st)
	}
	c, err := h.svc.CancelPayout(ctx, ten, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != payments.PayoutCanceled || h.available(t, ten) != before {
		t.Fatalf("canceled %+v, balance %d want %d", c, h.available(t, ten), before)
	}
	wantCode(t, func() error { _, err := h.svc.CancelPayout(ctx, ten, p.ID); return err }(), payments.CodePayoutInvalidState, errcode.KindConflict)
	if st := h.drive(t, driveNow); st.Sent != 0 {
		t.Fatalf("a canceled payout was sent: %+v", st)
	}
	// A sent payout cannot be canceled.
	q, err := h.svc.CreatePayout(ctx, ten, payments.PayoutParams{Amount: 1_000, Currency: "usd"})
	if err != nil {
		t.Fatal(err)
	}
	h.drive(t, driveNow)
	wantCode(t, func() error { _, err := h.svc.CancelPayout(ctx, ten, q.ID); return err }(), payments.CodePayoutInvalidState, errcode.KindConflict)
	// Another tenant's payout does not exist for this one.
	other, _ := h.newTenant(t)
	wantCode(t, func() error { _, err := h.svc.CancelPayout(ctx, other, q.ID); return err }(), errcode.CodeResourceMissing, errcode.KindNotFound)
	if evs := payoutEventTypes(t, h, ten, p.ID); fmt.Sprint(evs) != "[payout.created payout.canceled]" {
		t.Fatalf("events %v", evs)
	}
	checkBook(t, h, ten)
}

// TestPayoutOverdrawRace races 20 payouts that together exceed the balance,
// through two services (two processes' batchers) on the same databases, so
// that both the group commit's order and SERIALIZABLE conflicts between
// transactions decide: exactly the payouts that fit succeed, the others
// answer balance_insufficient, and none fails otherwise.
func TestPayoutOverdrawRace(t *testing.T) {
	t.Parallel()
	h := newPayoutHarness(t, nil)
	sp, err := sandbox.NewPayouts(sandbox.PayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	second := payments.NewService(payments.Options{Router: h.router, Processor: h.proc, Payouts: []payout.Processor{sp}})
	t.Cleanup(second.Close)
	ctx := context.Background()
	ten, _ := h.newTenant(t)
	h.fund(t, ten, 5_000)
	balance := h.fund(t, ten, 5_000)
	const racers, amount = 20, 1_000
	fit := balance / amount
	if fit >= racers || fit < 2 {
		t.Fatalf("balance %d lets %d of %d payouts fit; the race needs some to fit and some not", balance, fit, racers)
	}
	var ok, refused atomic.Int64
	var mu sync.Mutex
	var other []error
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		svc := h.svc
		if i%2 == 1 {
			svc = second
		}
		wg.Go(func() {
			<-start
			_, err := svc.CreatePayout(ctx, ten, payments.PayoutParams{Amount: amount, Currency: "usd"})
			switch {
			case err == nil:
				ok.Add(1)
			case errcode.Is(err, payments.CodeBalanceInsufficient):
				refused.Add(1)
			default:
				mu.Lock()
				other = append(other, err)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("payouts failed otherwise than balance_insufficient: %v", errors.Join(other...))
	}
	if ok.Load() != fit || refused.Load() != racers-fit {
		t.Fatalf("%d payouts succeeded and %d were refused; want exactly %d to fit the balance %d", ok.Load(), refused.Load(), fit, balance)
	}
	if got := h.available(t, ten); got != balance-fit*amount || got < 0 {
		t.Fatalf("balance after the race %d, want %d", got, balance-fit*amount)
	}
	ps, _, err := h.svc.ListPayouts(ctx, ten, payments.PayoutListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(ps)) != min(fit, 10) {
		t.Fatalf("listed %d payouts, want %d", len(ps), min(fit, 10))
	}
	checkBook(t, h, ten)
}

func TestPayoutNegativeBalanceBlocked(t *testing.T) {
	t.Parallel()
	h := newPayoutHarness(t, nil)
	ctx := context.Background()
	ten, _ := h.newTenant(t)
	pay := h.create(t, ten, sandbox.PaymentMethodVisa, payments.CaptureAutomatic, 2_000, "usd")
	// A full refund takes the amount back but not the fee: the balance is
	// the fee below zero.
	if _, err := h.svc.CreateRefund(ctx, ten, payments.CreateRefundParams{Payment: pay.ID}); err != nil {
		t.Fatal(err)
	}
	if got := h.available(t, ten); got >= 0 {
		t.Fatalf("balance %d after a full refund, want below zero", got)
	}
	_, err := h.svc.CreatePayout(ctx, ten, payments.PayoutParams{Amount: 1, Currency: "usd"})
	wantCode(t, err, payments.CodeBalanceNegative, errcode.KindConflict)
	// A balance of zero in another currency refuses as insufficient.
	_, err = h.svc.CreatePayout(ctx, ten, payments.PayoutParams{Amount: 1, Currency: "eur"})
	if e := wantCode(t, err, payments.CodeBalanceInsufficient, errcode.KindInvalid); e.Param != "amount" {
		t.Fatalf("param %q, want amount", e.Param)
	}
	checkBook(t, h, ten)
}

func TestPayoutWrongInputs(t *testing.T) {
	t.Parallel()
	h := newPayoutHarness(t, nil)
	ctx := context.Background()
	ten, _ := h.newTenant(t)
	h.fund(t, ten, 10_000)
	long := strings.Repeat("x", payments.PayoutDescriptionLengthMax+1)
	tooMany := map[string]string{}
	for i := range payments.MetadataKeysMax + 1 {
		tooMany[fmt.Sprint("k", i)] = "v"
	}
	for _, c := range []struct {
		p     payments.PayoutParams
		code  string
		param string
	}{
		{payments.PayoutParams{Amount: 0, Currency: "usd"}, "", "amount"},
		{payments.PayoutParams{Amount: -5, Currency: "usd"}, "", "amount"},
		{payments.PayoutParams{Amount: money.AmountMax + 1, Currency: "usd"}, "", "amount"},
		{payments.PayoutParams{Amount: 100, Currency: "US"}, money.CodeCurrencyUnsupported, "currency"},
		{payments.PayoutParams{Amount: 100, Currency: "xxq"}, money.CodeCurrencyUnsupported, "currency"},
		{payments.PayoutParams{Amount: 100, Currency: "usd", Description: &long}, errcode.CodeParameterInvalid, "description"},
		{payments.PayoutParams{Amount: 100, Currency: "usd", Metadata: tooMany}, errcode.CodeParameterInvalid, "metadata"},
		{payments.PayoutParams{Amount: 100, Currency: "usd", Metadata: map[string]string{"k": strings.Repeat("v", payments.MetadataValueLengthMax+1)}}, errcode.CodeParameterInvalid, "metadata[k]"},
	} {
		_, err := h.svc.CreatePayout(ctx, ten, c.p)
		e := errcode.As(err)
		if e == nil || e.Kind != errcode.KindInvalid || e.Param != c.param || (c.code != "" && e.Code != c.code) {
			t.Errorf("CreatePayout(amount %d, currency %q) = %v; want a 400 with param %s", c.p.Amount, c.p.Currency, err, c.param)
		}
	}
	for _, acct := range []string{"", "acct_", "acct_a/b", "acc_123", "acct_" + strings.Repeat("a", 65), "acct_12 3"} {
		err := h.svc.SetPayoutAccount(ctx, ten, acct)
		if e := errcode.As(err); e == nil || e.Kind != errcode.KindInvalid || e.Param != "stripe_account" {
			t.Errorf("SetPayoutAccount(%q) = %v, want a 400 with param stripe_account", acct, err)
		}
	}
	if err := h.svc.SetPayoutAccount(ctx, ten, "acct_1Nv0FGQ9RKHgCVdK"); err != nil {
		t.Fatal(err)
	}
	if got, err := h.svc.PayoutAccount(ctx, ten); err != nil || got != "acct_1Nv0FGQ9RKHgCVdK" {
		t.Fatalf("payout account %q %v", got, err)
	}
	_, _, err := h.svc.ListPayouts(ctx, ten, payments.PayoutListParams{Status: "sent"})
	wantCode(t, err, errcode.CodeParameterInvalid, errcode.KindInvalid)
	// Nothing of the refused requests was written.
	ps, _, err := h.svc.ListPayouts(ctx, ten, payments.PayoutListParams{})
	if err != nil || len(ps) != 0 {
		t.Fatalf("payouts after refusals: %v %v", ps, err)
	}
}

// flakyPayouts loses the answer of the first sends, after they took
// effect, as a crash between the call and its record does.
type flakyPayouts struct {
	payout.Processor
	lose  atomic.Int64
	sends atomic.Int64
	keys  sync.Map
}

func (f *flakyPayouts) Send(ctx context.Context, req payout.Request) (payout.Result, error) {
	f.sends.Add(1)
	f.keys.Store(req.IdempotencyKey, true)
	r, err := f.Processor.Send(ctx, req)
	if err == nil && f.lose.Add(-1) >= 0 {
		return payout.Result{}, fmt.Errorf("answer lost: %w", processor.ErrUnavailable)
	}
	return r, err
}

func TestPayoutSendFinishedAfterLostAnswer(t *testing.T) {
	t.Parallel()
	var flaky *flakyPayouts
	h := newPayoutHarness(t, func(p payout.Processor) payout.Processor {
		flaky = &flakyPayouts{Processor: p}
		flaky.lose.Store(1)
		return flaky
	})
	ctx := context.Background()
	ten, _ := h.newTenant(t)
	h.fund(t, ten, 10_000)
	p, err := h.svc.CreatePayout(ctx, ten, payments.PayoutParams{Amount: 2_500, Currency: "usd"})
	if err != nil {
		t.Fatal(err)
	}
	if st := h.drive(t, driveNow); st.Sent != 0 || st.Errors != 1 {
		t.Fatalf("pass with the lost answer %+v", st)
	}
	got := h.payout(t, ten, p.ID)
	if got.Status != payments.PayoutPending || got.SendingSince == nil {
		t.Fatalf("after the lost answer %+v, want pending with the send recorded", got)
	}
	// The send in flight is neither cancelable nor repeated before its age.
	wantCode(t, func() error { _, err := h.svc.CancelPayout(ctx, ten, p.ID); return err }(), payments.CodePayoutInvalidState, errcode.KindConflict)
	if st := h.drive(t, driveNow); st.Sent != 0 || flaky.sends.Load() != 1 {
		t.Fatalf("repeated before RetryAfter: %+v, %d sends", st, flaky.sends.Load())
	}
	// The reconciling pass repeats the same call with the same key.
	if st := h.drive(t, payments.PayoutDriveOptions{}); st.Sent != 1 {
		t.Fatalf("reconciling pass %+v", st)
	}
	n := 0
	flaky.keys.Range(func(k, _ any) bool { n++; return k == p.PublicID() })
	if n != 1 || flaky.sends.Load() != 2 {
		t.Fatalf("%d keys over %d sends, want one key %s twice", n, flaky.sends.Load(), p.PublicID())
	}
	if got := h.payout(t, ten, p.ID); got.Status != payments.PayoutInTransit || got.SendingSince != nil {
		t.Fatalf("after the reconciling pass %+v", got)
	}
	h.drive(t, driveNow)
	if got := h.payout(t, ten, p.ID); got.Status != payments.PayoutPaid {
		t.Fatalf("final %+v", got)
	}
	if tot := accountTotals(t, h, ten); tot[ledger.AccountPayoutsPaid] != 2_500 {
		t.Fatalf("paid out %d, want 2500 once", tot[ledger.AccountPayoutsPaid])
	}
	checkBook(t, h, ten)
}

func TestPayoutListFilters(t *testing.T) {
	t.Parallel()
	h := newPayoutHarness(t, nil)
	ctx := context.Background()
	ten, _ := h.newTenant(t)
	h.fund(t, ten, 10_000)
	var made []payments.Payout
	for range 3 {
		p, err := h.svc.CreatePayout(ctx, ten, payments.PayoutParams{Amount: 100, Currency: "usd"})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, p)
	}
	if _, err := h.svc.CancelPayout(ctx, ten, made[1].ID); err != nil {
		t.Fatal(err)
	}
	list := func(p payments.PayoutListParams) []string {
		t.Helper()
		ps, _, err := h.svc.ListPayouts(ctx, ten, p)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range ps {
			out = append(out, p.PublicID())
		}
		return out
	}
	if got := list(payments.PayoutListParams{Status: payments.PayoutCanceled}); fmt.Sprint(got) != fmt.Sprint([]string{made[1].PublicID()}) {
		t.Fatalf("canceled %v", got)
	}
	if got := list(payments.PayoutListParams{Status: payments.PayoutPending}); len(got) != 2 || got[0] != made[2].PublicID() {
		t.Fatalf("pending %v, want the two others newest first", got)
	}
	future := time.Now().Add(time.Hour)
	if got := list(payments.PayoutListParams{CreatedGTE: &future}); len(got) != 0 {
		t.Fatalf("created after an hour from now: %v", got)
	}
	page := list(payments.PayoutListParams{Page: pageOf(1, &made[2].ID)})
	if fmt.Sprint(page) != fmt.Sprint([]string{made[1].PublicID()}) {
		t.Fatalf("page after %s: %v", made[2].PublicID(), page)
	}
	_, _, err := h.svc.ListPayouts(ctx, ten, payments.PayoutListParams{CreatedGTE: &future, CreatedLTE: &made[0].CreatedAt})
	wantCode(t, err, errcode.CodeParameterInvalid, errcode.KindInvalid)
	if pub := ids.Format(ids.PrefixPayout, made[0].ID); !strings.HasPrefix(pub, "po_") {
		t.Fatal(pub)
	}
}

func pageOf(limit int, after *uuid.UUID) listing.Page {
	return listing.Page{Limit: limit, StartingAfter: after}
}
