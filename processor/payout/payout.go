// Package payout is the payout processor port: the interface the payments
// core calls to move money out of the platform to a merchant, and the
// types that cross it. Adapters implement it: processor/sandbox (Payouts,
// deterministic, in process) and processor/stripe (ConnectPayouts: a
// Transfer to the tenant's connected account, then a Payout on it).
//
// The port is shaped so that a payee-and-payment processor such as Tipalti
// fits without change: Request.Destination is the payee (the connected
// account at Stripe, the payee ID at Tipalti), Request.PayoutID is the
// payment's reference at the processor, and the outcome arrives either
// through Retrieve or as an Update decoded from the processor's
// notification.
//
// As in package processor, outcomes and errors are kept apart: a payout
// the processor refused or that bounced is a Result with StatusFailed and a
// nil error; a Go error is either an *errcode.Error (the request is
// invalid) or wraps processor.ErrUnavailable (the outcome is unknown; the
// caller repeats the call with the same IdempotencyKey later).
package payout

import (
	"context"
	"time"
)

// Status is the state of a payout at the processor.
type Status string

// Statuses. Paid, failed and canceled are final.
const (
	// StatusPending: the processor accepted the payout and has not sent it
	// yet.
	StatusPending Status = "pending"
	// StatusInTransit: the funds are on their way to the destination.
	StatusInTransit Status = "in_transit"
	// StatusPaid: the funds reached the destination.
	StatusPaid Status = "paid"
	// StatusFailed: the payout could not be made or bounced; the funds are
	// back on the platform. FailureCode says why.
	StatusFailed Status = "failed"
	// StatusCanceled: the payout was canceled at the processor before it
	// was sent.
	StatusCanceled Status = "canceled"
)

// Final reports whether no further change can happen to a payout in s.
func (s Status) Final() bool {
	return s == StatusPaid || s == StatusFailed || s == StatusCanceled
}

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	return s == StatusPending || s == StatusInTransit || s.Final()
}

// Codes adapters return inside *errcode.Error values.
const (
	// CodeDestinationMissing means the adapter needs a destination (a
	// connected account) and the request has none (errcode.KindConflict).
	CodeDestinationMissing = "payout_destination_missing"
)

// Request names one payout. The same Request is sent on every attempt.
type Request struct {
	// TenantID and PayoutID are our IDs ("ten_...", "po_..."); adapters
	// attach them to the processor's objects so that notifications name
	// the payout.
	TenantID string
	PayoutID string
	// Amount is in minor units of Currency (lowercase ISO 4217).
	Amount   int64
	Currency string
	// Destination is the payee at the processor: a Stripe connected
	// account ("acct_..."), a Tipalti payee ID; empty for the sandbox.
	Destination string
	// Description is the merchant's text; adapters may pass it on.
	Description string
	// IdempotencyKey makes every write of the payout safe to repeat;
	// adapters derive one key per request they send from it.
	IdempotencyKey string
	// Ref and TransferRef are the processor's references of a payout that
	// was sent (Result.Ref, Result.TransferRef), for Retrieve.
	Ref         string
	TransferRef string
	// SentAt is when the send was recorded, for Retrieve.
	SentAt time.Time
}

// Result is the processor's view of a payout at one moment.
type Result struct {
	// Ref is the processor's reference of the payout (Stripe's po_ on the
	// connected account); TransferRef the platform-side movement that
	// funded it (Stripe's tr_), when there is one.
	Ref         string
	TransferRef string
	Status      Status
	// FailureCode and FailureMessage are set while Status is StatusFailed.
	// FailureMessage is safe to show to the merchant.
	FailureCode    string
	FailureMessage string
}

// Update is a payout's change the processor reports on its own (Stripe's
// payout.paid and payout.failed webhooks).
type Update struct {
	TenantID string
	// PayoutID is our payout's ID ("po_...").
	PayoutID string
	// Processor names the adapter whose notification this is, and
	// Destination the account it came from (the event's connected
	// account); both are checked against the payout's.
	Processor   string
	Destination string
	Result      Result
	// EventID is the processor's ID of the notification; an update with
	// an EventID takes effect at most once.
	EventID string
	// Created is when the processor made the change (Stripe's event
	// created), for telling an older notification from a newer one.
	Created time.Time
}

// Processor moves payouts. Every method honors ctx: when ctx ends before
// the processor answers, the method returns an error wrapping
// processor.ErrUnavailable, since the call may have taken effect.
type Processor interface {
	// Name names the adapter: "sandbox" or "stripe". Payouts record it, so
	// that their later calls reach the same adapter.
	Name() string
	// NeedsDestination reports whether Send requires Request.Destination.
	NeedsDestination() bool
	// Send starts the payout: the funds leave for the destination. It is
	// idempotent by Request.IdempotencyKey: repeating it (after a crash,
	// a timeout) answers the first call's outcome and moves nothing
	// twice. It answers StatusInTransit (or pending, paid, failed when the
	// processor already knows more). Codes: CodeDestinationMissing, the
	// codes of package money.
	Send(ctx context.Context, req Request) (Result, error)
	// Retrieve reports the state of a payout that was sent (req.Ref set).
	// Codes: errcode.CodeResourceMissing.
	Retrieve(ctx context.Context, req Request) (Result, error)
	// Notifies reports whether the processor reports outcomes on its own
	// (webhooks): the driver then asks Retrieve only for payouts whose
	// notification is overdue.
	Notifies() bool
}

// Returner is implemented by adapters whose failed or canceled payout
// leaves the funds short of the platform: at Stripe they return to the
// connected account's balance, not the platform's. Return brings them
// back (idempotently, by req.IdempotencyKey) and is called before the
// failure is booked, since the ledger then returns the amount to the
// merchant's balance on the platform. An error wrapping
// processor.ErrUnavailable means: try again later.
type Returner interface {
	Return(ctx context.Context, req Request) error
}
