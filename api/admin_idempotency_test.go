package api_test

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"
)

func (h *harness) tenantCount(t *testing.T) int {
	t.Helper()
	n := 0
	for _, s := range h.shards.All() {
		var c int
		if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM tenants`).Scan(&c); err != nil {
			t.Fatal(err)
		}
		n += c
	}
	return n
}

// TestAdminWritesHonourIdempotencyKey holds admin writes to the contract of
// tenant writes: one key, one tenant.
func TestAdminWritesHonourIdempotencyKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	body := map[string]any{"name": "Once", "region": "local"}
	first := h.do("POST", "/v1/admin/tenants", adminToken, body, "Idempotency-Key", "tenant-once")
	if first.Status != http.StatusCreated || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	again := h.do("POST", "/v1/admin/tenants", adminToken, `{"region":"local",  "name":"Once"}`, "Idempotency-Key", "tenant-once")
	if again.Status != http.StatusCreated || again.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("replay: %d %v\n%s\n%s", again.Status, again.Header, again.Body, first.Body)
	}
	if n := h.tenantCount(t); n != 1 {
		t.Fatalf("%d tenants after two creations with one key, want 1", n)
	}
	// The replayed secret key works: it is the tenant's one key.
	secret := first.json(t)["api_key"].(map[string]any)["secret"].(string)
	if r := h.do("GET", "/v1/account", secret, nil); r.Status != http.StatusOK {
		t.Fatalf("replayed key: %d %s", r.Status, r.Body)
	}
	// The stored answer does not hold the secret in the clear.
	var stored []byte
	if err := h.shards.Directory().Pool.QueryRow(context.Background(),
		`SELECT response_body FROM idempotency_keys WHERE tenant_id = $1 AND key = $2`, uuid.Nil, "tenant-once").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte(secret)) || bytes.Contains(stored, []byte("sk_test_")) {
		t.Fatal("the stored answer holds the secret key in the clear")
	}
	// Another request under the key.
	expectProblem(t, h.do("POST", "/v1/admin/tenants", adminToken, map[string]any{"name": "Twice", "region": "local"}, "Idempotency-Key", "tenant-once"),
		http.StatusBadRequest, "idempotency_key_reused")
	// Admin keys never meet a tenant's: the same key string is free for the
	// tenant.
	if r := h.pay(secret, visa(100), "Idempotency-Key", "tenant-once"); r.Status != http.StatusCreated || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("tenant write with the admin's key string: %d %s", r.Status, r.Body)
	}
	// A refused request stores nothing: the key stays free.
	expectProblem(t, h.do("POST", "/v1/admin/tenants", adminToken, map[string]any{"name": "x", "region": "nowhere"}, "Idempotency-Key", "tenant-2"),
		http.StatusBadRequest, "region_unavailable")
	expectProblem(t, h.do("POST", "/v1/admin/tenants", adminToken, map[string]any{"name": "", "region": "local"}, "Idempotency-Key", "tenant-2"),
		http.StatusBadRequest, "parameter_invalid")
	if r := h.do("POST", "/v1/admin/tenants", adminToken, map[string]any{"name": "Two", "region": "local"}, "Idempotency-Key", "tenant-2"); r.Status != http.StatusCreated || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("key after refused requests: %d %s", r.Status, r.Body)
	}
	// Concurrent creations with one key make one tenant.
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = h.do("POST", "/v1/admin/tenants", adminToken, map[string]any{"name": "Race", "region": "local"}, "Idempotency-Key", "tenant-race").Status
		}()
	}
	wg.Wait()
	for _, s := range statuses {
		if s != http.StatusCreated && s != http.StatusConflict {
			t.Fatalf("concurrent creation answered %d", s)
		}
	}
	if n := h.tenantCount(t); n != 3 {
		t.Fatalf("%d tenants, want 3 (Once, Two, Race): statuses %v", n, statuses)
	}
	// Keys, updates and revocations replay too.
	ten := first.json(t)["account"].(map[string]any)["id"].(string)
	k1 := h.do("POST", "/v1/admin/tenants/"+ten+"/keys", adminToken, map[string]any{"read_only": true}, "Idempotency-Key", "key-1")
	k2 := h.do("POST", "/v1/admin/tenants/"+ten+"/keys", adminToken, map[string]any{"read_only": true}, "Idempotency-Key", "key-1")
	if k1.Status != http.StatusCreated || k2.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(k1.Body, k2.Body) {
		t.Fatalf("key replay: %d %d %s", k1.Status, k2.Status, k2.Body)
	}
	keys := h.do("GET", "/v1/admin/tenants/"+ten+"/keys", adminToken, nil).json(t)["data"].([]any)
	if len(keys) != 2 {
		t.Fatalf("%d keys after two creations with one key, want 2 (the first and one more)", len(keys))
	}
	u1 := h.do("POST", "/v1/admin/tenants/"+ten, adminToken, map[string]any{"rate_limit_per_second": 50}, "Idempotency-Key", "upd-1")
	u2 := h.do("POST", "/v1/admin/tenants/"+ten, adminToken, map[string]any{"rate_limit_per_second": 50}, "Idempotency-Key", "upd-1")
	if u1.Status != http.StatusOK || u2.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(u1.Body, u2.Body) {
		t.Fatalf("update replay: %d %d %s", u1.Status, u2.Status, u2.Body)
	}
	// A card number in the key is refused, and the key is not stored.
	expectProblem(t, h.do("POST", "/v1/admin/tenants", adminToken, body, "Idempotency-Key", "order 4242 4242 4242 4242"), http.StatusBadRequest, "card_data_not_allowed")
	var n int
	if err := h.shards.Directory().Pool.QueryRow(context.Background(), `SELECT count(*) FROM idempotency_keys WHERE key LIKE '%4242%'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a key with a card number was stored (%d, %v)", n, err)
	}
}
