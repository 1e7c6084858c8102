// Package processor defines the card processor port: the interface the
// payments core calls to move money on cards, and the types that cross it.
// Adapters implement it: processor/sandbox, a deterministic in-process
// simulator, and processor/stripe, on Stripe's API. Neither this package nor its
// adapters ever see card numbers; payment methods are processor tokens.
//
// Outcomes and errors are kept apart. A card decline is a normal outcome: a
// Charge with Status StatusFailed and the decline fields set, returned with
// a nil error. A Go error means either that the request is invalid (an
// *errcode.Error) or that the outcome is unknown because the processor could
// not be reached or did not answer (an error wrapping ErrUnavailable); the
// caller then retries with the same idempotency key or asks Retrieve later.
package processor

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable reports that the processor could not be reached or that a
// call was cut short, so whether it took effect is unknown. Callers retry
// with the same idempotency key, or reconcile through Retrieve; they never
// assume the call failed.
var ErrUnavailable = errors.New("card processor unavailable")

// Error codes adapters return inside *errcode.Error values, in addition to
// the codes of package money and errcode.CodeResourceMissing for a
// reference the processor does not know.
const (
	// CodePaymentMethodInvalid means the payment method token is unknown.
	CodePaymentMethodInvalid = "payment_method_invalid"
	// CodeAmountExceedsCapturable means a capture asked for more than was
	// authorized and is still capturable.
	CodeAmountExceedsCapturable = "amount_exceeds_capturable"
	// CodeUnexpectedState means the charge's status forbids the operation,
	// such as capturing a charge that was canceled (errcode.KindConflict).
	CodeUnexpectedState = "charge_unexpected_state"
	// CodeAccountMissing means the payment was made on an account that is
	// no longer configured (a tenant's own Stripe account, removed since),
	// the only one that holds its charge (errcode.KindConflict).
	CodeAccountMissing = "processor_account_missing"
)

// Failure codes and decline codes of failed charges, as Stripe names them so
// that the Stripe adapter passes them through unchanged.
const (
	// FailureCardDeclined is the FailureCode of every card decline; the
	// DeclineCode says why.
	FailureCardDeclined = "card_declined"

	// DeclineGeneric means the issuer declined without saying why.
	DeclineGeneric = "generic_decline"
	// DeclineInsufficientFunds means the account lacks the funds.
	DeclineInsufficientFunds = "insufficient_funds"
	// DeclineFraudulent means the processor suspects fraud. The customer is
	// told only that the card was declined.
	DeclineFraudulent = "fraudulent"
)

// Capture methods of AuthorizeRequest.CaptureMethod.
const (
	// CaptureAutomatic captures the whole amount as soon as it is
	// authorized; it is the default when CaptureMethod is empty.
	CaptureAutomatic = "automatic"
	// CaptureManual leaves an authorized charge in StatusRequiresCapture
	// until Capture or Cancel is called.
	CaptureManual = "manual"
)

// Status is the state of a Charge.
type Status string

// Charge statuses. StatusSucceeded, StatusFailed and StatusCanceled are
// final; the others change through the caller's calls or an Update.
const (
	// StatusPending means the processor is still working on the charge
	// (some payment methods settle asynchronously); an Update reports the
	// outcome.
	StatusPending Status = "pending"
	// StatusRequiresAction means the customer must act, as NextAction says
	// (3-D Secure authentication).
	StatusRequiresAction Status = "requires_action"
	// StatusRequiresCapture means the charge is authorized for manual
	// capture; the funds are held until Capture or Cancel.
	StatusRequiresCapture Status = "requires_capture"
	// StatusSucceeded means the charge is captured; the money moves.
	StatusSucceeded Status = "succeeded"
	// StatusFailed means the charge was declined or otherwise failed; see
	// the failure fields.
	StatusFailed Status = "failed"
	// StatusCanceled means the charge was canceled before capture; held
	// funds are released.
	StatusCanceled Status = "canceled"
)

// Valid reports whether s is one of the statuses above.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusRequiresAction, StatusRequiresCapture,
		StatusSucceeded, StatusFailed, StatusCanceled:
		return true
	}
	return false
}

// Final reports whether no further status change can happen to a charge in
// status s. Refunds do not change a charge's status.
func (s Status) Final() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

// Next action types of NextAction.Type.
const (
	// NextActionRedirectToURL asks the client to send the customer to
	// NextAction.RedirectURL.
	NextActionRedirectToURL = "redirect_to_url"
	// NextActionUseStripeSDK asks the client to let Stripe's client library
	// handle the action.
	NextActionUseStripeSDK = "use_stripe_sdk"
)

// NextAction tells the client what the customer must do for a charge in
// StatusRequiresAction.
type NextAction struct {
	// Type is NextActionRedirectToURL or NextActionUseStripeSDK.
	Type string
	// RedirectURL is where to send the customer, for NextActionRedirectToURL.
	RedirectURL string
}

// AuthorizeRequest creates a charge and confirms it at once.
type AuthorizeRequest struct {
	TenantID  string
	PaymentID string
	// Amount is in minor units of Currency.
	Amount int64
	// Currency is a lowercase ISO 4217 code.
	Currency string
	// PaymentMethod is a processor token, such as "pm_card_visa".
	PaymentMethod string
	// CaptureMethod is CaptureAutomatic (the default when empty) or
	// CaptureManual.
	CaptureMethod string
	// IdempotencyKey makes retries of the same request safe.
	IdempotencyKey string
	// Metadata is passed to the processor as is.
	Metadata map[string]string
}

// CaptureRequest captures an authorized charge.
type CaptureRequest struct {
	// Ref is the charge's Ref.
	Ref       string
	PaymentID string
	// Amount is in minor units; it may be less than authorized, and the rest
	// is released. Zero captures everything that is capturable.
	Amount         int64
	IdempotencyKey string
}

// CancelRequest cancels a charge that is not yet captured.
type CancelRequest struct {
	// Ref is the charge's Ref.
	Ref            string
	PaymentID      string
	IdempotencyKey string
}

// RefundRequest returns captured money to the customer.
type RefundRequest struct {
	// Ref is the refunded charge's Ref.
	Ref string
	// TenantID, PaymentID and RefundID are our IDs; processors that send
	// notifications (Stripe) attach them so a notification names its refund.
	TenantID  string
	PaymentID string
	RefundID  string
	// Amount is in minor units of Currency.
	Amount         int64
	Currency       string
	IdempotencyKey string
}

// Charge is the processor's view of a payment at one moment. Amounts are in
// minor units of Currency.
type Charge struct {
	// Ref is the processor's reference of the charge. Callers store the Ref
	// of every Charge they receive and use the latest for later calls: an
	// adapter may issue a new one when the status changes (the sandbox does).
	Ref      string
	Status   Status
	Currency string
	// Amount is the amount authorized.
	Amount int64
	// AmountCapturable is what Capture may still take: Amount while the
	// status is StatusRequiresCapture, else 0.
	AmountCapturable int64
	// AmountCaptured is the amount captured, 0 until captured.
	AmountCaptured int64
	// Fee is the processor's fee on AmountCaptured, 0 until captured.
	Fee int64
	// FeeUnknown is set on a succeeded Charge whose answer did not carry
	// the fee (a Stripe webhook's PaymentIntent embeds no balance
	// transaction); Fee is then 0 and must not be booked. The caller asks
	// a FeeRetriever.
	FeeUnknown bool
	// NextAction is set while Status is StatusRequiresAction.
	NextAction *NextAction
	// DeclineCode, FailureCode and FailureMessage are set while Status is
	// StatusFailed. FailureMessage is safe to show to the customer.
	DeclineCode    string
	FailureCode    string
	FailureMessage string
}

// RefundStatus is the state of a Refund.
type RefundStatus string

// Refund statuses.
const (
	// RefundPending: the processor has not finished the refund yet.
	RefundPending RefundStatus = "pending"
	// RefundSucceeded: the money is on its way back to the customer.
	RefundSucceeded RefundStatus = "succeeded"
	// RefundFailed: the refund could not be made; see FailureReason.
	RefundFailed RefundStatus = "failed"
	// RefundCanceled: the refund was canceled before it was made (Stripe
	// allows it for refunds that wait for customer action).
	RefundCanceled RefundStatus = "canceled"
)

// Refund is the processor's view of a refund.
type Refund struct {
	// Ref is the processor's reference of the refund.
	Ref    string
	Status RefundStatus
	// Amount is in minor units of the charge's currency.
	Amount int64
	// FailureReason is set while Status is RefundFailed.
	FailureReason string
}

// Update is a status change the processor reports on its own, outside any
// call of the caller: an asynchronous payment settling, a customer completing
// 3-D Secure. The sandbox delivers Updates through an UpdateHandler; Stripe's
// webhooks arrive as Updates decoded by processor/stripe.ParseWebhook.
type Update struct {
	// Ref is the reference the payment knows the charge by: the Ref of the
	// last Charge returned to the caller before this change. The handler
	// must check it against the stored one before trusting the Update.
	Ref       string
	PaymentID string
	TenantID  string
	// Charge is the charge after the change; its Ref may differ from Ref.
	Charge Charge
	// EventID is the processor's ID of the notification that carried the
	// update (a Stripe event ID), when there is one. An update with an
	// EventID takes effect at most once, however often it arrives.
	EventID string
}

// RefundUpdate is a refund's status change the processor reports on its own
// (Stripe's charge.refund.updated).
type RefundUpdate struct {
	TenantID string
	// RefundID is our refund's ID ("re_...").
	RefundID string
	Refund   Refund
	// EventID is as in Update.
	EventID string
}

// Gate is implemented by processors that can refuse a call at once, before
// anything is sent, such as an adapter whose circuit breaker is open. Ready
// returns nil when calls may go out, or an error wrapping ErrUnavailable.
type Gate interface {
	Ready() error
}

// RetryAfter is implemented by errors wrapping ErrUnavailable that know
// how long the processor will keep refusing calls, such as the error of an
// open circuit breaker; the HTTP edge turns it into Retry-After.
type RetryAfter interface {
	RetryAfter() time.Duration
}

// RetryAfterOf returns the delay that an error in err's chain announces, or
// 0 when none does.
func RetryAfterOf(err error) time.Duration {
	var ra RetryAfter
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}

// RefundRetriever is implemented by processors whose refunds can finish
// later (Stripe's pending refunds). The reconciler then asks for the
// refund's state instead of repeating its creation, whose idempotent
// replay would report the first answer again. Codes:
// errcode.CodeResourceMissing.
type RefundRetriever interface {
	RetrieveRefund(ctx context.Context, ref string) (Refund, error)
}

// Fee is the processor's record of what a captured charge cost: its fee
// and the net that reaches the merchant's balance, in minor units of
// Currency (Stripe's balance transaction).
type Fee struct {
	Amount   int64
	Net      int64
	Currency string
}

// FeeRetriever is implemented by processors whose answers may lack the fee
// of a captured charge (Charge.FeeUnknown). RetrieveFee reads the charge's
// fee from the processor's own record of the money movement. Codes:
// errcode.CodeResourceMissing; an error wrapping ErrUnavailable when the
// processor has no record of the fee yet.
type FeeRetriever interface {
	RetrieveFee(ctx context.Context, ref string) (Fee, error)
}

// Resolver picks the processor that serves a tenant: the platform's, or the
// tenant's own account.
type Resolver func(ctx context.Context, tenantID string) (Processor, error)

// Accounts a payment is made on: the platform's processor account, or the
// tenant's own (package accounts).
const (
	AccountPlatform = "platform"
	AccountTenant   = "tenant"
)

// AccountResolver picks the processor of one of a tenant's accounts:
// account "" is the account that serves the tenant's new payments now,
// AccountPlatform or AccountTenant the one a payment was made on, so that
// its capture, cancel, refunds and lookups reach the account that holds
// it. It answers the processor and the account it resolved.
type AccountResolver func(ctx context.Context, tenantID, account string) (Processor, string, error)

// UpdateHandler applies an Update. It must be idempotent: processors deliver
// at least once, and after a restart an Update may repeat what Retrieve
// already reported.
type UpdateHandler func(ctx context.Context, u Update) error

// Processor moves money on cards. Every method honors ctx: when ctx ends
// before the processor answers, the method returns an error wrapping both
// ErrUnavailable and ctx.Err(), since the call may have taken effect.
//
// Invalid requests return *errcode.Error values: the codes of package money
// for amounts and currencies (with Param "amount" or "currency"),
// errcode.CodeParameterMissing and errcode.CodeParameterInvalid for other
// fields, and the codes named on each method.
type Processor interface {
	// Name names the processor: "sandbox" or "stripe".
	Name() string
	// Authorize creates a charge and confirms it. With CaptureAutomatic a
	// successful charge comes back StatusSucceeded, with CaptureManual
	// StatusRequiresCapture; a decline comes back StatusFailed with a nil
	// error. Codes: CodePaymentMethodInvalid (Param "payment_method").
	Authorize(ctx context.Context, req AuthorizeRequest) (Charge, error)
	// Capture captures a charge in StatusRequiresCapture, possibly for less
	// than was authorized. Codes: CodeAmountExceedsCapturable (Param
	// "amount"), CodeUnexpectedState, errcode.CodeResourceMissing.
	Capture(ctx context.Context, req CaptureRequest) (Charge, error)
	// Cancel cancels a charge in StatusRequiresCapture or
	// StatusRequiresAction. Codes: CodeUnexpectedState,
	// errcode.CodeResourceMissing.
	Cancel(ctx context.Context, req CancelRequest) (Charge, error)
	// Refund refunds part or all of a captured charge. Codes:
	// errcode.CodeResourceMissing.
	Refund(ctx context.Context, req RefundRequest) (Refund, error)
	// Retrieve reports the charge's current state; reconciliation uses it
	// to learn outcomes it missed. Codes: errcode.CodeResourceMissing.
	Retrieve(ctx context.Context, ref string) (Charge, error)
}
