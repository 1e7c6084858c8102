// Package stripetest is a scripted Stripe double for flow tests: an
// httptest server that keeps PaymentIntents and refunds the way Stripe
// does, honors Idempotency-Key the way Stripe does (the same key and the
// same parameters replay the first answer; other parameters answer 400
// idempotency_error), and lets a test script faults: a status code before
// the request takes effect (500, 429, 503), a connection reset or a
// response slower than the client's timeout after it took effect.
//
// stripe-mock validates the requests against Stripe's OpenAPI
// specification but keeps no state; this double keeps state, so tests of
// flows (decline, 3-D Secure, manual capture, processing then a webhook,
// retries) run against it. It counts PaymentIntents created per
// idempotency key and per payment; New registers a cleanup that fails the
// test unless every such count is exactly one and every write carried an
// Idempotency-Key.
package stripetest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Payment method tokens and their outcomes, as in Stripe's test mode;
// PaymentMethodProcessing is the double's own, for payments that settle
// later.
const (
	PaymentMethodVisa              = "pm_card_visa"
	PaymentMethodDeclined          = "pm_card_chargeDeclined"
	PaymentMethodInsufficientFunds = "pm_card_chargeDeclinedInsufficientFunds"
	PaymentMethodFraudulent        = "pm_card_chargeDeclinedFraudulent"
	PaymentMethodExpired           = "pm_card_chargeDeclinedExpiredCard"
	PaymentMethodThreeDSecure      = "pm_card_threeDSecure2Required"
	PaymentMethodProcessing        = "pm_card_processing"
)

// APIVersion is the api_version of the events the double renders.
const APIVersion = "2023-10-16"

// Operations a Fault applies to.
const (
	OpCreate         = "create"
	OpCapture        = "capture"
	OpCancel         = "cancel"
	OpRetrieve       = "retrieve"
	OpRefund         = "refund"
	OpRetrieveRefund = "retrieve_refund"
)

// FaultKind is what a scripted fault does.
type FaultKind int

// Fault kinds.
const (
	// FaultStatus answers Fault.Status before the request takes effect;
	// nothing is stored under the idempotency key, as Stripe does for 429
	// and for requests that fail before they start.
	FaultStatus FaultKind = iota
	// FaultReset takes effect, then resets the connection without an
	// answer.
	FaultReset
	// FaultSlow takes effect, then waits Fault.Delay (or until the client
	// hangs up) before answering.
	FaultSlow
)

// Fault is one scripted misbehavior, used by the next request of its
// operation.
type Fault struct {
	Kind   FaultKind
	Status int
	Delay  time.Duration
}

// Double is the scripted Stripe. Its methods are safe for concurrent use.
type Double struct {
	// URL is the base URL to give the adapter as its API base.
	URL string
	srv *httptest.Server

	mu             sync.Mutex
	intents        map[string]*intent
	refunds        map[string]*refund
	connect        connectState
	stored         map[string]storedAnswer // by idempotency key
	faults         map[string][]Fault
	always         *Fault
	requests       map[string]int            // by operation
	keys           map[string]map[string]int // operation → key → requests
	createdPerKey  map[string]int
	createdPerPay  map[string]int
	writesWithout  int
	refundStatus   string
	feeBps, feeFix int64
	// btPending: succeeded charges have no balance transaction yet.
	btPending bool
	// disputes are the double's disputes, by ID (disputes.go).
	disputes map[string]*dispute
}

type storedAnswer struct {
	fingerprint string
	status      int
	body        []byte
}

type intent struct {
	id, status, currency, captureMethod, paymentMethod string
	amount, capturable, received, fee, refunded        int64
	metadata                                           map[string]string
	lastError                                          map[string]any
	nextAction                                         map[string]any
	chargeID, txnID                                    string
	created                                            int64
}

type refund struct {
	id, status, intent, failureReason string
	amount                            int64
	metadata                          map[string]string
	created                           int64
}

// New starts a double; it stops, and its counts are checked, when the test
// ends.
func New(tb testing.TB) *Double {
	tb.Helper()
	d := &Double{
		intents: map[string]*intent{}, refunds: map[string]*refund{}, stored: map[string]storedAnswer{},
		faults: map[string][]Fault{}, requests: map[string]int{}, keys: map[string]map[string]int{},
		createdPerKey: map[string]int{}, createdPerPay: map[string]int{}, refundStatus: "succeeded",
		feeBps: 290, feeFix: 30,
	}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	d.URL = d.srv.URL
	tb.Cleanup(func() {
		d.srv.CloseClientConnections()
		d.srv.Close()
		d.CheckOnePerKey(tb)
	})
	return d
}

// CheckOnePerKey fails the test unless every idempotency key that created a
// PaymentIntent created exactly one, every payment has at most one
// PaymentIntent, and every write carried an Idempotency-Key.
func (d *Double) CheckOnePerKey(tb testing.TB) {
	tb.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, n := range d.createdPerKey {
		if n != 1 {
			tb.Errorf("stripe double: %d PaymentIntents created with idempotency key %q, want 1", n, k)
		}
	}
	for p, n := range d.createdPerPay {
		if n != 1 {
			tb.Errorf("stripe double: %d PaymentIntents created for payment %s, want 1", n, p)
		}
	}
	if d.writesWithout > 0 {
		tb.Errorf("stripe double: %d writes without an Idempotency-Key", d.writesWithout)
	}
}

// Script queues faults for the next requests of an operation (OpCreate,
// ...), in order.
func (d *Double) Script(op string, faults ...Fault) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults[op] = append(d.faults[op], faults...)
}

// SetBalanceTransactionsPending makes succeeded charges answer without a
// balance transaction (null even when expanded) while pending is true, as
// a charge whose balance transaction Stripe has not created yet; false
// gives every charge its balance transaction again.
func (d *Double) SetBalanceTransactionsPending(pending bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.btPending = pending
}

// Fee is the fee the double charges on a captured amount: 2.9% rounded,
// plus 30, at most the amount.
func (d *Double) Fee(captured int64) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fee(captured)
}

func (d *Double) fee(amount int64) int64 {
	return min(amount, (amount*d.feeBps+5000)/10000+d.feeFix)
}

// Always makes every request of every operation suffer the fault, after
// the scripted ones, until it is called with nil: a fault window of a
// chaos run rather than one request's misbehavior.
func (d *Double) Always(f *Fault) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.always = f
}

// SetRefundStatus sets the status of refunds created from now on:
// "succeeded" (the default), "pending" or "failed".
func (d *Double) SetRefundStatus(status string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refundStatus = status
}

// Created returns how many PaymentIntents the key created.
func (d *Double) Created(key string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.createdPerKey[key]
}

// CreatedFor returns how many PaymentIntents carry the payment's ID.
func (d *Double) CreatedFor(paymentID string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.createdPerPay[paymentID]
}

// Intents returns how many PaymentIntents exist.
func (d *Double) Intents() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.intents)
}

// Requests returns how many requests of the operation arrived.
func (d *Double) Requests(op string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.requests[op]
}

// Keys returns how many requests of the operation carried each
// idempotency key.
func (d *Double) Keys(op string) map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]int{}
	for k, n := range d.keys[op] {
		out[k] = n
	}
	return out
}

// IntentFor returns the ID of the PaymentIntent of our payment, or "".
func (d *Double) IntentFor(paymentID string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, pi := range d.intents {
		if pi.metadata["payment_id"] == paymentID {
			return id
		}
	}
	return ""
}

// RefundFor returns the ID of the Stripe refund of our refund, or "".
func (d *Double) RefundFor(refundID string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, r := range d.refunds {
		if r.metadata["refund_id"] == refundID {
			return id
		}
	}
	return ""
}

// Status returns a PaymentIntent's status.
func (d *Double) Status(id string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pi := d.intents[id]; pi != nil {
		return pi.status
	}
	return ""
}

// CompleteAction plays the customer completing 3-D Secure: a PaymentIntent
// in requires_action moves to succeeded, or requires_capture for manual
// capture.
func (d *Double) CompleteAction(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pi := d.intents[id]; pi != nil && pi.status == "requires_action" {
		pi.nextAction = nil
		d.approve(pi)
	}
}

// Settle moves a processing PaymentIntent to succeeded (or
// requires_capture).
func (d *Double) Settle(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pi := d.intents[id]; pi != nil && pi.status == "processing" {
		d.approve(pi)
	}
}

// SetStatus forces a PaymentIntent's status and received amount, as a
// change made in Stripe's dashboard would.
func (d *Double) SetStatus(id, status string, received int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pi := d.intents[id]; pi != nil {
		pi.status, pi.received, pi.nextAction = status, received, nil
		if status != "requires_capture" {
			pi.capturable = 0
		}
	}
}

// FinishRefund sets a pending refund's final status.
func (d *Double) FinishRefund(id, status string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.refunds[id]; r != nil {
		r.status = status
		if status == "failed" {
			r.failureReason = "lost_or_stolen_card"
		}
	}
}

// Event renders a Stripe event of the given type about a PaymentIntent
// ("pi_..."), a refund ("re_...") or, for charge.refunded, the charge of a
// PaymentIntent, in its current state, as Stripe sends it: the object
// without expansions.
func (d *Double) Event(typ, objectID string) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	var obj any
	switch {
	case typ == "charge.refunded":
		pi := d.intents[objectID]
		var list []any
		ids := make([]string, 0)
		for id, r := range d.refunds {
			if r.intent == objectID {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		for _, id := range ids {
			list = append(list, d.renderRefund(d.refunds[id]))
		}
		obj = map[string]any{
			"id": pi.chargeID, "object": "charge", "amount": pi.amount, "amount_captured": pi.received,
			"amount_refunded": pi.refunded, "currency": pi.currency, "payment_intent": pi.id, "refunded": pi.refunded == pi.received,
			"refunds": map[string]any{"object": "list", "data": list, "has_more": false, "url": "/v1/charges/" + pi.chargeID + "/refunds"},
		}
	case strings.HasPrefix(objectID, "re_"):
		obj = d.renderRefund(d.refunds[objectID])
	case strings.HasPrefix(objectID, "po_"):
		return d.payoutEvent(typ, objectID)
	default:
		obj = d.render(d.intents[objectID], false)
	}
	b, _ := json.Marshal(map[string]any{
		"id": "evt_" + token(12), "object": "event", "api_version": APIVersion, "created": time.Now().Unix(),
		"livemode": false, "pending_webhooks": 1, "type": typ, "data": map[string]any{"object": obj},
	})
	return b
}

func token(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n*2]
}

// approve moves an authorized intent on, as confirming succeeded.
func (d *Double) approve(pi *intent) {
	pi.chargeID, pi.txnID = "ch_"+token(12), "txn_"+token(12)
	if pi.captureMethod == "manual" {
		pi.status, pi.capturable = "requires_capture", pi.amount
		return
	}
	d.captureAmount(pi, pi.amount)
}

func (d *Double) captureAmount(pi *intent, amount int64) {
	pi.status, pi.capturable, pi.received = "succeeded", 0, amount
	pi.fee = d.fee(amount)
}

func (d *Double) render(pi *intent, expand bool) map[string]any {
	if pi == nil {
		return nil
	}
	out := map[string]any{
		"id": pi.id, "object": "payment_intent", "amount": pi.amount, "amount_capturable": pi.capturable,
		"amount_received": pi.received, "currency": pi.currency, "status": pi.status, "capture_method": pi.captureMethod,
		"confirmation_method": "automatic", "created": pi.created, "livemode": false, "metadata": pi.metadata,
		"payment_method": pi.paymentMethod, "payment_method_types": []string{"card"},
		"client_secret": pi.id + "_secret_" + token(8), "last_payment_error": nil, "next_action": nil, "latest_charge": nil,
	}
	if pi.lastError != nil {
		out["last_payment_error"] = pi.lastError
	}
	if pi.nextAction != nil {
		out["next_action"] = pi.nextAction
	}
	if pi.chargeID != "" {
		out["latest_charge"] = pi.chargeID
		if expand {
			var txn any = pi.txnID
			if pi.status == "succeeded" && !d.btPending {
				txn = map[string]any{"id": pi.txnID, "object": "balance_transaction", "amount": pi.received, "currency": pi.currency,
					"fee": pi.fee, "net": pi.received - pi.fee, "type": "charge"}
			} else {
				txn = nil
			}
			out["latest_charge"] = map[string]any{"id": pi.chargeID, "object": "charge", "amount": pi.amount,
				"amount_captured": pi.received, "currency": pi.currency, "payment_intent": pi.id, "balance_transaction": txn}
		}
	}
	return out
}

func (d *Double) renderRefund(r *refund) map[string]any {
	if r == nil {
		return nil
	}
	out := map[string]any{
		"id": r.id, "object": "refund", "amount": r.amount, "status": r.status, "payment_intent": r.intent,
		"metadata": r.metadata, "created": r.created, "currency": "usd", "failure_reason": nil,
	}
	if r.failureReason != "" {
		out["failure_reason"] = r.failureReason
	}
	return out
}

// stripeErr renders Stripe's error body.
func stripeErr(typ, code, decline, param, msg string, pi map[string]any) map[string]any {
	e := map[string]any{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	if decline != "" {
		e["decline_code"] = decline
	}
	if param != "" {
		e["param"] = param
	}
	if pi != nil {
		e["payment_intent"] = pi
	}
	return map[string]any{"error": e}
}

// operation names a request.
func operation(r *http.Request) (op, id string) {
	if op, id := connectOperation(r); op != "" {
		return op, id
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 2 && parts[1] == "payment_intents" && r.Method == http.MethodPost:
		return OpCreate, ""
	case len(parts) == 3 && parts[1] == "payment_intents" && r.Method == http.MethodGet:
		return OpRetrieve, parts[2]
	case len(parts) == 4 && parts[1] == "payment_intents" && parts[3] == "capture":
		return OpCapture, parts[2]
	case len(parts) == 4 && parts[1] == "payment_intents" && parts[3] == "cancel":
		return OpCancel, parts[2]
	case len(parts) == 2 && parts[1] == "refunds" && r.Method == http.MethodPost:
		return OpRefund, ""
	case len(parts) == 3 && parts[1] == "refunds" && r.Method == http.MethodGet:
		return OpRetrieveRefund, parts[2]
	case len(parts) >= 3 && parts[1] == "disputes":
		return disputeOperation(r, parts)
	}
	return "", ""
}

func fingerprint(r *http.Request) string {
	keys := make([]string, 0, len(r.PostForm))
	for k := range r.PostForm {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteString(r.Method + " " + r.URL.Path + "\n")
	for _, k := range keys {
		sb.WriteString(k + "=" + strings.Join(r.PostForm[k], ",") + "\n")
	}
	return sb.String()
}

func (d *Double) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	op, id := operation(r)
	key := r.Header.Get("Idempotency-Key")
	d.mu.Lock()
	d.requests[op]++
	if d.keys[op] == nil {
		d.keys[op] = map[string]int{}
	}
	d.keys[op][key]++
	if r.Method == http.MethodPost && key == "" {
		d.writesWithout++
	}
	var fault *Fault
	if q := d.faults[op]; len(q) > 0 {
		f := q[0]
		d.faults[op] = q[1:]
		fault = &f
	} else if d.always != nil {
		f := *d.always
		fault = &f
	}
	if fault != nil && fault.Kind == FaultStatus {
		d.mu.Unlock()
		typ, code := "api_error", ""
		if fault.Status == http.StatusTooManyRequests {
			typ, code = "invalid_request_error", "rate_limit"
		}
		write(w, fault.Status, stripeErr(typ, code, "", "", "scripted fault", nil))
		return
	}
	status, body := d.answer(r, op, id, key)
	d.mu.Unlock()
	if fault != nil {
		switch fault.Kind {
		case FaultReset:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					if tc, ok := conn.(*net.TCPConn); ok {
						_ = tc.SetLinger(0)
					}
					_ = conn.Close()
					return
				}
			}
		case FaultSlow:
			select {
			case <-time.After(fault.Delay):
			case <-r.Context().Done():
				return
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_"+token(8))
	if key != "" {
		w.Header().Set("Idempotency-Key", key)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func write(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_"+token(8))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// answer runs the request (or replays it) under d.mu.
func (d *Double) answer(r *http.Request, op, id, key string) (int, []byte) {
	fp := fingerprint(r)
	if r.Method == http.MethodPost && key != "" {
		if s, ok := d.stored[key]; ok {
			if s.fingerprint != fp {
				b, _ := json.Marshal(stripeErr("idempotency_error", "", "", "", "Keys for idempotent requests can only be used with the same parameters they were first used with.", nil))
				return http.StatusBadRequest, b
			}
			return s.status, s.body
		}
	}
	status, v := d.run(r, op, id)
	b, _ := json.Marshal(v)
	if r.Method == http.MethodPost && key != "" && status != http.StatusTooManyRequests {
		d.stored[key] = storedAnswer{fingerprint: fp, status: status, body: b}
	}
	return status, b
}

func expands(r *http.Request) bool {
	for k, vs := range r.Form {
		if strings.HasPrefix(k, "expand") {
			for _, v := range vs {
				if v == "latest_charge.balance_transaction" {
					return true
				}
			}
		}
	}
	return false
}

func (d *Double) run(r *http.Request, op, id string) (int, any) {
	missing := func(what string) (int, any) {
		return http.StatusNotFound, stripeErr("invalid_request_error", "resource_missing", "", "id", "No such "+what+": '"+id+"'", nil)
	}
	unexpected := func(pi *intent, action string) (int, any) {
		return http.StatusBadRequest, stripeErr("invalid_request_error", "payment_intent_unexpected_state", "", "",
			"This PaymentIntent could not be "+action+" because it has a status of "+pi.status+".", d.render(pi, false))
	}
	if status, v, ok := d.runConnect(r, op, id); ok {
		return status, v
	}
	switch op {
	case OpUpdateDispute, OpCloseDispute, OpRetrieveDispute:
		return d.runDispute(r, op, id)
	case OpCreate:
		return d.create(r)
	case OpRetrieve:
		pi := d.intents[id]
		if pi == nil {
			return missing("payment_intent")
		}
		return http.StatusOK, d.render(pi, expands(r))
	case OpCapture:
		pi := d.intents[id]
		if pi == nil {
			return missing("payment_intent")
		}
		if pi.status != "requires_capture" {
			return unexpected(pi, "captured")
		}
		amount := pi.capturable
		if s := r.PostForm.Get("amount_to_capture"); s != "" {
			amount, _ = strconv.ParseInt(s, 10, 64)
		}
		if amount <= 0 || amount > pi.capturable {
			return http.StatusBadRequest, stripeErr("invalid_request_error", "amount_too_large", "", "amount_to_capture",
				"The amount to capture exceeds the capturable amount.", nil)
		}
		d.captureAmount(pi, amount)
		return http.StatusOK, d.render(pi, expands(r))
	case OpCancel:
		pi := d.intents[id]
		if pi == nil {
			return missing("payment_intent")
		}
		switch pi.status {
		case "requires_capture", "requires_action", "requires_payment_method", "requires_confirmation":
			pi.status, pi.capturable, pi.nextAction = "canceled", 0, nil
			return http.StatusOK, d.render(pi, expands(r))
		}
		return unexpected(pi, "canceled")
	case OpRefund:
		piID := r.PostForm.Get("payment_intent")
		pi := d.intents[piID]
		if pi == nil {
			id = piID
			return missing("payment_intent")
		}
		amount, _ := strconv.ParseInt(r.PostForm.Get("amount"), 10, 64)
		if pi.status != "succeeded" || amount <= 0 || amount > pi.received-pi.refunded {
			return http.StatusBadRequest, stripeErr("invalid_request_error", "amount_too_large", "", "amount", "Refund amount is greater than unrefunded amount on charge.", nil)
		}
		rf := &refund{id: "re_" + token(12), status: d.refundStatus, intent: piID, amount: amount, metadata: formMap(r.PostForm, "metadata"), created: time.Now().Unix()}
		if rf.status == "failed" {
			rf.failureReason = "lost_or_stolen_card"
		} else {
			pi.refunded += amount
		}
		d.refunds[rf.id] = rf
		return http.StatusOK, d.renderRefund(rf)
	case OpRetrieveRefund:
		rf := d.refunds[id]
		if rf == nil {
			return missing("refund")
		}
		return http.StatusOK, d.renderRefund(rf)
	}
	return http.StatusNotFound, stripeErr("invalid_request_error", "", "", "", "Unrecognized request URL.", nil)
}

func formMap(f map[string][]string, name string) map[string]string {
	out := map[string]string{}
	for k, vs := range f {
		if strings.HasPrefix(k, name+"[") && strings.HasSuffix(k, "]") && len(vs) > 0 {
			out[k[len(name)+1:len(k)-1]] = vs[0]
		}
	}
	return out
}

func (d *Double) create(r *http.Request) (int, any) {
	f := r.PostForm
	amount, err := strconv.ParseInt(f.Get("amount"), 10, 64)
	if err != nil || amount < 1 {
		return http.StatusBadRequest, stripeErr("invalid_request_error", "parameter_invalid_integer", "", "amount", "Invalid integer.", nil)
	}
	if f.Get("confirm") != "true" {
		return http.StatusBadRequest, stripeErr("invalid_request_error", "parameter_missing", "", "confirm", "The double expects confirm=true.", nil)
	}
	pm := f.Get("payment_method")
	pi := &intent{
		id: "pi_" + token(12), status: "requires_payment_method", currency: f.Get("currency"), captureMethod: f.Get("capture_method"),
		paymentMethod: pm, amount: amount, metadata: formMap(f, "metadata"), created: time.Now().Unix(),
	}
	if pi.captureMethod == "" {
		pi.captureMethod = "automatic"
	}
	decline := map[string]string{
		PaymentMethodDeclined: "generic_decline", PaymentMethodInsufficientFunds: "insufficient_funds",
		PaymentMethodFraudulent: "fraudulent", PaymentMethodExpired: "expired_card",
	}
	switch {
	case pm == PaymentMethodVisa || pm == "pm_card_mastercard" || pm == "pm_card_amex":
		d.approve(pi)
	case decline[pm] != "":
		code := "card_declined"
		if pm == PaymentMethodExpired {
			code = "expired_card"
		}
		pi.chargeID = "ch_" + token(12)
		pi.lastError = map[string]any{"type": "card_error", "code": code, "decline_code": decline[pm], "message": "Your card was declined."}
	case pm == PaymentMethodThreeDSecure:
		pi.status = "requires_action"
		pi.nextAction = map[string]any{"type": "use_stripe_sdk", "use_stripe_sdk": map[string]any{"type": "three_d_secure_redirect"}}
	case pm == PaymentMethodProcessing:
		pi.status = "processing"
	default:
		return http.StatusBadRequest, stripeErr("invalid_request_error", "resource_missing", "", "payment_method", "No such PaymentMethod: '"+pm+"'", nil)
	}
	d.intents[pi.id] = pi
	d.createdPerKey[r.Header.Get("Idempotency-Key")]++
	d.createdPerPay[pi.metadata["payment_id"]]++
	if pi.lastError != nil {
		e := stripeErr("card_error", pi.lastError["code"].(string), pi.lastError["decline_code"].(string), "", "Your card was declined.", d.render(pi, false))
		e["error"].(map[string]any)["charge"] = pi.chargeID
		return http.StatusPaymentRequired, e
	}
	return http.StatusOK, d.render(pi, expands(r))
}

// String describes the double's counts, for failure messages.
func (d *Double) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return fmt.Sprintf("stripe double: %d intents, %d refunds, requests %v", len(d.intents), len(d.refunds), d.requests)
}

// EnvMockURL names the variable with the base URL of stripe-mock, Stripe's
// official API mock; `make test` builds and starts it.
const EnvMockURL = "PAYMENTS_TEST_STRIPE_MOCK_URL"

// MockURL returns stripe-mock's base URL or fails the test with
// instructions.
func MockURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvMockURL)
	if u == "" {
		tb.Fatalf("%s is not set: run the suite with `make test`, which builds and starts stripe-mock (github.com/stripe/stripe-mock)", EnvMockURL)
	}
	return u
}
