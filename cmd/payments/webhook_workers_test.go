package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/tenancy"
	"github.com/payments-api/payments/webhooks"
)

// syncBuffer collects a process's output.
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

// checkSignature is the receiver's own verifier (see docs/API.md).
func checkSignature(header string, body []byte, secret string) bool {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return true
		}
	}
	return false
}

// TestWorkersSurviveSIGKILL runs two `payments worker` processes against
// two shards with 500 events waiting. While both hold deliveries in flight
// (the receiver holds its answers), one is killed with SIGKILL. The other
// takes the dead worker's deliveries over when their leases expire: every
// event arrives at least once, correctly signed. The number of duplicates
// (deliveries the dead worker sent but never recorded) is reported, not
// asserted.
func TestWorkersSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	const eventsTotal = 500
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "payments")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dsn0, dsn1 := dbtest.NewDatabase(t), dbtest.NewDatabase(t)
	m, err := sharding.Open(ctx, []sharding.Config{{Name: "s0", Region: "local", DSN: dsn0}, {Name: "s1", Region: "local", DSN: dsn1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	router := sharding.NewRouter(m)

	// The receiver counts deliveries per event and checks signatures; from
	// the 150th request on it holds its answers until released, so that
	// both workers are mid-batch when one is killed.
	var mu sync.Mutex
	secrets := map[string]string{} // path → secret
	perEvent := map[string]int{}
	total, held, bad := 0, 0, 0
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce()
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		if !checkSignature(r.Header.Get("Payments-Signature"), body, secrets[r.URL.Path]) {
			bad++
		}
		perEvent[r.Header.Get("Payments-Event-Id")]++
		total++
		hold := total > 150
		if hold {
			held++
		}
		mu.Unlock()
		if hold {
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer rc.Close()

	// A tenant on each shard, each with an endpoint, then the events.
	tenants := tenancy.NewService(router, tenancy.RateLimitDefaults{PerSecond: 100, Burst: 100}, nil, nil)
	hooks := webhooks.NewService(webhooks.Options{Router: router, Guard: &webhooks.Guard{AllowPrivateNetworks: true}})
	placed := map[string]uuid.UUID{}
	for i := 0; len(placed) < 2; i++ {
		if i == 40 {
			t.Fatal("no tenant placed on both shards")
		}
		ten, _, _, err := tenants.CreateTenant(ctx, tenancy.CreateTenantParams{Name: "T" + strconv.Itoa(i), Region: "local", KeyMode: tenancy.Mode("test")})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := placed[ten.Shard]; !ok {
			placed[ten.Shard] = ten.ID
		}
	}
	for name, tenant := range placed {
		path := "/" + name
		ep, err := hooks.CreateEndpoint(ctx, tenant, webhooks.CreateParams{URL: rc.URL + path, EnabledEvents: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		secrets[path] = ep.Secret.Reveal()
		sh, _ := m.ByName(name)
		var evs []events.Event
		for range eventsTotal / 2 {
			evs = append(evs, events.Event{ID: ids.New(), TenantID: tenant, Type: events.PaymentSucceeded, ObjectType: "payment",
				ObjectID: ids.New(), ObjectVersion: 1, Data: []byte(`{"object":"payment"}`), CreatedAt: time.Now()})
		}
		if err := sh.Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error { return events.Append(ctx, tx, evs...) }); err != nil {
			t.Fatal(err)
		}
	}

	env := append(os.Environ(),
		"DATABASE_URL="+dsn0, "PAYMENTS_SHARD_NAME=s0", "PAYMENTS_SHARDS=s1:local="+dsn1,
		"REDIS_URL="+dbtest.RedisURL(t), "PAYMENTS_REDIS_PREFIX="+dbtest.KeyPrefix(t),
		"PAYMENTS_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true", "PAYMENTS_WEBHOOK_TIMEOUT_SECONDS=2", "PAYMENTS_WEBHOOK_LEASE_SECONDS=3",
		"PAYMENTS_WEBHOOK_POLL_INTERVAL_MS=20", "PAYMENTS_WEBHOOK_RETRY_BASE_MS=50", "PAYMENTS_WEBHOOK_CONCURRENCY=8",
		// Two workers on one host: each its own metrics port.
		"PAYMENTS_WORKER_METRICS_ADDR=127.0.0.1:0",
	)
	start := func(name string) (*exec.Cmd, *syncBuffer) {
		t.Helper()
		logs := &syncBuffer{}
		cmd := exec.Command(bin, "worker")
		cmd.Env, cmd.Stdout, cmd.Stderr = env, logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(logs.String(), `"msg":"working"`) {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not start:\n%s", name, logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		return cmd, logs
	}
	victim, victimLogs := start("victim")
	survivor, survivorLogs := start("survivor")

	// Wait until the receiver holds answers and the victim holds leases.
	leasesOf := func(pid int) int {
		n := 0
		for _, sh := range m.All() {
			var k int
			if err := sh.Pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE status = 'pending' AND lease_owner LIKE $1`,
				"%:"+strconv.Itoa(pid)+":%").Scan(&k); err != nil {
				t.Fatal(err)
			}
			n += k
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		h := held
		mu.Unlock()
		if h > 0 && leasesOf(victim.Process.Pid) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never mid-batch: held %d, victim leases %d\nvictim:\n%s\nsurvivor:\n%s", h, leasesOf(victim.Process.Pid), victimLogs.String(), survivorLogs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	inFlight := leasesOf(victim.Process.Pid)
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = victim.Wait()
	releaseOnce()
	t.Logf("killed the victim holding %d leased deliveries", inFlight)

	// Every event arrives, and every delivery is recorded as succeeded.
	deadline = time.Now().Add(40 * time.Second)
	for {
		mu.Lock()
		distinct := len(perEvent)
		mu.Unlock()
		pending := 0
		for _, sh := range m.All() {
			var k int
			if err := sh.Pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE status <> 'succeeded'`).Scan(&k); err != nil {
				t.Fatal(err)
			}
			pending += k
		}
		if distinct == eventsTotal && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events received, %d deliveries not succeeded\nsurvivor:\n%s", distinct, eventsTotal, pending, survivorLogs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	duplicates, badSignatures := total-eventsTotal, bad
	mu.Unlock()
	if badSignatures != 0 {
		t.Fatalf("%d deliveries failed signature verification", badSignatures)
	}
	t.Logf("delivered %d events with %d requests: %d duplicates (the victim held %d in flight when killed)", eventsTotal, total, duplicates, inFlight)

	// The survivor stops cleanly on SIGTERM.
	if err := survivor.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := survivor.Wait(); err != nil || !strings.Contains(survivorLogs.String(), `"msg":"stopped"`) {
		t.Fatalf("survivor exit: %v\n%s", err, survivorLogs.String())
	}
}
