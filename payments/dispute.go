package payments

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/money"
	"github.com/payments-api/payments/processor"
)

// DisputeStatus is a dispute's state; the values are processor's.
type DisputeStatus = processor.DisputeStatus

// DisputeStatuses lists every dispute status.
var DisputeStatuses = []DisputeStatus{
	processor.DisputeWarningNeedsResponse, processor.DisputeNeedsResponse, processor.DisputeUnderReview,
	processor.DisputeWon, processor.DisputeLost,
}

// disputeRank orders the statuses: a processor notification moves a
// dispute only to a status of a higher rank, so an older notification
// delivered late never moves it back, and won and lost (the same, highest
// rank) are final. Of two notifications of the same rank, the one with the
// older processor time (Stripe's event created) changes nothing.
func disputeRank(s DisputeStatus) int {
	switch s {
	case processor.DisputeWarningNeedsResponse:
		return 0
	case processor.DisputeNeedsResponse:
		return 1
	case processor.DisputeUnderReview:
		return 2
	case processor.DisputeWon, processor.DisputeLost:
		return 3
	}
	return -1
}

// DisputeOperation is a processor call on a dispute that was started and
// not yet recorded as finished.
type DisputeOperation string

// Dispute operations.
const (
	DisputeOpNone           DisputeOperation = ""
	DisputeOpSubmitEvidence DisputeOperation = "submit_evidence"
	DisputeOpClose          DisputeOperation = "close"
)

// Codes of disputes.
const (
	// CodeChargeDisputed answers (409) a refund of a disputed payment.
	CodeChargeDisputed = "charge_disputed"
	// CodeDisputeClosed answers (409) evidence or acceptance of a dispute
	// that is won or lost already.
	CodeDisputeClosed = "dispute_closed"
	// CodeDisputeEvidenceSubmitted answers (409) evidence for a dispute
	// whose evidence was submitted already: it cannot change.
	CodeDisputeEvidenceSubmitted = "dispute_evidence_submitted"
	// CodeDisputeOperationInProgress answers (409) a request while another
	// call on the dispute is in flight.
	CodeDisputeOperationInProgress = "dispute_operation_in_progress"
	// CodeDisputesUnsupported answers (409) evidence or acceptance of a
	// dispute whose processor cannot take them.
	CodeDisputesUnsupported = "dispute_processor_unsupported"
)

// DisputeFeeDefault is the processor's dispute fee when it states none:
// Stripe's 15.00 in the charge's currency, in its minor unit.
func DisputeFeeDefault(currency string) int64 {
	fee := int64(15)
	for range money.Currency(currency).Exponent() {
		fee *= 10
	}
	return fee
}

// Dispute is a customer's dispute (chargeback) of a payment. Amounts are
// minor units of Currency.
type Dispute struct {
	ID                  uuid.UUID
	TenantID            uuid.UUID
	PaymentID           uuid.UUID
	Processor           string
	ProcessorRef        string
	Amount              int64
	Currency            string
	Reason              string
	Status              DisputeStatus
	EvidenceDueBy       *time.Time
	Evidence            map[string]string
	EvidenceSubmittedAt *time.Time
	Operation           DisputeOperation
	OperationStartedAt  *time.Time
	FundsWithdrawn      bool
	FundsReinstated     bool
	AmountWithdrawn     int64
	Fee                 int64
	AmountReinstated    int64
	ProcessorUpdatedAt  *time.Time
	Version             int
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// PublicID is the dispute's API identifier ("dp_...").
func (d Dispute) PublicID() string { return ids.Format(ids.PrefixDispute, d.ID) }

// processorKey derives the processor's idempotency key of an operation
// started at version v, so every retry of that start is the same request.
func (d Dispute) processorKey(op DisputeOperation, v int) string {
	return d.PublicID() + ":" + string(op) + ":" + strconv.Itoa(v)
}

// DisputeView is the public JSON shape of a dispute.
type DisputeView struct {
	ID                string            `json:"id" doc:"Unique identifier, prefixed dp_." example:"dp_06h17frpsdzff29kp8gyg5mc4w"`
	Object            string            `json:"object" enum:"dispute" doc:"Always dispute."`
	Amount            int64             `json:"amount" doc:"Disputed amount in the currency's minor unit." example:"2000"`
	Currency          string            `json:"currency" doc:"Three-letter ISO 4217 code, lowercase." example:"usd"`
	Reason            string            `json:"reason" doc:"The issuer's reason, as the processor names it (fraudulent, product_not_received, duplicate, general, ...)." example:"fraudulent"`
	Status            string            `json:"status" enum:"warning_needs_response,needs_response,under_review,won,lost" doc:"The dispute's state: an inquiry (warning_needs_response), waiting for evidence (needs_response), evidence submitted (under_review), or closed (won, lost)." example:"needs_response"`
	Payment           string            `json:"payment" doc:"The disputed payment." example:"pay_06h17frpsdzff29kp8gyg5mc4w"`
	ProcessorDispute  string            `json:"processor_dispute" doc:"The processor's ID of the dispute." example:"du_1PgafyB7WZ01zgkW3n2aTq9c"`
	EvidenceDueBy     *int64            `json:"evidence_due_by" doc:"When evidence must be submitted, Unix seconds; null when none is due." example:"1764694800"`
	Evidence          map[string]string `json:"evidence" doc:"The text evidence submitted, by field." example:"{\"product_description\":\"Blue T-shirt, size M\"}"`
	EvidenceSubmitted bool              `json:"evidence_submitted" doc:"Whether evidence was submitted; it cannot change afterwards." example:"false"`
	FundsWithdrawn    bool              `json:"funds_withdrawn" doc:"Whether the disputed amount and the dispute fee left the balance." example:"true"`
	FundsReinstated   bool              `json:"funds_reinstated" doc:"Whether the disputed amount came back (a won dispute); the fee does not." example:"false"`
	AmountWithdrawn   int64             `json:"amount_withdrawn" doc:"Disputed amount withdrawn from the balance, minor units." example:"2000"`
	Fee               int64             `json:"fee" doc:"The processor's dispute fee withdrawn with it, minor units." example:"1500"`
	AmountReinstated  int64             `json:"amount_reinstated" doc:"Amount that came back, minor units." example:"0"`
	Version           int               `json:"version" doc:"Increases with every change; events carry it." example:"2"`
	Created           int64             `json:"created" doc:"Creation time, Unix seconds." example:"1764090000"`
	Updated           int64             `json:"updated" doc:"Time of the last change, Unix seconds." example:"1764090000"`
	Livemode          bool              `json:"livemode" doc:"Whether the dispute is about real money."`
}

// ToView renders the dispute's public shape.
func (d Dispute) ToView() DisputeView {
	v := DisputeView{
		ID: d.PublicID(), Object: "dispute", Amount: d.Amount, Currency: d.Currency, Reason: d.Reason, Status: string(d.Status),
		Payment: ids.Format(ids.PrefixPayment, d.PaymentID), ProcessorDispute: d.ProcessorRef, Evidence: d.Evidence,
		EvidenceSubmitted: d.EvidenceSubmittedAt != nil, FundsWithdrawn: d.FundsWithdrawn, FundsReinstated: d.FundsReinstated,
		AmountWithdrawn: d.AmountWithdrawn, Fee: d.Fee, AmountReinstated: d.AmountReinstated, Version: d.Version,
		Created: d.CreatedAt.Unix(), Updated: d.UpdatedAt.Unix(),
	}
	if v.Evidence == nil {
		v.Evidence = map[string]string{}
	}
	if d.EvidenceDueBy != nil {
		t := d.EvidenceDueBy.Unix()
		v.EvidenceDueBy = &t
	}
	return v
}

func (d Dispute) snapshot() json.RawMessage {
	b, _ := json.Marshal(d.ToView())
	return b
}
