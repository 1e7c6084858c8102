package ledger

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
)

// feeFor is the test processor's price: 2.9% of amount rounded half up, plus
// 30 minor units, capped at the amount. Integers only.
func feeFor(amount int64) int64 {
	return min((amount*29+500)/1000+30, amount)
}

func TestFeeFor(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ amount, fee int64 }{
		{10000, 320}, // 290 + 30
		{1017, 59},   // 29.493 rounds down to 29
		{1035, 60},   // 30.015 rounds to 30
		{1000, 59},   // 29.0
		{1050, 60},   // 30.45 rounds down
		{1190, 65},   // 34.51 rounds up to 35
		{500, 45},    // 14.5 rounds half up to 15
		{20, 20},     // capped at the amount
	} {
		if got := feeFor(c.amount); got != c.fee {
			t.Errorf("feeFor(%d) = %d, want %d", c.amount, got, c.fee)
		}
	}
}

func mustCharge(tb testing.TB, tenantID uuid.UUID, currency string, amount, fee int64) Transaction {
	tb.Helper()
	tx, err := Charge(tenantID, currency, ids.New(), amount, fee)
	if err != nil {
		tb.Fatalf("Charge(%d, %d): %v", amount, fee, err)
	}
	return tx
}

func TestChargeLegs(t *testing.T) {
	t.Parallel()
	tenant, payment := ids.New(), ids.New()
	tx, err := Charge(tenant, "usd", payment, 10000, 320)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{AccountMerchantBalance, 9680},
		{AccountProcessorClearing, -10000},
		{AccountProcessorFees, 320},
	}
	if !slices.Equal(tx.Entries, want) {
		t.Errorf("entries %v, want %v", tx.Entries, want)
	}
	if tx.Type != TypeCharge || tx.SourceType != SourceTypePayment || tx.SourceID != payment || tx.PaymentID != uuid.Nil {
		t.Errorf("header %+v", tx)
	}
	if tx.Amount != 10000 || tx.Fee != 320 || tx.Net != 9680 || tx.TenantID != tenant || tx.ID == uuid.Nil {
		t.Errorf("amounts %d/%d/%d", tx.Amount, tx.Fee, tx.Net)
	}
	if err := tx.check(); err != nil {
		t.Errorf("check: %v", err)
	}
}

func TestChargeOmitsZeroLegs(t *testing.T) {
	t.Parallel()
	noFee := mustCharge(t, ids.New(), "usd", 500, 0)
	if want := []Entry{{AccountMerchantBalance, 500}, {AccountProcessorClearing, -500}}; !slices.Equal(noFee.Entries, want) {
		t.Errorf("fee 0: entries %v, want %v", noFee.Entries, want)
	}
	allFee := mustCharge(t, ids.New(), "usd", 30, 30)
	if want := []Entry{{AccountProcessorClearing, -30}, {AccountProcessorFees, 30}}; !slices.Equal(allFee.Entries, want) {
		t.Errorf("fee = amount: entries %v, want %v", allFee.Entries, want)
	}
	for _, tx := range []Transaction{noFee, allFee} {
		if err := tx.check(); err != nil {
			t.Errorf("check: %v", err)
		}
	}
}

func TestRefundLegs(t *testing.T) {
	t.Parallel()
	refund, payment := ids.New(), ids.New()
	tx, err := Refund(ids.New(), "eur", refund, payment, 2500)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Entry{{AccountMerchantBalance, -2500}, {AccountProcessorClearing, 2500}}; !slices.Equal(tx.Entries, want) {
		t.Errorf("entries %v, want %v", tx.Entries, want)
	}
	if tx.Amount != -2500 || tx.Fee != 0 || tx.Net != -2500 {
		t.Errorf("amount %d fee %d net %d, want -2500 0 -2500", tx.Amount, tx.Fee, tx.Net)
	}
	if tx.Type != TypeRefund || tx.SourceType != SourceTypeRefund || tx.SourceID != refund || tx.PaymentID != payment {
		t.Errorf("header %+v", tx)
	}
	if err := tx.check(); err != nil {
		t.Errorf("check: %v", err)
	}
}

func TestBuildersRefuseBadInput(t *testing.T) {
	t.Parallel()
	tenant, p := ids.New(), ids.New()
	cases := []struct {
		name  string
		err   error
		param string
	}{
		{"charge amount 0", second(Charge(tenant, "usd", p, 0, 0)), "amount"},
		{"charge amount negative", second(Charge(tenant, "usd", p, -5, 0)), "amount"},
		{"charge fee negative", second(Charge(tenant, "usd", p, 100, -1)), "fee"},
		{"charge fee above amount", second(Charge(tenant, "usd", p, 100, 101)), "fee"},
		{"charge currency upper", second(Charge(tenant, "USD", p, 100, 1)), "currency"},
		{"charge currency long", second(Charge(tenant, "usdx", p, 100, 1)), "currency"},
		{"refund amount 0", second(Refund(tenant, "usd", ids.New(), p, 0)), "amount"},
		{"refund amount min int", second(Refund(tenant, "usd", ids.New(), p, math.MinInt64)), "amount"},
		{"refund currency empty", second(Refund(tenant, "", ids.New(), p, 1)), "currency"},
	}
	for _, c := range cases {
		e := errcode.As(c.err)
		if e == nil || e.Kind != errcode.KindInvalid || e.Code != errcode.CodeParameterInvalid || e.Param != c.param {
			t.Errorf("%s: got %v, want parameter_invalid on %s", c.name, c.err, c.param)
		}
	}
	if e := errcode.As(second(Charge(uuid.Nil, "usd", p, 1, 0))); e == nil || e.Kind != errcode.KindInternal {
		t.Errorf("nil tenant: got %v, want an internal error", e)
	}
}

func second(_ Transaction, err error) error { return err }

// TestCheckRefusesBrokenTransactions proves the pre-write assertion is not
// blind: each hand-made fault is reported with the right sentinel.
func TestCheckRefusesBrokenTransactions(t *testing.T) {
	t.Parallel()
	base := func() Transaction { return mustCharge(t, ids.New(), "usd", 10000, 320) }
	cases := []struct {
		name   string
		mutate func(*Transaction)
		want   error
	}{
		{"unbalanced entry", func(x *Transaction) { x.Entries[1].Amount = -9999 }, ErrUnbalanced},
		{"entry overflow", func(x *Transaction) {
			x.Entries = []Entry{{AccountMerchantBalance, math.MaxInt64}, {AccountProcessorFees, math.MaxInt64}, {AccountProcessorClearing, 2}}
		}, ErrOverflow},
		{"net overflow", func(x *Transaction) { x.Type, x.Amount, x.Fee = TypeAdjustment, math.MinInt64, 1 }, ErrOverflow},
		{"net not amount - fee", func(x *Transaction) { x.Net = 9000 }, ErrMalformed},
		{"merchant leg differs from net", func(x *Transaction) {
			x.Net, x.Fee = 9000, 1000
		}, ErrMalformed},
		{"zero entry", func(x *Transaction) {
			x.Entries = []Entry{{AccountMerchantBalance, 0}, {AccountProcessorClearing, -320}, {AccountProcessorFees, 320}}
		}, ErrMalformed},
		{"four entries", func(x *Transaction) { x.Entries = append(x.Entries, Entry{AccountMerchantBalance, 1}) }, ErrMalformed},
		{"unknown account", func(x *Transaction) { x.Entries[2].Account = "world" }, ErrMalformed},
		{"two legs on one account", func(x *Transaction) {
			x.Entries = []Entry{{AccountMerchantBalance, 5000}, {AccountMerchantBalance, 4680}, {AccountProcessorClearing, -10000}, {AccountProcessorFees, 320}}
		}, ErrMalformed},
		{"one entry", func(x *Transaction) { x.Entries = x.Entries[:1] }, ErrMalformed},
		{"no entries", func(x *Transaction) { x.Entries = nil }, ErrMalformed},
		{"bad currency", func(x *Transaction) { x.Currency = "US1" }, ErrMalformed},
		{"unknown type", func(x *Transaction) { x.Type = "payout" }, ErrMalformed},
		{"charge with refund source", func(x *Transaction) { x.SourceType = SourceTypeRefund }, ErrMalformed},
		{"charge with payment id", func(x *Transaction) { x.PaymentID = ids.New() }, ErrMalformed},
		{"nil id", func(x *Transaction) { x.ID = uuid.Nil }, ErrMalformed},
		{"negative fee", func(x *Transaction) { x.Fee = -1 }, ErrMalformed},
	}
	for _, c := range cases {
		x := base()
		c.mutate(&x)
		if err := x.check(); !errors.Is(err, c.want) {
			t.Errorf("%s: check = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestCheckedArithmetic(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b int64
		ok   bool
	}{
		{1, 2, true}, {math.MaxInt64, 1, false}, {math.MaxInt64, 0, true}, {math.MinInt64, -1, false},
		{math.MinInt64, math.MaxInt64, true}, {-1, math.MinInt64, false},
	} {
		if _, ok := addChecked(c.a, c.b); ok != c.ok {
			t.Errorf("addChecked(%d, %d) ok = %v", c.a, c.b, ok)
		}
	}
	for _, c := range []struct {
		a, b int64
		ok   bool
	}{
		{1, 2, true}, {math.MinInt64, 1, false}, {0, math.MinInt64, false}, {-1, math.MinInt64, true},
		{math.MaxInt64, -1, false}, {math.MaxInt64, math.MaxInt64, true},
	} {
		if _, ok := subChecked(c.a, c.b); ok != c.ok {
			t.Errorf("subChecked(%d, %d) ok = %v", c.a, c.b, ok)
		}
	}
}

// FuzzBuilders: whatever the amounts, a builder either refuses them or
// returns a transaction that passes every invariant of Post.
func FuzzBuilders(f *testing.F) {
	f.Add(int64(10000), int64(320), int64(2500))
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64))
	f.Add(int64(1), int64(0), int64(-1))
	f.Add(int64(math.MinInt64), int64(math.MinInt64), int64(math.MinInt64))
	tenant, payment := ids.New(), ids.New()
	f.Fuzz(func(t *testing.T, amount, fee, refund int64) {
		c, err := Charge(tenant, "usd", payment, amount, fee)
		if valid := amount > 0 && fee >= 0 && fee <= amount; valid != (err == nil) {
			t.Fatalf("Charge(%d, %d) err = %v", amount, fee, err)
		}
		if err == nil {
			if err := c.check(); err != nil {
				t.Fatalf("Charge(%d, %d) built an invalid transaction: %v", amount, fee, err)
			}
		}
		r, err := Refund(tenant, "usd", ids.New(), payment, refund)
		if (refund > 0) != (err == nil) {
			t.Fatalf("Refund(%d) err = %v", refund, err)
		}
		if err == nil {
			if err := r.check(); err != nil {
				t.Fatalf("Refund(%d) built an invalid transaction: %v", refund, err)
			}
		}
	})
}
