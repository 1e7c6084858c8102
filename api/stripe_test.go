package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

const (
	platformWebhookSecret = "whsec_platform_0123456789abcdef"
	tenantStripeKey       = "sk_test_tenantown_0123456789abcdefXYZW"
	tenantWebhookSecret   = "whsec_tenantown_0123456789abcdef"
)

// stripeHarness is the server with the platform's Stripe account on a
// scripted double.
type stripeHarness struct {
	*harness
	d *stripetest.Double
}

func newStripeAdapter(tb testing.TB, base string, change func(*stripe.Options)) *stripe.Adapter {
	tb.Helper()
	o := stripe.DefaultOptions()
	o.SecretKey, o.APIBase, o.CallTimeout = "sk_test_platform_0123456789abcdef", base, 2*time.Second
	if change != nil {
		change(&o)
	}
	a, err := stripe.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func newStripeHarness(tb testing.TB, change func(*stripe.Options), o harnessOptions) *stripeHarness {
	tb.Helper()
	d := stripetest.New(tb)
	metrics := stripe.NewMetrics(nil)
	o.Stripe = newStripeAdapter(tb, d.URL, func(o *stripe.Options) {
		o.Metrics = metrics
		if change != nil {
			change(o)
		}
	})
	o.StripeWebhookSecrets = []string{platformWebhookSecret}
	h := newHarness(tb, o)
	h.registry.MustRegister(metrics)
	return &stripeHarness{harness: h, d: d}
}

// webhook posts a Stripe event signed with secret, at time at.
func (h *harness) webhook(path string, payload []byte, secret string, at time.Time) response {
	h.t.Helper()
	header := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
	return h.do("POST", path, "", payload, "Stripe-Signature", header)
}

// processorEvents counts the tenant's recorded processor notifications.
func (h *harness) processorEvents(tenant string) int {
	h.t.Helper()
	id, _ := ids.Parse(ids.PrefixTenant, tenant)
	total := 0
	for _, sh := range h.shards.All() {
		var n int
		if err := sh.Pool.QueryRow(context.Background(), `SELECT count(*) FROM processor_events WHERE tenant_id = $1`, id).Scan(&n); err != nil {
			h.t.Fatal(err)
		}
		total += n
	}
	return total
}

// eventTypes lists the tenant's event types, newest first.
func (h *harness) eventTypes(secret string) []string {
	h.t.Helper()
	var out []string
	for _, e := range h.do("GET", "/v1/events?limit=100", secret, nil).json(h.t)["data"].([]any) {
		out = append(out, e.(map[string]any)["type"].(string))
	}
	return out
}

func count(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

func TestStripePaymentsOverHTTP(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t, nil, harnessOptions{})
	ten := h.createTenant("Acme", nil)

	r := h.pay(ten.Secret, visa(2000), "Idempotency-Key", "order-1")
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	p := r.json(t)
	if p["status"] != "succeeded" || p["processor"] != "stripe" || num(p["fee"]) != 88 || num(p["amount_received"]) != 2000 {
		t.Fatalf("payment %v", p)
	}
	if again := h.pay(ten.Secret, visa(2000), "Idempotency-Key", "order-1"); again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", again.Status, again.Body)
	}
	if n := h.d.Requests(stripetest.OpCreate); n != 1 {
		t.Fatalf("%d PaymentIntent creations for one idempotent request", n)
	}

	prob := expectProblem(t, h.pay(ten.Secret, map[string]any{"amount": 500, "currency": "usd", "payment_method": stripetest.PaymentMethodInsufficientFunds}),
		http.StatusPaymentRequired, "card_declined")
	if prob["decline_code"] != "insufficient_funds" {
		t.Fatalf("decline %v", prob)
	}
	if got := h.do("GET", "/v1/payments/"+prob["payment"].(string), ten.Secret, nil).json(t); got["status"] != "failed" || got["decline_code"] != "insufficient_funds" {
		t.Fatalf("declined payment %v", got)
	}

	r = h.pay(ten.Secret, map[string]any{"amount": 700, "currency": "usd", "payment_method": stripetest.PaymentMethodThreeDSecure})
	if p := r.json(t); r.Status != http.StatusCreated || p["status"] != "requires_action" || p["next_action"].(map[string]any)["type"] != "use_stripe_sdk" {
		t.Fatalf("3-D Secure: %d %s", r.Status, r.Body)
	}

	r = h.pay(ten.Secret, with(visa(5000), "capture_method", "manual"))
	id := r.json(t)["id"].(string)
	c := h.do("POST", "/v1/payments/"+id+"/capture", ten.Secret, map[string]any{"amount_to_capture": 3000})
	if cp := c.json(t); c.Status != http.StatusOK || cp["status"] != "succeeded" || num(cp["amount_received"]) != 3000 || num(cp["fee"]) != 117 {
		t.Fatalf("capture: %d %s", c.Status, c.Body)
	}
	rf := h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": id, "amount": 1000})
	if rj := rf.json(t); rf.Status != http.StatusCreated || rj["status"] != "succeeded" {
		t.Fatalf("refund: %d %s", rf.Status, rf.Body)
	}
}

func TestStripeBreakerOpenAnswers503AtOnce(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t, func(o *stripe.Options) { o.BreakerFailures, o.BreakerOpen = 1, time.Minute }, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	h.d.Script(stripetest.OpCreate, stripetest.Fault{Kind: stripetest.FaultStatus, Status: http.StatusInternalServerError})
	prob := expectProblem(t, h.pay(ten.Secret, visa(2000)), http.StatusServiceUnavailable, "processor_unavailable")
	if prob["payment"] == nil {
		t.Fatalf("a payment whose outcome is unknown names the payment: %v", prob)
	}
	sent := h.d.Requests(stripetest.OpCreate)
	r := h.pay(ten.Secret, visa(2000), "Idempotency-Key", "after-open")
	prob = expectProblem(t, r, http.StatusServiceUnavailable, "processor_unavailable")
	if prob["payment"] != nil {
		t.Fatalf("the open breaker recorded a payment: %v", prob)
	}
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "1" || len(ra) > 2 {
		t.Fatalf("Retry-After %q, want the breaker's remaining open time (about 60)", ra)
	}
	if n := h.d.Requests(stripetest.OpCreate); n != sent {
		t.Fatalf("%d requests reached Stripe with the breaker open", n-sent)
	}
	if list := h.do("GET", "/v1/payments", ten.Secret, nil).json(t)["data"].([]any); len(list) != 1 {
		t.Fatalf("%d payments recorded, want only the first one", len(list))
	}
	// The refusal is not stored: once Stripe is back, the same key works.
	if bal := h.do("GET", "/v1/balance", ten.Secret, nil).json(t); len(bal["available"].([]any)) != 0 {
		t.Fatalf("money moved: %v", bal)
	}
	metrics := h.do("GET", "/metrics", "", nil)
	for _, want := range []string{
		`payments_stripe_circuit_breakers{account="platform",state="open"} 1`,
		`payments_stripe_calls_total{account="platform",operation="authorize",outcome="unavailable"} 1`,
		`payments_stripe_call_duration_seconds_count{account="platform",operation="authorize",outcome="unavailable"} 1`,
	} {
		if !strings.Contains(string(metrics.Body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// threeDS creates a 3-D Secure payment and returns its ID and
// PaymentIntent at the platform's double.
func (h *stripeHarness) threeDS(secret string, body map[string]any) (string, string) {
	h.t.Helper()
	r := h.pay(secret, body)
	p := r.json(h.t)
	if r.Status != http.StatusCreated || p["status"] != "requires_action" {
		h.t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := p["id"].(string)
	return id, h.d.IntentFor(id)
}

func TestStripeWebhookSignatures(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t, nil, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	id, pi := h.threeDS(ten.Secret, map[string]any{"amount": 900, "currency": "usd", "payment_method": stripetest.PaymentMethodThreeDSecure})
	h.d.CompleteAction(pi)
	evt := h.d.Event(stripe.EventPaymentIntentSucceeded, pi)
	changed := []byte(strings.Replace(string(evt), `"amount_received":900`, `"amount_received":901`, 1))
	if string(changed) == string(evt) {
		t.Fatal("the test payload has no amount_received to change")
	}
	now := time.Now()
	for name, r := range map[string]response{
		"wrong secret":        h.webhook("/v1/stripe/webhooks", evt, "whsec_someoneelse_0123456789", now),
		"one byte changed":    h.do("POST", "/v1/stripe/webhooks", "", changed, "Stripe-Signature", webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: evt, Secret: platformWebhookSecret, Timestamp: now}).Header),
		"timestamp 301 s old": h.webhook("/v1/stripe/webhooks", evt, platformWebhookSecret, now.Add(-301*time.Second)),
		"no signature":        h.do("POST", "/v1/stripe/webhooks", "", evt),
		"tenant route, platform secret": func() response {
			return h.webhook("/v1/stripe/webhooks/"+ten.ID, evt, platformWebhookSecret, now)
		}(),
	} {
		if name == "tenant route, platform secret" {
			expectProblem(t, r, http.StatusNotFound, "resource_missing")
			continue
		}
		expectProblem(t, r, http.StatusBadRequest, "stripe_signature_invalid")
	}
	if got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t); got["status"] != "requires_action" || h.processorEvents(ten.ID) != 0 {
		t.Fatalf("a refused webhook changed something: %v", got)
	}
	big := make([]byte, api256KiB+10)
	expectProblem(t, h.webhook("/v1/stripe/webhooks", big, platformWebhookSecret, now), http.StatusRequestEntityTooLarge, "request_too_large")

	ok := h.webhook("/v1/stripe/webhooks", evt, platformWebhookSecret, now)
	if ok.Status != http.StatusOK || ok.json(t)["received"] != true {
		t.Fatalf("valid webhook: %d %s", ok.Status, ok.Body)
	}
	if got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t); got["status"] != "succeeded" || num(got["amount_received"]) != 900 {
		t.Fatalf("after the webhook: %v", got)
	}
	other := h.webhook("/v1/stripe/webhooks", []byte(`{"id":"evt_other","object":"event","type":"customer.created","data":{"object":{"id":"cus_1"}}}`), platformWebhookSecret, now)
	if other.Status != http.StatusOK {
		t.Fatalf("unused event type: %d %s", other.Status, other.Body)
	}
}

const api256KiB = 256 << 10

func TestStripeWebhookTakesEffectOnceAndNeverBackwards(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t, nil, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	id, pi := h.threeDS(ten.Secret, map[string]any{"amount": 1200, "currency": "usd", "payment_method": stripetest.PaymentMethodThreeDSecure})
	processing := h.d.Event(stripe.EventPaymentIntentProcessing, pi)
	h.d.CompleteAction(pi)
	succeeded := h.d.Event(stripe.EventPaymentIntentSucceeded, pi)
	for range 3 {
		if r := h.webhook("/v1/stripe/webhooks", succeeded, platformWebhookSecret, time.Now()); r.Status != http.StatusOK {
			t.Fatalf("delivery: %d %s", r.Status, r.Body)
		}
	}
	if r := h.webhook("/v1/stripe/webhooks", processing, platformWebhookSecret, time.Now()); r.Status != http.StatusOK {
		t.Fatalf("late processing: %d %s", r.Status, r.Body)
	}
	got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t)
	if got["status"] != "succeeded" || num(got["amount_received"]) != 1200 {
		t.Fatalf("payment %v", got)
	}
	types := h.eventTypes(ten.Secret)
	if count(types, "payment.succeeded") != 1 {
		t.Fatalf("events %v: want one payment.succeeded for three deliveries", types)
	}
	txs := h.do("GET", "/v1/balance_transactions", ten.Secret, nil).json(t)["data"].([]any)
	if len(txs) != 1 || num(txs[0].(map[string]any)["amount"]) != 1200 {
		t.Fatalf("ledger %v: want one charge", txs)
	}
	if n := h.processorEvents(ten.ID); n != 2 {
		t.Fatalf("%d processor events recorded, want 2 (succeeded once, processing once)", n)
	}
}

// flow drives one manual-capture 3-D Secure payment of its own tenant
// through a real event sequence and returns its final state. deliver sends
// the events of each phase.
type flowResult struct {
	payment map[string]any
	balance string
	ledger  []string
	events  map[string]int
}

func (h *stripeHarness) runFlow(name string, deliver func(phase [][]byte)) flowResult {
	t := h.t
	ten := h.createTenant(name, nil)
	id, pi := h.threeDS(ten.Secret, map[string]any{"amount": 2000, "currency": "usd", "payment_method": stripetest.PaymentMethodThreeDSecure, "capture_method": "manual"})
	e1 := h.d.Event(stripe.EventPaymentIntentRequiresAction, pi)
	h.d.CompleteAction(pi)
	e2 := h.d.Event(stripe.EventPaymentIntentCapturableUpdated, pi)
	h.d.SetStatus(pi, "succeeded", 1500) // captured in Stripe's dashboard
	e3 := h.d.Event(stripe.EventPaymentIntentSucceeded, pi)
	e4 := h.d.Event("charge.succeeded", pi)
	deliver([][]byte{e1, e2, e3, e4})

	h.d.SetRefundStatus("pending")
	rf := h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": id, "amount": 500})
	if rf.Status != http.StatusCreated || rf.json(t)["status"] != "pending" {
		t.Fatalf("%s: refund %d %s", name, rf.Status, rf.Body)
	}
	re := h.d.RefundFor(rf.json(t)["id"].(string))
	h.d.FinishRefund(re, "succeeded")
	e5 := h.d.Event(stripe.EventChargeRefundUpdated, re)
	e6 := h.d.Event(stripe.EventChargeRefunded, pi)
	e7 := h.d.Event(stripe.EventRefundUpdated, re)
	deliver([][]byte{e5, e6, e7})

	out := flowResult{payment: h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t), events: map[string]int{}}
	for _, k := range []string{"id", "created", "version", "next_action"} {
		delete(out.payment, k)
	}
	out.balance = string(h.do("GET", "/v1/balance", ten.Secret, nil).Body)
	for _, tx := range h.do("GET", "/v1/balance_transactions", ten.Secret, nil).json(t)["data"].([]any) {
		m := tx.(map[string]any)
		out.ledger = append(out.ledger, fmt.Sprintf("%s %v %v", m["type"], m["amount"], m["fee"]))
	}
	for _, typ := range h.eventTypes(ten.Secret) {
		out.events[typ]++
	}
	return out
}

// TestStripeWebhooksAnyOrderConcurrently: a random permutation of a real
// event sequence, each event delivered one to three times, all at once,
// ends in the same state as one in-order delivery of each event, and every
// effect happens once.
func TestStripeWebhooksAnyOrderConcurrently(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t, nil, harnessOptions{})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	post := func(evt []byte) {
		r := h.webhook("/v1/stripe/webhooks", evt, platformWebhookSecret, time.Now())
		if r.Status != http.StatusOK {
			t.Errorf("delivery: %d %s", r.Status, r.Body)
		}
	}
	inOrder := h.runFlow("in order", func(phase [][]byte) {
		for _, e := range phase {
			post(e)
		}
	})
	shuffled := h.runFlow("shuffled", func(phase [][]byte) {
		var batch [][]byte
		for _, e := range phase {
			for range 1 + rng.IntN(3) {
				batch = append(batch, e)
			}
		}
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, e := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				post(e)
			}()
		}
		close(start)
		wg.Wait()
	})
	a, _ := json.Marshal(inOrder.payment)
	b, _ := json.Marshal(shuffled.payment)
	if string(a) != string(b) || inOrder.balance != shuffled.balance || fmt.Sprint(inOrder.ledger) != fmt.Sprint(shuffled.ledger) {
		t.Fatalf("different end states (seed %d):\nin order %s\n  ledger %v\n  balance %s\nshuffled %s\n  ledger %v\n  balance %s",
			seed, a, inOrder.ledger, inOrder.balance, b, shuffled.ledger, shuffled.balance)
	}
	if inOrder.payment["status"] != "succeeded" || num(inOrder.payment["amount_received"]) != 1500 || num(inOrder.payment["amount_refunded"]) != 500 {
		t.Fatalf("end state %s", a)
	}
	for _, f := range []flowResult{inOrder, shuffled} {
		if len(f.ledger) != 2 || f.events["payment.succeeded"] != 1 || f.events["refund.succeeded"] != 1 {
			t.Fatalf("effects %v %v (seed %d): want one charge, one refund, one payment.succeeded, one refund.succeeded", f.ledger, f.events, seed)
		}
	}
}

func TestTenantOwnStripeAccount(t *testing.T) {
	t.Parallel()
	own := stripetest.New(t)
	h := newStripeHarness(t, nil, harnessOptions{NewTenantStripe: func(key string) (processor.Processor, error) {
		o := stripe.DefaultOptions()
		o.SecretKey, o.APIBase, o.Account = key, own.URL, stripe.AccountTenant
		return stripe.New(o)
	}})
	ten := h.createTenant("Own account", nil)
	path := "/v1/admin/tenants/" + ten.ID + "/stripe_account"
	expectProblem(t, h.do("GET", path, adminToken, nil), http.StatusNotFound, "resource_missing")
	for _, bad := range []map[string]any{
		{"secret_key": "pk_test_notasecretkey", "webhook_secrets": []string{tenantWebhookSecret}},
		{"secret_key": "sk_test_short", "webhook_secrets": []string{tenantWebhookSecret}},
		{"secret_key": tenantStripeKey, "webhook_secrets": []string{tenantWebhookSecret, tenantWebhookSecret, tenantWebhookSecret, tenantWebhookSecret}},
		{"secret_key": tenantStripeKey, "webhook_secrets": []string{}},
	} {
		r := h.do("POST", path, adminToken, bad)
		expectProblem(t, r, http.StatusBadRequest, "parameter_invalid")
		if strings.Contains(string(r.Body), "notasecretkey") || strings.Contains(string(r.Body), "sk_test_short") || strings.Contains(string(r.Body), tenantWebhookSecret) {
			t.Fatalf("a refusal echoes a secret: %s", r.Body)
		}
	}
	expectProblem(t, h.do("POST", path, ten.Secret, map[string]any{"secret_key": tenantStripeKey, "webhook_secrets": []string{tenantWebhookSecret}}),
		http.StatusUnauthorized, "unauthenticated")
	set := h.do("POST", path, adminToken, map[string]any{"secret_key": tenantStripeKey, "webhook_secrets": []string{tenantWebhookSecret}})
	if set.Status != http.StatusOK {
		t.Fatalf("set: %d %s", set.Status, set.Body)
	}
	for _, r := range []response{set, h.do("GET", path, adminToken, nil)} {
		if strings.Contains(string(r.Body), tenantStripeKey) || strings.Contains(string(r.Body), tenantWebhookSecret) {
			t.Fatalf("an answer shows a secret: %s", r.Body)
		}
		if m := r.json(t); m["secret_key_last4"] != "XYZW" || m["secret_key_set"] != true || m["webhook_secrets"] != float64(1) {
			t.Fatalf("summary %s", r.Body)
		}
	}

	id, _ := h.threeDS(ten.Secret, map[string]any{"amount": 800, "currency": "usd", "payment_method": stripetest.PaymentMethodThreeDSecure})
	pi := own.IntentFor(id)
	if pi == "" || h.d.Intents() != 0 {
		t.Fatalf("the payment did not go to the tenant's account (own %d, platform %d)", own.Intents(), h.d.Intents())
	}
	own.CompleteAction(pi)
	evt := own.Event(stripe.EventPaymentIntentSucceeded, pi)
	expectProblem(t, h.webhook("/v1/stripe/webhooks/"+ten.ID, evt, platformWebhookSecret, time.Now()), http.StatusBadRequest, "stripe_signature_invalid")
	other := h.createTenant("Other", nil)
	expectProblem(t, h.webhook("/v1/stripe/webhooks/"+other.ID, evt, tenantWebhookSecret, time.Now()), http.StatusNotFound, "resource_missing")
	if r := h.webhook("/v1/stripe/webhooks/"+ten.ID, evt, tenantWebhookSecret, time.Now()); r.Status != http.StatusOK {
		t.Fatalf("tenant webhook: %d %s", r.Status, r.Body)
	}
	if got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t); got["status"] != "succeeded" {
		t.Fatalf("after the tenant's webhook: %v", got)
	}

	if r := h.do("DELETE", path, adminToken, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := h.pay(ten.Secret, visa(300)); r.Status != http.StatusCreated || h.d.Intents() != 1 {
		t.Fatalf("after delete the payment went to %d platform intents: %d %s", h.d.Intents(), r.Status, r.Body)
	}
	if logs := h.logs.String(); strings.Contains(logs, tenantStripeKey) || strings.Contains(logs, tenantWebhookSecret) || strings.Contains(logs, "tenantown") {
		t.Fatal("a log line holds a tenant secret")
	}
}

func TestReconciliationOverHTTP(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t, nil, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	r := h.pay(ten.Secret, map[string]any{"amount": 2500, "currency": "usd", "payment_method": stripetest.PaymentMethodProcessing})
	id := r.json(t)["id"].(string)
	h.d.Settle(h.d.IntentFor(id))
	path := "/v1/admin/tenants/" + ten.ID + "/reconciliation"
	expectProblem(t, h.do("GET", path+"?since=yesterday", adminToken, nil), http.StatusBadRequest, "parameter_invalid")
	since := time.Now().UTC().Add(-24 * time.Hour).Format(time.DateOnly)
	rep := h.do("GET", path+"?since="+since, adminToken, nil)
	diffs := rep.json(t)["differences"].([]any)
	if rep.Status != http.StatusOK || len(diffs) != 1 || diffs[0].(map[string]any)["id"] != id || diffs[0].(map[string]any)["processor"] != "succeeded" {
		t.Fatalf("report: %d %s", rep.Status, rep.Body)
	}
	if got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t); got["status"] != "pending" {
		t.Fatalf("the report changed the payment: %v", got)
	}
	fix := h.do("POST", path, adminToken, map[string]any{"since": since, "repair": true})
	if fix.Status != http.StatusOK || num(fix.json(t)["repaired"]) != 1 {
		t.Fatalf("repair: %d %s", fix.Status, fix.Body)
	}
	if got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t); got["status"] != "succeeded" || num(got["fee"]) != 103 {
		t.Fatalf("after repair: %v", got)
	}
}

// TestStripeProcessingThenWebhook: a payment Stripe answers as processing
// stays pending until payment_intent.succeeded arrives.
func TestStripeProcessingThenWebhook(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t, nil, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	r := h.pay(ten.Secret, map[string]any{"amount": 3100, "currency": "usd", "payment_method": stripetest.PaymentMethodProcessing})
	p := r.json(t)
	if r.Status != http.StatusCreated || p["status"] != "pending" {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := p["id"].(string)
	pi := h.d.IntentFor(id)
	if r := h.webhook("/v1/stripe/webhooks", h.d.Event(stripe.EventPaymentIntentProcessing, pi), platformWebhookSecret, time.Now()); r.Status != http.StatusOK {
		t.Fatalf("processing event: %d %s", r.Status, r.Body)
	}
	if got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t); got["status"] != "pending" {
		t.Fatalf("after payment_intent.processing: %v", got)
	}
	h.d.Settle(pi)
	if r := h.webhook("/v1/stripe/webhooks", h.d.Event(stripe.EventPaymentIntentSucceeded, pi), platformWebhookSecret, time.Now()); r.Status != http.StatusOK {
		t.Fatalf("succeeded event: %d %s", r.Status, r.Body)
	}
	got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t)
	// The event's PaymentIntent carries no balance transaction; the fee is
	// the double's (2.9% + 30) read from the charge's balance transaction.
	if got["status"] != "succeeded" || num(got["amount_received"]) != 3100 || num(got["fee"]) != 120 {
		t.Fatalf("after payment_intent.succeeded: %v (want Stripe's fee 120 from the balance transaction)", got)
	}
	if types := h.eventTypes(ten.Secret); strings.Join(types, ",") != "payment.succeeded,payment.created" {
		t.Fatalf("events %v", types)
	}
}
