package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/payments-api/payments/accounts"
	"github.com/payments-api/payments/api"
	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/geo"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/payout"
	"github.com/payments-api/payments/processor/sandbox"
	"github.com/payments-api/payments/readcache"
	"github.com/payments-api/payments/risk"
	"github.com/payments-api/payments/secretbox"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/tenancy"
	"github.com/payments-api/payments/txn"
	"github.com/payments-api/payments/webhooks"
)

const adminToken = "test-admin-token-0123456789abcdef0123456789"

// clock is a settable clock for the tenancy service's auth cache.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// syncBuffer collects log output from concurrent requests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	t        testing.TB
	url      string
	shards   *sharding.Map
	clock    *clock
	logs     *syncBuffer
	registry *prometheus.Registry
	payments *payments.Service
	cache    *readcache.Cache
	geo      *geo.Index
	accounts *accounts.Store
	log      *slog.Logger
	// box seals secrets at rest, shared by the API and webhook workers.
	box *secretbox.Box
}

type harnessOptions struct {
	// RedisURL overrides the test Redis, e.g. to point at a closed port.
	RedisURL string
	// SandboxLatency slows every processor call.
	SandboxLatency time.Duration
	// SettleDelay is how long pm_card_processing stays pending.
	SettleDelay time.Duration
	// WebhookAllowPrivate lets endpoints use http and loopback addresses.
	WebhookAllowPrivate bool
	// Stripe, when set, replaces the sandbox as the platform's processor,
	// as STRIPE_SECRET_KEY does.
	Stripe processor.Processor
	// StripeWebhookSecrets are the platform account's signing secrets.
	StripeWebhookSecrets []string
	// NewTenantStripe builds the adapters of tenants' own Stripe accounts,
	// which the harness stores under a test PAYMENTS_ENCRYPTION_KEY.
	NewTenantStripe accounts.NewStripeFunc
	// Payouts are the payout adapters; nil means the sandbox's, with no
	// delay in transit.
	Payouts []payout.Processor
}

// newHarness builds the server the way main does, on two fresh shard
// databases in region "local" and real Redis, behind a real loopback
// listener.
func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	metrics := txn.NewMetrics(reg)
	m, err := sharding.Open(ctx, []sharding.Config{
		{Name: "s0", Region: "local", DSN: dbtest.NewDatabase(t)},
		{Name: "s1", Region: "local", DSN: dbtest.NewDatabase(t)},
		{Name: "eu1", Region: "eu", DSN: dbtest.NewDatabase(t)},
	}, metrics)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	redisURL := o.RedisURL
	if redisURL == "" {
		redisURL = dbtest.RedisURL(t)
	}
	ro, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.MaxRetries, ro.DialerRetries = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond, 0, 1
	rdb := redis.NewClient(ro)
	t.Cleanup(func() { _ = rdb.Close() })
	h := &harness{t: t, shards: m, clock: newClock(), logs: &syncBuffer{}, registry: reg}
	log := slog.New(slog.NewJSONHandler(h.logs, nil))
	h.log = log
	router := sharding.NewRouter(m)
	svc := tenancy.NewService(router, tenancy.RateLimitDefaults{PerSecond: 1000, Burst: 1000}, h.clock.Now, log)
	reg.MustRegister(sharding.NewPoolCollector(m))
	prefix := dbtest.KeyPrefix(t)
	h.cache = readcache.New(rdb, prefix, reg, log)
	sbOpts := sandbox.DefaultOptions()
	sbOpts.Latency, sbOpts.SettleDelay, sbOpts.Logger = o.SandboxLatency, o.SettleDelay, log
	if sbOpts.SettleDelay == 0 {
		sbOpts.SettleDelay = 100 * time.Millisecond
	}
	sbOpts.UpdateHandler = func(ctx context.Context, u processor.Update) error { return h.payments.ApplyUpdate(ctx, u) }
	sbOpts.DisputeDelay, sbOpts.DisputeFee = 50*time.Millisecond, 1500
	sbOpts.DisputeHandler = func(ctx context.Context, u processor.DisputeUpdate) error {
		return h.payments.ApplyDisputeUpdate(ctx, u)
	}
	sb, err := sandbox.New(sbOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	box, err := secretbox.New(bytes.Repeat([]byte{7}, secretbox.KeyBytes))
	if err != nil {
		t.Fatal(err)
	}
	h.box = box
	h.accounts = accounts.NewStore(router, box, h.clock.Now)
	var platform processor.Processor = sb
	sandboxRoutes := sb
	if o.Stripe != nil {
		platform, sandboxRoutes = o.Stripe, nil
	}
	resolver := accounts.NewResolver(h.accounts, platform, o.NewTenantStripe)
	h.geo = geo.NewIndex(rdb, prefix, reg, log, nil)
	t.Cleanup(h.geo.Close)
	if o.Payouts == nil {
		sp, err := sandbox.NewPayouts(sandbox.PayoutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		o.Payouts = []payout.Processor{sp}
	}
	h.payments = payments.NewService(payments.Options{Router: router, Accounts: resolver.ForAccount, Cache: h.cache, Geo: h.geo, Logger: log,
		Payouts: o.Payouts})
	srv := api.New(api.Config{
		Tenancy: svc, RateLimiter: tenancy.NewRateLimiter(rdb, prefix, reg, log), Router: router, Redis: rdb,
		Payments: h.payments, Risk: risk.NewService(router, h.clock.Now, reg), Sandbox: sandboxRoutes, StripeWebhookSecrets: o.StripeWebhookSecrets, StripeAccounts: h.accounts,
		Webhooks: webhooks.NewService(webhooks.Options{
			Router: router, Guard: &webhooks.Guard{AllowPrivateNetworks: o.WebhookAllowPrivate}, Box: box, Logger: log,
		}),
		AdminToken: adminToken, Logger: log, Registry: reg,
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, line := range strings.Split(h.logs.String(), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`) {
					t.Log(line)
				}
			}
		}
	})
	ts := httptest.NewServer(srv.Handler)
	t.Cleanup(ts.Close)
	h.url = ts.URL
	return h
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not JSON (%v): %s", err, r.Body)
	}
	return m
}

// do sends a request; body may be a string (sent raw) or any value (sent as
// JSON); auth is the bearer token or "".
func (h *harness) do(method, path, auth string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
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
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

type tenantInfo struct {
	ID     string
	Secret string
	KeyID  string
}

// createTenant makes a tenant through the admin API.
func (h *harness) createTenant(name string, extra map[string]any) tenantInfo {
	h.t.Helper()
	body := map[string]any{"name": name, "region": "local"}
	for k, v := range extra {
		body[k] = v
	}
	r := h.do("POST", "/v1/admin/tenants", adminToken, body)
	if r.Status != http.StatusCreated {
		h.t.Fatalf("create tenant: %d %s", r.Status, r.Body)
	}
	var out struct {
		Account struct{ ID string } `json:"account"`
		APIKey  struct {
			ID     string `json:"id"`
			Secret string `json:"secret"`
		} `json:"api_key"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		h.t.Fatal(err)
	}
	return tenantInfo{ID: out.Account.ID, Secret: out.APIKey.Secret, KeyID: out.APIKey.ID}
}

// expectProblem asserts a problem+json answer with status and code.
func expectProblem(t testing.TB, r response, status int, code string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	m := r.json(t)
	if m["code"] != code {
		t.Fatalf("code %v, want %s: %s", m["code"], code, r.Body)
	}
	if r.Header.Get("Request-Id") == "" || m["request_id"] != r.Header.Get("Request-Id") {
		t.Fatalf("problem request_id %v does not match Request-Id %q", m["request_id"], r.Header.Get("Request-Id"))
	}
	return m
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }
