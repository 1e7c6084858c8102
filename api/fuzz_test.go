package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzRequestBodies sends arbitrary bodies to every operation that takes
// one, through the real server and database. Whatever the body, the answer
// is never a 5xx, always JSON, and a refusal is a problem with a code.
func FuzzRequestBodies(f *testing.F) {
	h := newHarness(f, harnessOptions{WebhookAllowPrivate: true})
	ten := h.createTenant("Fuzz", nil)
	pay := h.pay(ten.Secret, map[string]any{"amount": 5000, "currency": "usd", "payment_method": "pm_card_visa", "capture_method": "manual"}).json(f)
	paid := h.pay(ten.Secret, map[string]any{"amount": 5000, "currency": "usd", "payment_method": "pm_card_visa"}).json(f)
	ep := h.createEndpoint(ten.Secret, "http://127.0.0.1:9/fuzz", "*")
	type op struct{ path, auth string }
	ops := []op{
		{"/v1/payments", ten.Secret},
		{"/v1/payments/" + pay["id"].(string) + "/capture", ten.Secret},
		{"/v1/payments/" + pay["id"].(string) + "/cancel", ten.Secret},
		{"/v1/refunds", ten.Secret},
		{"/v1/webhook_endpoints", ten.Secret},
		{"/v1/webhook_endpoints/" + ep["id"].(string), ten.Secret},
		{"/v1/admin/tenants", adminToken},
	}
	seeds := []string{
		`{"amount":1000,"currency":"usd","payment_method":"pm_card_visa"}`,
		`{"amount":-1,"currency":"xyz"}`,
		`{"amount":1e400}`,
		`{"amount":"12"}`,
		`{"payment":"` + paid["id"].(string) + `","amount":100}`,
		`{"url":"http://127.0.0.1:9/x","enabled_events":["*"]}`,
		`{"name":"Acme","region":"local"}`,
		`{"metadata":{"k":"v"}}`,
		`[]`, `null`, ``, `{`, `{"a":`, `"x"`, `{"amount":1000,"amount":2000}`,
		`{"description":"` + strings.Repeat("d", 70_000) + `"}`,
		`{"x":` + strings.Repeat("[", 10_000) + `}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	// A request the server never answers is a finding too.
	client := &http.Client{Timeout: 20 * time.Second}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		o := ops[int(which)%len(ops)]
		req, err := http.NewRequest(http.MethodPost, h.url+o.path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+o.auth)
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s with %q: %v", o.path, body, err)
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode >= 500 {
			t.Fatalf("POST %s with %q: %d %s", o.path, body, res.StatusCode, raw)
		}
		var answer map[string]any
		if err := json.Unmarshal(raw, &answer); err != nil {
			t.Fatalf("POST %s with %q: %d, not a JSON object: %s", o.path, body, res.StatusCode, raw)
		}
		if res.StatusCode >= 400 {
			if code, _ := answer["code"].(string); code == "" {
				t.Fatalf("POST %s with %q: %d without a code: %s", o.path, body, res.StatusCode, raw)
			}
		}
	})
}
