package ledger

import (
	"context"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
)

// post books txs in a database transaction of its own and commits it; on an
// error it rolls back and returns the error.
func post(tb testing.TB, pool *pgxpool.Pool, txs ...Transaction) error {
	tb.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		tb.Fatalf("begin: %v", err)
	}
	if err := Post(ctx, tx, txs...); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		tb.Fatalf("commit: %v", err)
	}
	return nil
}

func mustPost(tb testing.TB, pool *pgxpool.Pool, txs ...Transaction) {
	tb.Helper()
	if err := post(tb, pool, txs...); err != nil {
		tb.Fatalf("Post: %v", err)
	}
}

func mustRefund(tb testing.TB, tenantID uuid.UUID, currency string, paymentID uuid.UUID, amount int64) Transaction {
	tb.Helper()
	tx, err := Refund(tenantID, currency, ids.New(), paymentID, amount)
	if err != nil {
		tb.Fatalf("Refund(%d): %v", amount, err)
	}
	return tx
}

func mustBalances(tb testing.TB, q Querier, tenantID uuid.UUID) []Balance {
	tb.Helper()
	bs, err := Balances(context.Background(), q, tenantID)
	if err != nil {
		tb.Fatalf("Balances: %v", err)
	}
	return bs
}

func mustSums(tb testing.TB, q Querier, tenantID uuid.UUID) map[string]int64 {
	tb.Helper()
	s, err := Sums(context.Background(), q, tenantID)
	if err != nil {
		tb.Fatalf("Sums: %v", err)
	}
	return s
}

// assertZeroSums fails unless the tenant's book sums to zero in exactly the
// given currencies.
func assertZeroSums(tb testing.TB, q Querier, tenantID uuid.UUID, currencies ...string) {
	tb.Helper()
	sums := mustSums(tb, q, tenantID)
	want := map[string]int64{}
	for _, c := range currencies {
		want[c] = 0
	}
	if !maps.Equal(sums, want) {
		tb.Errorf("Sums = %v, want %v", sums, want)
	}
}

func mustList(tb testing.TB, q Querier, tenantID uuid.UUID, p ListParams) ([]Transaction, bool) {
	tb.Helper()
	txs, more, err := List(context.Background(), q, tenantID, p)
	if err != nil {
		tb.Fatalf("List(%+v): %v", p, err)
	}
	return txs, more
}

func idsOf(txs []Transaction) []uuid.UUID {
	out := make([]uuid.UUID, len(txs))
	for i, t := range txs {
		out[i] = t.ID
	}
	return out
}

// sameTransaction compares what was posted with what was read; CreatedAt is
// set by the database and checked separately.
func sameTransaction(a, b Transaction) bool {
	a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}
	return a.ID == b.ID && a.TenantID == b.TenantID && a.Currency == b.Currency && a.Type == b.Type &&
		a.SourceType == b.SourceType && a.SourceID == b.SourceID && a.PaymentID == b.PaymentID &&
		a.Amount == b.Amount && a.Fee == b.Fee && a.Net == b.Net && slices.Equal(a.Entries, b.Entries)
}

func TestChargeAndRefundBalance(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	tenant := ids.New()

	c1 := mustCharge(t, tenant, "usd", 10000, feeFor(10000)) // fee 320
	c2 := mustCharge(t, tenant, "usd", 1190, feeFor(1190))   // fee 65
	c3 := mustCharge(t, tenant, "eur", 5000, feeFor(5000))   // fee 175
	mustPost(t, pool, c1, c2)
	mustPost(t, pool, c3)
	r1 := mustRefund(t, tenant, "usd", c1.SourceID, 2500)
	r2 := mustRefund(t, tenant, "usd", c1.SourceID, 7500)
	r3 := mustRefund(t, tenant, "eur", c3.SourceID, 100)
	mustPost(t, pool, r1, r2, r3)

	want := []Balance{
		{Currency: "eur", Available: 5000 - 100 - 175},
		{Currency: "usd", Available: 10000 + 1190 - 2500 - 7500 - 320 - 65},
	}
	if got := mustBalances(t, pool, tenant); !slices.Equal(got, want) {
		t.Errorf("Balances = %+v, want %+v", got, want)
	}
	assertZeroSums(t, pool, tenant, "eur", "usd")

	for _, posted := range []Transaction{c1, c2, c3, r1, r2, r3} {
		got, err := Get(ctx, pool, tenant, posted.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !sameTransaction(got, posted) {
			t.Errorf("Get = %+v, want %+v", got, posted)
		}
		if got.CreatedAt.IsZero() || time.Since(got.CreatedAt) > time.Hour {
			t.Errorf("CreatedAt = %v, want the booking time", got.CreatedAt)
		}
	}
	// A refund that exceeds what is left makes the balance negative; the
	// ledger records it (whether to allow it is the refunds use case's
	// decision) and stays balanced.
	mustPost(t, pool, mustRefund(t, tenant, "eur", c3.SourceID, 4900))
	if got := mustBalances(t, pool, tenant); got[0].Available != -175 || got[0].Pending != 0 {
		t.Errorf("eur balance %+v, want available -175, pending 0", got[0])
	}
	assertZeroSums(t, pool, tenant, "eur", "usd")
}

func TestPostKeepsGivenCreatedAt(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	tenant := ids.New()
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := mustCharge(t, tenant, "usd", 1000, 59)
	c.CreatedAt = at
	mustPost(t, pool, c)
	got, err := Get(context.Background(), pool, tenant, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(at) {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, at)
	}
	var entriesAt time.Time
	if err := pool.QueryRow(context.Background(),
		`SELECT max(created_at) FROM ledger_entries WHERE tenant_id = $1`, tenant).Scan(&entriesAt); err != nil {
		t.Fatal(err)
	}
	if !entriesAt.Equal(at) {
		t.Errorf("entries created_at = %v, want %v", entriesAt, at)
	}
}

func assertDuplicate(tb testing.TB, err error, refused ...uuid.UUID) {
	tb.Helper()
	e := errcode.As(err)
	if e == nil || e.Code != CodeDuplicateSource || e.Kind != errcode.KindConflict {
		tb.Fatalf("got %v, want code %s", err, CodeDuplicateSource)
	}
	var dup *DuplicateSourceError
	if !errors.As(err, &dup) || !slices.Equal(dup.IDs, refused) {
		tb.Errorf("DuplicateSourceError = %+v, want IDs %v", dup, refused)
	}
}

func TestPostBooksEachSourceOnce(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	tenant := ids.New()
	payment := ids.New()

	first, err := Charge(tenant, "usd", payment, 10000, 320)
	if err != nil {
		t.Fatal(err)
	}
	mustPost(t, pool, first)

	// A duplicate webhook builds a new transaction for the same payment.
	again, err := Charge(tenant, "usd", payment, 10000, 320)
	if err != nil {
		t.Fatal(err)
	}
	assertDuplicate(t, post(t, pool, again), again.ID)
	// A retried database transaction posts the very same value again.
	assertDuplicate(t, post(t, pool, first), first.ID)
	if !strings.Contains(errcode.As(post(t, pool, first)).Message, ids.Format(ids.PrefixPayment, payment)) {
		t.Errorf("the message does not name the payment")
	}

	refund := mustRefund(t, tenant, "usd", payment, 1000)
	mustPost(t, pool, refund)
	refundAgain := refund
	refundAgain.ID = ids.New()
	assertDuplicate(t, post(t, pool, refundAgain), refundAgain.ID)

	got, _ := mustList(t, pool, tenant, ListParams{Limit: 100})
	if want := []uuid.UUID{refund.ID, first.ID}; !slices.Equal(idsOf(got), want) {
		t.Errorf("booked %v, want %v", idsOf(got), want)
	}
	if bs := mustBalances(t, pool, tenant); len(bs) != 1 || bs[0].Available != 10000-320-1000 {
		t.Errorf("Balances = %+v, want usd %d", bs, 10000-320-1000)
	}
	assertZeroSums(t, pool, tenant, "usd")

	// A batch with one booked source writes none of its transactions and
	// leaves the caller's transaction usable.
	fresh := mustCharge(t, tenant, "usd", 500, 45)
	dupCharge, _ := Charge(tenant, "usd", payment, 10000, 320)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertDuplicate(t, Post(ctx, tx, fresh, dupCharge), dupCharge.ID)
	if n, _ := mustList(t, tx, tenant, ListParams{Limit: 100}); len(n) != 2 {
		t.Errorf("inside the transaction: %d transactions, want the 2 booked before", len(n))
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit after a refused batch: %v", err)
	}
	if _, err := Get(ctx, pool, tenant, fresh.ID); !errcode.Is(err, errcode.CodeResourceMissing) {
		t.Errorf("Get(fresh) = %v, want not found: a refused batch writes nothing", err)
	}
	assertZeroSums(t, pool, tenant, "usd")

	// The same source twice in one call: the later one is refused, and
	// without it the batch books.
	other := ids.New()
	a, _ := Charge(tenant, "usd", other, 700, 50)
	b, _ := Charge(tenant, "usd", other, 700, 50)
	assertDuplicate(t, post(t, pool, fresh, a, b), b.ID)
	mustPost(t, pool, fresh, a)
	if got, _ := mustList(t, pool, tenant, ListParams{Source: &other}); len(got) != 1 || got[0].ID != a.ID {
		t.Errorf("source %v booked as %v, want once as %v", other, idsOf(got), a.ID)
	}
	// The same value twice in one call is a caller bug.
	if err := post(t, pool, fresh, fresh); !errors.Is(err, ErrMalformed) {
		t.Errorf("same transaction twice in one call: %v, want ErrMalformed", err)
	}
}

// TestPostConcurrentDuplicate: two database transactions book the same
// source at once. The second waits for the first and, once the first has
// committed, is told that the source is already booked.
func TestPostConcurrentDuplicate(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	tenant, payment := ids.New(), ids.New()
	c1, _ := Charge(tenant, "usd", payment, 1000, 59)
	c2, _ := Charge(tenant, "usd", payment, 1000, 59)

	tx1, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := Post(ctx, tx1, c1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		tx2, err := pool.Begin(ctx)
		if err != nil {
			done <- err
			return
		}
		defer func() { _ = tx2.Rollback(ctx) }()
		done <- Post(ctx, tx2, c2)
	}()
	select {
	case err := <-done:
		t.Fatalf("the second Post returned %v before the first committed", err)
	case <-time.After(100 * time.Millisecond):
		// It waits on the first one's uncommitted row, as expected; if it
		// has not started yet, it finds the committed row below instead.
	}
	if err := tx1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	assertDuplicate(t, <-done, c2.ID)
	got, _ := mustList(t, pool, tenant, ListParams{})
	if !slices.Equal(idsOf(got), []uuid.UUID{c1.ID}) {
		t.Errorf("booked %v, want only %v", idsOf(got), c1.ID)
	}
}

func TestPostRefusesUnbalanced(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	tenant := ids.New()

	good := mustCharge(t, tenant, "usd", 10000, 320)
	bad := Transaction{
		ID: ids.New(), TenantID: tenant, Currency: "usd", Type: TypeCharge,
		SourceType: SourceTypePayment, SourceID: ids.New(),
		Amount: 10000, Fee: 320, Net: 9680,
		Entries: []Entry{
			{AccountMerchantBalance, 9680},
			{AccountProcessorClearing, -10000},
			{AccountProcessorFees, 319}, // one cent lost
		},
	}
	err := post(t, pool, good, bad)
	if !errors.Is(err, ErrUnbalanced) {
		t.Fatalf("Post = %v, want ErrUnbalanced", err)
	}
	if e := errcode.As(err); e == nil || e.Kind != errcode.KindInternal {
		t.Errorf("Post = %v, want an internal errcode error", err)
	}
	overflow := bad
	overflow.Type, overflow.Amount, overflow.Fee, overflow.Net = TypeAdjustment, math.MaxInt64, 0, math.MaxInt64
	overflow.Entries = []Entry{
		{AccountMerchantBalance, math.MaxInt64},
		{AccountProcessorClearing, math.MaxInt64},
		{AccountProcessorFees, 2},
	}
	if err := post(t, pool, good, overflow); !errors.Is(err, ErrOverflow) {
		t.Fatalf("Post = %v, want ErrOverflow", err)
	}
	if got := mustSums(t, pool, tenant); len(got) != 0 {
		t.Errorf("Sums = %v after refused posts, want no entries", got)
	}
	if got, _ := mustList(t, pool, tenant, ListParams{}); len(got) != 0 {
		t.Errorf("List = %v after refused posts, want nothing", idsOf(got))
	}
}

// TestSchemaRefusesBrokenRows checks the second line of defence: rows that
// bypass Post still cannot break the invariants the schema can see.
func TestSchemaRefusesBrokenRows(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	tenant := ids.New()
	c := mustCharge(t, tenant, "usd", 1000, 59)
	mustPost(t, pool, c)

	insertTx := `INSERT INTO ledger_transactions (tenant_id, id, currency, type, source_type, source_id, payment_id, amount, fee, net)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	for _, tc := range []struct {
		name string
		sql  string
		args []any
		code string
	}{
		{"net is not amount - fee", insertTx, []any{tenant, ids.New(), "usd", "charge", "payment", ids.New(), nil, 100, 10, 80}, "23514"},
		{"negative fee", insertTx, []any{tenant, ids.New(), "usd", "adjustment", "payment", ids.New(), nil, 100, -10, 110}, "23514"},
		{"uppercase currency", insertTx, []any{tenant, ids.New(), "USD", "charge", "payment", ids.New(), nil, 100, 10, 90}, "23514"},
		{"refund with positive amount", insertTx, []any{tenant, ids.New(), "usd", "refund", "refund", ids.New(), ids.New(), 100, 0, 100}, "23514"},
		{"charge fee above amount", insertTx, []any{tenant, ids.New(), "usd", "charge", "payment", ids.New(), nil, 100, 110, -10}, "23514"},
		{"same source twice", insertTx, []any{tenant, ids.New(), "usd", "charge", "payment", c.SourceID, nil, 100, 10, 90}, "23505"},
		{"zero entry", `INSERT INTO ledger_entries (tenant_id, transaction_id, account, currency, amount) VALUES ($1, $2, 'merchant_balance', 'usd', 0)`,
			[]any{tenant, c.ID}, "23514"},
		{"unknown account", `INSERT INTO ledger_entries (tenant_id, transaction_id, account, currency, amount) VALUES ($1, $2, 'world', 'usd', 5)`,
			[]any{tenant, c.ID}, "23514"},
		{"entry without transaction", `INSERT INTO ledger_entries (tenant_id, transaction_id, account, currency, amount) VALUES ($1, $2, 'merchant_balance', 'usd', 5)`,
			[]any{tenant, ids.New()}, "23503"},
		{"second leg on one account", `INSERT INTO ledger_entries (tenant_id, transaction_id, account, currency, amount) VALUES ($1, $2, 'merchant_balance', 'usd', 5)`,
			[]any{tenant, c.ID}, "23505"},
	} {
		_, err := pool.Exec(ctx, tc.sql, tc.args...)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != tc.code {
			t.Errorf("%s: got %v, want SQLSTATE %s", tc.name, err, tc.code)
		}
	}
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	tenant := ids.New()

	// 25 transactions: 20 charges, and refunds of the first 5 payments.
	var posted []Transaction
	for i := range 20 {
		amount := int64(1000 + 100*i)
		posted = append(posted, mustCharge(t, tenant, "usd", amount, feeFor(amount)))
	}
	for i := range 5 {
		posted = append(posted, mustRefund(t, tenant, "usd", posted[i].SourceID, 100))
	}
	mustPost(t, pool, posted[:20]...)
	mustPost(t, pool, posted[20:]...)
	newest := idsOf(posted)
	slices.Reverse(newest)

	// Forward, newest first.
	var walked []uuid.UUID
	var after *uuid.UUID
	for _, want := range []struct {
		n    int
		more bool
	}{{10, true}, {10, true}, {5, false}} {
		page, more := mustList(t, pool, tenant, ListParams{Limit: 10, StartingAfter: after})
		if len(page) != want.n || more != want.more {
			t.Fatalf("forward page after %v: %d rows, has_more %v; want %d, %v", after, len(page), more, want.n, want.more)
		}
		walked = append(walked, idsOf(page)...)
		last := page[len(page)-1].ID
		after = &last
	}
	if !slices.Equal(walked, newest) {
		t.Errorf("forward walk %v, want %v", walked, newest)
	}
	if page, more := mustList(t, pool, tenant, ListParams{Limit: 10, StartingAfter: after}); len(page) != 0 || more {
		t.Errorf("after the oldest: %d rows, has_more %v; want none", len(page), more)
	}

	// Backward from the last page.
	before := newest[20]
	page, more := mustList(t, pool, tenant, ListParams{Limit: 10, EndingBefore: &before})
	if !slices.Equal(idsOf(page), newest[10:20]) || !more {
		t.Errorf("ending_before #20: %v, has_more %v; want %v, true", idsOf(page), more, newest[10:20])
	}
	before = newest[10]
	page, more = mustList(t, pool, tenant, ListParams{Limit: 10, EndingBefore: &before})
	if !slices.Equal(idsOf(page), newest[0:10]) || more {
		t.Errorf("ending_before #10: %v, has_more %v; want %v, false", idsOf(page), more, newest[0:10])
	}
	before = newest[5]
	page, more = mustList(t, pool, tenant, ListParams{Limit: 10, EndingBefore: &before})
	if !slices.Equal(idsOf(page), newest[0:5]) || more {
		t.Errorf("ending_before #5: %v, has_more %v; want %v, false", idsOf(page), more, newest[0:5])
	}
	before = newest[0]
	if page, more = mustList(t, pool, tenant, ListParams{Limit: 10, EndingBefore: &before}); len(page) != 0 || more {
		t.Errorf("before the newest: %d rows, has_more %v; want none", len(page), more)
	}

	// Default page size and the full page.
	if page, more = mustList(t, pool, tenant, ListParams{}); !slices.Equal(idsOf(page), newest[:ListLimitDefault]) || !more {
		t.Errorf("default page: %d rows, has_more %v", len(page), more)
	}
	if page, more = mustList(t, pool, tenant, ListParams{Limit: 25}); !slices.Equal(idsOf(page), newest) || more {
		t.Errorf("limit 25: %d rows, has_more %v; want 25, false", len(page), more)
	}
	for _, got := range page {
		if i := slices.IndexFunc(posted, func(p Transaction) bool { return p.ID == got.ID }); !sameTransaction(got, posted[i]) {
			t.Errorf("listed %+v, posted %+v", got, posted[i])
		}
	}

	// Filter by type.
	refunds, more := mustList(t, pool, tenant, ListParams{Type: TypeRefund, Limit: 3})
	if !slices.Equal(idsOf(refunds), newest[0:3]) || !more {
		t.Errorf("refunds page 1: %v, %v; want %v, true", idsOf(refunds), more, newest[0:3])
	}
	refunds, more = mustList(t, pool, tenant, ListParams{Type: TypeRefund, Limit: 3, StartingAfter: &refunds[2].ID})
	if !slices.Equal(idsOf(refunds), newest[3:5]) || more {
		t.Errorf("refunds page 2: %v, %v; want %v, false", idsOf(refunds), more, newest[3:5])
	}
	charges, more := mustList(t, pool, tenant, ListParams{Type: TypeCharge, Limit: 100})
	if !slices.Equal(idsOf(charges), newest[5:]) || more {
		t.Errorf("charges: %d rows, %v; want 20, false", len(charges), more)
	}

	// Filter by source: a payment finds its charge and its refund; a refund
	// finds itself.
	payment := posted[2].SourceID
	bySource, _ := mustList(t, pool, tenant, ListParams{Source: &payment})
	if want := []uuid.UUID{posted[22].ID, posted[2].ID}; !slices.Equal(idsOf(bySource), want) {
		t.Errorf("source payment: %v, want %v", idsOf(bySource), want)
	}
	refundID := posted[22].SourceID
	bySource, _ = mustList(t, pool, tenant, ListParams{Source: &refundID})
	if want := []uuid.UUID{posted[22].ID}; !slices.Equal(idsOf(bySource), want) {
		t.Errorf("source refund: %v, want %v", idsOf(bySource), want)
	}
	bySource, _ = mustList(t, pool, tenant, ListParams{Source: &payment, Type: TypeCharge})
	if want := []uuid.UUID{posted[2].ID}; !slices.Equal(idsOf(bySource), want) {
		t.Errorf("source and type: %v, want %v", idsOf(bySource), want)
	}

	// Invalid parameters.
	x := newest[3]
	for _, c := range []struct {
		p     ListParams
		param string
	}{
		{ListParams{Limit: -1}, "limit"},
		{ListParams{Limit: ListLimitMax + 1}, "limit"},
		{ListParams{StartingAfter: &x, EndingBefore: &x}, "ending_before"},
		{ListParams{Type: "transfer"}, "type"}, // payout is a type since issue 14
	} {
		_, _, err := List(ctx, pool, tenant, c.p)
		if e := errcode.As(err); e == nil || e.Kind != errcode.KindInvalid || e.Param != c.param {
			t.Errorf("List(%+v) = %v, want an invalid %s", c.p, err, c.param)
		}
	}
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	a, b := ids.New(), ids.New()
	charge := mustCharge(t, a, "usd", 10000, 320)
	refund := mustRefund(t, a, "usd", charge.SourceID, 100)
	mustPost(t, pool, charge, refund)
	mine := mustCharge(t, b, "gbp", 700, 50)
	mustPost(t, pool, mine)

	if got, more := mustList(t, pool, b, ListParams{Limit: 100}); !slices.Equal(idsOf(got), []uuid.UUID{mine.ID}) || more {
		t.Errorf("tenant B lists %v, want only its own %v", idsOf(got), mine.ID)
	}
	if got, _ := mustList(t, pool, b, ListParams{Source: &charge.SourceID}); len(got) != 0 {
		t.Errorf("tenant B finds A's payment: %v", idsOf(got))
	}
	if got, _ := mustList(t, pool, b, ListParams{EndingBefore: &charge.ID}); !slices.Equal(idsOf(got), []uuid.UUID{mine.ID}) {
		t.Errorf("tenant B with A's cursor: %v, want only its own", idsOf(got))
	}
	for _, id := range []uuid.UUID{charge.ID, refund.ID} {
		_, err := Get(ctx, pool, b, id)
		e := errcode.As(err)
		if e == nil || e.Kind != errcode.KindNotFound || e.Code != errcode.CodeResourceMissing ||
			!strings.Contains(e.Message, ids.Format(ids.PrefixBalanceTx, id)) {
			t.Errorf("tenant B Get(A's %v) = %v, want resource_missing naming txn_ ID", id, err)
		}
	}
	if _, err := Get(ctx, pool, a, charge.ID); err != nil {
		t.Errorf("tenant A Get(own) = %v", err)
	}
	if got := mustBalances(t, pool, b); !slices.Equal(got, []Balance{{Currency: "gbp", Available: 650}}) {
		t.Errorf("tenant B balances %+v", got)
	}
	assertZeroSums(t, pool, b, "gbp")
	if got := mustBalances(t, pool, ids.New()); len(got) != 0 {
		t.Errorf("a tenant without entries has balances %+v", got)
	}
	// Same source ID in another tenant is another source: both book.
	theirs, _ := Charge(b, "usd", charge.SourceID, 10000, 320)
	mustPost(t, pool, theirs)
}

// countingTracer counts the statements sent on a pool's connections.
type countingTracer struct{ statements atomic.Int64 }

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.statements.Add(1)
	return ctx
}

func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func TestPostBatchUsesOneStatementPerTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(dbtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	tracer := &countingTracer{}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	tenant := ids.New()
	var batch []Transaction
	entries := 0
	for i := range 50 {
		amount := int64(500 + 37*i)
		var tx Transaction
		if i%5 == 4 {
			tx = mustRefund(t, tenant, "usd", batch[i-1].SourceID, 100)
		} else {
			tx = mustCharge(t, tenant, "usd", amount, feeFor(amount))
		}
		batch = append(batch, tx)
		entries += len(tx.Entries)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := tracer.statements.Load()
	if err := Post(ctx, tx, batch...); err != nil {
		t.Fatal(err)
	}
	if n := tracer.statements.Load() - before; n != 2 {
		t.Errorf("Post of 50 transactions sent %d statements, want 2 (one multi-row INSERT per table)", n)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	got, more := mustList(t, pool, tenant, ListParams{Limit: 100})
	if len(got) != 50 || more {
		t.Fatalf("listed %d transactions, want 50", len(got))
	}
	slices.Reverse(got)
	for i := range got {
		if !sameTransaction(got[i], batch[i]) {
			t.Errorf("#%d: read %+v, posted %+v", i, got[i], batch[i])
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM ledger_entries WHERE tenant_id = $1`, tenant).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != entries {
		t.Errorf("%d entry rows, want %d", n, entries)
	}
	assertZeroSums(t, pool, tenant, "usd")
}

// mustCheckpoint checkpoints the tenant's book up to before, all of it.
func mustCheckpoint(tb testing.TB, pool *pgxpool.Pool, tenantID uuid.UUID, before time.Time, every int) {
	tb.Helper()
	for {
		n, err := CheckpointTenant(context.Background(), pool, tenantID, before, every)
		if err != nil {
			tb.Fatalf("CheckpointTenant: %v", err)
		}
		if n == 0 {
			return
		}
	}
}
