package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

// waitDispute polls the payment's disputes until one is in status (any
// status when ""), and answers it.
func (h *harness) waitDispute(secret, payment, status string) map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data := h.do("GET", "/v1/disputes?payment="+payment, secret, nil).json(h.t)["data"].([]any)
		if len(data) > 0 {
			d := data[0].(map[string]any)
			if status == "" || d["status"] == status {
				return d
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no dispute of %s in status %q: %v", payment, status, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// balance answers the tenant's available balance in usd.
func (h *harness) balance(secret string) int64 {
	h.t.Helper()
	for _, b := range h.do("GET", "/v1/balance", secret, nil).json(h.t)["available"].([]any) {
		if m := b.(map[string]any); m["currency"] == "usd" {
			return num(m["amount"])
		}
	}
	return 0
}

// ledgerSums checks that each currency of the tenant's book sums to zero
// and answers the sum of its merchant_balance entries in usd.
func (h *harness) ledgerSums(tenant string) int64 {
	h.t.Helper()
	id, _ := ids.Parse(ids.PrefixTenant, tenant)
	var merchant int64
	for _, sh := range h.shards.All() {
		rows, err := sh.Pool.Query(context.Background(), `SELECT currency, sum(amount), sum(amount) FILTER (WHERE account = 'merchant_balance')
			FROM ledger_entries WHERE tenant_id = $1 GROUP BY currency`, id)
		if err != nil {
			h.t.Fatal(err)
		}
		for rows.Next() {
			var cur string
			var sum int64
			var m *int64
			if err := rows.Scan(&cur, &sum, &m); err != nil {
				h.t.Fatal(err)
			}
			if sum != 0 {
				h.t.Fatalf("the %s book of %s sums to %d", cur, tenant, sum)
			}
			if cur == "usd" && m != nil {
				merchant += *m
			}
		}
		rows.Close()
	}
	return merchant
}

func disputePay(amount int) map[string]any {
	return map[string]any{"amount": amount, "currency": "usd", "payment_method": "pm_card_createDispute"}
}

// TestSandboxDisputeWon: pm_card_createDispute settles, is disputed with
// its funds and the fee withdrawn, refunds are refused, evidence with
// winning_evidence wins it and the amount comes back without the fee.
func TestSandboxDisputeWon(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	p := h.pay(ten.Secret, disputePay(2000)).json(t)
	if p["status"] != "succeeded" || num(p["fee"]) != 88 {
		t.Fatalf("payment %v", p)
	}
	pid := p["id"].(string)
	d := h.waitDispute(ten.Secret, pid, "needs_response")
	id := d["id"].(string)
	if !strings.HasPrefix(id, "dp_") || num(d["amount"]) != 2000 || d["reason"] != "fraudulent" || d["funds_withdrawn"] != true ||
		num(d["amount_withdrawn"]) != 2000 || num(d["fee"]) != 1500 || d["funds_reinstated"] != false || d["evidence_due_by"] == nil ||
		d["payment"] != pid || d["evidence_submitted"] != false {
		t.Fatalf("dispute %v", d)
	}
	if got := h.do("GET", "/v1/payments/"+pid, ten.Secret, nil).json(t); got["disputed"] != true {
		t.Fatalf("payment after the dispute %v, want disputed", got)
	}
	if b := h.balance(ten.Secret); b != 2000-88-2000-1500 {
		t.Fatalf("balance %d after the withdrawal", b)
	}
	if m := h.ledgerSums(ten.ID); m != 2000-88-2000-1500 {
		t.Fatalf("merchant_balance entries %d", m)
	}
	r := expectProblem(t, h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": pid}), http.StatusConflict, "charge_disputed")
	if r["payment"] != pid {
		t.Fatalf("refusal %v", r)
	}

	ev := map[string]any{"evidence": map[string]any{"product_description": "A lamp", "uncategorized_text": "winning_evidence"}}
	sub := h.do("POST", "/v1/disputes/"+id, ten.Secret, ev, "Idempotency-Key", "evidence-1")
	if sub.Status != http.StatusOK {
		t.Fatalf("submit: %d %s", sub.Status, sub.Body)
	}
	got := sub.json(t)
	if got["status"] != "under_review" || got["evidence_submitted"] != true || got["evidence"].(map[string]any)["product_description"] != "A lamp" {
		t.Fatalf("after evidence %v", got)
	}
	if again := h.do("POST", "/v1/disputes/"+id, ten.Secret, ev, "Idempotency-Key", "evidence-1"); again.Header.Get("Idempotent-Replayed") != "true" || string(again.Body) != string(sub.Body) {
		t.Fatalf("replay: %d %s", again.Status, again.Body)
	}

	won := h.waitDispute(ten.Secret, pid, "won")
	if won["funds_reinstated"] != true || num(won["amount_reinstated"]) != 2000 || num(won["fee"]) != 1500 {
		t.Fatalf("won %v", won)
	}
	if b := h.balance(ten.Secret); b != 2000-88-1500 {
		t.Fatalf("balance %d after the reinstatement, want the fee kept", b)
	}
	if m := h.ledgerSums(ten.ID); m != 2000-88-1500 {
		t.Fatalf("merchant_balance entries %d", m)
	}
	expectProblem(t, h.do("POST", "/v1/disputes/"+id, ten.Secret, ev), http.StatusConflict, "dispute_closed")
	expectProblem(t, h.do("POST", "/v1/disputes/"+id+"/close", ten.Secret, nil), http.StatusConflict, "dispute_closed")
	types := h.eventTypes(ten.Secret)
	for _, want := range []string{"dispute.created", "dispute.funds_withdrawn", "dispute.updated", "dispute.closed", "dispute.funds_reinstated"} {
		if count(types, want) != 1 {
			t.Fatalf("%d %s events in %v", count(types, want), want, types)
		}
	}
	txs := h.do("GET", "/v1/balance_transactions?source="+pid, ten.Secret, nil).json(t)["data"].([]any)
	var kinds []string
	for _, tx := range txs {
		m := tx.(map[string]any)
		kinds = append(kinds, m["type"].(string))
		if m["type"] == "dispute" && (num(m["amount"]) != -2000 || num(m["fee"]) != 1500 || num(m["net"]) != -3500 || m["source"] != id) {
			t.Fatalf("withdrawal %v", m)
		}
	}
	if count(kinds, "dispute") != 1 || count(kinds, "dispute_reversal") != 1 || count(kinds, "charge") != 1 {
		t.Fatalf("balance transactions of the payment: %v", kinds)
	}
	other := h.createTenant("Other", nil)
	expectProblem(t, h.do("GET", "/v1/disputes/"+id, other.Secret, nil), http.StatusNotFound, "resource_missing")
	if data := h.do("GET", "/v1/disputes", other.Secret, nil).json(t)["data"].([]any); len(data) != 0 {
		t.Fatalf("another tenant lists %v", data)
	}
}

// TestSandboxDisputeLost: losing_evidence loses, and accepting loses at
// once; the fee and the amount stay withdrawn.
func TestSandboxDisputeLost(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	a := h.pay(ten.Secret, disputePay(1000)).json(t)["id"].(string)
	b := h.pay(ten.Secret, disputePay(3000)).json(t)["id"].(string)
	da := h.waitDispute(ten.Secret, a, "needs_response")["id"].(string)
	db := h.waitDispute(ten.Secret, b, "needs_response")["id"].(string)
	if r := h.do("POST", "/v1/disputes/"+da, ten.Secret, map[string]any{"evidence": map[string]any{"uncategorized_text": "losing_evidence"}}); r.Status != http.StatusOK {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	lost := h.waitDispute(ten.Secret, a, "lost")
	if lost["funds_reinstated"] != false || num(lost["amount_withdrawn"]) != 1000 {
		t.Fatalf("lost %v", lost)
	}
	closed := h.do("POST", "/v1/disputes/"+db+"/close", ten.Secret, nil, "Idempotency-Key", "accept-b")
	if closed.Status != http.StatusOK || closed.json(t)["status"] != "lost" {
		t.Fatalf("close: %d %s", closed.Status, closed.Body)
	}
	fees := int64(1000*29/1000 + 30 + 3000*29/1000 + 30)
	if bal := h.balance(ten.Secret); bal != 4000-fees-4000-2*1500 {
		t.Fatalf("balance %d", bal)
	}
	if m := h.ledgerSums(ten.ID); m != 4000-fees-4000-2*1500 {
		t.Fatalf("merchant_balance entries %d", m)
	}
	list := h.do("GET", "/v1/disputes?status=lost&limit=1", ten.Secret, nil).json(t)
	if data := list["data"].([]any); len(data) != 1 || list["has_more"] != true || data[0].(map[string]any)["id"] != db {
		t.Fatalf("first page of lost disputes %v", list)
	}
	next := h.do("GET", "/v1/disputes?status=lost&limit=1&starting_after="+db, ten.Secret, nil).json(t)
	if data := next["data"].([]any); len(data) != 1 || next["has_more"] != false || data[0].(map[string]any)["id"] != da {
		t.Fatalf("second page %v", next)
	}
	future := time.Now().Add(time.Hour).Unix()
	if data := h.do("GET", "/v1/disputes?created[gte]="+strconv.FormatInt(future, 10), ten.Secret, nil).json(t)["data"].([]any); len(data) != 0 {
		t.Fatalf("disputes created in an hour: %v", data)
	}
	if data := h.do("GET", "/v1/disputes?status=under_review", ten.Secret, nil).json(t)["data"].([]any); len(data) != 0 {
		t.Fatalf("under review: %v", data)
	}
}

// TestDisputeInputLimits: every client input of the dispute routes has a
// limit, and a wrong value answers 400 with its param.
func TestDisputeInputLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	pid := h.pay(ten.Secret, disputePay(2000)).json(t)["id"].(string)
	id := h.waitDispute(ten.Secret, pid, "")["id"].(string)
	post := func(ev map[string]any) response {
		return h.do("POST", "/v1/disputes/"+id, ten.Secret, map[string]any{"evidence": ev})
	}
	for field, limit := range map[string]int{"product_description": 10_000, "uncategorized_text": 10_000, "customer_name": 500, "shipping_tracking_number": 500} {
		p := expectProblem(t, post(map[string]any{field: strings.Repeat("x", limit+1)}), http.StatusBadRequest, "parameter_invalid")
		if p["param"] != "evidence."+field {
			t.Fatalf("%s too long: param %v", field, p["param"])
		}
	}
	if p := expectProblem(t, post(map[string]any{"receipt": "file_123"}), http.StatusBadRequest, "parameter_unknown"); p["param"] != "evidence.receipt" {
		t.Fatalf("unknown field: %v", p)
	}
	expectProblem(t, post(map[string]any{"uncategorized_text": "card 4242 4242 4242 4242"}), http.StatusBadRequest, "card_data_not_allowed")
	if p := expectProblem(t, post(map[string]any{}), http.StatusBadRequest, "parameter_missing"); p["param"] != "evidence" {
		t.Fatalf("empty evidence: %v", p)
	}
	if p := expectProblem(t, post(map[string]any{"product_description": 12}), http.StatusBadRequest, "parameter_invalid"); p["param"] != "evidence.product_description" {
		t.Fatalf("wrong type: %v", p)
	}
	if p := expectProblem(t, h.do("GET", "/v1/disputes?status=open", ten.Secret, nil), http.StatusBadRequest, "parameter_invalid"); p["param"] != "status" {
		t.Fatalf("bad status filter: %v", p)
	}
	if p := expectProblem(t, h.do("GET", "/v1/disputes?payment=re_1", ten.Secret, nil), http.StatusBadRequest, "parameter_invalid"); p["param"] != "payment" {
		t.Fatalf("bad payment filter: %v", p)
	}
	for param, query := range map[string]string{
		"limit": "limit=101", "created[gte]": "created[gte]=-1", "created[lte]": "created[lte]=-1",
		"starting_after": "starting_after=pay_06h17frpsdzff29kp8gyg5mc4w", "payment": "payment=" + strings.Repeat("p", 65),
	} {
		if p := expectProblem(t, h.do("GET", "/v1/disputes?"+query, ten.Secret, nil), http.StatusBadRequest, "parameter_invalid"); p["param"] != param {
			t.Fatalf("%s: %v", query, p)
		}
	}
	if p := expectProblem(t, h.do("GET", "/v1/disputes/"+strings.Repeat("d", 65), ten.Secret, nil), http.StatusBadRequest, "parameter_invalid"); p["param"] != "id" {
		t.Fatalf("long id: %v", p)
	}
	expectProblem(t, h.do("GET", "/v1/disputes/pay_123", ten.Secret, nil), http.StatusNotFound, "resource_missing")
	expectProblem(t, h.do("POST", "/v1/disputes/dp_06h17frpsdzff29kp8gyg5mc4w/close", ten.Secret, nil), http.StatusNotFound, "resource_missing")
	// Nothing of the refused submissions was kept.
	if d := h.do("GET", "/v1/disputes/"+id, ten.Secret, nil).json(t); d["evidence_submitted"] != false || len(d["evidence"].(map[string]any)) != 0 {
		t.Fatalf("after refusals %v", d)
	}
	// Evidence without the sandbox's test texts leaves the dispute under
	// review; it is submitted once.
	if r := post(map[string]any{"product_description": "A lamp"}); r.Status != http.StatusOK || r.json(t)["status"] != "under_review" {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	expectProblem(t, post(map[string]any{"product_description": "A better lamp"}), http.StatusConflict, "dispute_evidence_submitted")
	if d := h.do("GET", "/v1/disputes/"+id, ten.Secret, nil).json(t); d["evidence"].(map[string]any)["product_description"] != "A lamp" {
		t.Fatalf("evidence after the second submission %v", d)
	}
}

// TestStripeDisputeLifecycle drives disputes from signed Stripe webhooks:
// each event delivered twice and the events out of order, for a won and
// a lost dispute; evidence and acceptance go to Stripe.
func TestStripeDisputeLifecycle(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t, nil, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	send := func(payload []byte) {
		t.Helper()
		for range 2 { // Stripe delivers at least once
			if r := h.webhook("/v1/stripe/webhooks", payload, platformWebhookSecret, time.Now()); r.Status != http.StatusOK {
				t.Fatalf("webhook: %d %s", r.Status, r.Body)
			}
		}
	}
	payAt := func(amount int) (string, string) {
		p := h.pay(ten.Secret, visa(amount)).json(t)
		return p["id"].(string), h.d.IntentFor(p["id"].(string))
	}
	start := h.balance(ten.Secret)

	// Won: created, funds withdrawn, updated (evidence), closed won and
	// reinstated; closed arrives before the older updated event.
	pa, pia := payAt(2000)
	if h.balance(ten.Secret) != start+2000-88 {
		t.Fatal("charge not booked")
	}
	du := h.d.OpenDispute(pia, 1500)
	t0 := time.Now().Add(-time.Hour)
	created := h.d.DisputeEvent(stripe.EventChargeDisputeCreated, du, t0)
	withdrawn := h.d.DisputeEvent(stripe.EventChargeDisputeFundsWithdrawn, du, t0.Add(time.Second))
	send(withdrawn) // before created
	send(created)
	d := h.waitDispute(ten.Secret, pa, "needs_response")
	id := d["id"].(string)
	if d["processor_dispute"] != du || d["funds_withdrawn"] != true || num(d["fee"]) != 1500 {
		t.Fatalf("dispute %v", d)
	}
	if b := h.balance(ten.Secret); b != start+2000-88-3500 {
		t.Fatalf("balance %d after the withdrawal", b)
	}
	r := h.do("POST", "/v1/disputes/"+id, ten.Secret, map[string]any{"evidence": map[string]any{"product_description": "A lamp", "shipping_carrier": "UPS"}},
		"Idempotency-Key", "ev-a")
	if r.Status != http.StatusOK || r.json(t)["status"] != "under_review" {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	sent, submissions := h.d.DisputeEvidence(du)
	if submissions != 1 || sent["product_description"] != "A lamp" || sent["shipping_carrier"] != "UPS" {
		t.Fatalf("Stripe received %v in %d submissions", sent, submissions)
	}
	updated := h.d.DisputeEvent(stripe.EventChargeDisputeUpdated, du, t0.Add(2*time.Second))
	h.d.SetDisputeStatus(du, "won")
	closed := h.d.DisputeEvent(stripe.EventChargeDisputeClosed, du, t0.Add(3*time.Second))
	reinstated := h.d.DisputeEvent(stripe.EventChargeDisputeFundsReinstated, du, t0.Add(4*time.Second))
	send(reinstated)
	send(closed)
	send(updated) // older, and of a lower rank: changes nothing
	send(created)
	won := h.waitDispute(ten.Secret, pa, "won")
	if won["funds_reinstated"] != true || num(won["amount_reinstated"]) != 2000 {
		t.Fatalf("won %v", won)
	}
	if b := h.balance(ten.Secret); b != start+2000-88-1500 {
		t.Fatalf("balance %d after winning", b)
	}

	// Lost: the merchant accepts; a late needs_response event after the
	// close does not reopen it.
	pb, pib := payAt(3000)
	db := h.d.OpenDispute(pib, 1500)
	early := h.d.DisputeEvent(stripe.EventChargeDisputeCreated, db, time.Now().Add(-time.Minute))
	send(early)
	idb := h.waitDispute(ten.Secret, pb, "needs_response")["id"].(string)
	if r := h.do("POST", "/v1/disputes/"+idb+"/close", ten.Secret, nil); r.Status != http.StatusOK || r.json(t)["status"] != "lost" {
		t.Fatalf("close: %d %s", r.Status, r.Body)
	}
	if h.d.Requests(stripetest.OpCloseDispute) != 1 {
		t.Fatalf("%d close requests at Stripe", h.d.Requests(stripetest.OpCloseDispute))
	}
	send(h.d.DisputeEvent(stripe.EventChargeDisputeClosed, db, time.Now()))
	send(early)
	if d := h.waitDispute(ten.Secret, pb, "lost"); d["funds_reinstated"] != false {
		t.Fatalf("lost %v", d)
	}
	fees := int64(88 + 3000*29/1000 + 30)
	if b := h.balance(ten.Secret); b != start+5000-fees-1500-4500 {
		t.Fatalf("balance %d after losing", b)
	}
	if m := h.ledgerSums(ten.ID); m != h.balance(ten.Secret) {
		t.Fatalf("merchant_balance entries %d, balance %d", m, h.balance(ten.Secret))
	}
	types := h.eventTypes(ten.Secret)
	if count(types, "dispute.created") != 2 || count(types, "dispute.funds_withdrawn") != 2 || count(types, "dispute.funds_reinstated") != 1 ||
		count(types, "dispute.closed") != 2 {
		t.Fatalf("events %v", types)
	}
	expectProblem(t, h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": pb}), http.StatusConflict, "charge_disputed")

	// A forged event changes nothing.
	forged := h.d.DisputeEvent(stripe.EventChargeDisputeCreated, db, time.Now())
	expectProblem(t, h.webhook("/v1/stripe/webhooks", forged, "whsec_forged_0123456789abcdef", time.Now()), http.StatusBadRequest, "stripe_signature_invalid")
}

// TestReconciliationCoversDisputes: a dispute Stripe decided without a
// webhook reaching us is listed by the report, and a repair applies it
// once: the status and the reinstatement.
func TestReconciliationCoversDisputes(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t, nil, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	pid := h.pay(ten.Secret, visa(2000)).json(t)["id"].(string)
	du := h.d.OpenDispute(h.d.IntentFor(pid), 1500)
	if r := h.webhook("/v1/stripe/webhooks", h.d.DisputeEvent(stripe.EventChargeDisputeCreated, du, time.Now()), platformWebhookSecret, time.Now()); r.Status != http.StatusOK {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	id := h.waitDispute(ten.Secret, pid, "needs_response")["id"].(string)
	h.d.SetDisputeStatus(du, "won") // the webhooks are lost
	path := "/v1/admin/tenants/" + ten.ID + "/reconciliation"
	since := time.Now().UTC().Add(-24 * time.Hour).Format(time.DateOnly)
	rep := h.do("GET", path+"?since="+since, adminToken, nil).json(t)
	if num(rep["disputes_compared"]) != 1 {
		t.Fatalf("report %v", rep)
	}
	var fields []string
	for _, d := range rep["differences"].([]any) {
		m := d.(map[string]any)
		if m["object"] == "dispute" && m["id"] == id && m["repairable"] == true {
			fields = append(fields, m["field"].(string))
		}
	}
	if strings.Join(fields, ",") != "status,dispute_funds" {
		t.Fatalf("dispute differences %v in %v", fields, rep)
	}
	before := h.balance(ten.Secret)
	fix := h.do("POST", path, adminToken, map[string]any{"since": since, "repair": true})
	if fix.Status != http.StatusOK || num(fix.json(t)["repaired"]) != 2 {
		t.Fatalf("repair: %d %s", fix.Status, fix.Body)
	}
	if d := h.do("GET", "/v1/disputes/"+id, ten.Secret, nil).json(t); d["status"] != "won" || d["funds_reinstated"] != true {
		t.Fatalf("after repair %v", d)
	}
	if after := h.balance(ten.Secret); after != before+2000 {
		t.Fatalf("balance %d after repair, want %d", after, before+2000)
	}
	// A second repair finds nothing to do and books nothing twice.
	h.do("POST", path, adminToken, map[string]any{"since": since, "repair": true})
	if after := h.balance(ten.Secret); after != before+2000 {
		t.Fatalf("balance %d after a second repair", after)
	}
	if m := h.ledgerSums(ten.ID); m != before+2000 {
		t.Fatalf("merchant_balance entries %d", m)
	}
}

// TestDisputeEventsReachWebhooks: the dispute events go out through the
// outbox to a merchant's endpoint that subscribed to them, signed, with
// the dispute as data.object.
func TestDisputeEventsReachWebhooks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{WebhookAllowPrivate: true})
	ten := h.createTenant("Acme", nil)
	rc := newReceiver(t)
	ep := h.createEndpoint(ten.Secret, rc.srv.URL, "dispute.created", "dispute.funds_withdrawn")
	rc.setSecrets(ep["secret"].(string))
	startWebhookWorker(t, h, shortSchedule())
	pid := h.pay(ten.Secret, disputePay(2000)).json(t)["id"].(string)
	id := h.waitDispute(ten.Secret, pid, "needs_response")["id"].(string)
	waitFor(t, "two dispute deliveries", func() bool { return len(rc.requests()) >= 2 })
	var types []string
	for _, r := range rc.requests() {
		var evt map[string]any
		if err := json.Unmarshal(r.Body, &evt); err != nil || !r.Verified {
			t.Fatalf("delivery %s verified %v: %v", r.Body, r.Verified, err)
		}
		obj := evt["data"].(map[string]any)["object"].(map[string]any)
		if obj["object"] != "dispute" || obj["id"] != id || obj["payment"] != pid {
			t.Fatalf("delivered %s", r.Body)
		}
		types = append(types, evt["type"].(string))
	}
	if count(types, "dispute.created") != 1 || count(types, "dispute.funds_withdrawn") != 1 || len(types) != 2 {
		t.Fatalf("delivered %v", types)
	}
}

// TestTenantStripeAccountDisputes: a dispute event from a tenant's own
// Stripe account is located on that account and moves only that tenant's
// payment.
func TestTenantStripeAccountDisputes(t *testing.T) {
	t.Parallel()
	d := stripetest.New(t)
	h := newHarness(t, harnessOptions{NewTenantStripe: func(key string) (processor.Processor, error) {
		return newStripeAdapter(t, d.URL, func(o *stripe.Options) { o.SecretKey, o.Account = key, stripe.AccountTenant }), nil
	}})
	ten := h.createTenant("Acme", nil)
	if r := h.do("POST", "/v1/admin/tenants/"+ten.ID+"/stripe_account", adminToken,
		map[string]any{"secret_key": tenantStripeKey, "webhook_secrets": []string{tenantWebhookSecret}}); r.Status != http.StatusOK {
		t.Fatalf("set account: %d %s", r.Status, r.Body)
	}
	var pid string
	waitFor(t, "the tenant's account serving its payments", func() bool {
		p := h.pay(ten.Secret, visa(1000)).json(t)
		pid, _ = p["id"].(string)
		return p["processor"] == "stripe"
	})
	du := d.OpenDispute(d.IntentFor(pid), 1500)
	payload := d.DisputeEvent(stripe.EventChargeDisputeFundsWithdrawn, du, time.Now())
	path := "/v1/stripe/webhooks/" + ten.ID
	if r := h.webhook(path, payload, tenantWebhookSecret, time.Now()); r.Status != http.StatusOK {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	if got := h.waitDispute(ten.Secret, pid, "needs_response"); got["processor_dispute"] != du || got["funds_withdrawn"] != true {
		t.Fatalf("dispute %v", got)
	}
	// The same event signed for another tenant's endpoint moves nothing
	// there: the charge is not that tenant's.
	other := h.createTenant("Other", nil)
	if r := h.do("POST", "/v1/admin/tenants/"+other.ID+"/stripe_account", adminToken,
		map[string]any{"secret_key": tenantStripeKey, "webhook_secrets": []string{tenantWebhookSecret}}); r.Status != http.StatusOK {
		t.Fatalf("set account: %d %s", r.Status, r.Body)
	}
	if r := h.webhook("/v1/stripe/webhooks/"+other.ID, payload, tenantWebhookSecret, time.Now()); r.Status != http.StatusOK {
		t.Fatalf("webhook of the other tenant: %d %s", r.Status, r.Body)
	}
	if data := h.do("GET", "/v1/disputes", other.Secret, nil).json(t)["data"].([]any); len(data) != 0 {
		t.Fatalf("the other tenant has disputes %v", data)
	}
	if data := h.do("GET", "/v1/disputes", ten.Secret, nil).json(t)["data"].([]any); len(data) != 1 {
		t.Fatalf("the tenant has %d disputes", len(data))
	}
}
