package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// contractHeaders are the headers the server sets itself; each one present
// in an answer must be declared on that answer in the spec.
var contractHeaders = []string{"Request-Id", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After", "Idempotent-Replayed", "Allow"}

// contract validates answers against both OpenAPI documents the server
// serves (3.1 and 3.0), with kin-openapi's openapi3filter, an independent
// validator.
type contract struct {
	t     *testing.T
	h     *harness
	specs []*servedSpec
	// seen counts answers per status, to show how broad the run was.
	seen       map[int]int
	mismatches int
}

type servedSpec struct {
	path   string
	doc    *openapi3.T
	router routers.Router
}

func newContract(t *testing.T, h *harness) *contract {
	t.Helper()
	c := &contract{t: t, h: h, seen: map[int]int{}}
	for _, path := range []string{"/openapi.json", "/openapi-3.0.json"} {
		r := h.do("GET", path, "", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, r.Status)
		}
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(r.Body)
		if err != nil {
			t.Fatalf("load %s: %v", path, err)
		}
		if err := doc.Validate(context.Background()); err != nil {
			t.Fatalf("%s is not a valid OpenAPI document: %v", path, err)
		}
		doc.Servers = openapi3.Servers{{URL: h.url}}
		router, err := gorillamux.NewRouter(doc)
		if err != nil {
			t.Fatal(err)
		}
		c.specs = append(c.specs, &servedSpec{path: path, doc: doc, router: router})
	}
	return c
}

// send sends one request and validates the answer: status, content type,
// body and headers. raw bodies are sent as they are, others as JSON.
func (c *contract) send(method, path, auth string, body any, headers ...string) response {
	c.t.Helper()
	var payload []byte
	switch b := body.(type) {
	case nil:
	case string:
		payload = []byte(b)
	case []byte:
		payload = b
	default:
		var err error
		if payload, err = json.Marshal(b); err != nil {
			c.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, c.h.url+path, bytes.NewReader(payload))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		c.t.Fatal(err)
	}
	out := response{Status: res.StatusCode, Header: res.Header, Body: b}
	c.seen[out.Status]++
	for _, sp := range c.specs {
		c.validate(sp, req, out)
	}
	return out
}

func (c *contract) fail(sp *servedSpec, req *http.Request, r response, format string, args ...any) {
	c.t.Helper()
	c.mismatches++
	c.t.Errorf("[%s] %s %s → %d: %s\n  body: %.300s", sp.path, req.Method, req.URL.Path, r.Status, strings.TrimSpace(strings.ReplaceAll(
		fmt.Sprintf(format, args...), "\n", "\n  ")), r.Body)
}

func (c *contract) validate(sp *servedSpec, req *http.Request, r response) {
	c.t.Helper()
	route, params, err := sp.router.FindRoute(req)
	if err != nil {
		var re *routers.RouteError
		if errors.As(err, &re) && errors.Is(err, routers.ErrMethodNotAllowed) {
			c.validateUnrouted(sp, req, r, http.StatusMethodNotAllowed)
			return
		}
		if errors.Is(err, routers.ErrPathNotFound) {
			c.validateUnrouted(sp, req, r, http.StatusNotFound)
			return
		}
		c.fail(sp, req, r, "find route: %v", err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status:  r.Status,
		Header:  r.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(r.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		c.fail(sp, req, r, "%v", err)
	}
	resp := route.Operation.Responses.Status(r.Status)
	if resp == nil || resp.Value == nil {
		return // already reported by the validator
	}
	for _, name := range contractHeaders {
		if r.Header.Get(name) == "" {
			continue
		}
		if _, ok := resp.Value.Headers[name]; !ok {
			c.fail(sp, req, r, "header %s is sent but not declared on this answer", name)
		}
	}
}

// validateUnrouted checks answers to a path or method the spec does not
// have: the body must be an Error, and a 405 names the allowed methods.
func (c *contract) validateUnrouted(sp *servedSpec, req *http.Request, r response, want int) {
	c.t.Helper()
	if r.Status != want {
		c.fail(sp, req, r, "the spec has no such operation, so the answer must be %d", want)
		return
	}
	schema := sp.doc.Components.Schemas[errorSchemaName(sp.doc)]
	if schema == nil {
		c.fail(sp, req, r, "no error schema in components")
		return
	}
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		c.fail(sp, req, r, "body is not JSON: %v", err)
		return
	}
	var opts []openapi3.SchemaValidationOption
	if sp.doc.IsOpenAPI31OrLater() {
		opts = append(opts, openapi3.EnableJSONSchema2020())
	}
	if err := schema.Value.VisitJSON(v, opts...); err != nil {
		c.fail(sp, req, r, "body is not an error: %v", err)
	}
	if want == http.StatusMethodNotAllowed {
		var allowed []string
		for _, m := range []string{"DELETE", "GET", "PATCH", "POST", "PUT"} {
			probe := req.Clone(context.Background())
			probe.Method = m
			if _, _, err := sp.router.FindRoute(probe); err == nil {
				allowed = append(allowed, m)
			}
		}
		sort.Strings(allowed)
		if got := r.Header.Get("Allow"); got != strings.Join(allowed, ", ") {
			c.fail(sp, req, r, "Allow %q, want %q", got, strings.Join(allowed, ", "))
		}
	}
}

func errorSchemaName(doc *openapi3.T) string {
	if doc.Components.Schemas["Error"] != nil {
		return "Error"
	}
	return "Problem"
}

// TestEveryAnswerMatchesTheSpec sends happy paths and every documented
// error through the real server and validates each answer.
func TestEveryAnswerMatchesTheSpec(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{WebhookAllowPrivate: true})
	c := newContract(t, h)

	// Health.
	c.send("GET", "/healthz", "", nil)
	c.send("GET", "/readyz", "", nil)

	// Admin.
	created := c.send("POST", "/v1/admin/tenants", adminToken, map[string]any{"name": "Contract", "region": "local"})
	var tc struct {
		Account struct{ ID string } `json:"account"`
		APIKey  struct {
			ID     string `json:"id"`
			Secret string `json:"secret"`
		} `json:"api_key"`
	}
	if err := json.Unmarshal(created.Body, &tc); err != nil || tc.APIKey.Secret == "" {
		t.Fatalf("create tenant: %d %s", created.Status, created.Body)
	}
	ten, secret := tc.Account.ID, tc.APIKey.Secret
	c.send("POST", "/v1/admin/tenants", adminToken, map[string]any{"name": "", "region": "local"})
	c.send("POST", "/v1/admin/tenants", adminToken, map[string]any{"name": "x", "region": "local", "nmae": "y"})
	c.send("POST", "/v1/admin/tenants", adminToken, `{"name":`)
	c.send("POST", "/v1/admin/tenants", "wrong-token", map[string]any{"name": "x", "region": "local"})
	c.send("POST", "/v1/admin/tenants", adminToken, map[string]any{"name": "x", "region": "nowhere"})
	c.send("GET", "/v1/admin/tenants", adminToken, nil)
	c.send("GET", "/v1/admin/tenants?limit=0", adminToken, nil)
	c.send("GET", "/v1/admin/tenants/"+ten, adminToken, nil)
	c.send("GET", "/v1/admin/tenants/ten_nothing", adminToken, nil)
	c.send("POST", "/v1/admin/tenants/"+ten, adminToken, map[string]any{"rate_limit_per_second": 500})
	c.send("POST", "/v1/admin/tenants/"+ten, adminToken, map[string]any{"status": "sleeping"})
	key := c.send("POST", "/v1/admin/tenants/"+ten+"/keys", adminToken, map[string]any{"read_only": true}).json(t)
	c.send("GET", "/v1/admin/tenants/"+ten+"/keys", adminToken, nil)
	c.send("GET", "/v1/admin/tenants/"+ten+"/reconciliation", adminToken, nil)
	c.send("GET", "/v1/admin/tenants/"+ten+"/stripe_account", adminToken, nil)
	readOnly, _ := key["secret"].(string)
	extra := c.send("POST", "/v1/admin/tenants/"+ten+"/keys", adminToken, map[string]any{}).json(t)
	extraID, _ := extra["id"].(string)
	c.send("POST", "/v1/admin/tenants/"+ten+"/keys/"+extraID+"/revoke", adminToken, nil)
	c.send("POST", "/v1/admin/tenants/"+ten+"/keys/key_nothing/revoke", adminToken, nil)

	// Authentication.
	c.send("GET", "/v1/account", secret, nil)
	c.send("GET", "/v1/account", "", nil)
	c.send("GET", "/v1/account", "sk_test_unknownunknownunknownunknown", nil)
	c.send("POST", "/v1/payments", readOnly, visa(100))

	// Payments: success, location, replay, reuse, declines, 3-D Secure,
	// manual capture, and the validation errors.
	pay := c.send("POST", "/v1/payments", secret, visa(1000), "Idempotency-Key", "contract-1").json(t)
	payID, _ := pay["id"].(string)
	c.send("POST", "/v1/payments", secret, visa(1000), "Idempotency-Key", "contract-1")
	c.send("POST", "/v1/payments", secret, visa(1001), "Idempotency-Key", "contract-1")
	c.send("POST", "/v1/payments", secret, with(visa(1200), "location", map[string]float64{"lat": 52.52, "lon": 13.405}, "description", "Order 1", "customer", "cus_1", "metadata", map[string]string{"a": "b"}))
	c.send("POST", "/v1/payments", secret, map[string]any{"amount": 500, "currency": "usd", "payment_method": "pm_card_chargeDeclined"})
	tds := c.send("POST", "/v1/payments", secret, map[string]any{"amount": 1500, "currency": "eur", "payment_method": "pm_card_threeDSecure2Required"}).json(t)
	if next, ok := tds["next_action"].(map[string]any); ok {
		if u, ok := next["redirect_url"].(string); ok {
			c.send("POST", u, "", nil)
			c.send("POST", u, "", nil)
		}
	}
	c.send("POST", "/v1/sandbox/3ds/nothing", "", nil)
	manual := c.send("POST", "/v1/payments", secret, with(visa(900), "capture_method", "manual")).json(t)
	manualID, _ := manual["id"].(string)
	c.send("POST", "/v1/payments/"+manualID+"/capture", secret, map[string]any{"amount_to_capture": 5000})
	c.send("POST", "/v1/payments/"+manualID+"/capture", secret, map[string]any{"amount_to_capture": 800})
	c.send("POST", "/v1/payments/"+manualID+"/capture", secret, nil)
	cancel := c.send("POST", "/v1/payments", secret, with(visa(700), "capture_method", "manual")).json(t)
	cancelID, _ := cancel["id"].(string)
	c.send("POST", "/v1/payments/"+cancelID+"/cancel", secret, nil)
	c.send("POST", "/v1/payments/"+cancelID+"/cancel", secret, nil)
	c.send("POST", "/v1/payments/pay_nothing/capture", secret, nil)
	c.send("POST", "/v1/payments", secret, with(visa(100), "amount", 0))
	c.send("POST", "/v1/payments", secret, with(visa(100), "currency", "xyz"))
	c.send("POST", "/v1/payments", secret, with(visa(100), "amount", 100000000000))
	c.send("POST", "/v1/payments", secret, with(visa(100), "payment_method", "4242424242424242"))
	c.send("POST", "/v1/payments", secret, with(visa(100), "amount_cents", 5))
	c.send("POST", "/v1/payments", secret, `{"amount":`)
	c.send("POST", "/v1/payments", secret, `{"amount": null, "currency": "usd", "payment_method": "pm_card_visa"}`)
	c.send("POST", "/v1/payments", secret, "{\"amount\": 100, \"currency\": \"usd\", \"payment_method\": \"pm_card_visa\", \"description\": \"a\\u0000b\"}")
	c.send("POST", "/v1/payments", secret, []byte("{\"amount\": 100, \"currency\": \"usd\", \"payment_method\": \"pm_card_visa\", \"description\": \"a\xffb\"}"))
	c.send("POST", "/v1/payments", secret, strings.Repeat(" ", 70<<10)+"{}")
	c.send("POST", "/v1/payments", secret, visa(100), "Content-Type", "text/plain")
	c.send("POST", "/v1/payments", secret, visa(100), "Idempotency-Key", strings.Repeat("k", 300))
	c.send("GET", "/v1/payments/"+payID, secret, nil)
	c.send("GET", "/v1/payments/pay_nothing", secret, nil)
	c.send("GET", "/v1/payments", secret, nil)
	c.send("GET", "/v1/payments?limit=2&status=succeeded", secret, nil)
	c.send("GET", "/v1/payments?limit=0", secret, nil)
	c.send("GET", "/v1/payments?status=lost", secret, nil)
	c.send("GET", "/v1/payments?starting_after=re_nothing", secret, nil)

	// Refunds.
	c.send("POST", "/v1/refunds", secret, map[string]any{"payment": payID, "amount": 100, "reason": "requested_by_customer"})
	ref := c.send("POST", "/v1/refunds", secret, map[string]any{"payment": payID, "amount": 100}).json(t)
	c.send("POST", "/v1/refunds", secret, map[string]any{"payment": payID, "amount": 100000})
	c.send("POST", "/v1/refunds", secret, map[string]any{"payment": "pay_nothing"})
	c.send("POST", "/v1/refunds", secret, `{"payment": "`+payID+`", "amount": null}`)
	c.send("POST", "/v1/refunds", secret, map[string]any{"payment": cancelID})
	refID, _ := ref["id"].(string)
	c.send("GET", "/v1/refunds/"+refID, secret, nil)
	c.send("GET", "/v1/refunds/re_nothing", secret, nil)
	c.send("GET", "/v1/refunds", secret, nil)
	c.send("GET", "/v1/refunds?payment="+payID, secret, nil)

	// Disputes: a sandbox dispute, answered, listed, refused.
	disputed := c.send("POST", "/v1/payments", secret, map[string]any{"amount": 1200, "currency": "usd", "payment_method": "pm_card_createDispute"}).json(t)
	disputedID, _ := disputed["id"].(string)
	dp := h.waitDispute(secret, disputedID, "needs_response")
	dpID, _ := dp["id"].(string)
	c.send("GET", "/v1/disputes/"+dpID, secret, nil)
	c.send("GET", "/v1/disputes/dp_nothing", secret, nil)
	c.send("GET", "/v1/disputes?payment="+disputedID+"&status=needs_response", secret, nil)
	c.send("GET", "/v1/disputes?status=open", secret, nil)
	c.send("POST", "/v1/disputes/"+dpID, secret, map[string]any{"evidence": map[string]any{"product_description": strings.Repeat("x", 10_001)}})
	c.send("POST", "/v1/disputes/"+dpID, secret, map[string]any{"evidence": map[string]any{"product_description": "A lamp"}})
	c.send("POST", "/v1/disputes/"+dpID, secret, map[string]any{"evidence": map[string]any{"product_description": "A lamp"}})
	c.send("POST", "/v1/disputes/"+dpID+"/close", secret, nil)
	c.send("POST", "/v1/disputes/"+dpID+"/close", secret, nil)
	c.send("POST", "/v1/refunds", secret, map[string]any{"payment": disputedID})
	c.send("GET", "/v1/payments/"+disputedID, secret, nil)

	// Balance and events.
	c.send("GET", "/v1/balance", secret, nil)
	c.send("GET", "/v1/balance_transactions", secret, nil)
	c.send("GET", "/v1/balance_transactions?limit=101", secret, nil)
	events := c.send("GET", "/v1/events?limit=100", secret, nil).json(t)
	c.send("GET", "/v1/events?type=payment.succeeded", secret, nil)
	var eventID string
	if data, ok := events["data"].([]any); ok && len(data) > 0 {
		eventID, _ = data[0].(map[string]any)["id"].(string)
	}
	c.send("GET", "/v1/events/"+eventID, secret, nil)
	c.send("GET", "/v1/events/evt_nothing", secret, nil)

	// Webhook endpoints.
	we := c.send("POST", "/v1/webhook_endpoints", secret, map[string]any{"url": "http://127.0.0.1:9/hook", "enabled_events": []string{"*"}}).json(t)
	weID, _ := we["id"].(string)
	c.send("POST", "/v1/webhook_endpoints", secret, map[string]any{"url": "ftp://example.com", "enabled_events": []string{"*"}})
	c.send("POST", "/v1/webhook_endpoints", secret, map[string]any{"url": "https://example.com/h", "enabled_events": []string{}})
	c.send("GET", "/v1/webhook_endpoints", secret, nil)
	c.send("GET", "/v1/webhook_endpoints/"+weID, secret, nil)
	c.send("POST", "/v1/webhook_endpoints/"+weID, secret, map[string]any{"description": "Orders", "disabled": true})
	c.send("POST", "/v1/webhook_endpoints/"+weID+"/rotate_secret", secret, nil)
	c.send("GET", "/v1/webhook_endpoints/"+weID+"/deliveries", secret, nil)
	c.send("POST", "/v1/events/"+eventID+"/redeliver", secret, map[string]any{"endpoint": weID})
	c.send("DELETE", "/v1/webhook_endpoints/"+weID, secret, nil)
	c.send("GET", "/v1/webhook_endpoints/"+weID, secret, nil)

	// Stripe webhooks without a signature.
	c.send("POST", "/v1/stripe/webhooks", "", map[string]any{"id": "evt_1"})

	// The edge: card data and NUL in URLs.
	c.send("GET", "/v1/payments/4242424242424242", secret, nil)
	c.send("POST", "/v1/payments/4242424242424242/capture", secret, nil)
	c.send("GET", "/v1/payments?customer=a%00b", secret, nil)
	c.send("POST", "/v1/payments", secret, visa(100), "Idempotency-Key", "4242424242424242")

	// Routing: an unknown path and a wrong method.
	c.send("GET", "/v1/nothing", secret, nil)
	c.send("DELETE", "/v1/payments", secret, nil)
	c.send("PUT", "/v1/payments/"+payID, secret, nil)

	// The rate limit: a tenant allowed one request per second.
	slow := h.createTenant("Slow", map[string]any{"rate_limit_per_second": 1, "rate_limit_burst": 1})
	for range 3 {
		c.send("GET", "/v1/account", slow.Secret, nil)
	}

	// Unauthenticated traffic past its per-address budget.
	for i := range 25 {
		c.send("GET", "/v1/balance", fmt.Sprintf("sk_test_unknown%040d", i), nil)
	}
	c.send("POST", "/v1/admin/tenants", "wrong", map[string]any{"name": "x", "region": "local"})

	// 503: readiness with Redis gone, on a server of its own.
	down := newContract(t, newHarness(t, harnessOptions{RedisURL: "redis://127.0.0.1:1/0"}))
	down.send("GET", "/readyz", "", nil)
	down.send("GET", "/healthz", "", nil)
	for k, v := range down.seen {
		c.seen[k] += v
	}
	c.mismatches += down.mismatches

	t.Logf("answers by status: %v; mismatches: %d", c.seen, c.mismatches)
	for _, status := range []int{200, 201, 400, 401, 402, 403, 404, 405, 409, 413, 415, 429, 503} {
		if c.seen[status] == 0 {
			t.Errorf("no answer with status %d was checked", status)
		}
	}
}
