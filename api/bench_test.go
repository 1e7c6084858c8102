package api_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// BenchmarkCreatePayment measures POST /v1/payments through the real
// router, middleware, sandbox processor and PostgreSQL, over loopback HTTP.
// Run with: make bench (or go test -run '^$' -bench CreatePayment ./api).
func BenchmarkCreatePayment(b *testing.B) {
	h := newHarness(b, harnessOptions{})
	ten := h.createTenant("Bench", map[string]any{"rate_limit_per_second": 1_000_000, "rate_limit_burst": 1_000_000})
	body := []byte(`{"amount":2000,"currency":"usd","payment_method":"pm_card_visa"}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	send := func() error {
		req, _ := http.NewRequest("POST", h.url+"/v1/payments", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ten.Secret)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			b.Errorf("status %d", res.StatusCode)
		}
		return nil
	}
	b.Run("serial", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := send(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := send(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
