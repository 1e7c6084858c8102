package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payments-api/payments/dbtest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe starts `bin serve` with env, listening on addr, and waits
// until it answers /healthz; the process is killed when the test ends.
func startServe(t *testing.T, bin string, env []string, addr string) (*exec.Cmd, *syncBuffer, string) {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "serve")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r, err := http.Get(base + "/healthz"); err == nil {
			r.Body.Close()
			return cmd, logs, base
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", logs.String())
		}
	}
}

// createTenantSecret creates a tenant through the admin API and returns
// its secret key.
func createTenantSecret(t *testing.T, base, adminToken string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/admin/tenants", strings.NewReader(`{"name":"Acme","region":"local"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var created struct {
		APIKey struct{ Secret string } `json:"api_key"`
	}
	if err := json.NewDecoder(res.Body).Decode(&created); err != nil || created.APIKey.Secret == "" {
		t.Fatalf("create tenant: %d %v", res.StatusCode, err)
	}
	return created.APIKey.Secret
}

// TestServeDrainsOnSIGTERM runs the real binary, starts a payment whose
// processor call takes a second, sends SIGTERM while it is in flight, and
// checks that the request still completes and the process exits cleanly.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "payments")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	token := strings.Repeat("t", 40)
	dsn := dbtest.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	env := append(os.Environ(),
		"DATABASE_URL="+dsn,
		"REDIS_URL="+dbtest.RedisURL(t),
		"PAYMENTS_REDIS_PREFIX="+dbtest.KeyPrefix(t),
		"PAYMENTS_ADMIN_TOKEN="+token,
		"PAYMENTS_HTTP_ADDR="+addr,
		"PAYMENTS_SANDBOX_LATENCY_MS=1000",
	)
	cmd, logs, base := startServe(t, bin, env, addr)
	secret := createTenantSecret(t, base, token)

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/v1/payments", strings.NewReader(`{"amount":1000,"currency":"usd","payment_method":"pm_card_visa"}`))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		done <- result{status: res.StatusCode, body: string(b)}
	}()
	// Signal while the request is in flight: its payment is recorded as
	// pending before the (one second) processor call and finished after.
	for i := 0; ; i++ {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM payments WHERE operation = 'authorize'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if i > 3000 {
			t.Fatal("the payment never reached the processor call")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.status != http.StatusCreated {
		t.Fatalf("in-flight request during shutdown: %d %v %s\nlogs:\n%s", r.status, r.err, r.body, logs.String())
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("process did not stop\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop in logs:\n%s", logs.String())
	}
	// New connections are refused after shutdown.
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still serving after SIGTERM")
	}
}
