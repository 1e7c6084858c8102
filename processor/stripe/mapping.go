package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	gostripe "github.com/stripe/stripe-go/v76"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/processor"
)

// chargeOf maps a PaymentIntent onto a Charge:
//
//	requires_payment_method          failed, with last_payment_error's codes
//	requires_confirmation            requires_action (no next action)
//	requires_action                  requires_action, with next_action
//	processing                       pending
//	requires_capture                 requires_capture, amount_capturable
//	succeeded                        succeeded, amount_received, fee
//	canceled                         canceled
//
// An unknown status maps to pending, which moves no payment anywhere.
//
// The fee is the latest charge's balance transaction fee when Stripe
// embedded it (the adapter's calls expand it; webhook payloads do not) and
// the balance transaction is in the payment's currency; otherwise 0, and
// the ledger records no fee for the payment.
func chargeOf(pi *gostripe.PaymentIntent) processor.Charge {
	c := processor.Charge{Ref: pi.ID, Currency: string(pi.Currency), Amount: pi.Amount}
	switch pi.Status {
	case gostripe.PaymentIntentStatusRequiresPaymentMethod:
		c.Status = processor.StatusFailed
		c.FailureCode, c.DeclineCode, c.FailureMessage = failureOf(pi.LastPaymentError)
	case gostripe.PaymentIntentStatusRequiresConfirmation:
		c.Status = processor.StatusRequiresAction
	case gostripe.PaymentIntentStatusRequiresAction:
		c.Status = processor.StatusRequiresAction
		c.NextAction = nextActionOf(pi.NextAction)
	case gostripe.PaymentIntentStatusRequiresCapture:
		c.Status = processor.StatusRequiresCapture
		c.AmountCapturable = pi.AmountCapturable
	case gostripe.PaymentIntentStatusSucceeded:
		c.Status = processor.StatusSucceeded
		c.AmountCaptured = pi.AmountReceived
		switch ch := pi.LatestCharge; {
		case ch == nil || ch.BalanceTransaction == nil || ch.BalanceTransaction.Object == "":
			// Not expanded (a webhook's object names the charge by its
			// ID only), or not created yet: the caller asks RetrieveFee.
			c.FeeUnknown = true
		case string(ch.BalanceTransaction.Currency) == string(pi.Currency):
			c.Fee = ch.BalanceTransaction.Fee
		}
	case gostripe.PaymentIntentStatusCanceled:
		c.Status = processor.StatusCanceled
	default: // processing, and statuses Stripe may add
		c.Status = processor.StatusPending
	}
	return c
}

// failureOf reads a PaymentIntent's last payment error. Card errors are
// card_declined with the issuer's reason as the decline code (Stripe's
// decline_code, or its error code such as expired_card); other errors keep
// Stripe's code.
func failureOf(e *gostripe.Error) (code, decline, message string) {
	if e == nil {
		return "payment_failed", "", "The payment failed."
	}
	message = e.Msg
	if e.Type == gostripe.ErrorTypeCard {
		decline = string(e.DeclineCode)
		if decline == "" && e.Code != gostripe.ErrorCodeCardDeclined {
			decline = string(e.Code)
		}
		if decline == "" {
			decline = processor.DeclineGeneric
		}
		return processor.FailureCardDeclined, decline, message
	}
	code = string(e.Code)
	if code == "" {
		code = "payment_failed"
	}
	return code, string(e.DeclineCode), message
}

// nextActionOf maps Stripe's next_action. Without a return_url Stripe asks
// for use_stripe_sdk (the client confirms with Stripe.js); with one, for
// redirect_to_url.
func nextActionOf(na *gostripe.PaymentIntentNextAction) *processor.NextAction {
	if na == nil {
		return nil
	}
	out := &processor.NextAction{Type: string(na.Type)}
	if na.RedirectToURL != nil {
		out.Type = processor.NextActionRedirectToURL
		out.RedirectURL = na.RedirectToURL.URL
	}
	return out
}

// refundOf maps a Stripe refund. Stripe's statuses map one to one, except
// requires_action (a refund to a payment method that needs the customer's
// details, never a card's), which stays pending.
func refundOf(r *gostripe.Refund) processor.Refund {
	out := processor.Refund{Ref: r.ID, Amount: r.Amount}
	switch r.Status {
	case gostripe.RefundStatusSucceeded:
		out.Status = processor.RefundSucceeded
	case gostripe.RefundStatusFailed:
		out.Status = processor.RefundFailed
		out.FailureReason = string(r.FailureReason)
		if out.FailureReason == "" {
			out.FailureReason = "unknown"
		}
	case gostripe.RefundStatusCanceled:
		out.Status = processor.RefundCanceled
		out.FailureReason = "canceled"
	default: // pending, requires_action
		out.Status = processor.RefundPending
	}
	return out
}

// cardError carries a card decline from a confirm call to Authorize, which
// turns it into a failed Charge.
type cardError struct{ err *gostripe.Error }

func (e *cardError) Error() string { return "stripe: card declined: " + string(e.err.DeclineCode) }

// declined is the failed Charge of a card error raised by a confirm call.
func declined(e *gostripe.Error, req processor.AuthorizeRequest) processor.Charge {
	c := processor.Charge{Status: processor.StatusFailed, Currency: req.Currency, Amount: req.Amount}
	if pi := e.PaymentIntent; pi != nil {
		c.Ref = pi.ID
	}
	c.FailureCode, c.DeclineCode, c.FailureMessage = failureOf(e)
	return c
}

// errIdempotencyConflict: Stripe refused a retry whose parameters differ
// from the first request with the same key. The first request's outcome is
// unknown here, so this wraps processor.ErrUnavailable and the object
// stays for the reconciler and the reconciliation report.
var errIdempotencyConflict = errors.New("stripe refused a reused idempotency key with other parameters")

// unexpectedStateCodes are Stripe's codes for an object whose state forbids
// the operation.
var unexpectedStateCodes = map[gostripe.ErrorCode]bool{
	gostripe.ErrorCodePaymentIntentUnexpectedState: true,
	gostripe.ErrorCodeChargeAlreadyCaptured:        true,
	gostripe.ErrorCodeChargeAlreadyRefunded:        true,
	gostripe.ErrorCodeChargeExpiredForCapture:      true,
	gostripe.ErrorCodeChargeNotRefundable:          true,
	"charge_disputed":                              true,
}

// translate turns stripe-go's error into ours and names the outcome. The
// messages never include Stripe's raw error (whose JSON can hold a client
// secret), only its type, code, status and request ID.
func translate(op string, err error) (error, string) {
	if err == nil {
		return nil, OutcomeOK
	}
	var se *gostripe.Error
	if !errors.As(err, &se) {
		// Network errors, timeouts and the caller's context ending: the
		// request may or may not have reached Stripe.
		if cerr := contextErr(err); cerr != nil {
			return fmt.Errorf("stripe %s: %w: %w", op, processor.ErrUnavailable, cerr), OutcomeUnavailable
		}
		return fmt.Errorf("stripe %s: %w: %v", op, processor.ErrUnavailable, err), OutcomeUnavailable
	}
	what := fmt.Sprintf("stripe %s: %s %s (HTTP %d, request %s)", op, se.Type, se.Code, se.HTTPStatusCode, se.RequestID)
	switch {
	case se.Type == gostripe.ErrorTypeCard && op == "authorize":
		return &cardError{err: se}, OutcomeDeclined
	case se.Type == gostripe.ErrorTypeCard:
		e := errcode.New(errcode.KindConflict, processor.CodeUnexpectedState, "the card refused the %s (%s)", op, se.Code)
		return e, OutcomeDeclined
	case se.HTTPStatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("%s: rate limited: %w", what, processor.ErrUnavailable), OutcomeRateLimited
	case se.Type == gostripe.ErrorTypeIdempotency:
		return fmt.Errorf("%s: %w: %w", what, errIdempotencyConflict, processor.ErrUnavailable), OutcomeUnavailable
	case se.HTTPStatusCode >= 500, se.HTTPStatusCode == http.StatusConflict, se.Type == gostripe.ErrorTypeAPI:
		return fmt.Errorf("%s: %w", what, processor.ErrUnavailable), OutcomeUnavailable
	case se.HTTPStatusCode == http.StatusUnauthorized, se.HTTPStatusCode == http.StatusForbidden:
		// The account's key is wrong, revoked or lacks a permission: no
		// call of this account can work until it is fixed.
		return fmt.Errorf("%s: the account's key was refused: %w", what, processor.ErrUnavailable), OutcomeUnavailable
	case se.Code == gostripe.ErrorCodeResourceMissing && se.Param != "payment_method":
		e := errcode.New(errcode.KindNotFound, errcode.CodeResourceMissing, "the processor has no such object")
		e.Param = se.Param
		return e, OutcomeInvalid
	case unexpectedStateCodes[se.Code]:
		e := errcode.New(errcode.KindConflict, processor.CodeUnexpectedState, "the processor's state of this payment does not allow %s", op)
		return e, OutcomeInvalid
	case se.Code == gostripe.ErrorCodeAmountTooLarge && op == "capture":
		e := errcode.Invalid(errcode.CodeParameterInvalid, "amount_to_capture", "the amount exceeds what the processor can capture")
		return e, OutcomeInvalid
	default:
		param := se.Param
		if param == "" {
			param = "request"
		}
		e := errcode.Invalid(errcode.CodeParameterInvalid, param, "the processor refused the request (%s)", se.Code)
		if se.Code == "" {
			e.Message = "the processor refused the request"
		}
		return e, OutcomeInvalid
	}
}

// contextErr returns the context error err carries, if any.
func contextErr(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	return nil
}
