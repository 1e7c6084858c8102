package stripetest

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Operations of Stripe Connect payouts.
const (
	OpTransfer         = "transfer"
	OpTransferReversal = "transfer_reversal"
	OpPayout           = "payout"
	OpRetrievePayout   = "retrieve_payout"
)

// connectState is the double's Transfers and the Payouts of connected
// accounts, under Double.mu.
type connectState struct {
	transfers map[string]*transferObj
	payouts   map[string]*payoutObj
	// noBank lists connected accounts without a bank account: their
	// Payouts are refused.
	noBank map[string]bool
}

type transferObj struct {
	id, currency, destination, group string
	amount, reversed                 int64
	metadata                         map[string]string
}

type payoutObj struct {
	id, account, currency, status, description, failureCode string
	amount, created                                         int64
	metadata                                                map[string]string
}

func (c *connectState) init() {
	if c.transfers == nil {
		c.transfers, c.payouts, c.noBank = map[string]*transferObj{}, map[string]*payoutObj{}, map[string]bool{}
	}
}

func connectOperation(r *http.Request) (op, id string) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 2 && parts[1] == "transfers" && r.Method == http.MethodPost:
		return OpTransfer, ""
	case len(parts) == 4 && parts[1] == "transfers" && parts[3] == "reversals" && r.Method == http.MethodPost:
		return OpTransferReversal, parts[2]
	case len(parts) == 2 && parts[1] == "payouts" && r.Method == http.MethodPost:
		return OpPayout, ""
	case len(parts) == 3 && parts[1] == "payouts" && r.Method == http.MethodGet:
		return OpRetrievePayout, parts[2]
	}
	return "", ""
}

// SetNoBankAccount makes the connected account refuse Payouts, as an
// account without a bank account in the currency does.
func (d *Double) SetNoBankAccount(account string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.connect.init()
	d.connect.noBank[account] = true
}

// TransfersFor returns how many Transfers carry our payout's ID, and the
// amount reversed of them in all.
func (d *Double) TransfersFor(payoutID string) (n int, reversed int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.connect.transfers {
		if t.metadata["payout_id"] == payoutID {
			n++
			reversed += t.reversed
		}
	}
	return n, reversed
}

// PayoutFor returns the ID and the connected account of the Stripe Payout
// of our payout, or "".
func (d *Double) PayoutFor(payoutID string) (id, account string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.connect.payouts {
		if p.metadata["payout_id"] == payoutID {
			return p.id, p.account
		}
	}
	return "", ""
}

// PayoutsFor returns how many Stripe Payouts carry our payout's ID.
func (d *Double) PayoutsFor(payoutID string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, p := range d.connect.payouts {
		if p.metadata["payout_id"] == payoutID {
			n++
		}
	}
	return n
}

// FinishPayout moves a Stripe Payout to "paid", "failed" (with
// account_closed) or "canceled", as the bank's answer would.
func (d *Double) FinishPayout(id, status string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.connect.payouts[id]; p != nil {
		p.status = status
		if status == "failed" {
			p.failureCode = "account_closed"
		}
	}
}

func (d *Double) renderPayout(p *payoutObj) map[string]any {
	out := map[string]any{
		"id": p.id, "object": "payout", "amount": p.amount, "currency": p.currency, "status": p.status, "created": p.created,
		"metadata": p.metadata, "livemode": false, "method": "standard", "type": "bank_account", "failure_code": nil, "failure_message": nil,
		"arrival_date": p.created + 86400, "automatic": false, "description": nil,
	}
	if p.description != "" {
		out["description"] = p.description
	}
	if p.failureCode != "" {
		out["failure_code"] = p.failureCode
		out["failure_message"] = "The bank account has been closed."
	}
	return out
}

func (d *Double) renderTransfer(t *transferObj) map[string]any {
	return map[string]any{
		"id": t.id, "object": "transfer", "amount": t.amount, "amount_reversed": t.reversed, "currency": t.currency,
		"destination": t.destination, "transfer_group": t.group, "metadata": t.metadata, "livemode": false, "reversed": t.reversed == t.amount,
		"created": time.Now().Unix(),
	}
}

// payoutEvent renders an event about a connected account's Payout, with
// the account in the event's account field, as Stripe sends Connect
// events.
func (d *Double) payoutEvent(typ, id string) []byte {
	p := d.connect.payouts[id]
	var obj any
	account := ""
	if p != nil {
		obj, account = d.renderPayout(p), p.account
	}
	b, _ := json.Marshal(map[string]any{
		"id": "evt_" + token(12), "object": "event", "api_version": APIVersion, "created": time.Now().Unix(), "account": account,
		"livemode": false, "pending_webhooks": 1, "type": typ, "data": map[string]any{"object": obj},
	})
	return b
}

// runConnect answers the Connect operations, under d.mu.
func (d *Double) runConnect(r *http.Request, op, id string) (int, any, bool) {
	d.connect.init()
	f := r.PostForm
	bad := func(param, msg string) (int, any, bool) {
		return http.StatusBadRequest, stripeErr("invalid_request_error", "parameter_invalid", "", param, msg, nil), true
	}
	switch op {
	case OpTransfer:
		amount, err := strconv.ParseInt(f.Get("amount"), 10, 64)
		if err != nil || amount < 1 {
			return bad("amount", "Invalid positive integer.")
		}
		dest := f.Get("destination")
		if !strings.HasPrefix(dest, "acct_") {
			return http.StatusBadRequest, stripeErr("invalid_request_error", "resource_missing", "", "destination", "No such destination: '"+dest+"'", nil), true
		}
		if r.Header.Get("Stripe-Account") != "" {
			return bad("destination", "Transfers are made from the platform account.")
		}
		t := &transferObj{id: "tr_" + token(12), currency: f.Get("currency"), destination: dest, group: f.Get("transfer_group"),
			amount: amount, metadata: formMap(f, "metadata")}
		d.connect.transfers[t.id] = t
		return http.StatusOK, d.renderTransfer(t), true
	case OpTransferReversal:
		t := d.connect.transfers[id]
		if t == nil {
			return http.StatusNotFound, stripeErr("invalid_request_error", "resource_missing", "", "id", "No such transfer: '"+id+"'", nil), true
		}
		t.reversed = t.amount
		return http.StatusOK, map[string]any{"id": "trr_" + token(12), "object": "transfer_reversal", "amount": t.amount,
			"currency": t.currency, "transfer": t.id, "metadata": formMap(f, "metadata")}, true
	case OpPayout:
		acct := r.Header.Get("Stripe-Account")
		if !strings.HasPrefix(acct, "acct_") {
			return bad("Stripe-Account", "The double expects payouts on a connected account.")
		}
		amount, err := strconv.ParseInt(f.Get("amount"), 10, 64)
		if err != nil || amount < 1 {
			return bad("amount", "Invalid positive integer.")
		}
		if d.connect.noBank[acct] {
			return http.StatusBadRequest, stripeErr("invalid_request_error", "no_external_account", "", "",
				"Sorry, you don't have any external accounts in that currency.", nil), true
		}
		// The connected account's balance is what was transferred to it and
		// not yet paid out or reversed.
		var in, out int64
		for _, t := range d.connect.transfers {
			if t.destination == acct && t.currency == f.Get("currency") {
				in += t.amount - t.reversed
			}
		}
		for _, p := range d.connect.payouts {
			if p.account == acct && p.currency == f.Get("currency") && p.status != "failed" && p.status != "canceled" {
				out += p.amount
			}
		}
		if amount > in-out {
			return http.StatusBadRequest, stripeErr("invalid_request_error", "balance_insufficient", "", "amount",
				"You have insufficient funds in your Stripe account for this transfer.", nil), true
		}
		p := &payoutObj{id: "po_" + token(12), account: acct, currency: f.Get("currency"), status: "pending", amount: amount,
			description: f.Get("description"), created: time.Now().Unix(), metadata: formMap(f, "metadata")}
		d.connect.payouts[p.id] = p
		return http.StatusOK, d.renderPayout(p), true
	case OpRetrievePayout:
		p := d.connect.payouts[id]
		if p == nil || p.account != r.Header.Get("Stripe-Account") {
			return http.StatusNotFound, stripeErr("invalid_request_error", "resource_missing", "", "id", "No such payout: '"+id+"'", nil), true
		}
		return http.StatusOK, d.renderPayout(p), true
	}
	return 0, nil, false
}

// Payouts lists the IDs of the Stripe Payouts, sorted, for failure
// messages.
func (d *Double) Payouts() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.connect.payouts))
	for id := range d.connect.payouts {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
