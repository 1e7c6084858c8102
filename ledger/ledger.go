package ledger

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
)

// Type is the kind of a ledger transaction.
type Type string

// The transaction types. Adjustment exists in the schema for manual
// corrections; no builder makes one yet.
const (
	TypeCharge     Type = "charge"
	TypeRefund     Type = "refund"
	TypeAdjustment Type = "adjustment"
	// TypeDispute books the funds a dispute withdrew, with the
	// processor's dispute fee; TypeDisputeReversal books the disputed
	// amount coming back when the dispute is won (the fee does not).
	TypeDispute         Type = "dispute"
	TypeDisputeReversal Type = "dispute_reversal"
	// Payouts (see Payout, PayoutPaid and PayoutReversal).
	TypePayout         Type = "payout"
	TypePayoutPaid     Type = "payout_paid"
	TypePayoutReversal Type = "payout_reversal"
)

// valid reports whether t is one of the known types.
func (t Type) valid() bool {
	return t == TypeCharge || t == TypeRefund || t == TypeAdjustment || t == TypeDispute || t == TypeDisputeReversal || t.payout()
}

// payout reports whether t is one of the payout types.
func (t Type) payout() bool {
	return t == TypePayout || t == TypePayoutPaid || t == TypePayoutReversal
}

// Source types: the kind of object whose state change caused a transaction.
const (
	SourceTypePayment = "payment"
	SourceTypeRefund  = "refund"
	SourceTypeDispute = "dispute"
	SourceTypePayout  = "payout"
)

// Account names one side of the book.
type Account string

// The accounts. See the package documentation for what each one holds.
const (
	AccountProcessorClearing Account = "processor_clearing"
	AccountMerchantBalance   Account = "merchant_balance"
	AccountProcessorFees     Account = "processor_fees"
	// AccountPayoutsInTransit holds payouts that left the merchant's
	// balance and have not reached the destination yet.
	AccountPayoutsInTransit Account = "payouts_in_transit"
	// AccountPayoutsPaid is what reached the merchant's bank (or connected
	// account) through payouts: money that left the platform for good.
	AccountPayoutsPaid Account = "payouts_paid"
)

// accountsAll lists every account; a transaction has at most one entry per
// account, so its length bounds the entries of one transaction.
var accountsAll = []Account{AccountMerchantBalance, AccountProcessorClearing, AccountProcessorFees,
	AccountPayoutsInTransit, AccountPayoutsPaid}

// CodeDuplicateSource is the errcode code Post returns when a transaction's
// source (a payment for a charge, a refund for a refund) is already booked.
// Callers treat it as "already booked": the money moved once.
const CodeDuplicateSource = "ledger_duplicate_source"

// Invariant violations that Post refuses before writing and that Get and
// List report after reading. They reach callers wrapped in an
// errcode.Internal error: they mean a bug or corrupt data, never a client
// mistake. Match them with errors.Is.
var (
	// ErrUnbalanced reports entries that do not sum to zero.
	ErrUnbalanced = errors.New("ledger entries do not sum to zero")
	// ErrOverflow reports arithmetic on amounts that does not fit in int64.
	ErrOverflow = errors.New("ledger amount overflows int64")
	// ErrMalformed reports any other broken invariant of a transaction.
	ErrMalformed = errors.New("malformed ledger transaction")
	// ErrClosed reports a posting whose booking time lies before its
	// tenant's closing (a checkpoint or a seal already covers it).
	ErrClosed = errors.New("ledger period is closed")
)

// Transaction is one balanced movement of money of one tenant in one
// currency. Amount, Fee and Net are the merchant-balance view described in
// the package documentation; Entries are the double-entry legs, sorted by
// account.
type Transaction struct {
	// ID is the ledger transaction's key; its public form is
	// ids.Format(ids.PrefixBalanceTx, ID).
	ID uuid.UUID
	// TenantID is the merchant whose book this is.
	TenantID uuid.UUID
	// Currency is a lowercase ISO 4217 code such as "usd".
	Currency string
	// Type says what moved the money.
	Type Type
	// SourceType and SourceID name the object that caused the movement:
	// the payment of a charge, the refund of a refund.
	SourceType string
	SourceID   uuid.UUID
	// PaymentID is the payment a refund belongs to; it is uuid.Nil for a
	// charge, whose payment is SourceID.
	PaymentID uuid.UUID
	// Amount is the gross movement in minor units: positive for a charge,
	// negative for a refund.
	Amount int64
	// Fee is what the processor kept, in minor units; never negative.
	Fee int64
	// Net is Amount - Fee: the change of the merchant's balance.
	Net int64
	// Entries are the legs, at most one per account, none zero, summing
	// to zero.
	Entries []Entry
	// CreatedAt is when the transaction was booked. A zero CreatedAt given
	// to Post means the database's transaction time.
	CreatedAt time.Time
}

// Entry is one leg of a transaction: Amount minor units moved into Account
// (out of it when negative). It is never zero.
type Entry struct {
	Account Account
	Amount  int64
}

// Charge builds the transaction that books a captured payment of amount
// minor units of which the processor kept fee. It returns an errcode error
// with code parameter_invalid when amount is not positive, fee is negative
// or larger than amount, or the currency is not three lowercase letters.
func Charge(tenantID uuid.UUID, currency string, paymentID uuid.UUID, amount, fee int64) (Transaction, error) {
	if err := checkIDs(tenantID, paymentID); err != nil {
		return Transaction{}, err
	}
	if err := checkCurrency(currency); err != nil {
		return Transaction{}, err
	}
	switch {
	case amount <= 0:
		return Transaction{}, errcode.Invalid(errcode.CodeParameterInvalid, "amount",
			"amount must be a positive integer in the currency's minor unit, got %d", amount)
	case fee < 0:
		return Transaction{}, errcode.Invalid(errcode.CodeParameterInvalid, "fee",
			"fee must not be negative, got %d", fee)
	case fee > amount:
		return Transaction{}, errcode.Invalid(errcode.CodeParameterInvalid, "fee",
			"fee %d exceeds the amount %d", fee, amount)
	}
	net := amount - fee // cannot overflow: 0 <= fee <= amount
	t := Transaction{
		ID:         ids.New(),
		TenantID:   tenantID,
		Currency:   currency,
		Type:       TypeCharge,
		SourceType: SourceTypePayment,
		SourceID:   paymentID,
		Amount:     amount,
		Fee:        fee,
		Net:        net,
	}
	t.Entries = legs(
		Entry{AccountProcessorClearing, -amount},
		Entry{AccountMerchantBalance, net},
		Entry{AccountProcessorFees, fee},
	)
	return t, nil
}

// Refund builds the transaction that books refund refundID of amount minor
// units of payment paymentID. The processor's fee is not returned, so the
// whole amount leaves the merchant's balance: Amount and Net are -amount and
// Fee is 0. It returns an errcode error with code parameter_invalid when
// amount is not positive or the currency is not three lowercase letters.
func Refund(tenantID uuid.UUID, currency string, refundID, paymentID uuid.UUID, amount int64) (Transaction, error) {
	if err := checkIDs(tenantID, refundID, paymentID); err != nil {
		return Transaction{}, err
	}
	if err := checkCurrency(currency); err != nil {
		return Transaction{}, err
	}
	if amount <= 0 {
		return Transaction{}, errcode.Invalid(errcode.CodeParameterInvalid, "amount",
			"amount must be a positive integer in the currency's minor unit, got %d", amount)
	}
	t := Transaction{
		ID:         ids.New(),
		TenantID:   tenantID,
		Currency:   currency,
		Type:       TypeRefund,
		SourceType: SourceTypeRefund,
		SourceID:   refundID,
		PaymentID:  paymentID,
		Amount:     -amount, // cannot overflow: amount > 0
		Fee:        0,
		Net:        -amount,
	}
	t.Entries = legs(
		Entry{AccountProcessorClearing, amount},
		Entry{AccountMerchantBalance, -amount},
	)
	return t, nil
}

// DisputeWithdrawal builds the transaction that books the funds dispute
// disputeID of payment paymentID withdrew: amount minor units and the
// processor's dispute fee leave the merchant's balance. Amount is
// -amount, Fee is fee and Net is -(amount + fee). It returns an errcode
// error with code parameter_invalid when amount is not positive, fee is
// negative, or the currency is not three lowercase letters.
func DisputeWithdrawal(tenantID uuid.UUID, currency string, disputeID, paymentID uuid.UUID, amount, fee int64) (Transaction, error) {
	if err := checkIDs(tenantID, disputeID, paymentID); err != nil {
		return Transaction{}, err
	}
	if err := checkCurrency(currency); err != nil {
		return Transaction{}, err
	}
	switch {
	case amount <= 0:
		return Transaction{}, errcode.Invalid(errcode.CodeParameterInvalid, "amount",
			"amount must be a positive integer in the currency's minor unit, got %d", amount)
	case fee < 0:
		return Transaction{}, errcode.Invalid(errcode.CodeParameterInvalid, "fee", "fee must not be negative, got %d", fee)
	}
	total, ok := addChecked(amount, fee)
	if !ok {
		return Transaction{}, errcode.Internal(fmt.Errorf("build dispute transaction: %w: amount %d + fee %d", ErrOverflow, amount, fee))
	}
	t := Transaction{
		ID: ids.New(), TenantID: tenantID, Currency: currency, Type: TypeDispute,
		SourceType: SourceTypeDispute, SourceID: disputeID, PaymentID: paymentID,
		Amount: -amount, Fee: fee, Net: -total,
	}
	t.Entries = legs(
		Entry{AccountProcessorClearing, amount},
		Entry{AccountMerchantBalance, -total},
		Entry{AccountProcessorFees, fee},
	)
	return t, nil
}

// DisputeReinstatement builds the transaction that books the funds of a
// won dispute coming back: amount minor units return to the merchant's
// balance, the dispute fee does not (Fee 0). It returns an errcode error
// with code parameter_invalid when amount is not positive or the currency
// is not three lowercase letters.
func DisputeReinstatement(tenantID uuid.UUID, currency string, disputeID, paymentID uuid.UUID, amount int64) (Transaction, error) {
	if err := checkIDs(tenantID, disputeID, paymentID); err != nil {
		return Transaction{}, err
	}
	if err := checkCurrency(currency); err != nil {
		return Transaction{}, err
	}
	if amount <= 0 {
		return Transaction{}, errcode.Invalid(errcode.CodeParameterInvalid, "amount",
			"amount must be a positive integer in the currency's minor unit, got %d", amount)
	}
	t := Transaction{
		ID: ids.New(), TenantID: tenantID, Currency: currency, Type: TypeDisputeReversal,
		SourceType: SourceTypeDispute, SourceID: disputeID, PaymentID: paymentID,
		Amount: amount, Fee: 0, Net: amount,
	}
	t.Entries = legs(
		Entry{AccountProcessorClearing, -amount},
		Entry{AccountMerchantBalance, amount},
	)
	return t, nil
}

// Payout builds the transaction that books payout payoutID of amount
// minor units leaving the merchant's balance for payouts_in_transit:
// Amount and Net are -amount, Fee is 0. It returns an errcode error with
// code parameter_invalid when amount is not positive or the currency is
// not three lowercase letters.
func Payout(tenantID uuid.UUID, currency string, payoutID uuid.UUID, amount int64) (Transaction, error) {
	return payoutTx(tenantID, currency, payoutID, amount, TypePayout)
}

// PayoutPaid builds the transaction that books a payout's arrival: amount
// moves from payouts_in_transit to payouts_paid. The merchant's balance
// does not change, so Amount, Fee and Net are 0.
func PayoutPaid(tenantID uuid.UUID, currency string, payoutID uuid.UUID, amount int64) (Transaction, error) {
	return payoutTx(tenantID, currency, payoutID, amount, TypePayoutPaid)
}

// PayoutReversal builds the transaction that returns a failed or canceled
// payout's amount from payouts_in_transit to the merchant's balance:
// Amount and Net are +amount.
func PayoutReversal(tenantID uuid.UUID, currency string, payoutID uuid.UUID, amount int64) (Transaction, error) {
	return payoutTx(tenantID, currency, payoutID, amount, TypePayoutReversal)
}

func payoutTx(tenantID uuid.UUID, currency string, payoutID uuid.UUID, amount int64, typ Type) (Transaction, error) {
	if err := checkIDs(tenantID, payoutID); err != nil {
		return Transaction{}, err
	}
	if err := checkCurrency(currency); err != nil {
		return Transaction{}, err
	}
	if amount <= 0 {
		return Transaction{}, errcode.Invalid(errcode.CodeParameterInvalid, "amount",
			"amount must be a positive integer in the currency's minor unit, got %d", amount)
	}
	t := Transaction{ID: ids.New(), TenantID: tenantID, Currency: currency, Type: typ, SourceType: SourceTypePayout, SourceID: payoutID}
	switch typ {
	case TypePayout:
		t.Amount, t.Net = -amount, -amount // cannot overflow: amount > 0
		t.Entries = legs(Entry{AccountMerchantBalance, -amount}, Entry{AccountPayoutsInTransit, amount})
	case TypePayoutPaid:
		t.Entries = legs(Entry{AccountPayoutsInTransit, -amount}, Entry{AccountPayoutsPaid, amount})
	case TypePayoutReversal:
		t.Amount, t.Net = amount, amount
		t.Entries = legs(Entry{AccountPayoutsInTransit, -amount}, Entry{AccountMerchantBalance, amount})
	}
	return t, nil
}

// legs drops zero entries and sorts the rest by account, the order in which
// reads return them.
func legs(es ...Entry) []Entry {
	out := make([]Entry, 0, len(es))
	for _, e := range es {
		if e.Amount != 0 {
			out = append(out, e)
		}
	}
	sortEntries(out)
	return out
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return strings.Compare(string(a.Account), string(b.Account)) })
}

// checkIDs refuses nil identifiers. They come from our own records, never
// from a client, so a nil one is a bug.
func checkIDs(us ...uuid.UUID) error {
	for _, u := range us {
		if u == uuid.Nil {
			return errcode.Internal(fmt.Errorf("build ledger transaction: %w: nil id", ErrMalformed))
		}
	}
	return nil
}

// validCurrency reports whether c is three lowercase ASCII letters, the form
// of an ISO 4217 code in this API. Whether the currency is supported is the
// money package's concern.
func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := range len(c) {
		if c[i] < 'a' || c[i] > 'z' {
			return false
		}
	}
	return true
}

func checkCurrency(c string) error {
	if !validCurrency(c) {
		return errcode.Invalid(errcode.CodeParameterInvalid, "currency",
			"currency must be a three-letter lowercase ISO 4217 code, got %q", c)
	}
	return nil
}

// addChecked returns a+b, or false when the sum does not fit in int64.
func addChecked(a, b int64) (int64, bool) {
	s := a + b // wraps on overflow, which the sign test detects
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// subChecked returns a-b, or false when the difference does not fit in int64.
func subChecked(a, b int64) (int64, bool) {
	d := a - b
	if (b > 0 && d > a) || (b < 0 && d < a) {
		return 0, false
	}
	return d, true
}

// check asserts every invariant of t that the schema also enforces, plus
// those it cannot (the legs sum to zero, Net is the merchant_balance leg,
// Fee the processor_fees leg). The error wraps ErrUnbalanced, ErrOverflow or
// ErrMalformed.
func (t Transaction) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	switch {
	case t.ID == uuid.Nil || t.TenantID == uuid.Nil || t.SourceID == uuid.Nil:
		return bad("nil id, tenant or source")
	case !validCurrency(t.Currency):
		return bad("currency %q", t.Currency)
	case !t.Type.valid():
		return bad("type %q", t.Type)
	case t.SourceType != SourceTypePayment && t.SourceType != SourceTypeRefund && t.SourceType != SourceTypeDispute && t.SourceType != SourceTypePayout:
		return bad("source type %q", t.SourceType)
	case t.Amount == 0 && t.Type != TypePayoutPaid:
		return bad("zero amount")
	case t.Fee < 0:
		return bad("negative fee %d", t.Fee)
	}
	net, ok := subChecked(t.Amount, t.Fee)
	if !ok {
		return fmt.Errorf("%w: amount %d - fee %d", ErrOverflow, t.Amount, t.Fee)
	}
	if net != t.Net {
		return bad("net %d is not amount %d - fee %d", t.Net, t.Amount, t.Fee)
	}
	switch t.Type {
	case TypeCharge:
		if t.SourceType != SourceTypePayment || t.Amount < 0 || t.Fee > t.Amount || t.PaymentID != uuid.Nil {
			return bad("charge must have a payment source, no payment_id, a positive amount and a fee not above it")
		}
	case TypeRefund:
		if t.SourceType != SourceTypeRefund || t.Amount > 0 || t.Fee != 0 || t.PaymentID == uuid.Nil {
			return bad("refund must have a refund source, a payment_id, a negative amount and no fee")
		}
	case TypeDispute:
		if t.SourceType != SourceTypeDispute || t.Amount > 0 || t.PaymentID == uuid.Nil {
			return bad("dispute must have a dispute source, a payment_id and a negative amount")
		}
	case TypeDisputeReversal:
		if t.SourceType != SourceTypeDispute || t.Amount < 0 || t.Fee != 0 || t.PaymentID == uuid.Nil {
			return bad("dispute_reversal must have a dispute source, a payment_id, a positive amount and no fee")
		}
	case TypePayout, TypePayoutPaid, TypePayoutReversal:
		if t.SourceType != SourceTypePayout || t.Fee != 0 || t.PaymentID != uuid.Nil ||
			(t.Type == TypePayout && t.Amount >= 0) || (t.Type == TypePayoutPaid && t.Amount != 0) || (t.Type == TypePayoutReversal && t.Amount <= 0) {
			return bad("%s must have a payout source, no payment_id, no fee and an amount of the type's sign", t.Type)
		}
	}
	if t.SourceType == SourceTypePayout && !t.Type.payout() {
		return bad("a payout source books only payout types, not %s", t.Type)
	}
	if len(t.Entries) < 2 || len(t.Entries) > len(accountsAll) {
		return bad("%d entries, want 2 to %d", len(t.Entries), len(accountsAll))
	}
	var sum, merchant, fees int64
	seen := make(map[Account]bool, len(accountsAll))
	for _, e := range t.Entries {
		switch {
		case !slices.Contains(accountsAll, e.Account):
			return bad("unknown account %q", e.Account)
		case seen[e.Account]:
			return bad("two entries for account %s", e.Account)
		case e.Amount == 0:
			return bad("zero entry for account %s", e.Account)
		}
		seen[e.Account] = true
		if sum, ok = addChecked(sum, e.Amount); !ok {
			return fmt.Errorf("%w: sum of entries", ErrOverflow)
		}
		switch e.Account {
		case AccountMerchantBalance:
			merchant = e.Amount
		case AccountProcessorFees:
			fees = e.Amount
		}
	}
	if sum != 0 {
		return fmt.Errorf("%w: entries sum to %d", ErrUnbalanced, sum)
	}
	if merchant != t.Net {
		return bad("merchant_balance entry %d differs from net %d", merchant, t.Net)
	}
	if fees != t.Fee {
		return bad("processor_fees entry %d differs from fee %d", fees, t.Fee)
	}
	return nil
}
