// Package geo turns client-supplied coordinates into the geohashes the
// service stores and indexes. It will also hold the service's regions and
// the Redis GEO index of them; for now it validates coordinates and encodes
// them.
package geo

import (
	"math"

	"github.com/mmcloughlin/geohash"

	"github.com/payments-api/payments/errcode"
)

// Coordinate limits, in degrees.
const (
	// LatitudeMin is the South Pole.
	LatitudeMin = -90.0
	// LatitudeMax is the North Pole.
	LatitudeMax = 90.0
	// LongitudeMin is the antimeridian, approached from the west.
	LongitudeMin = -180.0
	// LongitudeMax is the antimeridian, approached from the east.
	LongitudeMax = 180.0
)

// GeohashLength is the number of characters of the geohashes Geohash
// returns. Nine characters name a cell of about 4.8 m by 4.8 m at the
// equator: precise enough for a point of sale, coarse enough not to pin down
// a person's exact position.
const GeohashLength = 9

// edgeInset moves a point lying exactly on the north or east edge of the
// map just inside it. The encoder maps the fraction (x+r)/2r onto 32 bits
// and would wrap 1.0 around to the first cell; a billionth of a degree is
// far smaller than a cell, so the point stays in the last cell, where it
// belongs.
const edgeInset = 1e-9

// Geohash returns the geohash of GeohashLength characters of the point at
// latitude lat and longitude lon, in degrees. Coordinates that are NaN,
// infinite or out of range are refused with an *errcode.Error of code
// errcode.CodeParameterInvalid and Param "location.lat" or "location.lon".
func Geohash(lat, lon float64) (string, error) {
	if err := check("location.lat", "latitude", lat, LatitudeMin, LatitudeMax); err != nil {
		return "", err
	}
	if err := check("location.lon", "longitude", lon, LongitudeMin, LongitudeMax); err != nil {
		return "", err
	}
	lat = min(lat, LatitudeMax-edgeInset)
	lon = min(lon, LongitudeMax-edgeInset)
	return geohash.EncodeWithPrecision(lat, lon, GeohashLength), nil
}

// check validates one coordinate.
func check(param, name string, v, lo, hi float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return errcode.Invalid(errcode.CodeParameterInvalid, param,
			"%s must be a finite number of degrees", param)
	}
	if v < lo || v > hi {
		return errcode.Invalid(errcode.CodeParameterInvalid, param,
			"%s must be a %s between %g and %g degrees", param, name, lo, hi)
	}
	return nil
}
