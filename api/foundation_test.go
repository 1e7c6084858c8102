package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/tenancy"
)

func TestCreateTenantThenAccount(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme Books", nil)
	if !strings.HasPrefix(ten.ID, "ten_") || !strings.HasPrefix(ten.Secret, "sk_test_") || len(ten.Secret) < len("sk_test_")+32 {
		t.Fatalf("unexpected tenant %+v", ten)
	}
	r := h.do("GET", "/v1/account", ten.Secret, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("account: %d %s", r.Status, r.Body)
	}
	acct := r.json(t)
	if acct["id"] != ten.ID || acct["name"] != "Acme Books" || acct["status"] != "active" || acct["object"] != "account" {
		t.Fatalf("account %v", acct)
	}
	if r.Header.Get("Request-Id") == "" {
		t.Fatal("no Request-Id")
	}
	// The secret is shown once: listing keys never answers it.
	keys := h.do("GET", "/v1/admin/tenants/"+ten.ID+"/keys", adminToken, nil)
	if keys.Status != http.StatusOK || strings.Contains(string(keys.Body), ten.Secret) || strings.Contains(string(keys.Body), "secret") {
		t.Fatalf("key list leaks or fails: %d %s", keys.Status, keys.Body)
	}
	// No secret reaches a log line.
	if strings.Contains(h.logs.String(), ten.Secret) || strings.Contains(h.logs.String(), adminToken) {
		t.Fatal("a secret reached the logs")
	}
	if !strings.Contains(h.logs.String(), `"operation":"get-account"`) || !strings.Contains(h.logs.String(), `"tenant":"`+ten.ID+`"`) {
		t.Fatalf("request log lacks operation or tenant:\n%s", h.logs.String())
	}
}

func TestAuthenticationFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	for name, auth := range map[string]string{
		"missing":   "",
		"unknown":   "sk_test_" + strings.Repeat("A", 43),
		"malformed": "not-a-key",
		"admin":     adminToken,
		"too long":  "sk_test_" + strings.Repeat("A", 500),
	} {
		expectProblem(t, h.do("GET", "/v1/account", auth, nil), http.StatusUnauthorized, "unauthenticated")
		_ = name
	}
	// A tenant key is not an admin token.
	expectProblem(t, h.do("GET", "/v1/admin/tenants", ten.Secret, nil), http.StatusUnauthorized, "unauthenticated")
	expectProblem(t, h.do("GET", "/v1/admin/tenants", "", nil), http.StatusUnauthorized, "unauthenticated")
}

func TestRevokedKeyStopsWithinCacheTTL(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	if r := h.do("GET", "/v1/account", ten.Secret, nil); r.Status != http.StatusOK {
		t.Fatalf("before revoke: %d", r.Status)
	}
	r := h.do("POST", "/v1/admin/tenants/"+ten.ID+"/keys/"+ten.KeyID+"/revoke", adminToken, nil)
	if r.Status != http.StatusOK || r.json(t)["revoked"] == nil {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	h.clock.Advance(tenancy.AuthCacheTTL)
	expectProblem(t, h.do("GET", "/v1/account", ten.Secret, nil), http.StatusUnauthorized, "unauthenticated")
}

func TestDisabledTenantIsForbidden(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	if r := h.do("POST", "/v1/admin/tenants/"+ten.ID, adminToken, map[string]any{"status": "disabled"}); r.Status != http.StatusOK {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}
	h.clock.Advance(tenancy.AuthCacheTTL)
	expectProblem(t, h.do("GET", "/v1/account", ten.Secret, nil), http.StatusForbidden, "tenant_disabled")
	if r := h.do("POST", "/v1/admin/tenants/"+ten.ID, adminToken, map[string]any{"status": "active"}); r.Status != http.StatusOK {
		t.Fatalf("enable: %d %s", r.Status, r.Body)
	}
	h.clock.Advance(tenancy.AuthCacheTTL)
	if r := h.do("GET", "/v1/account", ten.Secret, nil); r.Status != http.StatusOK {
		t.Fatalf("after enabling: %d %s", r.Status, r.Body)
	}
}

func TestReadOnlyKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	r := h.do("POST", "/v1/admin/tenants/"+ten.ID+"/keys", adminToken, map[string]any{"read_only": true})
	if r.Status != http.StatusCreated {
		t.Fatalf("create key: %d %s", r.Status, r.Body)
	}
	ro := r.json(t)["secret"].(string)
	if r := h.do("GET", "/v1/account", ro, nil); r.Status != http.StatusOK {
		t.Fatalf("read-only GET: %d %s", r.Status, r.Body)
	}
}

func TestBadBodies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	// 413: one byte over 64 KiB.
	big := `{"name":"` + strings.Repeat("a", 64<<10) + `","region":"local"}`
	expectProblem(t, h.do("POST", "/v1/admin/tenants", adminToken, big), http.StatusRequestEntityTooLarge, "request_too_large")
	// 400: malformed JSON.
	expectProblem(t, h.do("POST", "/v1/admin/tenants", adminToken, `{"name": "x",`), http.StatusBadRequest, "invalid_json")
	// 400: unknown field, named in param.
	p := expectProblem(t, h.do("POST", "/v1/admin/tenants", adminToken, `{"name":"x","region":"local","nmae":"y"}`), http.StatusBadRequest, "parameter_unknown")
	if !strings.Contains(p["detail"].(string), "nmae") {
		t.Fatalf("detail does not name the field: %v", p)
	}
	// 400: a value out of bounds.
	p = expectProblem(t, h.do("POST", "/v1/admin/tenants", adminToken, map[string]any{"name": strings.Repeat("x", 201), "region": "local"}), http.StatusBadRequest, "parameter_invalid")
	if p["param"] != "name" {
		t.Fatalf("param %v, want name", p["param"])
	}
	// 400: a region without shards.
	p = expectProblem(t, h.do("POST", "/v1/admin/tenants", adminToken, map[string]any{"name": "x", "region": "mars"}), http.StatusBadRequest, "region_unavailable")
	if p["param"] != "region" {
		t.Fatalf("param %v", p["param"])
	}
	// Nothing was stored by any of these.
	r := h.do("GET", "/v1/admin/tenants", adminToken, nil)
	if r.Status != http.StatusOK || len(r.json(t)["data"].([]any)) != 0 {
		t.Fatalf("rejected requests stored tenants: %s", r.Body)
	}
	// Unknown route and unknown tenant: problem+json 404.
	expectProblem(t, h.do("GET", "/v1/nope", "", nil), http.StatusNotFound, "resource_missing")
	expectProblem(t, h.do("GET", "/v1/admin/tenants/ten_nope", adminToken, nil), http.StatusNotFound, "resource_missing")
	expectProblem(t, h.do("GET", "/v1/admin/tenants/"+ids.Format(ids.PrefixTenant, ids.New()), adminToken, nil), http.StatusNotFound, "resource_missing")
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Slow", map[string]any{"rate_limit_per_second": 1, "rate_limit_burst": 2})
	var limited *response
	for i := 0; i < 10; i++ {
		r := h.do("GET", "/v1/account", ten.Secret, nil)
		if r.Header.Get("RateLimit-Limit") == "" || r.Header.Get("RateLimit-Remaining") == "" || r.Header.Get("RateLimit-Reset") == "" {
			t.Fatalf("missing RateLimit headers: %v", r.Header)
		}
		if r.Status == http.StatusTooManyRequests {
			limited = &r
			break
		}
	}
	if limited == nil {
		t.Fatal("10 requests in a burst of 2 were never limited")
	}
	expectProblem(t, *limited, http.StatusTooManyRequests, "rate_limited")
	if ra := limited.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
	if limited.Header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("RateLimit-Remaining %q", limited.Header.Get("RateLimit-Remaining"))
	}
	// Another tenant is not affected.
	other := h.createTenant("Other", nil)
	if r := h.do("GET", "/v1/account", other.Secret, nil); r.Status != http.StatusOK {
		t.Fatalf("other tenant: %d", r.Status)
	}
}

func TestRedisDownFailsOpen(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{RedisURL: "redis://127.0.0.1:1/0"})
	ten := h.createTenant("Acme", map[string]any{"rate_limit_per_second": 1, "rate_limit_burst": 1})
	for i := 0; i < 5; i++ {
		if r := h.do("GET", "/v1/account", ten.Secret, nil); r.Status != http.StatusOK {
			t.Fatalf("request %d with Redis down: %d %s", i, r.Status, r.Body)
		}
	}
	mfs, err := h.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "payments_ratelimit_redis_errors_total" && mf.GetMetric()[0].GetCounter().GetValue() >= 5 {
			found = true
		}
	}
	if !found {
		t.Fatal("redis failures not counted")
	}
	if n := strings.Count(h.logs.String(), "rate limiter cannot reach redis"); n != 1 {
		t.Fatalf("redis failure logged %d times, want once per interval", n)
	}
	r := h.do("GET", "/readyz", "", nil)
	if r.Status != http.StatusServiceUnavailable || r.json(t)["checks"].(map[string]any)["redis"] != "unreachable" {
		t.Fatalf("readyz with Redis down: %d %s", r.Status, r.Body)
	}
}

// TestTenantsLiveOnlyOnTheirShard places tenants on two shards of one
// region and proves that each tenant's rows exist on its own shard only,
// while the directory on the first shard knows them all.
func TestTenantsLiveOnlyOnTheirShard(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()
	const n = 24
	perShard := map[string]int{}
	for i := 0; i < n; i++ {
		ten := h.createTenant("Tenant", nil)
		id, ok := ids.Parse(ids.PrefixTenant, ten.ID)
		if !ok {
			t.Fatal(ten.ID)
		}
		var home string
		if err := h.shards.Directory().Pool.QueryRow(ctx, `SELECT shard FROM tenant_directory WHERE tenant_id = $1`, id).Scan(&home); err != nil {
			t.Fatalf("directory lookup: %v", err)
		}
		perShard[home]++
		for _, s := range h.shards.All() {
			var rows int
			if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM tenants WHERE tenant_id = $1`, id).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			want := 0
			if s.Name == home {
				want = 1
			}
			if rows != want {
				t.Fatalf("tenant %s (home %s) has %d rows on shard %s", ten.ID, home, rows, s.Name)
			}
		}
		if r := h.do("GET", "/v1/account", ten.Secret, nil); r.Status != http.StatusOK {
			t.Fatalf("account via router: %d", r.Status)
		}
	}
	if perShard["s0"] == 0 || perShard["s1"] == 0 || perShard["eu1"] != 0 {
		t.Fatalf("placement %v: want both local shards used and none in eu", perShard)
	}
	// A tenant of region eu lands on eu1.
	eu := h.do("POST", "/v1/admin/tenants", adminToken, map[string]any{"name": "EU", "region": "eu"})
	if eu.Status != http.StatusCreated {
		t.Fatalf("eu tenant: %d %s", eu.Status, eu.Body)
	}
	var out struct {
		Account struct{ ID, Region string } `json:"account"`
	}
	_ = json.Unmarshal(eu.Body, &out)
	id, _ := ids.Parse(ids.PrefixTenant, out.Account.ID)
	var home string
	if err := h.shards.Directory().Pool.QueryRow(ctx, `SELECT shard FROM tenant_directory WHERE tenant_id = $1`, id).Scan(&home); err != nil || home != "eu1" {
		t.Fatalf("eu tenant placed on %q (%v)", home, err)
	}
	// Listing merges every shard, newest first, with pagination.
	page := h.do("GET", "/v1/admin/tenants?limit=10", adminToken, nil).json(t)
	if len(page["data"].([]any)) != 10 || page["has_more"] != true {
		t.Fatalf("page 1: %v", page)
	}
	first := page["data"].([]any)[0].(map[string]any)["id"]
	if first != out.Account.ID {
		t.Fatalf("newest first: got %v, want %s", first, out.Account.ID)
	}
	seen := map[any]bool{}
	after := ""
	for pages := 0; pages < 10; pages++ {
		q := "/v1/admin/tenants?limit=10"
		if after != "" {
			q += "&starting_after=" + after
		}
		p := h.do("GET", q, adminToken, nil).json(t)
		data := p["data"].([]any)
		for _, d := range data {
			id := d.(map[string]any)["id"]
			if seen[id] {
				t.Fatalf("tenant %v listed twice", id)
			}
			seen[id] = true
			after = id.(string)
		}
		if p["has_more"] != true {
			break
		}
	}
	if len(seen) != n+1 {
		t.Fatalf("pagination saw %d tenants, want %d", len(seen), n+1)
	}
}

func TestHealthMetricsAndDocs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	if r := h.do("GET", "/healthz", "", nil); r.Status != http.StatusOK {
		t.Fatalf("healthz %d", r.Status)
	}
	r := h.do("GET", "/readyz", "", nil)
	if r.Status != http.StatusOK || r.json(t)["checks"].(map[string]any)["shard:s1"] != "ok" {
		t.Fatalf("readyz %d %s", r.Status, r.Body)
	}
	h.do("GET", "/v1/account", "", nil)
	m := h.do("GET", "/metrics", "", nil)
	for _, want := range []string{
		`payments_http_requests_total{operation="get-account",status="401"}`,
		`payments_http_request_duration_seconds_bucket`,
		`payments_db_pool_connections{shard="s1",state="max"}`,
	} {
		if !strings.Contains(string(m.Body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, path := range []string{"/openapi.json", "/openapi-3.0.json", "/docs"} {
		if r := h.do("GET", path, "", nil); r.Status != http.StatusOK {
			t.Errorf("%s: %d", path, r.Status)
		}
	}
	_ = time.Second
}
