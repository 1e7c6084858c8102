package payments_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/geo"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/payments"
)

// BenchmarkNearby measures nearby searches over one tenant with
// PAYMENTS_BENCH_NEARBY_PAYMENTS (default 1,000,000) located payments
// spread over the last 30 days around two cities, all indexed in Redis,
// and reports the latency percentiles of the searches:
//
//	go test -run XXX -bench BenchmarkNearby -benchtime 2000x ./payments/
//
// The seed is written with COPY and indexed with the reindex path, once
// per process.
func BenchmarkNearby(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("PAYMENTS_BENCH_NEARBY_PAYMENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			b.Fatalf("PAYMENTS_BENCH_NEARBY_PAYMENTS=%q: want a positive number", s)
		}
	}
	rdb := geoRedis(b)
	ix := geo.NewIndex(rdb, dbtest.KeyPrefix(b), nil, nil, nil)
	b.Cleanup(ix.Close)
	h := newHarness(b, harnessOptions{Geo: ix})
	tenant, _ := h.newTenant(b)
	ctx := context.Background()
	sh := h.shardOf(b, tenant)

	start := time.Now()
	rng := rand.New(rand.NewPCG(21, 22))
	now := time.Now()
	cols := []string{"tenant_id", "id", "amount", "currency", "status", "capture_method", "payment_method", "metadata", "location_lat", "location_lon", "geohash", "processor", "version", "created_at", "updated_at"}
	i := 0
	next := func() ([]any, error) {
		if i >= n {
			return nil, nil
		}
		i++
		lat, lon := randomNear(rng)
		gh, err := geo.Geohash(lat, lon)
		if err != nil {
			return nil, err
		}
		at := now.Add(-time.Duration(rng.Int64N(int64(30 * 24 * time.Hour))))
		status := "succeeded"
		if rng.IntN(10) == 0 {
			status = "failed"
		}
		return []any{tenant, ids.New(), int64(2000), "usd", status, "automatic", "pm_card_visa", []byte("{}"), lat, lon, gh, "sandbox", 2, at, at}, nil
	}
	if _, err := sh.Pool.CopyFrom(ctx, pgx.Identifier{"payments"}, cols, pgx.CopyFromFunc(next)); err != nil {
		b.Fatal(err)
	}
	if _, err := sh.Pool.Exec(ctx, "VACUUM ANALYZE payments"); err != nil {
		b.Fatal(err)
	}
	seeded := time.Since(start)
	start = time.Now()
	days := geo.Days(now.Add(-31*24*time.Hour), now)
	for _, d := range days {
		es, err := h.svc.ReindexDay(ctx, tenant, d)
		if err != nil {
			b.Fatal(err)
		}
		if err := ix.Rebuild(ctx, tenant, d, es); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d payments: seeded in %v, indexed in %v", n, seeded.Round(time.Second), time.Since(start).Round(time.Second))

	for _, c := range []struct {
		radius float64
		limit  int
		status payments.Status
	}{
		{1000, 10, ""}, {10_000, 100, ""}, {50_000, 100, ""}, {10_000, 10, payments.StatusFailed},
	} {
		for _, fallback := range []bool{false, true} {
			if fallback && c.radius > 1000 {
				continue // the database reads every payment of the cover: seconds per search
			}
			name := fmt.Sprintf("radius=%gm/limit=%d/status=%s/redis", c.radius, c.limit, c.status)
			if fallback {
				name = fmt.Sprintf("radius=%gm/limit=%d/status=%s/database", c.radius, c.limit, c.status)
			}
			b.Run(name, func(b *testing.B) {
				var svc interface {
					Nearby(context.Context, uuid.UUID, payments.NearbyParams) ([]payments.Near, error)
				} = h.svc
				if fallback {
					// No index at all: every day from the database.
					svc = payments.NewService(payments.Options{Router: h.router, Processor: h.proc})
				}
				qrng := rand.New(rand.NewPCG(31, 32))
				var lat []time.Duration
				found := 0
				for b.Loop() {
					la, lo := randomNear(qrng)
					t0 := time.Now()
					got, err := svc.Nearby(ctx, tenant, payments.NearbyParams{Lat: la, Lon: lo, RadiusM: c.radius, Limit: c.limit, Status: c.status})
					lat = append(lat, time.Since(t0))
					if err != nil {
						b.Fatal(err)
					}
					found += len(got)
				}
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				pct := func(p float64) float64 {
					return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
				}
				b.ReportMetric(pct(0.50), "p50_ms")
				b.ReportMetric(pct(0.99), "p99_ms")
				b.ReportMetric(float64(found)/float64(len(lat)), "results/op")
			})
		}
	}
}
