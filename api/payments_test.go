package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func (h *harness) pay(secret string, body map[string]any, headers ...string) response {
	h.t.Helper()
	return h.do("POST", "/v1/payments", secret, body, headers...)
}

func visa(amount int) map[string]any {
	return map[string]any{"amount": amount, "currency": "usd", "payment_method": "pm_card_visa"}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

func TestCreatePaymentSucceeds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	r := h.pay(ten.Secret, with(visa(2000), "description", "Order 1", "customer", "cus_1", "metadata", map[string]string{"order": "1"},
		"location", map[string]float64{"lat": 57.64911, "lon": 10.40744}))
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	p := r.json(t)
	if p["status"] != "succeeded" || num(p["amount_received"]) != 2000 || num(p["fee"]) != 88 || !strings.HasPrefix(p["id"].(string), "pay_") {
		t.Fatalf("payment %v", p)
	}
	if loc := p["location"].(map[string]any); loc["geohash"] != "u4pruydqq" {
		t.Fatalf("location %v", loc)
	}
	got := h.do("GET", "/v1/payments/"+p["id"].(string), ten.Secret, nil)
	if got.Status != http.StatusOK || got.json(t)["status"] != "succeeded" {
		t.Fatalf("get: %d %s", got.Status, got.Body)
	}
	bal := h.do("GET", "/v1/balance", ten.Secret, nil).json(t)
	avail := bal["available"].([]any)
	if len(avail) != 1 || num(avail[0].(map[string]any)["amount"]) != 2000-88 {
		t.Fatalf("balance %v", bal)
	}
	txs := h.do("GET", "/v1/balance_transactions", ten.Secret, nil).json(t)["data"].([]any)
	if len(txs) != 1 {
		t.Fatalf("balance transactions %v", txs)
	}
	tx := txs[0].(map[string]any)
	if tx["type"] != "charge" || num(tx["amount"]) != 2000 || num(tx["fee"]) != 88 || num(tx["net"]) != 1912 || tx["source"] != p["id"] {
		t.Fatalf("balance transaction %v", tx)
	}
	evs := h.do("GET", "/v1/events", ten.Secret, nil).json(t)["data"].([]any)
	var types []string
	for _, e := range evs {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	if strings.Join(types, ",") != "payment.succeeded,payment.created" {
		t.Fatalf("events %v", types)
	}
	ev := evs[0].(map[string]any)
	if obj := ev["data"].(map[string]any)["object"].(map[string]any); obj["status"] != "succeeded" || obj["id"] != p["id"] || num(ev["sequence"]) != num(obj["version"]) {
		t.Fatalf("event snapshot %v", ev)
	}
	one := h.do("GET", "/v1/events/"+ev["id"].(string), ten.Secret, nil)
	if one.Status != http.StatusOK || one.json(t)["type"] != "payment.succeeded" {
		t.Fatalf("get event: %d %s", one.Status, one.Body)
	}
}

func TestDeclines(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	for token, decline := range map[string]string{
		"pm_card_chargeDeclined":                  "generic_decline",
		"pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
		"pm_card_chargeDeclinedFraudulent":        "fraudulent",
	} {
		r := h.pay(ten.Secret, map[string]any{"amount": 1000, "currency": "usd", "payment_method": token})
		prob := expectProblem(t, r, http.StatusPaymentRequired, "card_declined")
		if prob["decline_code"] != decline || !strings.HasPrefix(fmt.Sprint(prob["payment"]), "pay_") {
			t.Fatalf("%s: problem %v", token, prob)
		}
		p := h.do("GET", "/v1/payments/"+prob["payment"].(string), ten.Secret, nil).json(t)
		if p["status"] != "failed" || p["failure_code"] != "card_declined" || p["decline_code"] != decline || p["failure_message"] == nil {
			t.Fatalf("%s: stored payment %v", token, p)
		}
	}
	failed := h.do("GET", "/v1/events?type=payment.failed", ten.Secret, nil).json(t)["data"].([]any)
	if len(failed) != 3 {
		t.Fatalf("%d payment.failed events", len(failed))
	}
	// Declines move no money.
	if bal := h.do("GET", "/v1/balance", ten.Secret, nil).json(t); len(bal["available"].([]any)) != 0 {
		t.Fatalf("balance after declines %v", bal)
	}
}

func TestManualCaptureAndCancel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	p := h.pay(ten.Secret, with(visa(5000), "capture_method", "manual")).json(t)
	if p["status"] != "requires_capture" || num(p["amount_capturable"]) != 5000 || num(p["amount_received"]) != 0 {
		t.Fatalf("authorized %v", p)
	}
	id := p["id"].(string)
	expectProblem(t, h.do("POST", "/v1/payments/"+id+"/capture", ten.Secret, map[string]any{"amount_to_capture": 5001}), http.StatusBadRequest, "amount_exceeds_capturable")
	c := h.do("POST", "/v1/payments/"+id+"/capture", ten.Secret, map[string]any{"amount_to_capture": 3000})
	if c.Status != http.StatusOK {
		t.Fatalf("capture: %d %s", c.Status, c.Body)
	}
	cp := c.json(t)
	if cp["status"] != "succeeded" || num(cp["amount_received"]) != 3000 || num(cp["fee"]) != 117 || num(cp["amount_capturable"]) != 0 {
		t.Fatalf("captured %v", cp)
	}
	expectProblem(t, h.do("POST", "/v1/payments/"+id+"/capture", ten.Secret, nil), http.StatusConflict, "payment_invalid_state")
	expectProblem(t, h.do("POST", "/v1/payments/"+id+"/cancel", ten.Secret, nil), http.StatusConflict, "payment_invalid_state")
	types := eventTypes(t, h, ten.Secret)
	if strings.Join(types, ",") != "payment.succeeded,payment.captured,payment.requires_capture,payment.created" {
		t.Fatalf("events %v", types)
	}

	q := h.pay(ten.Secret, with(visa(700), "capture_method", "manual")).json(t)
	qid := q["id"].(string)
	if r := h.do("POST", "/v1/payments/"+qid+"/cancel", ten.Secret, nil); r.Status != http.StatusOK || r.json(t)["status"] != "canceled" {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	expectProblem(t, h.do("POST", "/v1/payments/"+qid+"/capture", ten.Secret, nil), http.StatusConflict, "payment_invalid_state")
	expectProblem(t, h.do("POST", "/v1/payments/"+qid+"/cancel", ten.Secret, nil), http.StatusConflict, "payment_invalid_state")
	expectProblem(t, h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": qid}), http.StatusConflict, "payment_invalid_state")
}

func eventTypes(t *testing.T, h *harness, secret string) []string {
	t.Helper()
	var out []string
	for _, e := range h.do("GET", "/v1/events?limit=100", secret, nil).json(t)["data"].([]any) {
		out = append(out, e.(map[string]any)["type"].(string))
	}
	return out
}

func TestThreeDSecure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	p := h.pay(ten.Secret, map[string]any{"amount": 1500, "currency": "eur", "payment_method": "pm_card_threeDSecure2Required"}).json(t)
	if p["status"] != "requires_action" {
		t.Fatalf("3ds %v", p)
	}
	next := p["next_action"].(map[string]any)
	url := next["redirect_url"].(string)
	if next["type"] != "redirect_to_url" || !strings.HasPrefix(url, "/v1/sandbox/3ds/") {
		t.Fatalf("next_action %v", next)
	}
	expectProblem(t, h.do("POST", "/v1/payments/"+p["id"].(string)+"/capture", ten.Secret, nil), http.StatusConflict, "payment_invalid_state")
	if r := h.do("POST", url, "", nil); r.Status != http.StatusOK || r.json(t)["status"] != "succeeded" {
		t.Fatalf("complete action: %d %s", r.Status, r.Body)
	}
	got := h.do("GET", "/v1/payments/"+p["id"].(string), ten.Secret, nil).json(t)
	if got["status"] != "succeeded" || got["next_action"] != nil || num(got["amount_received"]) != 1500 {
		t.Fatalf("after 3ds %v", got)
	}
	if types := eventTypes(t, h, ten.Secret); strings.Join(types, ",") != "payment.succeeded,payment.requires_action,payment.created" {
		t.Fatalf("events %v", types)
	}
}

func TestProcessingSettlesOnItsOwn(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{SettleDelay: 50 * time.Millisecond})
	ten := h.createTenant("Acme", nil)
	p := h.pay(ten.Secret, map[string]any{"amount": 990, "currency": "usd", "payment_method": "pm_card_processing"}).json(t)
	if p["status"] != "pending" {
		t.Fatalf("processing %v", p)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := h.do("GET", "/v1/payments/"+p["id"].(string), ten.Secret, nil).json(t)
		if got["status"] == "succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("payment never settled: %v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if types := eventTypes(t, h, ten.Secret); strings.Join(types, ",") != "payment.succeeded,payment.created" {
		t.Fatalf("events %v", types)
	}
}

func TestRefunds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	p := h.pay(ten.Secret, visa(1000)).json(t)
	id := p["id"].(string)
	r1 := h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": id, "amount": 300, "reason": "requested_by_customer"})
	if r1.Status != http.StatusCreated || r1.json(t)["status"] != "succeeded" || !strings.HasPrefix(r1.json(t)["id"].(string), "re_") {
		t.Fatalf("refund 1: %d %s", r1.Status, r1.Body)
	}
	expectProblem(t, h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": id, "amount": 701}), http.StatusBadRequest, "amount_exceeds_refundable")
	r2 := h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": id})
	if r2.Status != http.StatusCreated || num(r2.json(t)["amount"]) != 700 {
		t.Fatalf("refund rest: %d %s", r2.Status, r2.Body)
	}
	expectProblem(t, h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": id}), http.StatusBadRequest, "amount_exceeds_refundable")
	got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t)
	if num(got["amount_refunded"]) != 1000 {
		t.Fatalf("amount_refunded %v", got["amount_refunded"])
	}
	list := h.do("GET", "/v1/refunds?payment="+id, ten.Secret, nil).json(t)["data"].([]any)
	if len(list) != 2 {
		t.Fatalf("refund list %v", list)
	}
	one := h.do("GET", "/v1/refunds/"+r1.json(t)["id"].(string), ten.Secret, nil)
	if one.Status != http.StatusOK || num(one.json(t)["amount"]) != 300 {
		t.Fatalf("get refund %d %s", one.Status, one.Body)
	}
	bal := h.do("GET", "/v1/balance", ten.Secret, nil).json(t)["available"].([]any)[0].(map[string]any)
	if num(bal["amount"]) != 1000-59-1000 {
		t.Fatalf("balance after full refund %v (fees are not returned)", bal)
	}
	expectProblem(t, h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": "pay_nope"}), http.StatusNotFound, "resource_missing")
}

// TestRefundRace sends two refunds that together exceed the captured amount
// at the same moment, many times: exactly one of each pair succeeds.
func TestRefundRace(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	for round := 0; round < 10; round++ {
		id := h.pay(ten.Secret, visa(1000)).json(t)["id"].(string)
		var wg sync.WaitGroup
		res := make([]response, 2)
		start := make(chan struct{})
		for i := range res {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				res[i] = h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": id, "amount": 600})
			}(i)
		}
		close(start)
		wg.Wait()
		ok, refused := 0, 0
		for _, r := range res {
			switch r.Status {
			case http.StatusCreated:
				ok++
			case http.StatusBadRequest:
				if r.json(t)["code"] == "amount_exceeds_refundable" {
					refused++
				}
			default:
				t.Fatalf("round %d: unexpected %d %s", round, r.Status, r.Body)
			}
		}
		if ok != 1 || refused != 1 {
			t.Fatalf("round %d: %d succeeded and %d refused, want 1 and 1", round, ok, refused)
		}
		if got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t); num(got["amount_refunded"]) != 600 {
			t.Fatalf("round %d: amount_refunded %v", round, got["amount_refunded"])
		}
	}
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	first := h.pay(ten.Secret, visa(1200), "Idempotency-Key", "k1")
	if first.Status != http.StatusCreated || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v", first.Status, first.Header)
	}
	// The same request, serialized differently, replays byte for byte.
	again := h.do("POST", "/v1/payments", ten.Secret, `{ "payment_method":"pm_card_visa",  "currency":"usd","amount":1200 }`, "Idempotency-Key", "k1")
	if again.Status != http.StatusCreated || again.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("replay: %d %v\n%s\n%s", again.Status, again.Header, again.Body, first.Body)
	}
	// A different request with the same key.
	expectProblem(t, h.pay(ten.Secret, visa(1300), "Idempotency-Key", "k1"), http.StatusBadRequest, "idempotency_key_reused")
	// Another path with the same key is another request too.
	expectProblem(t, h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": first.json(t)["id"]}, "Idempotency-Key", "k1"), http.StatusBadRequest, "idempotency_key_reused")
	// Keys are per tenant.
	other := h.createTenant("Other", nil)
	if r := h.pay(other.Secret, visa(1200), "Idempotency-Key", "k1"); r.Status != http.StatusCreated || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("other tenant, same key: %d %v", r.Status, r.Header)
	}
	// A decline is stored and replayed too.
	d1 := h.pay(ten.Secret, map[string]any{"amount": 100, "currency": "usd", "payment_method": "pm_card_chargeDeclined"}, "Idempotency-Key", "k2")
	d2 := h.pay(ten.Secret, map[string]any{"amount": 100, "currency": "usd", "payment_method": "pm_card_chargeDeclined"}, "Idempotency-Key", "k2")
	if d1.Status != http.StatusPaymentRequired || d2.Status != http.StatusPaymentRequired || !bytes.Equal(d1.Body, d2.Body) || d2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("decline replay: %d %d\n%s\n%s", d1.Status, d2.Status, d1.Body, d2.Body)
	}
	// A request refused by validation stores nothing: the key stays free.
	expectProblem(t, h.pay(ten.Secret, map[string]any{"amount": 0, "currency": "usd", "payment_method": "pm_card_visa"}, "Idempotency-Key", "k3"), http.StatusBadRequest, "parameter_invalid")
	expectProblem(t, h.pay(ten.Secret, map[string]any{"amount": 100, "currency": "xxx", "payment_method": "pm_card_visa"}, "Idempotency-Key", "k3"), http.StatusBadRequest, "currency_unsupported")
	if r := h.pay(ten.Secret, visa(100), "Idempotency-Key", "k3"); r.Status != http.StatusCreated || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("key after rejected requests: %d %s", r.Status, r.Body)
	}
	// Capture, cancel and refunds are idempotent too.
	m := h.pay(ten.Secret, with(visa(900), "capture_method", "manual")).json(t)["id"].(string)
	c1 := h.do("POST", "/v1/payments/"+m+"/capture", ten.Secret, nil, "Idempotency-Key", "cap-1")
	c2 := h.do("POST", "/v1/payments/"+m+"/capture", ten.Secret, nil, "Idempotency-Key", "cap-1")
	if c1.Status != http.StatusOK || c2.Status != http.StatusOK || !bytes.Equal(c1.Body, c2.Body) || c2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("capture replay: %d %d %s", c1.Status, c2.Status, c2.Body)
	}
	f1 := h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": m, "amount": 100}, "Idempotency-Key", "ref-1")
	f2 := h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": m, "amount": 100}, "Idempotency-Key", "ref-1")
	if f1.Status != http.StatusCreated || !bytes.Equal(f1.Body, f2.Body) || f2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("refund replay: %d %d %s", f1.Status, f2.Status, f2.Body)
	}
	if got := h.do("GET", "/v1/payments/"+m, ten.Secret, nil).json(t); num(got["amount_refunded"]) != 100 {
		t.Fatalf("a replayed refund refunded twice: %v", got["amount_refunded"])
	}
	// Key limits.
	expectProblem(t, h.pay(ten.Secret, visa(100), "Idempotency-Key", strings.Repeat("k", 256)), http.StatusBadRequest, "idempotency_key_invalid")
	if r := h.pay(ten.Secret, visa(100), "Idempotency-Key", strings.Repeat("k", 255)); r.Status != http.StatusCreated {
		t.Fatalf("255-character key: %d %s", r.Status, r.Body)
	}
}

func TestIdempotencyInFlight(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{SandboxLatency: 400 * time.Millisecond})
	ten := h.createTenant("Acme", nil)
	// Two requests with one key while the processor takes 400 ms: the
	// second arrives while the first is still running.
	res := make([]response, 2)
	var wg sync.WaitGroup
	for i := range res {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i] = h.pay(ten.Secret, visa(500), "Idempotency-Key", "slow")
		}(i)
	}
	wg.Wait()
	var first response
	conflicts := 0
	for _, r := range res {
		switch r.Status {
		case http.StatusCreated:
			if r.Header.Get("Idempotent-Replayed") != "" {
				t.Fatal("a replay while the first request was still running")
			}
			first = r
		case http.StatusConflict:
			expectProblem(t, r, http.StatusConflict, "idempotency_key_in_use")
			conflicts++
		default:
			t.Fatalf("unexpected %d %s", r.Status, r.Body)
		}
	}
	if conflicts != 1 || first.Body == nil {
		t.Fatalf("want one creation and one 409, got %d and %d", res[0].Status, res[1].Status)
	}
	third := h.pay(ten.Secret, visa(500), "Idempotency-Key", "slow")
	if !bytes.Equal(third.Body, first.Body) || third.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("after completion: %d %s", third.Status, third.Body)
	}
}

// TestIdempotencyConcurrent sends 50 identical requests with one key at
// once: exactly one payment exists, and every answer is the creation, a
// replay of it, or a 409.
func TestIdempotencyConcurrent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	const n = 50
	res := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			res[i] = h.pay(ten.Secret, visa(4200), "Idempotency-Key", "same")
		}(i)
	}
	close(start)
	wg.Wait()
	created, replays, conflicts := 0, 0, 0
	var body []byte
	for _, r := range res {
		switch {
		case r.Status == http.StatusCreated && r.Header.Get("Idempotent-Replayed") == "true":
			replays++
			if body != nil && !bytes.Equal(body, r.Body) {
				t.Fatal("replays differ")
			}
			body = r.Body
		case r.Status == http.StatusCreated:
			created++
		case r.Status == http.StatusConflict:
			conflicts++
		default:
			t.Fatalf("unexpected answer %d %s", r.Status, r.Body)
		}
	}
	if created != 1 {
		t.Fatalf("%d creations (replays %d, conflicts %d)", created, replays, conflicts)
	}
	list := h.do("GET", "/v1/payments?limit=100", ten.Secret, nil).json(t)["data"].([]any)
	if len(list) != 1 {
		t.Fatalf("%d payments exist, want 1", len(list))
	}
	t.Logf("50 concurrent: 1 created, %d replays, %d conflicts", replays, conflicts)
}

func TestOtherTenantsObjectsAreNotFound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	a, b := h.createTenant("A", nil), h.createTenant("B", nil)
	p := h.pay(a.Secret, with(visa(1000), "capture_method", "manual")).json(t)["id"].(string)
	q := h.pay(a.Secret, visa(1000)).json(t)["id"].(string)
	ref := h.do("POST", "/v1/refunds", a.Secret, map[string]any{"payment": q, "amount": 10}).json(t)["id"].(string)
	evt := h.do("GET", "/v1/events", a.Secret, nil).json(t)["data"].([]any)[0].(map[string]any)["id"].(string)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/payments/" + p, nil},
		{"POST", "/v1/payments/" + p + "/capture", nil},
		{"POST", "/v1/payments/" + p + "/cancel", nil},
		{"GET", "/v1/refunds/" + ref, nil},
		{"GET", "/v1/events/" + evt, nil},
		{"POST", "/v1/refunds", map[string]any{"payment": q}},
	} {
		expectProblem(t, h.do(c.method, c.path, b.Secret, c.body), http.StatusNotFound, "resource_missing")
	}
	for _, path := range []string{"/v1/payments", "/v1/refunds", "/v1/events", "/v1/balance_transactions"} {
		if data := h.do("GET", path, b.Secret, nil).json(t)["data"].([]any); len(data) != 0 {
			t.Fatalf("%s shows another tenant's objects: %v", path, data)
		}
	}
	// And A's payment is untouched.
	if got := h.do("GET", "/v1/payments/"+p, a.Secret, nil).json(t); got["status"] != "requires_capture" {
		t.Fatalf("A's payment changed: %v", got)
	}
}

func TestReadsAfterChangesAreNeverStale(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	for i := 0; i < 5; i++ {
		id := h.pay(ten.Secret, with(visa(1000), "capture_method", "manual")).json(t)["id"].(string)
		// Fill the cache, then change the payment and read at once.
		if got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t); got["status"] != "requires_capture" {
			t.Fatal(got)
		}
		h.do("POST", "/v1/payments/"+id+"/capture", ten.Secret, map[string]any{"amount_to_capture": 600})
		if got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t); got["status"] != "succeeded" {
			t.Fatalf("stale read after capture: %v", got["status"])
		}
		h.do("POST", "/v1/refunds", ten.Secret, map[string]any{"payment": id, "amount": 100})
		if got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t); num(got["amount_refunded"]) != 100 {
			t.Fatalf("stale read after refund: %v", got["amount_refunded"])
		}
	}
	var hits float64
	mfs, _ := h.registry.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "payments_cache_hits_total" {
			hits = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if hits == 0 {
		t.Fatal("the cache answered no read: this test would not notice staleness")
	}
}

func TestPaymentsWorkWithRedisDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{RedisURL: "redis://127.0.0.1:1/0"})
	ten := h.createTenant("Acme", nil)
	id := h.pay(ten.Secret, with(visa(1000), "capture_method", "manual")).json(t)["id"].(string)
	if got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil); got.Status != http.StatusOK {
		t.Fatalf("get with Redis down: %d", got.Status)
	}
	h.do("POST", "/v1/payments/"+id+"/capture", ten.Secret, nil)
	if got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t); got["status"] != "succeeded" {
		t.Fatalf("read with Redis down: %v", got["status"])
	}
}

func TestPaymentInputLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	meta := func(n, klen, vlen int) map[string]string {
		m := map[string]string{}
		for i := 0; i < n; i++ {
			m[fmt.Sprintf("%0*d", klen, i)] = strings.Repeat("v", vlen)
		}
		return m
	}
	cases := []struct {
		name   string
		body   any
		status int
		code   string
		param  string
	}{
		{"unsupported currency", with(visa(100), "currency", "xxx"), 400, "currency_unsupported", "currency"},
		{"uppercase currency", with(visa(100), "currency", "USD"), 400, "currency_unsupported", "currency"},
		{"amount zero", with(visa(100), "amount", 0), 400, "parameter_invalid", "amount"},
		{"amount negative", with(visa(100), "amount", -5), 400, "parameter_invalid", "amount"},
		{"amount above max", with(visa(100), "amount", 100_000_000), 400, "amount_too_large", "amount"},
		{"amount fractional", `{"amount": 10.5, "currency": "usd", "payment_method": "pm_card_visa"}`, 400, "parameter_invalid", "amount"},
		{"amount string", `{"amount": "1000", "currency": "usd", "payment_method": "pm_card_visa"}`, 400, "parameter_invalid", "amount"},
		{"missing payment method", map[string]any{"amount": 100, "currency": "usd"}, 400, "parameter_invalid", ""},
		{"bad payment method", with(visa(100), "payment_method", "pm card visa"), 400, "parameter_invalid", "payment_method"},
		{"unknown payment method", with(visa(100), "payment_method", "pm_card_unknown"), 400, "payment_method_invalid", "payment_method"},
		{"capture method", with(visa(100), "capture_method", "later"), 400, "parameter_invalid", "capture_method"},
		{"51 metadata keys", with(visa(100), "metadata", meta(51, 2, 1)), 400, "parameter_invalid", "metadata"},
		{"metadata key 41", with(visa(100), "metadata", meta(1, 41, 1)), 400, "parameter_invalid", "metadata"},
		{"metadata value 501", with(visa(100), "metadata", meta(1, 2, 501)), 400, "parameter_invalid", ""},
		{"description 1001", with(visa(100), "description", strings.Repeat("d", 1001)), 400, "parameter_invalid", "description"},
		{"latitude", with(visa(100), "location", map[string]float64{"lat": 91, "lon": 0}), 400, "parameter_invalid", "location.lat"},
		{"unknown field", with(visa(100), "amount_cents", 5), 400, "parameter_unknown", ""},
	}
	for _, c := range cases {
		r := h.do("POST", "/v1/payments", ten.Secret, c.body)
		if r.Status != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, r.Status, c.status, r.Body)
			continue
		}
		p := r.json(t)
		if p["code"] != c.code || (c.param != "" && p["param"] != c.param) {
			t.Errorf("%s: code %v param %v, want %s %s", c.name, p["code"], p["param"], c.code, c.param)
		}
	}
	// Only the unknown token reached the processor; it is kept as failed.
	list := h.do("GET", "/v1/payments?limit=100", ten.Secret, nil).json(t)["data"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["failure_code"] != "payment_method_invalid" {
		t.Fatalf("rejected requests stored payments: %v", list)
	}
	// Zero-decimal currencies: 500 jpy is 500 yen.
	jpy := h.pay(ten.Secret, map[string]any{"amount": 500, "currency": "jpy", "payment_method": "pm_card_visa"})
	if jpy.Status != http.StatusCreated || num(jpy.json(t)["amount_received"]) != 500 || jpy.json(t)["currency"] != "jpy" {
		t.Fatalf("jpy: %d %s", jpy.Status, jpy.Body)
	}
}

func TestCardNumbersAreRefusedAndNeverStored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	numbers := []string{"4242424242424242", "4242 4242 4242 4242", "4242-4242-4242-4242", "5555555555554444", "378282246310005"}
	for _, n := range numbers {
		for _, body := range []map[string]any{
			with(visa(100), "metadata", map[string]string{"note": "card " + n}),
			with(visa(100), "description", n),
			with(visa(100), "payment_method", n),
			with(visa(100), "customer", n),
		} {
			expectProblem(t, h.pay(ten.Secret, body), http.StatusBadRequest, "card_data_not_allowed")
		}
	}
	// Also with an Idempotency-Key: nothing is recorded.
	expectProblem(t, h.pay(ten.Secret, with(visa(100), "description", numbers[0]), "Idempotency-Key", "card"), http.StatusBadRequest, "card_data_not_allowed")
	// A number in a path is refused at the edge (it was a 404 before the
	// edge refused card data in URLs) and not logged either.
	expectProblem(t, h.do("GET", "/v1/payments/4242424242424242", ten.Secret, nil), http.StatusBadRequest, "card_data_not_allowed")
	logs := h.logs.String()
	for _, n := range numbers {
		if strings.Contains(logs, n) || strings.Contains(logs, strings.ReplaceAll(n, " ", "")) {
			t.Fatalf("a card number reached the logs")
		}
	}
	ctx := context.Background()
	for _, s := range h.shards.All() {
		for _, table := range []string{"payments", "events", "idempotency_keys", "refunds", "tenants"} {
			var n int
			if err := s.Pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" x WHERE x::text LIKE '%4242%4242%' OR x::text LIKE '%5555%4444%' OR x::text LIKE '%378282246310005%'").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("%d rows of %s on %s hold a card number", n, table, s.Name)
			}
		}
	}
	if r := h.pay(ten.Secret, visa(100), "Idempotency-Key", "card"); r.Status != http.StatusCreated || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("the key of a refused request was recorded: %d %s", r.Status, r.Body)
	}
}

// TestReadDuringCreationIsNotCachedStale reads a payment while its
// authorization is still at the processor (the intent is committed, the
// outcome not yet), then again after the creation answered: the second
// read must show the outcome, although the creation writes nothing to the
// cache.
func TestReadDuringCreationIsNotCachedStale(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{SandboxLatency: 500 * time.Millisecond})
	ten := h.createTenant("Acme", nil)
	done := make(chan response, 1)
	go func() { done <- h.pay(ten.Secret, visa(1000)) }()
	var id string
	for deadline := time.Now().Add(20 * time.Second); id == ""; time.Sleep(5 * time.Millisecond) {
		list := h.do("GET", "/v1/payments", ten.Secret, nil).json(t)
		if data, _ := list["data"].([]any); len(data) == 1 {
			id = data[0].(map[string]any)["id"].(string)
		}
		if time.Now().After(deadline) {
			t.Fatal("the payment was never recorded")
		}
	}
	if got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t); got["status"] != "pending" {
		t.Fatalf("read during the authorization: %v, want pending", got["status"])
	}
	if r := <-done; r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	for range 2 { // the second read may come from the cache
		if got := h.do("GET", "/v1/payments/"+id, ten.Secret, nil).json(t); got["status"] != "succeeded" {
			t.Fatalf("read after the creation answered: %v, want succeeded", got["status"])
		}
	}
}
