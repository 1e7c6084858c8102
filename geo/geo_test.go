package geo_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mmcloughlin/geohash"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/geo"
)

func TestGeohashKnown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lat, lon float64
		want     string
	}{
		{lat: 57.64911, lon: 10.40744, want: "u4pruydqq"}, // Jutland, the classic example
		{lat: 0, lon: 0, want: "s00000000"},
		{lat: 57.64911, lon: -10.40744, want: bisect(57.64911, -10.40744)},
		{lat: -33.856784, lon: 151.215297, want: bisect(-33.856784, 151.215297)},
		{lat: -90, lon: -180, want: "000000000"},
		{lat: 90, lon: 180, want: "zzzzzzzzz"}, // the corner stays in the last cell
		{lat: 90, lon: 0, want: "upbpbpbpb"},
		{lat: 0, lon: 180, want: "xbpbpbpbp"},
		{lat: -90, lon: 180, want: "pbpbpbpbp"},
	}
	for _, tt := range tests {
		got, err := geo.Geohash(tt.lat, tt.lon)
		if err != nil || got != tt.want {
			t.Errorf("Geohash(%v, %v) = %q, %v; want %q", tt.lat, tt.lon, got, err, tt.want)
		}
	}
}

func TestGeohashInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lat, lon float64
		param    string
	}{
		{lat: math.NaN(), lon: 0, param: "location.lat"},
		{lat: math.Inf(1), lon: 0, param: "location.lat"},
		{lat: math.Inf(-1), lon: 0, param: "location.lat"},
		{lat: 90.000001, lon: 0, param: "location.lat"},
		{lat: -90.000001, lon: 0, param: "location.lat"},
		{lat: 0, lon: math.NaN(), param: "location.lon"},
		{lat: 0, lon: math.Inf(1), param: "location.lon"},
		{lat: 0, lon: 180.000001, param: "location.lon"},
		{lat: 0, lon: -180.000001, param: "location.lon"},
		{lat: 0, lon: 360, param: "location.lon"},
		{lat: math.NaN(), lon: math.NaN(), param: "location.lat"}, // the first fault is reported
	}
	for _, tt := range tests {
		got, err := geo.Geohash(tt.lat, tt.lon)
		e := errcode.As(err)
		if e == nil || e.Kind != errcode.KindInvalid || e.Code != errcode.CodeParameterInvalid || e.Param != tt.param {
			t.Errorf("Geohash(%v, %v) = %q, %v; want invalid %s", tt.lat, tt.lon, got, err, tt.param)
		}
	}
}

// bisect is the textbook geohash encoder, written independently of the
// library: halve the longitude and latitude ranges in turn, five bits to a
// base-32 character.
func bisect(lat, lon float64) string {
	const alphabet = "0123456789bcdefghjkmnpqrstuvwxyz"
	latLo, latHi, lonLo, lonHi := -90.0, 90.0, -180.0, 180.0
	out := make([]byte, 0, geo.GeohashLength)
	even := true
	for len(out) < geo.GeohashLength {
		c := 0
		for range 5 {
			c <<= 1
			if even {
				if mid := (lonLo + lonHi) / 2; lon >= mid {
					c |= 1
					lonLo = mid
				} else {
					lonHi = mid
				}
			} else {
				if mid := (latLo + latHi) / 2; lat >= mid {
					c |= 1
					latLo = mid
				} else {
					latHi = mid
				}
			}
			even = !even
		}
		out = append(out, alphabet[c])
	}
	return string(out)
}

func TestBisectKnown(t *testing.T) {
	t.Parallel()
	if got := bisect(57.64911, 10.40744); got != "u4pruydqq" {
		t.Errorf("bisect(57.64911, 10.40744) = %q, want u4pruydqq", got)
	}
}

// TestGeohashContainsPointProperty checks that the cell a geohash names
// holds the point it was computed from, over the whole valid range.
func TestGeohashContainsPointProperty(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(9, 10))
	for range 50_000 {
		lat := geo.LatitudeMin + rng.Float64()*(geo.LatitudeMax-geo.LatitudeMin)
		lon := geo.LongitudeMin + rng.Float64()*(geo.LongitudeMax-geo.LongitudeMin)
		h, err := geo.Geohash(lat, lon)
		if err != nil {
			t.Fatalf("Geohash(%v, %v) = %v", lat, lon, err)
		}
		if len(h) != geo.GeohashLength {
			t.Fatalf("Geohash(%v, %v) = %q, want %d characters", lat, lon, h, geo.GeohashLength)
		}
		if want := bisect(lat, lon); h != want {
			t.Fatalf("Geohash(%v, %v) = %q, bisection says %q", lat, lon, h, want)
		}
		box := geohash.BoundingBox(h)
		if lat < box.MinLat || lat > box.MaxLat || lon < box.MinLng || lon > box.MaxLng {
			t.Fatalf("Geohash(%v, %v) = %q, whose cell %+v does not hold the point", lat, lon, h, box)
		}
	}
}

func FuzzGeohash(f *testing.F) {
	f.Add(57.64911, 10.40744)
	f.Add(90.0, 180.0)
	f.Add(math.NaN(), 0.0)
	f.Fuzz(func(t *testing.T, lat, lon float64) {
		h, err := geo.Geohash(lat, lon)
		valid := lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 // false for NaN
		if valid != (err == nil) {
			t.Fatalf("Geohash(%v, %v) = %q, %v", lat, lon, h, err)
		}
		if err == nil && (len(h) != geo.GeohashLength || geohash.Validate(h) != nil) {
			t.Fatalf("Geohash(%v, %v) = %q, not a valid geohash", lat, lon, h)
		}
	})
}
