package payments

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/geo"
)

// Limits of nearby searches.
const (
	NearbyRadiusMin    = 1
	NearbyRadiusMax    = 50_000
	NearbyLimitMax     = 100
	NearbyLimitDefault = 10
	// NearbyWindowMax is the longest created range one search covers.
	NearbyWindowMax = 31 * 24 * time.Hour
	// nearbyMarginM widens the radius asked of Redis: it stores points as
	// 52-bit geohashes (about 0.6 m of error), and every answer is measured
	// again from the stored coordinates.
	nearbyMarginM = 2.0
	// nearbyCountMax bounds the members asked of one day's key; a day that
	// holds more within the radius is read from the database.
	nearbyCountMax = 20_000
)

// GeoIndex is the Redis GEO index of located payments (geo.Index). It is
// never the source of truth: Add may lose entries, and Search reports which
// days it holds completely.
type GeoIndex interface {
	Add(es ...geo.Entry)
	Search(ctx context.Context, tenant uuid.UUID, days []time.Time, from time.Time, lat, lon, radiusM float64, count int) ([]geo.DayResult, error)
}

// NearbyParams selects a nearby search.
type NearbyParams struct {
	Lat, Lon   float64
	RadiusM    float64
	CreatedGTE *time.Time // default: CreatedLTE minus NearbyWindowMax
	CreatedLTE *time.Time // default: now
	Status     Status
	Limit      int // 0: NearbyLimitDefault
}

// Near is a payment found by a nearby search.
type Near struct {
	Payment
	DistanceM float64
}

// ValidateNearby checks a search and fills in its defaults. Errors:
// parameter_invalid with param lat, lon, radius_m, limit, status or
// created[gte].
func ValidateNearby(p *NearbyParams, now time.Time) error {
	if math.IsNaN(p.Lat) || p.Lat < geo.LatitudeMin || p.Lat > geo.LatitudeMax {
		return errcode.Invalid(errcode.CodeParameterInvalid, "lat", "lat must be a latitude from -90 to 90 degrees")
	}
	if math.IsNaN(p.Lon) || p.Lon < geo.LongitudeMin || p.Lon > geo.LongitudeMax {
		return errcode.Invalid(errcode.CodeParameterInvalid, "lon", "lon must be a longitude from -180 to 180 degrees")
	}
	if math.IsNaN(p.RadiusM) || p.RadiusM < NearbyRadiusMin || p.RadiusM > NearbyRadiusMax {
		return errcode.Invalid(errcode.CodeParameterInvalid, "radius_m", "radius_m must be %d to %d metres", NearbyRadiusMin, NearbyRadiusMax)
	}
	if p.Limit == 0 {
		p.Limit = NearbyLimitDefault
	}
	if p.Limit < 1 || p.Limit > NearbyLimitMax {
		return errcode.Invalid(errcode.CodeParameterInvalid, "limit", "limit must be 1 to %d", NearbyLimitMax)
	}
	if p.Status != "" {
		ok := false
		for _, st := range Statuses {
			ok = ok || st == p.Status
		}
		if !ok {
			return errcode.Invalid(errcode.CodeParameterInvalid, "status", "unknown status %q", p.Status)
		}
	}
	if p.CreatedLTE == nil {
		t := now
		p.CreatedLTE = &t
	}
	if p.CreatedGTE == nil {
		t := p.CreatedLTE.Add(-NearbyWindowMax)
		p.CreatedGTE = &t
	}
	if p.CreatedGTE.After(*p.CreatedLTE) {
		return errcode.Invalid(errcode.CodeParameterInvalid, "created[gte]", "created[gte] must not be after created[lte]")
	}
	if p.CreatedLTE.Sub(*p.CreatedGTE) > NearbyWindowMax {
		return errcode.Invalid(errcode.CodeParameterInvalid, "created[gte]", "the created range may span at most 31 days")
	}
	return nil
}

// Nearby answers the tenant's payments within RadiusM metres of a point,
// nearest first, each with its distance. Days the Redis index holds
// completely are searched there; the others, and all of them when Redis
// does not answer, are read from the database by geohash-prefix ranges.
// Every candidate is measured again from its stored coordinates, so both
// paths answer the same. Errors: parameter_invalid.
func (s *Service) Nearby(ctx context.Context, tenantID uuid.UUID, p NearbyParams) ([]Near, error) {
	if err := ValidateNearby(&p, s.now()); err != nil {
		return nil, err
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	from, to := *p.CreatedGTE, *p.CreatedLTE
	days := geo.Days(from, to)
	count := max(4*p.Limit, 64)
	forceDB := false // the index could not answer with nearbyCountMax members
	for {
		var results []geo.DayResult
		if s.geo != nil && !forceDB {
			results, err = s.geo.Search(ctx, tenantID, days, from, p.Lat, p.Lon, p.RadiusM+nearbyMarginM, count)
			if err != nil {
				s.log.Warn("nearby search: redis unavailable, reading the database", "error", err.Error())
				results = nil
			}
		}
		// certain is the distance up to which no payment can be missing:
		// a day whose key answered count members may hold more beyond its
		// farthest answer.
		certain := math.Inf(1)
		var hits []geo.Hit
		var dbDays []time.Time
		if results == nil {
			dbDays = days
		}
		for _, r := range results {
			if !r.Complete || (len(r.Hits) >= count && count >= nearbyCountMax) {
				dbDays = append(dbDays, r.Day)
				continue
			}
			hits = append(hits, r.Hits...)
			if len(r.Hits) >= count {
				certain = min(certain, r.Hits[len(r.Hits)-1].DistM-nearbyMarginM)
			}
		}
		// Only the count nearest of all days are read from the database;
		// the others are farther than all of them.
		sort.Slice(hits, func(i, j int) bool { return hits[i].DistM < hits[j].DistM })
		if len(hits) > count {
			certain = min(certain, hits[count-1].DistM-nearbyMarginM)
			hits = hits[:count]
		}
		ids := make([]uuid.UUID, 0, len(hits))
		for _, h := range hits {
			ids = append(ids, h.ID)
		}
		found, err := nearbyFromIDs(ctx, sh.Pool, tenantID, ids, p)
		if err != nil {
			return nil, err
		}
		more, err := nearbyFromDatabase(ctx, sh.Pool, tenantID, dbDays, p)
		if err != nil {
			return nil, err
		}
		found = append(found, more...)
		out := make([]Near, 0, len(found))
		for _, f := range found {
			d := geo.DistanceM(p.Lat, p.Lon, f.Location.Lat, f.Location.Lon)
			if d <= p.RadiusM {
				out = append(out, Near{Payment: f, DistanceM: d})
			}
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].DistanceM != out[j].DistanceM {
				return out[i].DistanceM < out[j].DistanceM
			}
			return out[i].ID.String() < out[j].ID.String()
		})
		sure := 0
		for sure < len(out) && out[sure].DistanceM <= certain {
			sure++
		}
		if sure >= p.Limit || math.IsInf(certain, 1) {
			return out[:min(len(out), p.Limit)], nil
		}
		forceDB = count >= nearbyCountMax
		count = min(count*4, nearbyCountMax)
	}
}

// nearbyFromIDs reads the candidates the index found, with the search's
// filters.
func nearbyFromIDs(ctx context.Context, q Querier, tenantID uuid.UUID, ids []uuid.UUID, p NearbyParams) ([]Payment, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	sql := `SELECT ` + paymentColumns + ` FROM payments WHERE tenant_id = $1 AND id = ANY($2) AND created_at >= $3 AND created_at <= $4`
	args := []any{tenantID, ids, *p.CreatedGTE, *p.CreatedLTE}
	if p.Status != "" {
		args = append(args, string(p.Status))
		sql += ` AND status = $5`
	}
	return queryPayments(ctx, q, sql, args...)
}

// nearbyFromDatabase reads the located payments of the given days within
// the search's window by geohash-prefix ranges of payments_by_geohash.
func nearbyFromDatabase(ctx context.Context, q Querier, tenantID uuid.UUID, days []time.Time, p NearbyParams) ([]Payment, error) {
	var out []Payment
	cover := geo.Cover(p.Lat, p.Lon, p.RadiusM)
	for _, span := range daySpans(days) {
		lo, hi := span[0], span[1]
		if lo.Before(*p.CreatedGTE) {
			lo = *p.CreatedGTE
		}
		if hi.After(*p.CreatedLTE) {
			hi = *p.CreatedLTE
		}
		args := []any{tenantID, lo, hi}
		var ranges []string
		for _, c := range cover {
			args = append(args, c.Low)
			r := fmt.Sprintf("geohash >= $%d", len(args))
			if c.High != "" {
				args = append(args, c.High)
				r += fmt.Sprintf(" AND geohash < $%d", len(args))
			}
			ranges = append(ranges, "("+r+")")
		}
		sql := `SELECT ` + paymentColumns + ` FROM payments WHERE tenant_id = $1 AND geohash IS NOT NULL AND created_at >= $2 AND created_at <= $3 AND (` +
			strings.Join(ranges, " OR ") + `)`
		if p.Status != "" {
			args = append(args, string(p.Status))
			sql += fmt.Sprintf(" AND status = $%d", len(args))
		}
		ps, err := queryPayments(ctx, q, sql, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// daySpans merges consecutive days into [start, end] spans, end inclusive
// to the nanosecond.
func daySpans(days []time.Time) [][2]time.Time {
	sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
	var out [][2]time.Time
	for _, d := range days {
		end := d.Add(24*time.Hour - time.Nanosecond)
		if n := len(out); n > 0 && out[n-1][1].Add(time.Nanosecond).Equal(d) {
			out[n-1][1] = end
			continue
		}
		out = append(out, [2]time.Time{d, end})
	}
	return out
}

func queryPayments(ctx context.Context, q Querier, sql string, args ...any) ([]Payment, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read nearby payments: %w", err)
	}
	defer rows.Close()
	var out []Payment
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, fmt.Errorf("read nearby payments: %w", err)
		}
		if p.Location != nil {
			out = append(out, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read nearby payments: %w", err)
	}
	return out, nil
}

// ReindexDay returns every located payment the tenant created on the UTC
// day starting at day, for `payments geo reindex`.
func (s *Service) ReindexDay(ctx context.Context, tenantID uuid.UUID, day time.Time) ([]geo.Entry, error) {
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	rows, err := sh.Pool.Query(ctx, `SELECT id, location_lat, location_lon, created_at FROM payments
		WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 AND geohash IS NOT NULL`, tenantID, day, day.Add(24*time.Hour))
	if err != nil {
		return nil, fmt.Errorf("read located payments: %w", err)
	}
	defer rows.Close()
	var out []geo.Entry
	for rows.Next() {
		e := geo.Entry{TenantID: tenantID}
		if err := rows.Scan(&e.ID, &e.Lat, &e.Lon, &e.Created); err != nil {
			return nil, fmt.Errorf("read located payments: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
