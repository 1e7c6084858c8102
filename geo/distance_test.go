package geo_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/payments-api/payments/geo"
)

// TestCoverHoldsTheCircle checks that every point within the radius has a
// geohash inside one of the cover's ranges, for centres anywhere on the
// map: near the poles and across the antimeridian too.
func TestCoverHoldsTheCircle(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	centres := [][2]float64{{0, 179.99}, {0, -179.99}, {89.99, 0}, {-89.99, 45}, {52.52, 13.405}}
	for range 200 {
		centres = append(centres, [2]float64{rng.Float64()*180 - 90, rng.Float64()*360 - 180})
	}
	for _, c := range centres {
		radius := 1 + rng.Float64()*50_000
		cover := geo.Cover(c[0], c[1], radius)
		if len(cover) == 0 || len(cover) > 16 {
			t.Fatalf("cover of (%v, %v) r=%v has %d ranges", c[0], c[1], radius, len(cover))
		}
		for range 300 {
			// A random point at a random distance up to the radius, in a
			// random direction (spherical destination formula).
			d := radius * math.Sqrt(rng.Float64()) / geo.EarthRadiusM
			brg := rng.Float64() * 2 * math.Pi
			la1, lo1 := c[0]*math.Pi/180, c[1]*math.Pi/180
			la2 := math.Asin(math.Sin(la1)*math.Cos(d) + math.Cos(la1)*math.Sin(d)*math.Cos(brg))
			lo2 := lo1 + math.Atan2(math.Sin(brg)*math.Sin(d)*math.Cos(la1), math.Cos(d)-math.Sin(la1)*math.Sin(la2))
			lat, lon := la2*180/math.Pi, math.Mod(lo2*180/math.Pi+540, 360)-180
			if geo.DistanceM(c[0], c[1], lat, lon) > radius {
				continue
			}
			gh, err := geo.Geohash(lat, lon)
			if err != nil {
				t.Fatal(err)
			}
			in := false
			for _, r := range cover {
				in = in || (gh >= r.Low && (r.High == "" || gh < r.High))
			}
			if !in {
				t.Fatalf("point (%v, %v) %.1f m from (%v, %v) has geohash %s outside the cover %v", lat, lon, geo.DistanceM(c[0], c[1], lat, lon), c[0], c[1], gh, cover)
			}
		}
	}
}

func TestDistanceKnown(t *testing.T) {
	t.Parallel()
	// Berlin to Paris is about 878 km.
	if d := geo.DistanceM(52.52, 13.405, 48.8566, 2.3522); math.Abs(d-878_000) > 3_000 {
		t.Errorf("Berlin to Paris: %.0f m", d)
	}
	if d := geo.DistanceM(10, 20, 10, 20); d != 0 {
		t.Errorf("a point to itself: %v m", d)
	}
}
