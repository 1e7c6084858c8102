package sandbox

import (
	"testing"

	"github.com/payments-api/payments/money"
	"github.com/payments-api/payments/processor"
)

// TestRefRoundTrip encodes every combination of payment method, status and
// capture method, and checks that exactly the consistent ones decode back.
func TestRefRoundTrip(t *testing.T) {
	t.Parallel()
	decoded := 0
	for m := range paymentMethods {
		for _, status := range statusCodes {
			for _, manual := range []bool{false, true} {
				st := state{
					method: paymentMethod(m), status: status, manual: manual, currency: "eur",
					amount: 1234, createdMilli: 1_700_000_000_000, tenantID: "ten_é", paymentID: "pay_1",
				}
				if status == processor.StatusSucceeded {
					st.captured, st.fee = 1234, 66
				}
				got, err := decodeRef(st.encode())
				if consistent(st) != (err == nil) {
					t.Errorf("%+v: consistent %v, decode error %v", st, consistent(st), err)
				}
				if err == nil {
					decoded++
					if got != st {
						t.Errorf("decode(encode(%+v)) = %+v", st, got)
					}
				}
			}
		}
	}
	if decoded == 0 {
		t.Fatal("no state decoded")
	}
}

func TestRefRejectsInconsistentAmounts(t *testing.T) {
	t.Parallel()
	base := state{
		method: 0, status: processor.StatusSucceeded, currency: "usd",
		amount: 1000, captured: 1000, fee: 59, tenantID: "t", paymentID: "p",
	}
	if _, err := decodeRef(base.encode()); err != nil {
		t.Fatalf("base state: %v", err)
	}
	for name, edit := range map[string]func(*state){
		"captured above amount":     func(s *state) { s.captured = 1001 },
		"fee above captured":        func(s *state) { s.fee = 1001 },
		"automatic partial capture": func(s *state) { s.captured = 999 },
		"zero amount":               func(s *state) { s.amount, s.captured, s.fee = 0, 0, 0 },
		"amount above the maximum":  func(s *state) { s.amount = money.AmountMax + 1; s.captured = s.amount },
		"no tenant":                 func(s *state) { s.tenantID = "" },
		"unsupported currency":      func(s *state) { s.currency = "kwd" },
	} {
		st := base
		edit(&st)
		if _, err := decodeRef(st.encode()); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func FuzzDecodeRef(f *testing.F) {
	f.Add(state{method: 7, status: processor.StatusPending, currency: "usd", amount: 1,
		createdMilli: 1, tenantID: "t", paymentID: "p"}.encode())
	f.Add("sbx_ch_AQ")
	f.Fuzz(func(t *testing.T, ref string) {
		st, err := decodeRef(ref)
		if err != nil {
			return
		}
		// Only the canonical encoding of a consistent state decodes.
		if !consistent(st) || st.encode() != ref {
			t.Fatalf("decodeRef(%q) = %+v", ref, st)
		}
	})
}
