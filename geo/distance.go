package geo

import (
	"math"
	"sort"

	"github.com/mmcloughlin/geohash"
)

// EarthRadiusM is the sphere radius of every distance the service answers:
// the one Redis uses for GEOSEARCH, so that the index and the database
// fallback measure the same way.
const EarthRadiusM = 6372797.560856

// DistanceM returns the great-circle (haversine) distance in metres between
// two points given in degrees.
func DistanceM(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * EarthRadiusM * math.Asin(math.Sqrt(min(a, 1)))
}

// PrefixRange is the half-open range [Low, High) of the geohashes that start
// with one prefix. High is empty for the last prefix of the map ("zz...").
type PrefixRange struct {
	Low, High string
}

// coverCellsMax bounds the prefixes of a cover: each is one index range.
const coverCellsMax = 16

// base32 is the geohash alphabet, in ascending byte order.
const base32 = "0123456789bcdefghjkmnpqrstuvwxyz"

// Cover returns geohash-prefix ranges whose union holds every point within
// radiusM metres of (lat, lon): the cells, at the finest precision that
// needs at most 16 of them, that meet the circle's bounding box. Ranges of
// the database index on (tenant_id, geohash) then find the candidates,
// which the caller filters by exact distance.
func Cover(lat, lon, radiusM float64) []PrefixRange {
	dLat := radiusM / (EarthRadiusM * math.Pi / 180)
	latLo, latHi := max(lat-dLat, LatitudeMin), min(lat+dLat, LatitudeMax-edgeInset)
	// The widest parallel of the box decides its longitude span.
	cosMin := math.Min(math.Cos(latLo*math.Pi/180), math.Cos(latHi*math.Pi/180))
	dLon := 360.0
	if cosMin > 1e-9 {
		dLon = radiusM / (EarthRadiusM * math.Pi / 180 * cosMin)
	}
	type span struct{ lo, hi float64 }
	var lons []span
	switch {
	case dLon >= 180 || latLo <= LatitudeMin || latHi >= LatitudeMax-edgeInset:
		lons = []span{{LongitudeMin, LongitudeMax - edgeInset}}
	case lon-dLon < LongitudeMin:
		lons = []span{{LongitudeMin, lon + dLon}, {lon - dLon + 360, LongitudeMax - edgeInset}}
	case lon+dLon >= LongitudeMax:
		lons = []span{{lon - dLon, LongitudeMax - edgeInset}, {LongitudeMin, lon + dLon - 360}}
	default:
		lons = []span{{lon - dLon, lon + dLon}}
	}
	var cells []string
	for chars := uint(GeohashLength); chars >= 1; chars-- {
		cells = cells[:0]
		seen := map[string]bool{}
		box := geohash.BoundingBox(geohash.EncodeWithPrecision(lat, lon, chars))
		hLat, hLon := box.MaxLat-box.MinLat, box.MaxLng-box.MinLng
		tooMany := false
		for _, sp := range lons {
			for y := latLo; !tooMany; y = min(y+hLat, latHi) {
				for x := sp.lo; !tooMany; x = min(x+hLon, sp.hi) {
					c := geohash.EncodeWithPrecision(y, x, chars)
					if !seen[c] {
						seen[c] = true
						cells = append(cells, c)
						tooMany = len(cells) > coverCellsMax
					}
					if x >= sp.hi {
						break
					}
				}
				if y >= latHi {
					break
				}
			}
		}
		if !tooMany {
			break
		}
	}
	sort.Strings(cells)
	out := make([]PrefixRange, 0, len(cells))
	for _, c := range cells {
		out = append(out, PrefixRange{Low: c, High: successor(c)})
	}
	return out
}

// successor returns the smallest string greater than every string that
// starts with prefix, in the geohash alphabet; "" when there is none.
func successor(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		j := indexByte(base32, b[i])
		if j < len(base32)-1 {
			b[i] = base32[j+1]
			return string(b[:i+1])
		}
	}
	return ""
}

func indexByte(s string, c byte) int {
	for i := range len(s) {
		if s[i] == c {
			return i
		}
	}
	return -1
}
