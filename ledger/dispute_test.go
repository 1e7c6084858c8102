package ledger

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
)

func TestDisputeWithdrawalLegs(t *testing.T) {
	t.Parallel()
	dispute, payment := ids.New(), ids.New()
	tx, err := DisputeWithdrawal(ids.New(), "usd", dispute, payment, 2000, 1500)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{AccountMerchantBalance, -3500}, {AccountProcessorClearing, 2000}, {AccountProcessorFees, 1500}}
	if !slices.Equal(tx.Entries, want) {
		t.Errorf("entries %v, want %v", tx.Entries, want)
	}
	if tx.Amount != -2000 || tx.Fee != 1500 || tx.Net != -3500 || tx.Type != TypeDispute || tx.SourceType != SourceTypeDispute ||
		tx.SourceID != dispute || tx.PaymentID != payment {
		t.Errorf("header %+v", tx)
	}
	if err := tx.check(); err != nil {
		t.Errorf("check: %v", err)
	}
	// No fee: two legs.
	if tx, err := DisputeWithdrawal(ids.New(), "jpy", dispute, payment, 500, 0); err != nil || len(tx.Entries) != 2 || tx.check() != nil {
		t.Errorf("without a fee: %+v %v", tx, err)
	}
}

func TestDisputeReinstatementLegs(t *testing.T) {
	t.Parallel()
	dispute, payment := ids.New(), ids.New()
	tx, err := DisputeReinstatement(ids.New(), "eur", dispute, payment, 2000)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Entry{{AccountMerchantBalance, 2000}, {AccountProcessorClearing, -2000}}; !slices.Equal(tx.Entries, want) {
		t.Errorf("entries %v, want %v", tx.Entries, want)
	}
	if tx.Amount != 2000 || tx.Fee != 0 || tx.Net != 2000 || tx.Type != TypeDisputeReversal || tx.SourceID != dispute {
		t.Errorf("header %+v", tx)
	}
	if err := tx.check(); err != nil {
		t.Errorf("check: %v", err)
	}
}

func TestDisputeBuildersRefuseBadInput(t *testing.T) {
	t.Parallel()
	d, p, ten := ids.New(), ids.New(), ids.New()
	for name, err := range map[string]error{
		"zero amount":     func() error { _, err := DisputeWithdrawal(ten, "usd", d, p, 0, 1500); return err }(),
		"negative fee":    func() error { _, err := DisputeWithdrawal(ten, "usd", d, p, 100, -1); return err }(),
		"currency":        func() error { _, err := DisputeWithdrawal(ten, "USD", d, p, 100, 1); return err }(),
		"reinstate zero":  func() error { _, err := DisputeReinstatement(ten, "usd", d, p, 0); return err }(),
		"reinstate money": func() error { _, err := DisputeReinstatement(ten, "us", d, p, 10); return err }(),
	} {
		if !errcode.Is(err, errcode.CodeParameterInvalid) {
			t.Errorf("%s: %v, want parameter_invalid", name, err)
		}
	}
	if _, err := DisputeWithdrawal(ten, "usd", d, p, math.MaxInt64, 1); !errors.Is(err, ErrOverflow) {
		t.Errorf("overflow: %v", err)
	}
	// check refuses a dispute transaction whose header lies.
	tx, _ := DisputeReinstatement(ten, "usd", d, p, 100)
	tx.Fee, tx.Net = 10, 90
	if err := tx.check(); !errors.Is(err, ErrMalformed) {
		t.Errorf("reversal with a fee: %v", err)
	}
}
