package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/ids"
)

// TestSIGKILLWithBatchesInFlightLosesNoAcknowledgedPayment runs the real
// binary under concurrent creations with group commit holding batches open,
// kills it with SIGKILL mid-stream, and checks the database: every payment
// that was answered 201 is stored exactly once, succeeded, with its one
// ledger transaction and its idempotency key pointing at it; no key made
// two payments.
func TestSIGKILLWithBatchesInFlightLosesNoAcknowledgedPayment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "payments")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	token := strings.Repeat("k", 40)
	dsn := dbtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	env := append(os.Environ(),
		"DATABASE_URL="+dsn, "REDIS_URL="+dbtest.RedisURL(t), "PAYMENTS_REDIS_PREFIX="+dbtest.KeyPrefix(t),
		"PAYMENTS_ADMIN_TOKEN="+token, "PAYMENTS_HTTP_ADDR="+addr,
		"PAYMENTS_RATE_LIMIT_PER_SECOND=100000", "PAYMENTS_BATCH_DELAY_MS=20", "PAYMENTS_LOG_LEVEL=warn",
	)
	cmd, logs, base := startServe(t, bin, env, addr)
	secret := createTenantSecret(t, base, token)

	const clients = 24
	var mu sync.Mutex
	acked := map[string]string{} // Idempotency-Key → payment ID answered 201
	sent := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for c := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("kill-%d-%d", c, i)
				mu.Lock()
				sent++
				mu.Unlock()
				r, _ := http.NewRequest("POST", base+"/v1/payments", strings.NewReader(`{"amount":1000,"currency":"usd","payment_method":"pm_card_visa"}`))
				r.Header.Set("Authorization", "Bearer "+secret)
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Idempotency-Key", key)
				res, err := client.Do(r)
				if err != nil {
					return // the server is gone
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode == http.StatusCreated {
					var p struct{ ID string }
					_ = json.Unmarshal(b, &p)
					mu.Lock()
					acked[key] = p.ID
					mu.Unlock()
				}
			}
		})
	}
	// Kill once payments flow, while batches are open.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d payments answered in 20 s:\n%s", n, logs.String())
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(stop)
	wg.Wait()

	rows, err := pool.Query(ctx, `SELECT k.key, p.id::TEXT, p.status,
			(SELECT count(*) FROM ledger_transactions l WHERE l.tenant_id = p.tenant_id AND l.source_id = p.id)
		FROM idempotency_keys k JOIN payments p ON p.tenant_id = k.tenant_id AND p.id = k.resource_id`)
	if err != nil {
		t.Fatal(err)
	}
	type stored struct {
		id, status string
		ledger     int
	}
	byKey := map[string]stored{}
	for rows.Next() {
		var k string
		var s stored
		if err := rows.Scan(&k, &s.id, &s.status, &s.ledger); err != nil {
			t.Fatal(err)
		}
		byKey[k] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var payments int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM payments`).Scan(&payments); err != nil {
		t.Fatal(err)
	}
	if payments != len(byKey) {
		t.Errorf("%d payments stored for %d idempotency keys: a payment without its key, or a key with two", payments, len(byKey))
	}
	for key, id := range acked {
		s, ok := byKey[key]
		switch {
		case !ok:
			t.Errorf("key %s was answered 201 (%s) but nothing is stored for it", key, id)
		case !samePayment(id, s.id):
			t.Errorf("key %s was answered %s but points at payment %s", key, id, s.id)
		case s.status != "succeeded" || s.ledger != 1:
			t.Errorf("key %s (%s): stored status %s with %d ledger transactions, want succeeded with 1", key, id, s.status, s.ledger)
		}
	}
	t.Logf("%d sent, %d acknowledged, %d stored when killed", sent, len(acked), payments)
}

func samePayment(public, stored string) bool {
	id, ok := ids.Parse(ids.PrefixPayment, public)
	return ok && id.String() == stored
}
