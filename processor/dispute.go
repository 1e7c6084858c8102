package processor

import (
	"context"
	"time"
)

// DisputeStatus is the state of a dispute, in Stripe's words.
type DisputeStatus string

// Dispute statuses. DisputeWon and DisputeLost are final.
const (
	// DisputeWarningNeedsResponse: an inquiry (Stripe's early warning);
	// no funds have moved yet.
	DisputeWarningNeedsResponse DisputeStatus = "warning_needs_response"
	// DisputeNeedsResponse: a chargeback waiting for the merchant's
	// evidence until the due date.
	DisputeNeedsResponse DisputeStatus = "needs_response"
	// DisputeUnderReview: evidence was submitted; the issuer decides.
	DisputeUnderReview DisputeStatus = "under_review"
	// DisputeWon: decided for the merchant; withdrawn funds come back.
	DisputeWon DisputeStatus = "won"
	// DisputeLost: decided for the customer, or accepted by the merchant.
	DisputeLost DisputeStatus = "lost"
)

// Valid reports whether s is one of the statuses above.
func (s DisputeStatus) Valid() bool {
	switch s {
	case DisputeWarningNeedsResponse, DisputeNeedsResponse, DisputeUnderReview, DisputeWon, DisputeLost:
		return true
	}
	return false
}

// Final reports whether s is won or lost.
func (s DisputeStatus) Final() bool { return s == DisputeWon || s == DisputeLost }

// DisputeFunds is one movement of a dispute's funds at the processor
// (Stripe's balance transaction of a dispute).
type DisputeFunds struct {
	// Ref is the processor's reference of the movement; "" when the
	// processor named none.
	Ref string
	// Amount is what moved, in minor units of the dispute's currency,
	// never negative: out of the balance for a withdrawal, into it for a
	// reinstatement.
	Amount int64
	// Fee is the processor's dispute fee taken with a withdrawal, in
	// minor units; FeeKnown is false when the processor did not state it
	// and the default fee applies.
	Fee      int64
	FeeKnown bool
}

// Dispute is the processor's view of a dispute at one moment.
type Dispute struct {
	// Ref is the processor's dispute ID (Stripe's du_... or dp_...).
	Ref    string
	Status DisputeStatus
	// Amount is the disputed amount in minor units of Currency.
	Amount   int64
	Currency string
	// Reason is the issuer's reason, such as fraudulent.
	Reason string
	// EvidenceDueBy is when evidence must be submitted; zero when none is
	// due.
	EvidenceDueBy time.Time
	// Withdrawal and Reinstatement are set once the funds moved.
	Withdrawal    *DisputeFunds
	Reinstatement *DisputeFunds
}

// DisputeUpdate is a dispute's change the processor reports on its own
// (Stripe's charge.dispute.* events, the sandbox's timers).
type DisputeUpdate struct {
	// TenantID and PaymentID are our IDs of the disputed payment, when
	// the notification names them; otherwise PaymentRef (the charge's
	// reference at the processor) locates it.
	TenantID   string
	PaymentID  string
	PaymentRef string
	Dispute    Dispute
	// EventID is the processor's ID of the notification, as in Update.
	EventID string
	// EventCreated is the processor's time of the notification: of two
	// notifications of the same status rank, the older changes nothing.
	EventCreated time.Time
	// Funds says which movement the notification announces ("" none,
	// FundsWithdrawn, FundsReinstated), for processors that report the
	// movement without its balance transaction.
	Funds string
}

// Values of DisputeUpdate.Funds.
const (
	FundsWithdrawn  = "withdrawn"
	FundsReinstated = "reinstated"
)

// DisputeHandler applies a DisputeUpdate. It must be idempotent.
type DisputeHandler func(ctx context.Context, u DisputeUpdate) error

// DisputeEvidence is the merchant's text evidence, by Stripe's field
// names. Empty fields are not sent.
type DisputeEvidence map[string]string

// DisputeRequest names a dispute for a processor call.
type DisputeRequest struct {
	// Ref is the processor's dispute ID.
	Ref string
	// TenantID, PaymentID and DisputeID are our IDs; Amount and Currency
	// the dispute's, for processors that keep no state (the sandbox).
	TenantID  string
	PaymentID string
	DisputeID string
	Amount    int64
	Currency  string
	// IdempotencyKey makes retries of the same request safe.
	IdempotencyKey string
}

// Disputes is implemented by processors whose charges can be disputed.
// Calls return the dispute after the change. Codes:
// errcode.CodeResourceMissing; an error wrapping ErrUnavailable when the
// outcome is unknown.
type Disputes interface {
	// SubmitDisputeEvidence sends the evidence and submits it (no later
	// change is possible): the dispute goes under review.
	SubmitDisputeEvidence(ctx context.Context, req DisputeRequest, evidence DisputeEvidence) (Dispute, error)
	// CloseDispute accepts the dispute: it is lost.
	CloseDispute(ctx context.Context, req DisputeRequest) (Dispute, error)
}

// DisputeRetriever is implemented by processors that can answer a
// dispute's current state (the reconciliation report asks). Codes:
// errcode.CodeResourceMissing.
type DisputeRetriever interface {
	RetrieveDispute(ctx context.Context, ref string) (Dispute, error)
}

// PaymentLocator is implemented by processors whose dispute notifications
// name only the processor's charge: LocatePayment answers our tenant and
// payment IDs from the charge's metadata. Codes: errcode.CodeResourceMissing.
type PaymentLocator interface {
	LocatePayment(ctx context.Context, ref string) (tenantID, paymentID string, err error)
}
