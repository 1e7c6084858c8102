package api_test

import (
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkBalanceHTTP measures GET /v1/balance and GET /v1/balance?at= of
// a running server, one request at a time, and reports p50 and p99.
// scripts/bench-balance.sh seeds the history and sets the variables:
// PAYMENTS_BENCH_URL, PAYMENTS_BENCH_KEY (the tenant's secret key) and
// PAYMENTS_BENCH_AT_FROM / PAYMENTS_BENCH_AT_TO (Unix seconds: the span of
// the history, where ?at= instants are drawn at random).
func BenchmarkBalanceHTTP(b *testing.B) {
	base, key := os.Getenv("PAYMENTS_BENCH_URL"), os.Getenv("PAYMENTS_BENCH_KEY")
	if base == "" || key == "" {
		b.Skip("PAYMENTS_BENCH_URL and PAYMENTS_BENCH_KEY are not set: run scripts/bench-balance.sh")
	}
	from, _ := strconv.ParseInt(os.Getenv("PAYMENTS_BENCH_AT_FROM"), 10, 64)
	to, _ := strconv.ParseInt(os.Getenv("PAYMENTS_BENCH_AT_TO"), 10, 64)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, mode := range []string{"now", "at"} {
		b.Run(mode, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			rng := rand.New(rand.NewPCG(1, 2))
			for range b.N {
				url := base + "/v1/balance"
				if mode == "at" && to > from {
					url += "?at=" + strconv.FormatInt(from+rng.Int64N(to-from+1), 10)
				}
				req, err := http.NewRequest(http.MethodGet, url, nil)
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+key)
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_ = resp.Body.Close()
				lat = append(lat, time.Since(start))
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("GET %s: %d", url, resp.StatusCode)
				}
			}
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(q(0.50), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
		})
	}
}
