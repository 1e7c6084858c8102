package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor/stripe/stripetest"
	"github.com/payments-api/payments/sharding"
)

const (
	platformKey    = "sk_test_platformkey_0123456789ABCD"
	platformHook   = "whsec_platformhook_0123456789"
	encryptionKey  = "0101010101010101010101010101010101010101010101010101010101010101"
	tenantOwnKey   = "sk_live_tenantownkey_0123456789WXYZ"
	tenantOwnHook  = "whsec_tenantownhook_0123456789"
	startWaitMax   = 30 * time.Second
	startPollPause = 20 * time.Millisecond
)

func TestLoadStripeConfig(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(envOf(goodEnv()), true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Stripe.SecretKey != "" || c.Stripe.EncryptionKey != nil || c.Stripe.CallTimeout != 10*time.Second || c.Stripe.NetworkRetries != 2 ||
		c.Stripe.BreakerFailures != 5 || c.Stripe.BreakerOpen != 30*time.Second {
		t.Fatalf("defaults %+v", c.Stripe)
	}
	e := goodEnv()
	e["STRIPE_SECRET_KEY"], e["STRIPE_WEBHOOK_SECRET"], e["STRIPE_API_BASE"] = platformKey, platformHook+", whsec_previous_0123456789", "http://127.0.0.1:12111"
	e["PAYMENTS_ENCRYPTION_KEY"], e["PAYMENTS_STRIPE_BREAKER_OPEN_SECONDS"] = encryptionKey, "5"
	if c, err = loadConfig(envOf(e), true); err != nil {
		t.Fatal(err)
	}
	if len(c.Stripe.WebhookSecrets) != 2 || len(c.Stripe.EncryptionKey) != 32 || c.Stripe.BreakerOpen != 5*time.Second {
		t.Fatalf("stripe settings %+v", c.Stripe.WebhookSecrets)
	}

	for name, change := range map[string]map[string]string{
		"STRIPE_SECRET_KEY":                    {"STRIPE_SECRET_KEY": "pk_test_publishable_0123456789"},
		"STRIPE_WEBHOOK_SECRET":                {"STRIPE_SECRET_KEY": platformKey, "STRIPE_WEBHOOK_SECRET": "nothook_0123456789"},
		"STRIPE_WEBHOOK_SECRET is set but":     {"STRIPE_WEBHOOK_SECRET": platformHook},
		"STRIPE_API_BASE":                      {"STRIPE_API_BASE": "ftp://stripe"},
		"PAYMENTS_ENCRYPTION_KEY":              {"PAYMENTS_ENCRYPTION_KEY": "0123456789abcdef"},
		"PAYMENTS_STRIPE_NETWORK_RETRIES":      {"PAYMENTS_STRIPE_NETWORK_RETRIES": "9"},
		"PAYMENTS_STRIPE_BREAKER_FAILURES":     {"PAYMENTS_STRIPE_BREAKER_FAILURES": "0"},
		"PAYMENTS_STRIPE_BREAKER_OPEN_SECONDS": {"PAYMENTS_STRIPE_BREAKER_OPEN_SECONDS": "forever"},
		"PAYMENTS_STRIPE_CALL_TIMEOUT_SECONDS": {"PAYMENTS_STRIPE_CALL_TIMEOUT_SECONDS": "60"},
	} {
		e := goodEnv()
		for k, v := range change {
			e[k] = v
		}
		_, err := loadConfig(envOf(e), true)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, strings.Fields(name)[0]) || strings.Contains(msg, "\n") {
			t.Errorf("%s: %q does not name the variable on one line", name, msg)
		}
		for _, secret := range []string{"publishable_0123456789", "nothook_0123456789", "0123456789abcdef"} {
			if strings.Contains(msg, secret) {
				t.Errorf("%s: %q echoes the value", name, msg)
			}
		}
	}
}

// lockedBuffer collects a server's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func call(t *testing.T, method, url, auth string, body []byte, headers ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// TestServeWithStripe starts serve with the platform's Stripe account on a
// scripted double: the start line names the processor, payments go to
// Stripe, signed webhooks take effect, a tenant's own account can be set,
// and no secret reaches a log line.
func TestServeWithStripe(t *testing.T) {
	t.Parallel()
	d := stripetest.New(t)
	addr := freeAddr(t)
	token := strings.Repeat("s", 40)
	e := map[string]string{
		"DATABASE_URL": dbtest.NewDatabase(t), "REDIS_URL": dbtest.RedisURL(t), "PAYMENTS_REDIS_PREFIX": dbtest.KeyPrefix(t),
		"PAYMENTS_ADMIN_TOKEN": token, "PAYMENTS_HTTP_ADDR": addr, "PAYMENTS_LOG_LEVEL": "debug",
		"STRIPE_SECRET_KEY": platformKey, "STRIPE_WEBHOOK_SECRET": platformHook, "STRIPE_API_BASE": d.URL,
		"PAYMENTS_ENCRYPTION_KEY": encryptionKey,
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, envOf(e), io.Discard, &logs) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	base := "http://" + addr
	deadline := time.Now().Add(startWaitMax)
	for !strings.Contains(logs.String(), `"msg":"serving"`) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
		time.Sleep(startPollPause)
	}
	if !strings.Contains(logs.String(), `"processor":"stripe"`) || !strings.Contains(logs.String(), `"tenant_stripe_accounts":true`) {
		t.Fatalf("the start line does not say Stripe is the processor:\n%s", logs.String())
	}

	status, body := call(t, "POST", base+"/v1/admin/tenants", token, []byte(`{"name":"Acme","region":"local"}`))
	var created struct {
		Account struct{ ID string }     `json:"account"`
		APIKey  struct{ Secret string } `json:"api_key"`
	}
	if err := json.Unmarshal(body, &created); err != nil || status != http.StatusCreated {
		t.Fatalf("create tenant: %d %s", status, body)
	}
	status, body = call(t, "POST", base+"/v1/payments", created.APIKey.Secret, []byte(`{"amount":1000,"currency":"usd","payment_method":"pm_card_threeDSecure2Required"}`))
	var pay struct{ ID, Status, Processor string }
	_ = json.Unmarshal(body, &pay)
	if status != http.StatusCreated || pay.Processor != "stripe" || pay.Status != "requires_action" {
		t.Fatalf("payment: %d %s", status, body)
	}
	pi := d.IntentFor(pay.ID)
	d.CompleteAction(pi)
	evt := d.Event("payment_intent.succeeded", pi)
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: evt, Secret: platformHook, Timestamp: time.Now()}).Header
	if status, body = call(t, "POST", base+"/v1/stripe/webhooks", "", evt, "Stripe-Signature", sig); status != http.StatusOK {
		t.Fatalf("webhook: %d %s", status, body)
	}
	if _, body = call(t, "GET", base+"/v1/payments/"+pay.ID, created.APIKey.Secret, nil); !bytes.Contains(body, []byte(`"status":"succeeded"`)) {
		t.Fatalf("after the webhook: %s", body)
	}
	status, body = call(t, "POST", base+"/v1/admin/tenants/"+created.Account.ID+"/stripe_account", token,
		[]byte(`{"secret_key":"`+tenantOwnKey+`","webhook_secrets":["`+tenantOwnHook+`"]}`))
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"secret_key_last4":"WXYZ"`)) {
		t.Fatalf("set tenant account: %d %s", status, body)
	}
	for _, secret := range []string{platformKey, platformHook, tenantOwnKey, tenantOwnHook, encryptionKey, "tenantownkey", "platformkey"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("a log line holds the secret %q", secret)
		}
	}
}

// TestReconcileCommand: `payments reconcile` lists a difference, changes
// nothing, and with --repair applies it.
func TestReconcileCommand(t *testing.T) {
	t.Parallel()
	d := stripetest.New(t)
	ctx := context.Background()
	e := map[string]string{"DATABASE_URL": dbtest.NewDatabase(t), "STRIPE_SECRET_KEY": platformKey, "STRIPE_API_BASE": d.URL}
	var out bytes.Buffer
	if err := run(ctx, []string{"tenant", "create", "--name", "Acme"}, envOf(e), &out, &out); err != nil {
		t.Fatal(err)
	}
	var created struct {
		Account struct{ ID string } `json:"account"`
	}
	if err := json.Unmarshal(out.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"reconcile"}, {"reconcile", "--tenant", created.Account.ID, "--since", "last week"}} {
		if err := run(ctx, args, envOf(e), io.Discard, io.Discard); err == nil {
			t.Fatalf("%v accepted", args)
		}
	}
	// A payment Stripe settled while we did not hear of it.
	c, err := loadConfig(envOf(e), false)
	if err != nil {
		t.Fatal(err)
	}
	m, err := openShards(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	router := sharding.NewRouter(m)
	procs, err := newProcessors(c, router, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := payments.NewService(payments.Options{Router: router, Resolver: procs.resolver.Resolve})
	tenantID, _ := ids.Parse(ids.PrefixTenant, created.Account.ID)
	p, err := svc.Create(ctx, tenantID, payments.CreateParams{Amount: 1200, Currency: "usd", PaymentMethod: stripetest.PaymentMethodProcessing})
	if err != nil || p.Status != payments.StatusPending {
		t.Fatalf("create: %v %v", p.Status, err)
	}
	d.Settle(d.IntentFor(p.PublicID()))

	since := time.Now().UTC().Add(-24 * time.Hour).Format(time.DateOnly)
	for _, repair := range []bool{false, true} {
		args := []string{"reconcile", "--tenant", created.Account.ID, "--since", since}
		if repair {
			args = append(args, "--repair")
		}
		out.Reset()
		if err := run(ctx, args, envOf(e), &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		var rep payments.Report
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out.String())
		}
		if rep.Payments != 1 || len(rep.Differences) != 1 || rep.Differences[0].ID != p.PublicID() || rep.Differences[0].Processor != "succeeded" {
			t.Fatalf("repair=%v: report %s", repair, out.String())
		}
		got, err := svc.Get(ctx, tenantID, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]payments.Status{false: payments.StatusPending, true: payments.StatusSucceeded}[repair]; got.Status != want || rep.Repaired != map[bool]int{false: 0, true: 1}[repair] {
			t.Fatalf("repair=%v: payment %s, %d repaired", repair, got.Status, rep.Repaired)
		}
	}
}
