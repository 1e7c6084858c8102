// Package payments owns payments and refunds: their invariants, the one
// state machine of a payment, and the use cases that move money. Each use
// case owns its transaction boundaries: it records the intent in one
// database transaction, calls the processor outside any transaction, and
// records the outcome, the ledger postings and the events in a second one
// (DESIGN.md rules 3, 5, 6). A crash in between leaves an operation that the
// reconciler finishes by repeating the identical idempotent processor call.
package payments

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/processor"
)

// Status is a payment's state.
type Status string

// Payment statuses.
const (
	StatusPending         Status = "pending"
	StatusRequiresAction  Status = "requires_action"
	StatusRequiresCapture Status = "requires_capture"
	StatusSucceeded       Status = "succeeded"
	StatusFailed          Status = "failed"
	StatusCanceled        Status = "canceled"
)

// transitions is the one table of allowed status changes. A status absent
// as a key is final. Staying in the same status is not a transition.
var transitions = map[Status][]Status{
	StatusPending:         {StatusRequiresAction, StatusRequiresCapture, StatusSucceeded, StatusFailed, StatusCanceled},
	StatusRequiresAction:  {StatusRequiresCapture, StatusSucceeded, StatusFailed, StatusCanceled},
	StatusRequiresCapture: {StatusSucceeded, StatusCanceled, StatusFailed},
}

// Statuses lists every status.
var Statuses = []Status{StatusPending, StatusRequiresAction, StatusRequiresCapture, StatusSucceeded, StatusFailed, StatusCanceled}

// CanTransition reports whether the table allows from → to.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Final reports whether no transition leaves s.
func (s Status) Final() bool { return len(transitions[s]) == 0 }

// CodeInvalidState is the code of a request the state machine refuses.
const CodeInvalidState = "payment_invalid_state"

func invalidState(p Payment, action string) *errcode.Error {
	e := errcode.New(errcode.KindConflict, CodeInvalidState, "this payment's status is %s, which does not allow %s", p.Status, action)
	e.Payment = p.PublicID()
	return e
}

// Capture methods.
const (
	CaptureAutomatic = "automatic"
	CaptureManual    = "manual"
)

// Location is where a payment was made.
type Location struct {
	Lat     float64
	Lon     float64
	Geohash string
}

// Operation is a processor call that was started and not yet recorded as
// finished; the reconciler repeats it after a crash.
type Operation string

// Operations.
const (
	OpNone      Operation = ""
	OpAuthorize Operation = "authorize"
	OpCapture   Operation = "capture"
	OpCancel    Operation = "cancel"
)

// Payment is a card payment. Amounts are minor units of Currency.
type Payment struct {
	ID                  uuid.UUID
	TenantID            uuid.UUID
	Amount              int64
	Currency            string
	Status              Status
	CaptureMethod       string
	PaymentMethod       string
	Description         *string
	Customer            *string
	Metadata            map[string]string
	Location            *Location
	AmountCapturable    int64
	AmountCaptured      int64
	AmountRefunded      int64
	AmountRefundPending int64
	Fee                 int64
	Processor           string
	ProcessorRef        *string
	Operation           Operation
	OperationStartedAt  *time.Time
	OperationAmount     *int64
	NextAction          *processor.NextAction
	FailureCode         *string
	FailureMessage      *string
	DeclineCode         *string
	Version             int
	CreatedAt           time.Time
	UpdatedAt           time.Time

	// ProcessorAccount is the account the payment was made on
	// (processor.AccountPlatform or AccountTenant); its capture, cancel,
	// refunds and lookups go there, whatever the tenant's account is now.
	// "" for payments recorded before accounts were recorded: they use
	// the tenant's current account.
	ProcessorAccount string
	// RiskRule is the location risk rule that matched the payment, if
	// any: it was blocked (failure code risk_blocked) or sent to review.
	RiskRule *uuid.UUID
	// Disputed is set once a dispute of the payment was opened; refunds
	// of it are refused from then on.
	Disputed bool
}

// PublicID is the payment's API identifier ("pay_...").
func (p Payment) PublicID() string { return ids.Format(ids.PrefixPayment, p.ID) }

// Refundable is what may still be refunded.
func (p Payment) Refundable() int64 {
	return p.AmountCaptured - p.AmountRefunded - p.AmountRefundPending
}

// processorKey derives the processor's idempotency key of an operation from
// the payment, so every retry, by us or a restarted process, is the same
// request to the processor.
func (p Payment) processorKey(op Operation) string { return p.PublicID() + ":" + string(op) }

// View is the public JSON shape of a payment: the API answers it and
// events carry it as their snapshot.
type View struct {
	ID               string            `json:"id" doc:"Unique identifier, prefixed pay_." example:"pay_06h17frpsdzff29kp8gyg5mc4w"`
	Object           string            `json:"object" enum:"payment" doc:"Always payment."`
	Amount           int64             `json:"amount" doc:"Amount to charge in the currency's minor unit (cents for usd, yen for jpy)." example:"2000"`
	AmountCapturable int64             `json:"amount_capturable" doc:"Amount that may still be captured." example:"0"`
	AmountReceived   int64             `json:"amount_received" doc:"Amount captured." example:"2000"`
	AmountRefunded   int64             `json:"amount_refunded" doc:"Sum of the payment's succeeded refunds." example:"0"`
	Currency         string            `json:"currency" doc:"Three-letter ISO 4217 code, lowercase." example:"usd"`
	Status           string            `json:"status" enum:"pending,requires_action,requires_capture,succeeded,failed,canceled" doc:"The payment's state." example:"succeeded"`
	CaptureMethod    string            `json:"capture_method" enum:"automatic,manual" doc:"automatic captures on authorization; manual waits for a capture call." example:"automatic"`
	PaymentMethod    string            `json:"payment_method" doc:"The processor token that was charged." example:"pm_card_visa"`
	Description      *string           `json:"description" doc:"The merchant's description." example:"Order 1234"`
	Customer         *string           `json:"customer" doc:"The merchant's own reference of the customer." example:"cus_8812"`
	Metadata         map[string]string `json:"metadata" doc:"The merchant's key-value pairs." example:"{\"order_id\":\"1234\"}"`
	Location         *LocationView     `json:"location" doc:"Where the payment was made, when given."`
	Fee              int64             `json:"fee" doc:"The processor's fee on the captured amount." example:"88"`
	NextAction       *NextActionView   `json:"next_action" doc:"What the customer must do while status is requires_action."`
	FailureCode      *string           `json:"failure_code" doc:"Why the payment failed, such as card_declined." example:"card_declined"`
	FailureMessage   *string           `json:"failure_message" doc:"A message about the failure that is safe to show the customer."`
	DeclineCode      *string           `json:"decline_code" doc:"The issuer's reason for a decline." example:"insufficient_funds"`
	Processor        string            `json:"processor" doc:"Which processor handles the payment." example:"sandbox"`
	Version          int               `json:"version" doc:"Increases with every change; events carry it so that receivers can drop stale updates." example:"3"`
	Created          int64             `json:"created" doc:"Creation time, Unix seconds." example:"1764090000"`
	Livemode         bool              `json:"livemode" doc:"Whether the payment moved real money."`
	Risk             RiskView          `json:"risk" doc:"What the tenant's location risk rules decided."`
	Disputed         bool              `json:"disputed" doc:"Whether the customer's bank opened a dispute (chargeback) of the payment; see GET /v1/disputes?payment=. A disputed payment cannot be refunded." example:"false"`
}

// RiskView is the verdict of a payment's location risk rules.
type RiskView struct {
	Review bool    `json:"review" doc:"Whether a rule with action review matched: the payment proceeded and awaits the merchant's review." example:"false"`
	Rule   *string `json:"rule" doc:"The ID of the rule that matched (rr_...): it sent the payment to review, or blocked it (failure_code risk_blocked)." example:"rr_06h17frpsdzff29kp8gyg5mc4w"`
}

// LocationView is a payment's location.
type LocationView struct {
	Lat     float64 `json:"lat" doc:"Latitude in degrees." example:"52.52"`
	Lon     float64 `json:"lon" doc:"Longitude in degrees." example:"13.405"`
	Geohash string  `json:"geohash" doc:"Geohash of the point, precision 9." example:"u33dc0cpp"`
}

// NextActionView tells the client what to do next.
type NextActionView struct {
	Type        string `json:"type" doc:"redirect_to_url or use_stripe_sdk." example:"redirect_to_url"`
	RedirectURL string `json:"redirect_url,omitempty" doc:"Where to send the customer."`
}

// ToView renders the payment's public shape.
func (p Payment) ToView() View {
	v := View{
		ID: p.PublicID(), Object: "payment", Amount: p.Amount, AmountCapturable: p.AmountCapturable,
		AmountReceived: p.AmountCaptured, AmountRefunded: p.AmountRefunded, Currency: p.Currency,
		Status: string(p.Status), CaptureMethod: p.CaptureMethod, PaymentMethod: p.PaymentMethod,
		Description: p.Description, Customer: p.Customer, Metadata: p.Metadata, Fee: p.Fee,
		FailureCode: p.FailureCode, FailureMessage: p.FailureMessage, DeclineCode: p.DeclineCode,
		Processor: p.Processor, Version: p.Version, Created: p.CreatedAt.Unix(), Disputed: p.Disputed,
	}
	if v.Metadata == nil {
		v.Metadata = map[string]string{}
	}
	if p.Location != nil {
		v.Location = &LocationView{Lat: p.Location.Lat, Lon: p.Location.Lon, Geohash: p.Location.Geohash}
	}
	if p.RiskRule != nil {
		rule := ids.Format(ids.PrefixRiskRule, *p.RiskRule)
		blocked := p.FailureCode != nil && *p.FailureCode == CodeRiskBlocked
		v.Risk = RiskView{Review: !blocked, Rule: &rule}
	}
	if p.NextAction != nil {
		v.NextAction = &NextActionView{Type: p.NextAction.Type, RedirectURL: p.NextAction.RedirectURL}
	}
	return v
}

func (p Payment) snapshot() json.RawMessage {
	b, _ := json.Marshal(p.ToView())
	return b
}
