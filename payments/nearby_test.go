package payments_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/geo"
	"github.com/payments-api/payments/payments"
)

// nearbyRedisDB is the Redis database of the nearby tests: the test
// empties it (FLUSHDB) to lose the index, which must not touch the keys of
// other tests in database 0.
const nearbyRedisDB = 9

func geoRedis(tb testing.TB) *redis.Client {
	tb.Helper()
	o, err := redis.ParseURL(dbtest.RedisURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	o.DB = nearbyRedisDB
	c := redis.NewClient(o)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// cities are the two centres the points gather around.
var cities = [][2]float64{{52.52, 13.405}, {48.8566, 2.3522}}

// randomNear returns a point within about 30 km of a random city.
func randomNear(rng *rand.Rand) (float64, float64) {
	c := cities[rng.IntN(len(cities))]
	return c[0] + (rng.Float64()-0.5)*0.55, c[1] + (rng.Float64()-0.5)*0.85
}

// waitIndexed polls until the index holds n payments of the tenant, and
// answers how many of the days are complete in it.
func waitIndexed(tb testing.TB, ix *geo.Index, tenant uuid.UUID, days []time.Time, n int) int {
	tb.Helper()
	deadline := time.Now().Add(waitMax)
	for {
		res, err := ix.Search(context.Background(), tenant, days, days[0], cities[0][0], cities[0][1], 5_000_000, 1_000_000)
		got, complete := 0, 0
		if err == nil {
			for _, r := range res {
				got += len(r.Hits)
				if r.Complete {
					complete++
				}
			}
		}
		if err == nil && got == n {
			return complete
		}
		if time.Now().After(deadline) {
			tb.Fatalf("index holds %d of %d payments (err %v)", got, n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bruteForce answers q from every located payment of the tenant, measured
// one by one.
func bruteForce(all []payments.Payment, p payments.NearbyParams) []uuid.UUID {
	type hit struct {
		id uuid.UUID
		d  float64
	}
	var hits []hit
	for _, pay := range all {
		if pay.Location == nil || pay.CreatedAt.Before(*p.CreatedGTE) || pay.CreatedAt.After(*p.CreatedLTE) {
			continue
		}
		if p.Status != "" && pay.Status != p.Status {
			continue
		}
		d := geo.DistanceM(p.Lat, p.Lon, pay.Location.Lat, pay.Location.Lon)
		if d <= p.RadiusM {
			hits = append(hits, hit{pay.ID, d})
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].d != hits[j].d {
			return hits[i].d < hits[j].d
		}
		return hits[i].id.String() < hits[j].id.String()
	})
	out := []uuid.UUID{}
	for i := 0; i < len(hits) && i < p.Limit; i++ {
		out = append(out, hits[i].id)
	}
	return out
}

func TestNearbyIsExact(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("creates 10,000 payments")
	}
	const points = 10_000
	rdb := geoRedis(t)
	// Creation times run forward over the last 20 days, one step per call
	// of the service's clock, so that the index has many day keys; the
	// index runs on the same clock.
	base := geo.Day(time.Now().Add(-20 * 24 * time.Hour))
	step := 20 * 24 * time.Hour / (5 * points)
	var tick atomic.Int64
	at := func(n int64) time.Time { return minTime(base.Add(time.Duration(n)*step), time.Now()) }
	now := func() time.Time { return at(tick.Add(1)) }
	ix := geo.NewIndex(rdb, dbtest.KeyPrefix(t), nil, nil, func() time.Time { return at(tick.Load()) })
	t.Cleanup(ix.Close)
	h := newHarness(t, harnessOptions{Geo: ix, Now: now})
	tenant, _ := h.newTenant(t)
	other, _ := h.newTenant(t)
	ctx := context.Background()

	rng := rand.New(rand.NewPCG(11, 12))
	type spec struct {
		lat, lon float64
		token    string
	}
	specs := make([]spec, points)
	for i := range specs {
		lat, lon := randomNear(rng)
		token := "pm_card_visa"
		if rng.IntN(4) == 0 {
			token = "pm_card_chargeDeclined"
		}
		specs[i] = spec{lat, lon, token}
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, 1)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= points {
					return
				}
				s := specs[i]
				loc := &struct{ Lat, Lon float64 }{s.lat, s.lon}
				_, err := h.svc.Create(ctx, tenant, payments.CreateParams{Amount: 1000, Currency: "usd", PaymentMethod: s.token, Location: loc})
				if err != nil && !errcode.Is(err, payments.CodeCardDeclined) {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}()
	}
	// The other tenant pays at the same places: none of it may appear.
	for i := range 200 {
		s := specs[i]
		loc := &struct{ Lat, Lon float64 }{s.lat, s.lon}
		if _, err := h.svc.Create(ctx, other, payments.CreateParams{Amount: 1000, Currency: "usd", PaymentMethod: "pm_card_visa", Location: loc}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	all := allPayments(t, h.svc, tenant)
	if len(all) != points {
		t.Fatalf("%d payments stored, want %d", len(all), points)
	}
	var last time.Time
	for _, p := range all {
		if p.CreatedAt.After(last) {
			last = p.CreatedAt
		}
	}
	days := geo.Days(base, last)
	// Every day but the first is complete from its start: the day before
	// created its marker. The first is complete from its first payment.
	if complete := waitIndexed(t, ix, tenant, days, points); complete != len(days)-1 {
		t.Fatalf("%d of %d days complete in the index, want all but the first", complete, len(days))
	}

	queries := make([]payments.NearbyParams, 50)
	for i := range queries {
		lat, lon := randomNear(rng)
		q := payments.NearbyParams{Lat: lat, Lon: lon, RadiusM: float64(1 + rng.IntN(payments.NearbyRadiusMax)), Limit: 1 + rng.IntN(payments.NearbyLimitMax)}
		if i%5 == 0 {
			q.RadiusM = float64(100 + rng.IntN(2000)) // small radii, few results
		}
		if i%3 == 0 {
			q.Status = payments.StatusFailed
		}
		lte := time.Now()
		if i%2 == 0 {
			lte = base.Add(time.Duration(rng.Int64N(int64(20 * 24 * time.Hour))))
		}
		gte := lte.Add(-time.Duration(rng.Int64N(int64(payments.NearbyWindowMax))))
		q.CreatedGTE, q.CreatedLTE = &gte, &lte
		queries[i] = q
	}
	check := func(stage string) {
		t.Helper()
		nonEmpty := 0
		for i, q := range queries {
			got, err := h.svc.Nearby(ctx, tenant, q)
			if err != nil {
				t.Fatalf("%s: query %d: %v", stage, i, err)
			}
			var ids []uuid.UUID
			for j, n := range got {
				ids = append(ids, n.ID)
				if n.TenantID != tenant {
					t.Fatalf("%s: query %d answered another tenant's payment %s", stage, i, n.PublicID())
				}
				if j > 0 && n.DistanceM < got[j-1].DistanceM {
					t.Fatalf("%s: query %d is not sorted by distance", stage, i)
				}
			}
			if ids == nil {
				ids = []uuid.UUID{}
			}
			want := bruteForce(all, q)
			if !slices.Equal(ids, want) {
				t.Fatalf("%s: query %d (%+v) answered %d payments, brute force %d; first difference at %d", stage, i, q, len(ids), len(want), firstDiff(ids, want))
			}
			if len(want) > 0 {
				nonEmpty++
			}
		}
		if nonEmpty < len(queries)/2 {
			t.Fatalf("%s: only %d of %d queries found anything; the test checks too little", stage, nonEmpty, len(queries))
		}
	}
	check("redis")

	// Redis loses everything: every day is answered from the database.
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := ix.Search(ctx, tenant, days, days[0], cities[0][0], cities[0][1], 1000, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Complete {
			t.Fatalf("day %s is complete after FLUSHDB", r.Day.Format("2006-01-02"))
		}
	}
	check("database fallback")

	// geo reindex: every day rebuilt from the database and complete again.
	for _, d := range days {
		es, err := h.svc.ReindexDay(ctx, tenant, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := ix.Rebuild(ctx, tenant, d, es); err != nil {
			t.Fatal(err)
		}
	}
	if complete := waitIndexed(t, ix, tenant, days, points); complete != len(days) {
		t.Fatalf("%d of %d days complete after reindex", complete, len(days))
	}
	check("after reindex")
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func firstDiff(a, b []uuid.UUID) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestNearbyValidation(t *testing.T) {
	t.Parallel()
	now := time.Now()
	day := 24 * time.Hour
	old, recent := now.Add(-32*day), now
	for _, tt := range []struct {
		name  string
		p     payments.NearbyParams
		param string
	}{
		{"latitude above 90", payments.NearbyParams{Lat: 90.5, Lon: 0, RadiusM: 10}, "lat"},
		{"latitude below -90", payments.NearbyParams{Lat: -91, Lon: 0, RadiusM: 10}, "lat"},
		{"longitude above 180", payments.NearbyParams{Lat: 0, Lon: 180.01, RadiusM: 10}, "lon"},
		{"radius zero", payments.NearbyParams{Lat: 0, Lon: 0, RadiusM: 0}, "radius_m"},
		{"radius above 50 km", payments.NearbyParams{Lat: 0, Lon: 0, RadiusM: 50_001}, "radius_m"},
		{"limit above 100", payments.NearbyParams{Lat: 0, Lon: 0, RadiusM: 10, Limit: 101}, "limit"},
		{"unknown status", payments.NearbyParams{Lat: 0, Lon: 0, RadiusM: 10, Status: "paid"}, "status"},
		{"range over 31 days", payments.NearbyParams{Lat: 0, Lon: 0, RadiusM: 10, CreatedGTE: &old, CreatedLTE: &recent}, "created[gte]"},
		{"range reversed", payments.NearbyParams{Lat: 0, Lon: 0, RadiusM: 10, CreatedGTE: &recent, CreatedLTE: &old}, "created[gte]"},
	} {
		p := tt.p
		err := payments.ValidateNearby(&p, now)
		e := errcode.As(err)
		if e == nil || e.Kind != errcode.KindInvalid || e.Param != tt.param {
			t.Errorf("%s: got %v, want an invalid-request error with param %s", tt.name, err, tt.param)
		}
	}
	ok := payments.NearbyParams{Lat: -90, Lon: 180, RadiusM: 50_000}
	if err := payments.ValidateNearby(&ok, now); err != nil || ok.Limit != payments.NearbyLimitDefault {
		t.Errorf("edge values refused (%v) or limit not defaulted (%d)", err, ok.Limit)
	}
	if got := ok.CreatedLTE.Sub(*ok.CreatedGTE); got != payments.NearbyWindowMax {
		t.Errorf("default window is %v, want %v", got, payments.NearbyWindowMax)
	}
}
