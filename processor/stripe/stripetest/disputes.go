package stripetest

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Operations of the double's disputes.
const (
	OpUpdateDispute   = "update_dispute"
	OpCloseDispute    = "close_dispute"
	OpRetrieveDispute = "retrieve_dispute"
)

// dispute is the double's record of a Stripe dispute.
type dispute struct {
	id, intent, charge, status, reason, currency string
	amount, fee                                  int64
	withdrawal, reinstatement                    string
	evidence                                     map[string]string
	submissions                                  int
	created, due                                 int64
}

func disputeOperation(r *http.Request, parts []string) (string, string) {
	switch {
	case len(parts) == 3 && r.Method == http.MethodGet:
		return OpRetrieveDispute, parts[2]
	case len(parts) == 3 && r.Method == http.MethodPost:
		return OpUpdateDispute, parts[2]
	case len(parts) == 4 && parts[3] == "close" && r.Method == http.MethodPost:
		return OpCloseDispute, parts[2]
	}
	return "", ""
}

// OpenDispute opens a dispute of the PaymentIntent's charge, as a
// customer's bank does: needs_response, with the disputed amount and the
// fee withdrawn (one balance transaction). It returns the dispute's ID.
func (d *Double) OpenDispute(paymentIntent string, fee int64) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.disputes == nil {
		d.disputes = map[string]*dispute{}
	}
	pi := d.intents[paymentIntent]
	now := time.Now().Unix()
	dp := &dispute{
		id: "du_" + token(12), intent: pi.id, charge: pi.chargeID, status: "needs_response", reason: "fraudulent",
		currency: pi.currency, amount: pi.received, fee: fee, withdrawal: "txn_" + token(12), evidence: map[string]string{},
		created: now, due: now + 7*24*3600,
	}
	d.disputes[dp.id] = dp
	return dp.id
}

// SetDisputeStatus moves a dispute as the issuer decides; won reinstates
// the amount (a second balance transaction), the fee stays withdrawn.
func (d *Double) SetDisputeStatus(id, status string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dp := d.disputes[id]
	dp.status = status
	if status == "won" && dp.reinstatement == "" {
		dp.reinstatement = "txn_" + token(12)
	}
}

// DisputeEvidence answers the evidence the double received for a dispute.
func (d *Double) DisputeEvidence(id string) (map[string]string, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]string{}
	for k, v := range d.disputes[id].evidence {
		out[k] = v
	}
	return out, d.disputes[id].submissions
}

// DisputeEvent renders a charge.dispute.* event about the dispute in its
// current state, created at the given time.
func (d *Double) DisputeEvent(typ, id string, created time.Time) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, _ := json.Marshal(map[string]any{
		"id": "evt_" + token(12), "object": "event", "api_version": APIVersion, "created": created.Unix(),
		"livemode": false, "pending_webhooks": 1, "type": typ, "data": map[string]any{"object": d.renderDispute(d.disputes[id])},
	})
	return b
}

func (d *Double) renderDispute(dp *dispute) map[string]any {
	bts := []any{map[string]any{"id": dp.withdrawal, "object": "balance_transaction", "amount": -dp.amount, "fee": dp.fee,
		"net": -dp.amount - dp.fee, "currency": dp.currency, "type": "adjustment", "reporting_category": "dispute"}}
	if dp.reinstatement != "" {
		bts = append(bts, map[string]any{"id": dp.reinstatement, "object": "balance_transaction", "amount": dp.amount, "fee": 0,
			"net": dp.amount, "currency": dp.currency, "type": "adjustment", "reporting_category": "dispute_reversal"})
	}
	return map[string]any{
		"id": dp.id, "object": "dispute", "amount": dp.amount, "currency": dp.currency, "charge": dp.charge,
		"payment_intent": dp.intent, "reason": dp.reason, "status": dp.status, "created": dp.created, "livemode": false,
		"is_charge_refundable": false, "metadata": map[string]string{}, "balance_transactions": bts, "evidence": dp.evidence,
		"evidence_details": map[string]any{"due_by": dp.due, "has_evidence": dp.submissions > 0, "past_due": false, "submission_count": dp.submissions},
	}
}

// runDispute serves the dispute routes under d.mu.
func (d *Double) runDispute(r *http.Request, op, id string) (int, any) {
	dp := d.disputes[id]
	if dp == nil {
		return http.StatusNotFound, stripeErr("invalid_request_error", "resource_missing", "", "id", "No such dispute: '"+id+"'", nil)
	}
	closed := dp.status == "won" || dp.status == "lost"
	switch op {
	case OpUpdateDispute:
		if closed || dp.submissions > 0 {
			return http.StatusBadRequest, stripeErr("invalid_request_error", "", "", "", "This dispute is already closed or its evidence was submitted.", nil)
		}
		for k, vs := range r.PostForm {
			if strings.HasPrefix(k, "evidence[") && strings.HasSuffix(k, "]") && len(vs) > 0 {
				dp.evidence[strings.TrimSuffix(strings.TrimPrefix(k, "evidence["), "]")] = vs[0]
			}
		}
		if r.PostForm.Get("submit") == "true" {
			dp.submissions++
			dp.status = "under_review"
		}
	case OpCloseDispute:
		if closed {
			return http.StatusBadRequest, stripeErr("invalid_request_error", "", "", "", "This dispute is already closed.", nil)
		}
		dp.status = "lost"
	}
	return http.StatusOK, d.renderDispute(dp)
}
