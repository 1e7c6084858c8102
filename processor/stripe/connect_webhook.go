package stripe

import (
	"encoding/json"
	"errors"
	"time"

	gostripe "github.com/stripe/stripe-go/v76"

	"github.com/payments-api/payments/processor/payout"
)

// Payout event types of a connected account, sent to the platform's
// Connect webhook endpoint with the account in the event's account field.
const (
	EventPayoutPaid     = "payout.paid"
	EventPayoutFailed   = "payout.failed"
	EventPayoutCanceled = "payout.canceled"
	EventPayoutUpdated  = "payout.updated"
)

// payoutEvents are the payout events that carry a status change.
var payoutEvents = map[string]bool{
	EventPayoutPaid: true, EventPayoutFailed: true, EventPayoutCanceled: true, EventPayoutUpdated: true,
}

// parsePayoutEvent decodes a payout event's Payout into a PayoutUpdate
// when it carries our metadata; a Payout that is not ours (made in the
// connected account's dashboard) needs nothing.
func (n *Notification) parsePayoutEvent(evt *gostripe.Event) error {
	var po gostripe.Payout
	if err := json.Unmarshal(evt.Data.Raw, &po); err != nil || po.ID == "" {
		return errors.New("the event's object is not a payout")
	}
	tenant, id := po.Metadata[MetadataTenantID], po.Metadata[MetadataPayoutID]
	if tenant == "" || id == "" {
		return nil
	}
	n.TenantID = tenant
	n.PayoutUpdate = &payout.Update{
		TenantID: tenant, PayoutID: id, Processor: Name, Destination: evt.Account, Result: payoutResult(&po),
		EventID: evt.ID, Created: time.Unix(evt.Created, 0),
	}
	return nil
}
