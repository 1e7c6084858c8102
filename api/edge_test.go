package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCardNumbersInURLsNeverReachALog sends card numbers in every part of
// a URL: each is refused and none is logged.
func TestCardNumbersInURLsNeverReachALog(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	for _, path := range []string{
		"/v1/payments/4242424242424242/capture",
		"/v1/payments/4242-4242-4242-4242/cancel",
		"/v1/webhook_endpoints/5555555555554444/deliveries",
		"/v1/payments?customer=4242424242424242",
		"/v1/payments?customer=4242%204242%204242%204242",
		"/v1/nothing/378282246310005/here",
	} {
		for _, method := range []string{"GET", "POST"} {
			expectProblem(t, h.do(method, path, ten.Secret, nil), http.StatusBadRequest, "card_data_not_allowed")
		}
	}
	expectProblem(t, h.pay(ten.Secret, visa(100), "Idempotency-Key", "4242424242424242"), http.StatusBadRequest, "card_data_not_allowed")
	logs := h.logs.String()
	for _, n := range []string{"4242424242424242", "4242-4242-4242-4242", "5555555555554444", "378282246310005", "4242%204242"} {
		if strings.Contains(logs, n) {
			t.Fatalf("card number %s reached the logs", n)
		}
	}
	if !strings.Contains(logs, `"status":400`) {
		t.Fatal("no request was logged: the test checks nothing")
	}
}

// TestNULAndInvalidUTF8AreRefused: anywhere in a string, 400, never 500.
func TestNULAndInvalidUTF8AreRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	for name, body := range map[string]string{
		"NUL in description":  `{"amount": 100, "currency": "usd", "payment_method": "pm_card_visa", "description": "a\u0000b"}`,
		"NUL in metadata":     `{"amount": 100, "currency": "usd", "payment_method": "pm_card_visa", "metadata": {"k": "\u0000"}}`,
		"NUL in metadata key": `{"amount": 100, "currency": "usd", "payment_method": "pm_card_visa", "metadata": {"k\u0000": "v"}}`,
		"invalid UTF-8":       "{\"amount\": 100, \"currency\": \"usd\", \"payment_method\": \"pm_card_visa\", \"description\": \"a\xff\xfeb\"}",
	} {
		r := h.do("POST", "/v1/payments", ten.Secret, []byte(body))
		if r.Status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
		if m := r.json(t); m["type"] != "invalid_request_error" {
			t.Fatalf("%s: %v", name, m)
		}
	}
	p := expectProblem(t, h.do("POST", "/v1/payments", ten.Secret, []byte(`{"amount": 100, "currency": "usd", "payment_method": "pm_card_visa", "description": "a\u0000b"}`)), http.StatusBadRequest, "parameter_invalid")
	if p["param"] != "description" {
		t.Fatalf("param %v", p["param"])
	}
	// An escaped backslash before u0000 is no NUL.
	if r := h.do("POST", "/v1/payments", ten.Secret, []byte(`{"amount": 100, "currency": "usd", "payment_method": "pm_card_visa", "description": "a\\u0000b"}`)); r.Status != http.StatusCreated {
		t.Fatalf("literal backslash-u: %d %s", r.Status, r.Body)
	}
	for _, path := range []string{"/v1/payments?customer=a%00b", "/v1/payments?customer=%ff", "/v1/payments/pay_%00", "/v1/payments/%ff%fe"} {
		r := h.do("GET", path, ten.Secret, nil)
		if r.Status != http.StatusBadRequest {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
		}
	}
	p = expectProblem(t, h.do("GET", "/v1/payments?customer=a%00b", ten.Secret, nil), http.StatusBadRequest, "parameter_invalid")
	if p["param"] != "customer" {
		t.Fatalf("param %v", p["param"])
	}
}

// TestExplicitNullIsRefused: null where the schema does not allow it is an
// error, not "absent".
func TestExplicitNullIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	pay := h.pay(ten.Secret, visa(1000)).json(t)["id"].(string)
	manual := h.pay(ten.Secret, with(visa(1000), "capture_method", "manual")).json(t)["id"].(string)
	for _, c := range []struct {
		path, body, param string
	}{
		{"/v1/refunds", `{"payment": "` + pay + `", "amount": null}`, "amount"},
		{"/v1/payments/" + manual + "/capture", `{"amount_to_capture": null}`, "amount_to_capture"},
		{"/v1/payments", `{"amount": null, "currency": "usd", "payment_method": "pm_card_visa"}`, "amount"},
		{"/v1/payments", `{"amount": 100, "currency": "usd", "payment_method": "pm_card_visa", "metadata": {"k": null}}`, "metadata.k"},
		{"/v1/payments", `{"amount": 100, "currency": "usd", "payment_method": "pm_card_visa", "location": {"lat": null, "lon": 1}}`, "location.lat"},
	} {
		p := expectProblem(t, h.do("POST", c.path, ten.Secret, c.body), http.StatusBadRequest, "parameter_invalid")
		if p["param"] != c.param {
			t.Fatalf("%s %s: param %v, want %s", c.path, c.body, p["param"], c.param)
		}
	}
	// Nothing moved: no refund, no capture.
	if got := h.do("GET", "/v1/payments/"+pay, ten.Secret, nil).json(t); num(got["amount_refunded"]) != 0 {
		t.Fatalf("a null amount refunded %v", got["amount_refunded"])
	}
	if got := h.do("GET", "/v1/payments/"+manual, ten.Secret, nil).json(t); got["status"] != "requires_capture" {
		t.Fatalf("a null amount captured: %v", got["status"])
	}
}

// TestUnauthenticatedTrafficIsLimitedPerAddress: failed authentications
// spend a per-address budget; past it, unknown keys are refused before any
// look-up, while a good key keeps working.
func TestUnauthenticatedTrafficIsLimitedPerAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	h.do("GET", "/v1/account", ten.Secret, nil) // known good from now on
	statuses := map[int]int{}
	var limited response
	for i := range 30 {
		r := h.do("GET", "/v1/account", fmt.Sprintf("sk_test_unknown%040d", i), nil)
		statuses[r.Status]++
		if r.Status == http.StatusTooManyRequests {
			limited = r
		}
	}
	if statuses[http.StatusUnauthorized] != 20 || statuses[http.StatusTooManyRequests] != 10 {
		t.Fatalf("statuses %v, want 20 × 401 then 10 × 429", statuses)
	}
	p := expectProblem(t, limited, http.StatusTooManyRequests, "rate_limited")
	if p["type"] != "rate_limit_error" || limited.Header.Get("Retry-After") == "" {
		t.Fatalf("429 %v %v", p, limited.Header)
	}
	// Missing keys and wrong admin tokens are limited alike.
	expectProblem(t, h.do("GET", "/v1/account", "", nil), http.StatusTooManyRequests, "rate_limited")
	expectProblem(t, h.do("GET", "/v1/admin/tenants", "wrong", nil), http.StatusTooManyRequests, "rate_limited")
	// The good key is still served, and so is the admin.
	if r := h.do("GET", "/v1/account", ten.Secret, nil); r.Status != http.StatusOK {
		t.Fatalf("good key while the address is limited: %d %s", r.Status, r.Body)
	}
	if r := h.do("GET", "/v1/admin/tenants", adminToken, nil); r.Status != http.StatusTooManyRequests {
		// The admin token is checked only after the budget: an address
		// that brute-forces it waits like any other.
		t.Fatalf("admin from a limited address: %d", r.Status)
	}
	// The budget refills at 5 per second.
	h.clock.Advance(time.Second)
	for i := range 5 {
		if r := h.do("GET", "/v1/account", fmt.Sprintf("sk_test_later%040d", i), nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("after a second, attempt %d: %d", i, r.Status)
		}
	}
	expectProblem(t, h.do("GET", "/v1/account", "sk_test_one_more", nil), http.StatusTooManyRequests, "rate_limited")
}

// TestEveryAuthenticatedAnswerCarriesRateLimitHeaders, errors included.
func TestEveryAuthenticatedAnswerCarriesRateLimitHeaders(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	key := h.do("POST", "/v1/admin/tenants/"+ten.ID+"/keys", adminToken, map[string]any{"read_only": true}).json(t)["secret"].(string)
	for _, r := range []response{
		h.do("GET", "/v1/account", ten.Secret, nil),
		h.pay(ten.Secret, visa(100)),
		h.pay(ten.Secret, with(visa(100), "amount", 0)),
		h.pay(ten.Secret, map[string]any{"amount": 100, "currency": "usd", "payment_method": "pm_card_chargeDeclined"}),
		h.do("GET", "/v1/payments/pay_nothing", ten.Secret, nil),
		h.pay(key, visa(100)),
		h.do("POST", "/v1/payments", ten.Secret, `{"amount":`),
	} {
		for _, name := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
			if r.Header.Get(name) == "" {
				t.Fatalf("answer %d without %s: %s", r.Status, name, r.Body)
			}
		}
	}
}
