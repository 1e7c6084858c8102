package money

import "testing"

func TestAmountMaxOverride(t *testing.T) {
	t.Parallel()
	if got := (currencyInfo{exponent: 0, amountMax: 500}).amountMaxOrDefault(); got != 500 {
		t.Errorf("override: amountMaxOrDefault() = %d, want 500", got)
	}
	if got := (currencyInfo{exponent: 2}).amountMaxOrDefault(); got != AmountMax {
		t.Errorf("no override: amountMaxOrDefault() = %d, want %d", got, AmountMax)
	}
}

func TestCurrencyTableInvariants(t *testing.T) {
	t.Parallel()
	for c, info := range currencies {
		if len(c) != 3 || !isASCIILetters3(string(c)) || string(c) != string([]byte{c[0] | 0x20, c[1] | 0x20, c[2] | 0x20}) {
			t.Errorf("currency %q is not three lowercase letters", c)
		}
		if info.exponent != 0 && info.exponent != 2 {
			t.Errorf("currency %q has exponent %d; only 0 and 2 are handled", c, info.exponent)
		}
		if info.amountMax < 0 {
			t.Errorf("currency %q has negative amountMax %d", c, info.amountMax)
		}
	}
}
