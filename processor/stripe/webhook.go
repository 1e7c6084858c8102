package stripe

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	gostripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/payout"
)

// Webhook limits.
const (
	// WebhookTolerance is how old a signature's timestamp may be.
	WebhookTolerance = 300 * time.Second
	// WebhookSecretsMax bounds the signing secrets tried per event: the
	// current one and those still valid during a rotation.
	WebhookSecretsMax = 3
	// WebhookSecretLengthMax bounds one signing secret.
	WebhookSecretLengthMax = 255
	// RefundsPerEventMax bounds the refunds one charge.refunded event may
	// report.
	RefundsPerEventMax = 100
)

// Event types the payments core uses. Every payment_intent.* event carries
// the PaymentIntent, whose status says what changed; the refund events
// carry refunds.
const (
	EventPaymentIntentSucceeded         = "payment_intent.succeeded"
	EventPaymentIntentPaymentFailed     = "payment_intent.payment_failed"
	EventPaymentIntentCanceled          = "payment_intent.canceled"
	EventPaymentIntentProcessing        = "payment_intent.processing"
	EventPaymentIntentRequiresAction    = "payment_intent.requires_action"
	EventPaymentIntentCapturableUpdated = "payment_intent.amount_capturable_updated"
	EventChargeRefunded                 = "charge.refunded"
	EventChargeRefundUpdated            = "charge.refund.updated"
	EventRefundUpdated                  = "refund.updated"
	EventRefundFailed                   = "refund.failed"
	EventRefundCreated                  = "refund.created"
)

// paymentIntentEvents are the PaymentIntent events that report an outcome.
// Others (payment_intent.created, whose object may predate the
// confirmation, .partially_funded) are answered and ignored.
var paymentIntentEvents = map[string]bool{
	EventPaymentIntentSucceeded: true, EventPaymentIntentPaymentFailed: true, EventPaymentIntentCanceled: true,
	EventPaymentIntentProcessing: true, EventPaymentIntentRequiresAction: true, EventPaymentIntentCapturableUpdated: true,
}

// ErrSignature reports a webhook whose Stripe-Signature is missing,
// malformed, too old, or made with none of the secrets.
var ErrSignature = errors.New("stripe webhook signature invalid")

// ValidateWebhookSecret checks the shape of a signing secret without
// echoing it.
func ValidateWebhookSecret(s string) error {
	if !strings.HasPrefix(s, "whsec_") || len(s) < 10 || len(s) > WebhookSecretLengthMax || strings.ContainsAny(s, " \t\r\n,") {
		return errors.New("a Stripe webhook signing secret starts with whsec_ and has no spaces or commas")
	}
	return nil
}

// Notification is what one verified Stripe event asks of the payments
// core: at most one Update and some RefundUpdates. An event that needs
// nothing (a type we do not use, an object without our metadata) has
// neither.
type Notification struct {
	EventID string
	Type    string
	// TenantID is the tenant the event's object names ("ten_..."), or "".
	TenantID      string
	Update        *processor.Update
	RefundUpdates []processor.RefundUpdate
	// DisputeUpdate is set by charge.dispute.* events (disputes.go).
	DisputeUpdate *processor.DisputeUpdate
	// PayoutUpdate is a payout's change on a connected account (see
	// parsePayoutEvent).
	PayoutUpdate *payout.Update
}

// ParseWebhook verifies the Stripe-Signature header over the raw payload
// with each secret in turn (a header may hold several v1 signatures during
// a rotation; any match is enough), refuses timestamps older than
// WebhookTolerance, and decodes the event. Errors wrap ErrSignature, or
// report a payload that is not a Stripe event.
//
// The event's API version is not checked: the fields read here (status,
// amounts, metadata, errors, next action) are the same in every version
// since 2019, and an endpoint created with another version than stripe-go's
// would otherwise lose every event.
func ParseWebhook(payload []byte, header string, secrets []string) (Notification, error) {
	if len(secrets) == 0 {
		return Notification{}, fmt.Errorf("%w: no signing secret is configured for this endpoint", ErrSignature)
	}
	if len(secrets) > WebhookSecretsMax {
		secrets = secrets[:WebhookSecretsMax]
	}
	var verr error
	for _, secret := range secrets {
		if verr = webhook.ValidatePayloadWithTolerance(payload, header, secret, WebhookTolerance); verr == nil {
			break
		}
	}
	if verr != nil {
		return Notification{}, fmt.Errorf("%w: %s", ErrSignature, signatureReason(verr))
	}
	var evt gostripe.Event
	if err := json.Unmarshal(payload, &evt); err != nil || evt.ID == "" || evt.Data == nil {
		return Notification{}, errors.New("the payload is not a Stripe event")
	}
	n := Notification{EventID: evt.ID, Type: string(evt.Type)}
	switch {
	case paymentIntentEvents[n.Type]:
		var pi gostripe.PaymentIntent
		if err := json.Unmarshal(evt.Data.Raw, &pi); err != nil || pi.ID == "" {
			return n, errors.New("the event's object is not a PaymentIntent")
		}
		tenant, payment := pi.Metadata[MetadataTenantID], pi.Metadata[MetadataPaymentID]
		if tenant == "" || payment == "" {
			return n, nil
		}
		n.TenantID = tenant
		n.Update = &processor.Update{Ref: pi.ID, PaymentID: payment, TenantID: tenant, Charge: chargeOf(&pi), EventID: evt.ID}
	case n.Type == EventChargeRefundUpdated || n.Type == EventRefundUpdated || n.Type == EventRefundFailed || n.Type == EventRefundCreated:
		var r gostripe.Refund
		if err := json.Unmarshal(evt.Data.Raw, &r); err != nil || r.ID == "" {
			return n, errors.New("the event's object is not a refund")
		}
		n.addRefund(&r, evt.ID)
	case disputeEventType(n.Type):
		var d gostripe.Dispute
		if err := json.Unmarshal(evt.Data.Raw, &d); err != nil || d.ID == "" {
			return n, errors.New("the event's object is not a dispute")
		}
		n.DisputeUpdate = disputeUpdateOf(&evt, &d)
		n.TenantID = n.DisputeUpdate.TenantID
	case n.Type == EventChargeRefunded:
		var ch gostripe.Charge
		if err := json.Unmarshal(evt.Data.Raw, &ch); err != nil || ch.ID == "" {
			return n, errors.New("the event's object is not a charge")
		}
		// Since API version 2022-11-15 the charge's refunds are not
		// embedded; charge.refund.updated reports them then.
		if ch.Refunds != nil {
			for i, r := range ch.Refunds.Data {
				if i >= RefundsPerEventMax {
					break
				}
				if r == nil {
					continue
				}
				// One event, several refunds: each takes effect once under
				// its own key.
				n.addRefund(r, evt.ID+":"+r.ID)
			}
		}
	case payoutEvents[n.Type]:
		if err := n.parsePayoutEvent(&evt); err != nil {
			return n, err
		}
	}
	return n, nil
}

// addRefund adds the RefundUpdate of a refund that carries our metadata,
// and only if all its refunds name one tenant.
func (n *Notification) addRefund(r *gostripe.Refund, eventID string) {
	if r == nil {
		return
	}
	tenant, id := r.Metadata[MetadataTenantID], r.Metadata[MetadataRefundID]
	if tenant == "" || id == "" || (n.TenantID != "" && n.TenantID != tenant) {
		return
	}
	n.TenantID = tenant
	n.RefundUpdates = append(n.RefundUpdates, processor.RefundUpdate{TenantID: tenant, RefundID: id, Refund: refundOf(r), EventID: eventID})
}

// signatureReason says why verification failed, in words safe to answer.
func signatureReason(err error) string {
	switch {
	case errors.Is(err, webhook.ErrNotSigned):
		return "the Stripe-Signature header is missing"
	case errors.Is(err, webhook.ErrInvalidHeader):
		return "the Stripe-Signature header is malformed"
	case errors.Is(err, webhook.ErrTooOld):
		return "the signature's timestamp is older than 300 seconds"
	default:
		return "no v1 signature matches the payload with this endpoint's signing secret"
	}
}
