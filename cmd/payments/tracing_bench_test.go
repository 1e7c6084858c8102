package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/tracing"
)

// BenchmarkServeCreatePayment measures POST /v1/payments through serve's
// own wiring, without tracing (no endpoint: no provider at all) and with
// every span recorded and handed to an exporter that drops it, which is
// the process's share of tracing with an OTLP endpoint. Run with:
// go test -run '^$' -bench ServeCreatePayment ./cmd/payments
func BenchmarkServeCreatePayment(b *testing.B) {
	for _, traced := range []bool{false, true} {
		name := "tracing=off"
		if traced {
			name = "tracing=on"
		}
		b.Run(name, func(b *testing.B) {
			var tp trace.TracerProvider
			if traced {
				p, err := tracing.NewProvider(context.Background(), tracing.Options{Exporter: tracetest.NewNoopExporter(), Service: "payments"})
				if err != nil {
					b.Fatal(err)
				}
				defer func() { _ = p.Shutdown(context.Background()) }()
				tp = p
			}
			token := strings.Repeat("b", 40)
			addr := freeAddrTB(b)
			c, err := loadConfig(envOf(map[string]string{
				"DATABASE_URL": dbtest.NewDatabase(b), "REDIS_URL": dbtest.RedisURL(b), "PAYMENTS_REDIS_PREFIX": dbtest.KeyPrefix(b),
				"PAYMENTS_ADMIN_TOKEN": token, "PAYMENTS_HTTP_ADDR": addr, "PAYMENTS_LOG_LEVEL": "warn",
			}), true)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- serveWith(ctx, c, newLogger("warn", io.Discard), tp) }()
			defer func() { cancel(); <-done }()
			base := "http://" + addr
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			for deadline := time.Now().Add(startWaitMax); ; time.Sleep(startPollPause) {
				if r, err := client.Get(base + "/healthz"); err == nil {
					r.Body.Close()
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("serve did not start")
				}
			}
			req, _ := http.NewRequest("POST", base+"/v1/admin/tenants", strings.NewReader(
				`{"name":"Bench","region":"local","rate_limit_per_second":1000000,"rate_limit_burst":1000000}`))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var created struct {
				APIKey struct{ Secret string } `json:"api_key"`
			}
			if err := json.NewDecoder(res.Body).Decode(&created); err != nil || created.APIKey.Secret == "" {
				b.Fatalf("create tenant: %d %v", res.StatusCode, err)
			}
			res.Body.Close()
			body := []byte(`{"amount":2000,"currency":"usd","payment_method":"pm_card_visa"}`)
			b.ResetTimer()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", base+"/v1/payments", bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+created.APIKey.Secret)
					req.Header.Set("Content-Type", "application/json")
					res, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusCreated {
						b.Errorf("status %d", res.StatusCode)
						return
					}
				}
			})
		})
	}
}

func freeAddrTB(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
