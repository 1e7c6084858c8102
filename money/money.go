// Package money holds the service's currencies and the arithmetic on amounts.
//
// An amount is an int64 count of the currency's minor unit (cents for usd,
// yen for jpy) and always travels with a lowercase ISO 4217 currency code.
// Floats never represent money here, not even in intermediate results: fees
// are rounded with integer arithmetic and sums are checked for overflow.
package money

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/payments-api/payments/errcode"
)

// Error codes this package returns inside *errcode.Error values.
const (
	// CodeCurrencyUnsupported rejects a currency that is malformed, not
	// lowercase or not in the table.
	CodeCurrencyUnsupported = "currency_unsupported"
	// CodeAmountTooSmall rejects an amount below AmountMin.
	CodeAmountTooSmall = "amount_too_small"
	// CodeAmountTooLarge rejects an amount above the currency's AmountMax.
	CodeAmountTooLarge = "amount_too_large"
)

// AmountMin is the smallest amount, in minor units, that a charge or a
// refund may have.
const AmountMin int64 = 1

// AmountMax is the largest amount, in minor units, that a charge may have
// unless the currency table overrides it. It is the largest eight-digit
// number, the limit card processors commonly apply (999,999.99 usd).
const AmountMax int64 = 99_999_999

// BpsMax is the largest fee rate Fee accepts, in basis points: 10,000 bps is
// 100% of the amount.
const BpsMax int64 = 10_000

// ErrOverflow reports that a sum or difference of amounts does not fit in
// an int64. Callers treat it as an internal error: validated amounts are far
// below the limit, so an overflow means corrupt data or a bug.
var ErrOverflow = errors.New("int64 overflow")

// Currency is a supported lowercase ISO 4217 currency code, such as "usd".
// Obtain one from ParseCurrency; a Currency built by conversion from an
// arbitrary string may be unsupported, which ValidateAmount reports.
type Currency string

// currencyInfo is one row of the currency table.
type currencyInfo struct {
	// exponent is the number of decimal places of the minor unit: 2 for usd
	// (cents), 0 for jpy.
	exponent int
	// amountMax overrides AmountMax for this currency when it is positive.
	amountMax int64
}

// amountMaxOrDefault returns the currency's amount limit.
func (i currencyInfo) amountMaxOrDefault() int64 {
	if i.amountMax > 0 {
		return i.amountMax
	}
	return AmountMax
}

// currencies is the table of supported currencies. Zero-decimal currencies
// follow the card processors' convention (Stripe's list): an amount of 500
// jpy is 500 yen. Three-decimal currencies (bhd, kwd, ...) are deliberately
// absent: they need rounding rules of their own.
var currencies = map[Currency]currencyInfo{
	// Two-decimal currencies.
	"aud": {exponent: 2},
	"brl": {exponent: 2},
	"cad": {exponent: 2},
	"chf": {exponent: 2},
	"czk": {exponent: 2},
	"dkk": {exponent: 2},
	"eur": {exponent: 2},
	"gbp": {exponent: 2},
	"hkd": {exponent: 2},
	"huf": {exponent: 2},
	"inr": {exponent: 2},
	"mxn": {exponent: 2},
	"nok": {exponent: 2},
	"nzd": {exponent: 2},
	"pln": {exponent: 2},
	"sek": {exponent: 2},
	"sgd": {exponent: 2},
	"usd": {exponent: 2},
	"zar": {exponent: 2},
	// Zero-decimal currencies.
	"bif": {exponent: 0},
	"clp": {exponent: 0},
	"djf": {exponent: 0},
	"gnf": {exponent: 0},
	"jpy": {exponent: 0},
	"kmf": {exponent: 0},
	"krw": {exponent: 0},
	"mga": {exponent: 0},
	"pyg": {exponent: 0},
	"rwf": {exponent: 0},
	"ugx": {exponent: 0},
	"vnd": {exponent: 0},
	"vuv": {exponent: 0},
	"xaf": {exponent: 0},
	"xof": {exponent: 0},
	"xpf": {exponent: 0},
}

// Currencies returns the supported currencies in alphabetical order.
func Currencies() []Currency {
	out := make([]Currency, 0, len(currencies))
	for c := range currencies {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// ParseCurrency returns the supported currency named by s. The code must be
// exactly three lowercase ASCII letters; uppercase input is refused with a
// message naming the lowercase form, so that clients fix the request rather
// than rely on a silent conversion. Errors are *errcode.Error values with
// code CodeCurrencyUnsupported and Param "currency".
func ParseCurrency(s string) (Currency, error) {
	if !isASCIILetters3(s) {
		// The input is not echoed: it may be long or hold anything.
		return "", errcode.Invalid(CodeCurrencyUnsupported, "currency",
			"currency must be a three-letter lowercase ISO 4217 code, such as 'usd'")
	}
	if lower := strings.ToLower(s); lower != s {
		if _, ok := currencies[Currency(lower)]; ok {
			return "", errcode.Invalid(CodeCurrencyUnsupported, "currency",
				"currency must be lowercase: send '%s' instead of '%s'", lower, s)
		}
		return "", errcode.Invalid(CodeCurrencyUnsupported, "currency",
			"currency '%s' is not supported; codes are lowercase, such as 'usd'", s)
	}
	if _, ok := currencies[Currency(s)]; !ok {
		return "", errcode.Invalid(CodeCurrencyUnsupported, "currency",
			"currency '%s' is not supported", s)
	}
	return Currency(s), nil
}

// isASCIILetters3 reports whether s is three ASCII letters of either case.
func isASCIILetters3(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range len(s) {
		c := s[i] | 0x20 // fold to lowercase; non-letters stay out of range
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// Supported reports whether c is in the currency table.
func (c Currency) Supported() bool {
	_, ok := currencies[c]
	return ok
}

// String returns the lowercase code.
func (c Currency) String() string { return string(c) }

// Exponent returns the number of decimal places of c's minor unit: 2 for usd,
// 0 for jpy. It returns -1 for an unsupported currency.
func (c Currency) Exponent() int {
	info, ok := currencies[c]
	if !ok {
		return -1
	}
	return info.exponent
}

// AmountMax returns the largest amount, in minor units, that a charge in c
// may have: the table's override for c, or the package's AmountMax. It
// returns 0 for an unsupported currency, so that every amount fails against it.
func (c Currency) AmountMax() int64 {
	info, ok := currencies[c]
	if !ok {
		return 0
	}
	return info.amountMaxOrDefault()
}

// ValidateAmount checks that amount, in minor units of c, lies within
// [AmountMin, c.AmountMax()]. Errors are *errcode.Error values with Param set
// to param and code CodeAmountTooSmall or CodeAmountTooLarge; an unsupported
// c yields CodeCurrencyUnsupported with Param "currency".
func ValidateAmount(param string, amount int64, c Currency) error {
	info, ok := currencies[c]
	if !ok {
		return errcode.Invalid(CodeCurrencyUnsupported, "currency", "currency is not supported")
	}
	if amount < AmountMin {
		return errcode.Invalid(CodeAmountTooSmall, param,
			"%s must be at least %d, in the smallest unit of %s", param, AmountMin, c)
	}
	if limit := info.amountMaxOrDefault(); amount > limit {
		return errcode.Invalid(CodeAmountTooLarge, param,
			"%s must be at most %d, in the smallest unit of %s", param, limit, c)
	}
	return nil
}

// Fee returns the fee on amount at a rate of bps basis points plus fixed,
// all in minor units: Fee(amount, 290, 30) is "2.9% + 30". The percentage
// part is rounded half up (0.5 minor units rounds away from zero) with exact
// 128-bit integer arithmetic, so no intermediate product can overflow.
//
// Fee panics if amount or fixed is negative, if bps is outside [0, BpsMax],
// or if the result overflows int64. These are programming errors: amounts
// pass ValidateAmount and fee schedules are validated with the configuration.
func Fee(amount, bps, fixed int64) int64 {
	if amount < 0 || fixed < 0 || bps < 0 || bps > BpsMax {
		panic(fmt.Sprintf("money: fee of amount %d at %d bps plus %d: argument out of range", amount, bps, fixed))
	}
	// amount*bps < 2^63 * 2^14, so the product and the rounding addend fit in
	// 128 bits and the high word stays below the divisor, as Div64 requires.
	hi, lo := bits.Mul64(uint64(amount), uint64(bps))
	lo, carry := bits.Add64(lo, uint64(BpsMax/2), 0)
	hi += carry
	q, _ := bits.Div64(hi, lo, uint64(BpsMax))
	// q <= amount because bps <= BpsMax, so it fits in an int64.
	fee, err := Add(int64(q), fixed)
	if err != nil {
		panic(fmt.Sprintf("money: fee of amount %d at %d bps plus %d: %v", amount, bps, fixed, err))
	}
	return fee
}

// Add returns a+b, or an error wrapping ErrOverflow when the sum does not
// fit in an int64.
func Add(a, b int64) (int64, error) {
	s := a + b
	// Overflow happened iff a and b share a sign that s does not.
	if (a^s)&(b^s) < 0 {
		return 0, fmt.Errorf("add %d and %d: %w", a, b, ErrOverflow)
	}
	return s, nil
}

// Sub returns a-b, or an error wrapping ErrOverflow when the difference does
// not fit in an int64.
func Sub(a, b int64) (int64, error) {
	d := a - b
	// Overflow happened iff a and b differ in sign and d's sign is not a's.
	if (a^b)&(a^d) < 0 {
		return 0, fmt.Errorf("subtract %d from %d: %w", b, a, ErrOverflow)
	}
	return d, nil
}

// Sum returns the sum of values, or an error wrapping ErrOverflow as soon as
// a partial sum does not fit in an int64. A sum that would come back into
// range after overflowing is still an error: ledger code never relies on
// wrap-around.
func Sum(values ...int64) (int64, error) {
	var total int64
	for _, v := range values {
		var err error
		if total, err = Add(total, v); err != nil {
			return 0, fmt.Errorf("sum: %w", err)
		}
	}
	return total, nil
}
