package payments_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	payments "github.com/payments-api/payments/sdk/go"
)

// liveServer answers the base URL and admin token of the server that
// scripts/sdk-e2e.sh started (PAYMENTS_SDK_BASE_URL, PAYMENTS_SDK_ADMIN_TOKEN).
// Without them the test is skipped, unless PAYMENTS_SDK_E2E_REQUIRED=1 (as
// `make test` sets), when it fails.
func liveServer(t *testing.T) (string, string) {
	t.Helper()
	base, token := os.Getenv("PAYMENTS_SDK_BASE_URL"), os.Getenv("PAYMENTS_SDK_ADMIN_TOKEN")
	if base == "" || token == "" {
		if os.Getenv("PAYMENTS_SDK_E2E_REQUIRED") == "1" {
			t.Fatal("PAYMENTS_SDK_BASE_URL and PAYMENTS_SDK_ADMIN_TOKEN must name a live server")
		}
		t.Skip("no live server: run `make test`, or scripts/sdk-e2e.sh")
	}
	return base, token
}

func fromJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return v
}

// newTenant creates a tenant through the admin API (with the SDK's raw
// generated client) and answers a client authenticated with its key.
func newTenant(t *testing.T, ctx context.Context, base, token string) *payments.Client {
	t.Helper()
	admin, err := payments.New(token, payments.Options{BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	res, err := admin.API.AdminCreateTenantWithResponse(ctx, nil, fromJSON[payments.AdminCreateTenantJSONRequestBody](t,
		`{"name":"SDK e2e (Go)","region":"local"}`))
	if err := payments.Check(res, res.Body, err); err != nil {
		t.Fatal(err)
	}
	if res.JSON201 == nil || res.JSON201.ApiKey.Secret == nil {
		t.Fatalf("create tenant: %d %s", res.StatusCode(), res.Body)
	}
	c, err := payments.New(*res.JSON201.ApiKey.Secret, payments.Options{BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestEndToEnd drives the SDK against the live server: create, replay,
// decline, 3-D Secure, capture, refund, every page of a list, events, a
// webhook endpoint and the signature of a real delivery to a loopback
// receiver.
func TestEndToEnd(t *testing.T) {
	base, token := liveServer(t)
	ctx := context.Background()
	c := newTenant(t, ctx, base, token)
	var created []string // every payment of the tenant, oldest first

	acct, err := c.Account.Get(ctx)
	if err != nil || !strings.HasPrefix(acct.Id, "ten_") {
		t.Fatalf("account: %+v %v", acct, err)
	}

	// Create, then replay with the same key.
	visa := fromJSON[payments.CreatePaymentJSONRequestBody](t, `{"amount":2000,"currency":"usd","payment_method":"pm_card_visa","metadata":{"order":"A-1"}}`)
	key := payments.NewIdempotencyKey()
	var h1, h2 http.Header
	p1, err := c.Payments.Create(ctx, visa, payments.WithIdempotencyKey(key), payments.WithResponseHeader(&h1))
	if err != nil {
		t.Fatal(err)
	}
	created = append(created, p1.Id)
	if !strings.HasPrefix(p1.Id, "pay_") || string(p1.Status) != "succeeded" || p1.Amount != 2000 || h1.Get("Request-Id") == "" {
		t.Fatalf("create: %+v %v", p1, h1)
	}
	p2, err := c.Payments.Create(ctx, visa, payments.WithIdempotencyKey(key), payments.WithResponseHeader(&h2))
	if err != nil {
		t.Fatal(err)
	}
	if p2.Id != p1.Id || h2.Get("Idempotent-Replayed") != "true" || h1.Get("Idempotent-Replayed") == "true" {
		t.Fatalf("replay: %s vs %s, Idempotent-Replayed %q then %q", p1.Id, p2.Id, h1.Get("Idempotent-Replayed"), h2.Get("Idempotent-Replayed"))
	}
	// The same key with another request is an idempotency error.
	other := visa
	other.Amount = 2001
	_, err = c.Payments.Create(ctx, other, payments.WithIdempotencyKey(key))
	var idemErr *payments.IdempotencyError
	if !errors.As(err, &idemErr) || idemErr.Code != payments.CodeIdempotencyReused {
		t.Fatalf("reused key: %v", err)
	}

	// Without a key of its own, each call gets a fresh one: two payments.
	p3, err := c.Payments.Create(ctx, visa)
	if err != nil {
		t.Fatal(err)
	}
	created = append(created, p3.Id)
	if p3.Id == p1.Id {
		t.Fatal("two calls without a key made one payment")
	}

	// Decline: a typed card error, and the payment is kept as failed.
	_, err = c.Payments.Create(ctx, fromJSON[payments.CreatePaymentJSONRequestBody](t, `{"amount":500,"currency":"usd","payment_method":"pm_card_chargeDeclined"}`))
	var cardErr *payments.CardError
	if !errors.As(err, &cardErr) || cardErr.Code != payments.CodeCardDeclined || cardErr.Type != payments.TypeCard || cardErr.Status != 402 || cardErr.Payment == "" {
		t.Fatalf("decline: %#v", err)
	}
	var anyErr *payments.ResponseError
	if !errors.As(err, &anyErr) || anyErr.RequestID == "" {
		t.Fatalf("a card error is a *ResponseError with a request ID: %v", err)
	}
	created = append(created, cardErr.Payment)
	if failed, err := c.Payments.Get(ctx, cardErr.Payment); err != nil || string(failed.Status) != "failed" {
		t.Fatalf("declined payment: %+v %v", failed, err)
	}

	// Invalid requests and a bad key are typed too.
	_, err = c.Payments.Create(ctx, fromJSON[payments.CreatePaymentJSONRequestBody](t, `{"amount":100,"currency":"xyz","payment_method":"pm_card_visa"}`))
	var invalid *payments.InvalidRequestError
	if !errors.As(err, &invalid) || invalid.Param == "" {
		t.Fatalf("invalid currency: %#v", err)
	}
	if _, err := c.Payments.Get(ctx, "pay_doesnotexist"); !errors.As(err, &invalid) || invalid.Status != 404 {
		t.Fatalf("missing payment: %v", err)
	}
	bad, _ := payments.New("sk_test_not_a_key", payments.Options{BaseURL: base})
	var authErr *payments.AuthenticationError
	if _, err := bad.Account.Get(ctx); !errors.As(err, &authErr) || authErr.Status != 401 {
		t.Fatalf("bad key: %v", err)
	}

	// 3-D Secure: requires_action, the customer completes it, succeeded.
	p4, err := c.Payments.Create(ctx, fromJSON[payments.CreatePaymentJSONRequestBody](t, `{"amount":3000,"currency":"eur","payment_method":"pm_card_threeDSecure2Required"}`))
	if err != nil {
		t.Fatal(err)
	}
	created = append(created, p4.Id)
	next := nextActionURL(p4)
	if string(p4.Status) != "requires_action" || next == "" {
		t.Fatalf("3-D Secure: %+v", p4)
	}
	if err := c.Payments.CompleteSandboxAction(ctx, next); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the 3-D Secure payment to succeed", func() bool {
		p, err := c.Payments.Get(ctx, p4.Id)
		return err == nil && string(p.Status) == "succeeded"
	})

	// Manual capture, then a partial refund.
	p5, err := c.Payments.Create(ctx, fromJSON[payments.CreatePaymentJSONRequestBody](t, `{"amount":4000,"currency":"usd","payment_method":"pm_card_visa","capture_method":"manual"}`))
	if err != nil {
		t.Fatal(err)
	}
	created = append(created, p5.Id)
	if string(p5.Status) != "requires_capture" || p5.AmountCapturable != 4000 {
		t.Fatalf("manual: %+v", p5)
	}
	p5, err = c.Payments.Capture(ctx, p5.Id, payments.CapturePaymentJSONRequestBody{})
	if err != nil || string(p5.Status) != "succeeded" || p5.AmountReceived != 4000 {
		t.Fatalf("capture: %+v %v", p5, err)
	}
	re, err := c.Refunds.Create(ctx, fromJSON[payments.CreateRefundJSONRequestBody](t, `{"payment":"`+p5.Id+`","amount":1500}`))
	if err != nil || !strings.HasPrefix(re.Id, "re_") || re.Amount != 1500 {
		t.Fatalf("refund: %+v %v", re, err)
	}
	if p, err := c.Payments.Get(ctx, p5.Id); err != nil || p.AmountRefunded != 1500 {
		t.Fatalf("refunded payment: %+v %v", p, err)
	}
	var refunds []string
	for r, err := range c.Refunds.List(ctx, payments.ListRefundsParams{Payment: &p5.Id}) {
		if err != nil {
			t.Fatal(err)
		}
		refunds = append(refunds, r.Id)
	}
	if !slices.Equal(refunds, []string{re.Id}) {
		t.Fatalf("refunds of %s: %v", p5.Id, refunds)
	}

	// Every page: more payments, then a walk two by two.
	for range 7 {
		p, err := c.Payments.Create(ctx, visa)
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, p.Id)
	}
	limit := int64(2)
	var listed []string
	for p, err := range c.Payments.List(ctx, payments.ListPaymentsParams{Limit: &limit}) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, p.Id)
	}
	want := slices.Clone(created)
	slices.Reverse(want) // newest first
	if !slices.Equal(listed, want) {
		t.Fatalf("listed %d payments %v, want %d %v", len(listed), listed, len(want), want)
	}
	t.Logf("listed %d payments over %d pages of %d", len(listed), (len(listed)+1)/2, limit)
	// Breaking out of the loop stops the walk.
	n := 0
	for range c.Payments.List(ctx, payments.ListPaymentsParams{Limit: &limit}) {
		if n++; n == 3 {
			break
		}
	}

	// Events: the account's changes, newest first, every page.
	var types []string
	var firstEvent string
	for e, err := range c.Events.List(ctx, payments.ListEventsParams{Limit: &limit}) {
		if err != nil {
			t.Fatal(err)
		}
		if firstEvent == "" {
			firstEvent = e.Id
		}
		types = append(types, string(e.Type))
	}
	for _, want := range []string{"payment.succeeded", "payment.failed", "refund.succeeded"} {
		if !slices.Contains(types, want) {
			t.Errorf("events lack %s: %v", want, types)
		}
	}
	t.Logf("listed %d events: %v", len(types), types)
	if e, err := c.Events.Get(ctx, firstEvent); err != nil || e.Id != firstEvent {
		t.Fatalf("event %s: %+v %v", firstEvent, e, err)
	}

	testWebhookDelivery(t, ctx, c)
	testRateLimitRetries(t, ctx, base, token)
}

// testRateLimitRetries gives a tenant a budget of one request per second:
// calls in a row meet the server's 429, and the client waits the
// Retry-After it answers and succeeds.
func testRateLimitRetries(t *testing.T, ctx context.Context, base, token string) {
	admin, _ := payments.New(token, payments.Options{BaseURL: base})
	res, err := admin.API.AdminCreateTenantWithResponse(ctx, nil, fromJSON[payments.AdminCreateTenantJSONRequestBody](t,
		`{"name":"SDK e2e (Go, slow)","region":"local","rate_limit_per_second":1,"rate_limit_burst":1}`))
	if err := payments.Check(res, res.Body, err); err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	c, err := payments.New(*res.JSON201.ApiKey.Secret, payments.Options{BaseURL: base, Sleep: func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		time.Sleep(d)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.Account.Get(ctx); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if len(waits) == 0 || waits[0] < time.Second {
		t.Fatalf("waits %v: want at least one retry after the server's Retry-After (1 s)", waits)
	}
	t.Logf("3 calls at 1 request/s: %d retries after 429, waits %v", len(waits), waits)
}

// nextActionURL reads a payment's next_action.redirect_url through JSON,
// whatever the generated field's shape (a value or a pointer).
func nextActionURL(p *payments.Payment) string {
	b, _ := json.Marshal(p)
	var v struct {
		NextAction *struct {
			RedirectURL string `json:"redirect_url"`
		} `json:"next_action"`
	}
	_ = json.Unmarshal(b, &v)
	if v.NextAction == nil {
		return ""
	}
	return v.NextAction.RedirectURL
}

type delivery struct {
	header http.Header
	body   []byte
}

// testWebhookDelivery registers a loopback receiver, makes a payment and
// verifies the signature of its real delivery with the SDK's verifier.
func testWebhookDelivery(t *testing.T, ctx context.Context, c *payments.Client) {
	var mu sync.Mutex
	var got []delivery
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, payments.PayloadBytesMax))
		mu.Lock()
		got = append(got, delivery{r.Header.Clone(), body})
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	defer rc.Close()

	ep, err := c.WebhookEndpoints.Create(ctx, fromJSON[payments.CreateWebhookEndpointJSONRequestBody](t,
		`{"url":"`+rc.URL+`/hooks","enabled_events":["payment.succeeded"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ep.Id, "we_") || ep.Secret == nil || !strings.HasPrefix(*ep.Secret, "whsec_") {
		t.Fatalf("endpoint: %+v", ep)
	}
	secret := *ep.Secret
	if again, err := c.WebhookEndpoints.Get(ctx, ep.Id); err != nil || again.Url != rc.URL+"/hooks" {
		t.Fatalf("endpoint %s: %+v %v", ep.Id, again, err)
	}
	var endpoints []string
	for e, err := range c.WebhookEndpoints.List(ctx, payments.ListWebhookEndpointsParams{}) {
		if err != nil {
			t.Fatal(err)
		}
		endpoints = append(endpoints, e.Id)
	}
	if !slices.Equal(endpoints, []string{ep.Id}) {
		t.Fatalf("endpoints: %v", endpoints)
	}

	p, err := c.Payments.Create(ctx, fromJSON[payments.CreatePaymentJSONRequestBody](t, `{"amount":1234,"currency":"usd","payment_method":"pm_card_visa"}`))
	if err != nil {
		t.Fatal(err)
	}
	var d delivery
	waitFor(t, "the payment's webhook delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, x := range got {
			if strings.Contains(string(x.body), p.Id) {
				d = x
				return true
			}
		}
		return false
	})
	sig := d.header.Get(payments.SignatureHeader)
	ev, err := payments.ConstructEvent(d.body, sig, secret)
	if err != nil {
		t.Fatalf("a real delivery does not verify: %v\n%s\n%s", err, sig, d.body)
	}
	if string(ev.Type) != "payment.succeeded" || ev.Id != d.header.Get(payments.EventIDHeader) {
		t.Fatalf("delivered event: %+v (header %s)", ev, d.header.Get(payments.EventIDHeader))
	}
	if kind, err := ev.Data.Object.Discriminator(); err != nil || kind != "payment" {
		t.Fatalf("event data.object is %q (%v), want a payment", kind, err)
	}
	if obj, err := ev.Data.Object.AsPayment(); err != nil || obj.Id != p.Id || obj.Amount != 1234 {
		t.Fatalf("event data.object: %+v %v", obj, err)
	}
	t.Logf("delivery of %s verified: %s", ev.Id, sig)
	// The same delivery with a changed body, another secret, or too late fails.
	tampered := []byte(strings.Replace(string(d.body), "1234", "9234", 1))
	if err := payments.VerifySignature(tampered, sig, secret, 0, time.Now()); !errors.Is(err, payments.ErrSignature) {
		t.Errorf("tampered body verified: %v", err)
	}
	if err := payments.VerifySignature(d.body, sig, "whsec_other", 0, time.Now()); !errors.Is(err, payments.ErrSignature) {
		t.Errorf("another secret verified: %v", err)
	}
	if err := payments.VerifySignature(d.body, sig, secret, time.Minute, time.Now().Add(time.Hour)); !errors.Is(err, payments.ErrSignature) {
		t.Errorf("a delivery an hour old verified: %v", err)
	}
	if err := c.WebhookEndpoints.Delete(ctx, ep.Id); err != nil {
		t.Fatal(err)
	}
	var missing *payments.InvalidRequestError
	if _, err := c.WebhookEndpoints.Get(ctx, ep.Id); !errors.As(err, &missing) || missing.Status != 404 {
		t.Fatalf("deleted endpoint: %v", err)
	}
}
