package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payments-api/payments/dbtest"
)

// TestReadCacheCoherentAcrossServes runs two serve processes on one
// database and one Redis; A reaches Redis through a proxy. B caches a
// payment; the proxy cuts A off Redis; A captures the payment. Every read
// on B after A answered the capture must show it, although B still reaches
// Redis and the entry it cached says requires_capture. The same after A
// reaches Redis again.
func TestReadCacheCoherentAcrossServes(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "payments")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dsn := dbtest.NewDatabase(t)
	token := strings.Repeat("t", 40)
	prefix := dbtest.KeyPrefix(t)
	o, err := redis.ParseURL(dbtest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := dbtest.NewCutProxy(t, o.Addr)
	envFor := func(addr, redisURL string) []string {
		return append(os.Environ(), "DATABASE_URL="+dsn, "REDIS_URL="+redisURL, "PAYMENTS_REDIS_PREFIX="+prefix,
			"PAYMENTS_ADMIN_TOKEN="+token, "PAYMENTS_HTTP_ADDR="+addr)
	}
	addrA, addrB := freeAddr(t), freeAddr(t)
	_, logsA, a := startServe(t, bin, envFor(addrA, "redis://"+proxy.Addr+"/"+strconv.Itoa(o.DB)), addrA)
	_, logsB, b := startServe(t, bin, envFor(addrB, dbtest.RedisURL(t)), addrB)
	secret := createTenantSecret(t, a, token)

	call := func(method, base, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var out map[string]any
		if res.StatusCode/100 != 2 || json.Unmarshal(raw, &out) != nil {
			t.Fatalf("%s %s: %d %s\nA:\n%s\nB:\n%s", method, path, res.StatusCode, raw, logsA.String(), logsB.String())
		}
		return out
	}
	pay := call("POST", a, "/v1/payments", `{"amount":1200,"currency":"usd","payment_method":"pm_card_visa","capture_method":"manual"}`)
	id := pay["id"].(string)
	if pay["status"] != "requires_capture" {
		t.Fatalf("create: %v", pay)
	}
	// B reads until its cache answers (its fence trusts the cache shortly
	// after start): a hit shows in its metrics.
	for deadline := time.Now().Add(30 * time.Second); cacheHits(t, b) == 0; time.Sleep(20 * time.Millisecond) {
		if got := call("GET", b, "/v1/payments/"+id, ""); got["status"] != "requires_capture" {
			t.Fatalf("B before the capture: %v", got)
		}
		if time.Now().After(deadline) {
			t.Fatal("B never answered from its cache")
		}
	}

	proxy.Cut()
	if got := call("POST", a, "/v1/payments/"+id+"/capture", ""); got["status"] != "succeeded" {
		t.Fatalf("capture on A cut off Redis: %v", got)
	}
	for i := range 50 {
		if got := call("GET", b, "/v1/payments/"+id, ""); got["status"] != "succeeded" {
			t.Fatalf("read %d on B after A's capture: %v", i, got["status"])
		}
		time.Sleep(10 * time.Millisecond)
	}
	proxy.Heal()
	for i := range 50 {
		if got := call("GET", b, "/v1/payments/"+id, ""); got["status"] != "succeeded" {
			t.Fatalf("read %d on B after A reached Redis again: %v", i, got["status"])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logsA.String(), "read cache bypassed by every process") {
		t.Fatalf("A did not take the bypass:\n%s", logsA.String())
	}
}

// cacheHits reads payments_cache_hits_total from a server's /metrics.
func cacheHits(t *testing.T, base string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "payments_cache_hits_total "); ok {
			var f float64
			if err := json.Unmarshal([]byte(v), &f); err == nil {
				return f
			}
		}
	}
	return 0
}
