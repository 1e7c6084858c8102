package money_test

import (
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
