package money_test

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/money"
)

func TestParseCurrency(t *testing.T) {
	t.Parallel()
	required := strings.Fields("usd eur gbp cad aud chf sek nok dkk pln czk huf nzd sgd hkd mxn brl inr zar " +
		"bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf")
	for _, code := range required {
		c, err := money.ParseCurrency(code)
		if err != nil {
			t.Errorf("ParseCurrency(%q) = %v", code, err)
			continue
		}
		if c.String() != code || !c.Supported() {
			t.Errorf("ParseCurrency(%q) = %q, supported %v", code, c, c.Supported())
		}
	}
	if got, want := len(money.Currencies()), len(required); got != want {
		t.Errorf("len(Currencies()) = %d, want %d: the table and this test disagree", got, want)
	}
}

func TestParseCurrencyInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in          string
		messageHave string
		messageNot  string
	}{
		{in: "USD", messageHave: "send 'usd' instead of 'USD'"},
		{in: "Eur", messageHave: "send 'eur' instead of 'Eur'"},
		{in: "XYZ", messageHave: "lowercase"},
		{in: "xyz", messageHave: "'xyz' is not supported"},
		{in: "kwd", messageHave: "not supported"}, // three decimals: left out on purpose
		{in: ""},
		{in: "us"},
		{in: "usdd"},
		{in: "us1"},
		{in: "us\x00"},
		{in: "ü$d"},
		{in: "4242424242424242", messageNot: "4242"}, // never echo long input
	}
	for _, tt := range tests {
		c, err := money.ParseCurrency(tt.in)
		if err == nil {
			t.Errorf("ParseCurrency(%q) = %q, want an error", tt.in, c)
			continue
		}
		e := errcode.As(err)
		if e == nil || e.Kind != errcode.KindInvalid || e.Code != money.CodeCurrencyUnsupported || e.Param != "currency" {
			t.Errorf("ParseCurrency(%q) error = %#v, want invalid %s on currency", tt.in, err, money.CodeCurrencyUnsupported)
			continue
		}
		if !strings.Contains(e.Message, tt.messageHave) {
			t.Errorf("ParseCurrency(%q) message = %q, want it to contain %q", tt.in, e.Message, tt.messageHave)
		}
		if tt.messageNot != "" && strings.Contains(e.Message, tt.messageNot) {
			t.Errorf("ParseCurrency(%q) message = %q, must not contain %q", tt.in, e.Message, tt.messageNot)
		}
	}
}

func TestExponent(t *testing.T) {
	t.Parallel()
	tests := map[money.Currency]int{"usd": 2, "eur": 2, "huf": 2, "jpy": 0, "krw": 0, "xpf": 0, "kwd": -1, "USD": -1}
	for c, want := range tests {
		if got := c.Exponent(); got != want {
			t.Errorf("%q.Exponent() = %d, want %d", c, got, want)
		}
	}
}

func TestValidateAmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount   int64
		currency money.Currency
		code     string
	}{
		{amount: 1, currency: "usd"},
		{amount: 50, currency: "jpy"},
		{amount: money.AmountMax, currency: "usd"},
		{amount: money.AmountMax, currency: "jpy"},
		{amount: 0, currency: "usd", code: money.CodeAmountTooSmall},
		{amount: -1, currency: "usd", code: money.CodeAmountTooSmall},
		{amount: math.MinInt64, currency: "eur", code: money.CodeAmountTooSmall},
		{amount: money.AmountMax + 1, currency: "usd", code: money.CodeAmountTooLarge},
		{amount: math.MaxInt64, currency: "krw", code: money.CodeAmountTooLarge},
		{amount: 100, currency: "kwd", code: money.CodeCurrencyUnsupported},
		{amount: 100, currency: "USD", code: money.CodeCurrencyUnsupported},
	}
	for _, tt := range tests {
		err := money.ValidateAmount("amount_to_capture", tt.amount, tt.currency)
		if tt.code == "" {
			if err != nil {
				t.Errorf("ValidateAmount(%d, %s) = %v, want nil", tt.amount, tt.currency, err)
			}
			continue
		}
		e := errcode.As(err)
		if e == nil || e.Code != tt.code || e.Kind != errcode.KindInvalid {
			t.Errorf("ValidateAmount(%d, %s) = %v, want code %s", tt.amount, tt.currency, err, tt.code)
			continue
		}
		wantParam := "amount_to_capture"
		if tt.code == money.CodeCurrencyUnsupported {
			wantParam = "currency"
		}
		if e.Param != wantParam {
			t.Errorf("ValidateAmount(%d, %s) param = %q, want %q", tt.amount, tt.currency, e.Param, wantParam)
		}
	}
}

func TestAmountMaxPerCurrency(t *testing.T) {
	t.Parallel()
	for _, c := range money.Currencies() {
		limit := c.AmountMax()
		if limit < money.AmountMin {
			t.Errorf("%s.AmountMax() = %d, below AmountMin", c, limit)
		}
		if err := money.ValidateAmount("amount", limit, c); err != nil {
			t.Errorf("ValidateAmount(%s.AmountMax()) = %v", c, err)
		}
		if err := money.ValidateAmount("amount", limit+1, c); !errcode.Is(err, money.CodeAmountTooLarge) {
			t.Errorf("ValidateAmount(%s.AmountMax()+1) = %v, want %s", c, err, money.CodeAmountTooLarge)
		}
	}
	if got := money.Currency("kwd").AmountMax(); got != 0 {
		t.Errorf("unsupported AmountMax() = %d, want 0", got)
	}
}

func TestFee(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount, bps, fixed, want int64
	}{
		{amount: 0, bps: 290, fixed: 30, want: 30},
		{amount: 1000, bps: 290, fixed: 30, want: 59},              // 29.0
		{amount: 10000, bps: 290, fixed: 30, want: 320},            // 290.0
		{amount: 1, bps: 290, fixed: 0, want: 0},                   // 0.029
		{amount: 17, bps: 290, fixed: 0, want: 0},                  // 0.493
		{amount: 18, bps: 290, fixed: 0, want: 1},                  // 0.522
		{amount: 50, bps: 100, fixed: 0, want: 1},                  // 0.5 exactly: rounds up
		{amount: 49, bps: 100, fixed: 0, want: 0},                  // 0.49
		{amount: 150, bps: 100, fixed: 0, want: 2},                 // 1.5 exactly: rounds up
		{amount: 250, bps: 100, fixed: 0, want: 3},                 // 2.5 exactly: up, not to even
		{amount: 1250, bps: 290, fixed: 30, want: 66},              // 36.25 → 36
		{amount: 1750, bps: 290, fixed: 30, want: 81},              // 50.75 → 51
		{amount: 5000, bps: 1, fixed: 0, want: 1},                  // 0.5 exactly
		{amount: 4999, bps: 1, fixed: 0, want: 0},                  // 0.4999
		{amount: 15001, bps: 1, fixed: 0, want: 2},                 // 1.5001
		{amount: 14999, bps: 1, fixed: 0, want: 1},                 // 1.4999
		{amount: 99_999_999, bps: 290, fixed: 30, want: 2_900_030}, // 2,899,999.971 → 2,900,000
		{amount: 123, bps: 0, fixed: 30, want: 30},
		{amount: 123, bps: money.BpsMax, fixed: 0, want: 123},
		{amount: math.MaxInt64, bps: money.BpsMax, fixed: 0, want: math.MaxInt64},
		{amount: math.MaxInt64, bps: 1, fixed: 0, want: 922_337_203_685_478}, // ...477.5807 → 478
	}
	for _, tt := range tests {
		if got := money.Fee(tt.amount, tt.bps, tt.fixed); got != tt.want {
			t.Errorf("Fee(%d, %d, %d) = %d, want %d", tt.amount, tt.bps, tt.fixed, got, tt.want)
		}
	}
}

func TestFeePanicsOutOfRange(t *testing.T) {
	t.Parallel()
	tests := []struct{ amount, bps, fixed int64 }{
		{amount: -1, bps: 290, fixed: 30},
		{amount: 100, bps: -1, fixed: 30},
		{amount: 100, bps: money.BpsMax + 1, fixed: 30},
		{amount: 100, bps: 290, fixed: -1},
		{amount: math.MaxInt64, bps: money.BpsMax, fixed: 1},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Fee(%d, %d, %d) did not panic", tt.amount, tt.bps, tt.fixed)
				}
			}()
			money.Fee(tt.amount, tt.bps, tt.fixed)
		}()
	}
}

// feeBig is the reference: floor((amount*bps + BpsMax/2) / BpsMax) + fixed,
// computed with arbitrary precision.
func feeBig(amount, bps, fixed int64) *big.Int {
	n := new(big.Int).Mul(big.NewInt(amount), big.NewInt(bps))
	n.Add(n, big.NewInt(money.BpsMax/2))
	n.Quo(n, big.NewInt(money.BpsMax))
	return n.Add(n, big.NewInt(fixed))
}

func TestFeeMatchesBigProperty(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200_000 {
		var amount int64
		switch i % 3 {
		case 0: // realistic amounts
			amount = rng.Int64N(money.AmountMax + 1)
		case 1: // small amounts, where rounding dominates
			amount = rng.Int64N(20_000)
		default: // the whole range, where a naive product would overflow
			amount = rng.Int64()
		}
		bps := rng.Int64N(money.BpsMax + 1)
		fixed := rng.Int64N(1_000)
		want := feeBig(amount, bps, fixed)
		if !want.IsInt64() {
			continue
		}
		if got := money.Fee(amount, bps, fixed); got != want.Int64() {
			t.Fatalf("Fee(%d, %d, %d) = %d, want %s", amount, bps, fixed, got, want)
		}
	}
}

func TestAddSub(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b             int64
		sumOK, diffOK    bool
		sumWant, diffWnt int64
	}{
		{a: 1, b: 2, sumOK: true, diffOK: true, sumWant: 3, diffWnt: -1},
		{a: math.MaxInt64, b: 0, sumOK: true, diffOK: true, sumWant: math.MaxInt64, diffWnt: math.MaxInt64},
		{a: math.MaxInt64, b: 1, sumOK: false, diffOK: true, diffWnt: math.MaxInt64 - 1},
		{a: math.MinInt64, b: -1, sumOK: false, diffOK: true, diffWnt: math.MinInt64 + 1},
		{a: math.MinInt64, b: 1, sumOK: true, diffOK: false, sumWant: math.MinInt64 + 1},
		{a: 0, b: math.MinInt64, sumOK: true, diffOK: false, sumWant: math.MinInt64},
		{a: -1, b: math.MinInt64, sumOK: false, diffOK: true, diffWnt: math.MaxInt64},
		{a: math.MaxInt64, b: math.MinInt64, sumOK: true, diffOK: false, sumWant: -1},
	}
	for _, tt := range tests {
		s, err := money.Add(tt.a, tt.b)
		if tt.sumOK != (err == nil) || (tt.sumOK && s != tt.sumWant) {
			t.Errorf("Add(%d, %d) = %d, %v", tt.a, tt.b, s, err)
		}
		if err != nil && !errors.Is(err, money.ErrOverflow) {
			t.Errorf("Add(%d, %d) error %v does not wrap ErrOverflow", tt.a, tt.b, err)
		}
		d, err := money.Sub(tt.a, tt.b)
		if tt.diffOK != (err == nil) || (tt.diffOK && d != tt.diffWnt) {
			t.Errorf("Sub(%d, %d) = %d, %v", tt.a, tt.b, d, err)
		}
		if err != nil && !errors.Is(err, money.ErrOverflow) {
			t.Errorf("Sub(%d, %d) error %v does not wrap ErrOverflow", tt.a, tt.b, err)
		}
	}
}

func TestAddSubMatchBigProperty(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	edges := []int64{math.MinInt64, math.MinInt64 + 1, -1, 0, 1, math.MaxInt64 - 1, math.MaxInt64}
	pick := func() int64 {
		if rng.IntN(4) == 0 {
			return edges[rng.IntN(len(edges))]
		}
		return int64(rng.Uint64())
	}
	for range 200_000 {
		a, b := pick(), pick()
		check := func(name string, got int64, err error, want *big.Int) {
			if want.IsInt64() {
				if err != nil || got != want.Int64() {
					t.Fatalf("%s(%d, %d) = %d, %v; want %s", name, a, b, got, err, want)
				}
			} else if !errors.Is(err, money.ErrOverflow) {
				t.Fatalf("%s(%d, %d) = %d, %v; want ErrOverflow", name, a, b, got, err)
			}
		}
		s, err := money.Add(a, b)
		check("Add", s, err, new(big.Int).Add(big.NewInt(a), big.NewInt(b)))
		d, err := money.Sub(a, b)
		check("Sub", d, err, new(big.Int).Sub(big.NewInt(a), big.NewInt(b)))
	}
}

func TestSum(t *testing.T) {
	t.Parallel()
	if got, err := money.Sum(); got != 0 || err != nil {
		t.Errorf("Sum() = %d, %v", got, err)
	}
	if got, err := money.Sum(1000, -300, -700); got != 0 || err != nil {
		t.Errorf("Sum(1000, -300, -700) = %d, %v", got, err)
	}
	// The final total would fit, but a partial sum overflows.
	if _, err := money.Sum(math.MaxInt64, 1, -1); !errors.Is(err, money.ErrOverflow) {
		t.Errorf("Sum(MaxInt64, 1, -1) error = %v, want ErrOverflow", err)
	}
}
