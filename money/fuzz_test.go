package money_test

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/money"
)

func FuzzParseCurrency(f *testing.F) {
	for _, s := range []string{"usd", "USD", "jpy", "", "u", "usdx", "\xff\xfe\xfd", "4242424242424242"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := money.ParseCurrency(s)
		if err == nil {
			if string(c) != s || !c.Supported() || strings.ToLower(s) != s {
				t.Fatalf("ParseCurrency(%q) accepted %q", s, c)
			}
			return
		}
		e := errcode.As(err)
		if e == nil || e.Code != money.CodeCurrencyUnsupported || e.Param != "currency" {
			t.Fatalf("ParseCurrency(%q) error = %#v", s, err)
		}
		// Input that is not three letters is never echoed: it may be long
		// or hold anything, card numbers included.
		const generic = "currency must be a three-letter lowercase ISO 4217 code, such as 'usd'"
		if len(s) != 3 && e.Message != generic {
			t.Fatalf("ParseCurrency(%q) message = %q, want the generic one", s, e.Message)
		}
	})
}

// FuzzFee checks Fee against exact big-integer arithmetic: the percentage
// part rounded half up, plus the fixed part; out-of-range arguments panic,
// and nothing else does.
func FuzzFee(f *testing.F) {
	for _, s := range [][3]int64{{1000, 290, 30}, {0, 0, 0}, {1, 5000, 0}, {math.MaxInt64, money.BpsMax, 0}, {math.MaxInt64, 1, math.MaxInt64}, {-1, 1, 1}, {5, money.BpsMax + 1, 0}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, amount, bps, fixed int64) {
		valid := amount >= 0 && fixed >= 0 && bps >= 0 && bps <= money.BpsMax
		var want *big.Int
		if valid {
			p := new(big.Int).Mul(big.NewInt(amount), big.NewInt(bps))
			p.Add(p, big.NewInt(money.BpsMax/2))
			p.Quo(p, big.NewInt(money.BpsMax))
			want = p.Add(p, big.NewInt(fixed))
			valid = want.IsInt64()
		}
		got, panicked := func() (fee int64, panicked bool) {
			defer func() { panicked = recover() != nil }()
			return money.Fee(amount, bps, fixed), false
		}()
		switch {
		case !valid && !panicked:
			t.Fatalf("Fee(%d, %d, %d) = %d, want a panic", amount, bps, fixed, got)
		case valid && panicked:
			t.Fatalf("Fee(%d, %d, %d) panicked, want %s", amount, bps, fixed, want)
		case valid && got != want.Int64():
			t.Fatalf("Fee(%d, %d, %d) = %d, want %s", amount, bps, fixed, got, want)
		}
	})
}

// FuzzArithmetic checks Add, Sub and Sum against big integers: exact when
// the result fits in an int64, ErrOverflow otherwise, never a wrapped
// value.
func FuzzArithmetic(f *testing.F) {
	for _, s := range [][3]int64{{1, 2, 3}, {math.MaxInt64, 1, 0}, {math.MinInt64, -1, 0}, {math.MaxInt64, math.MinInt64, -1}, {0, math.MinInt64, 0}} {
		f.Add(s[0], s[1], s[2])
	}
	check := func(t *testing.T, op string, got int64, err error, want *big.Int) {
		t.Helper()
		if want.IsInt64() {
			if err != nil || got != want.Int64() {
				t.Fatalf("%s = %d, %v; want %s", op, got, err, want)
			}
			return
		}
		if !errors.Is(err, money.ErrOverflow) || got != 0 {
			t.Fatalf("%s = %d, %v; want ErrOverflow", op, got, err)
		}
	}
	f.Fuzz(func(t *testing.T, a, b, c int64) {
		A, B, C := big.NewInt(a), big.NewInt(b), big.NewInt(c)
		got, err := money.Add(a, b)
		check(t, "Add", got, err, new(big.Int).Add(A, B))
		got, err = money.Sub(a, b)
		check(t, "Sub", got, err, new(big.Int).Sub(A, B))
		got, err = money.Sum(a, b, c)
		ab := new(big.Int).Add(A, B)
		if !ab.IsInt64() {
			// A partial sum out of range is an overflow even if the total
			// comes back into range.
			if !errors.Is(err, money.ErrOverflow) {
				t.Fatalf("Sum(%d, %d, %d) = %d, %v; want ErrOverflow from the partial sum", a, b, c, got, err)
			}
			return
		}
		check(t, "Sum", got, err, ab.Add(ab, C))
	})
}
