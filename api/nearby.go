package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/payments"
)

// nearbyInput is the query of a nearby search. Ranges are checked by the
// handler, which answers 400 with the parameter at fault.
type nearbyInput struct {
	Lat        float64 `query:"lat" doc:"Latitude of the centre, -90 to 90 degrees. Required." example:"52.52"`
	Lon        float64 `query:"lon" doc:"Longitude of the centre, -180 to 180 degrees. Required." example:"13.405"`
	RadiusM    float64 `query:"radius_m" doc:"Search radius in metres, 1 to 50000. Required." example:"1000"`
	Status     string  `query:"status" doc:"Only payments in this status (pending, requires_action, requires_capture, succeeded, failed, canceled)."`
	CreatedGTE int64   `query:"created[gte]" doc:"Only payments created at or after this Unix time. Default: 31 days before created[lte]. The range may span at most 31 days."`
	CreatedLTE int64   `query:"created[lte]" doc:"Only payments created at or before this Unix time. Default: now."`
	Limit      int     `query:"limit" doc:"How many payments to answer, 1 to 100. Default 10."`

	present map[string]bool
}

// Resolve notes which parameters were sent: a zero latitude is a place,
// a missing one is an error.
func (in *nearbyInput) Resolve(ctx huma.Context) []error {
	in.present = map[string]bool{}
	for _, k := range []string{"lat", "lon", "radius_m", "limit", "created[gte]", "created[lte]"} {
		in.present[k] = ctx.Query(k) != ""
	}
	return nil
}

// NearbyPayment is a payment found by a nearby search.
type NearbyPayment struct {
	payments.View
	DistanceM float64 `json:"distance_m" doc:"Great-circle distance from the searched point, in metres." example:"412.7"`
}

type nearbyList struct {
	Object string          `json:"object" enum:"list"`
	Data   []NearbyPayment `json:"data" doc:"The payments within the radius, nearest first."`
}

type nearbyOutput struct {
	Body nearbyList
}

func (in *nearbyInput) params() (payments.NearbyParams, error) {
	for _, k := range []string{"lat", "lon", "radius_m"} {
		if !in.present[k] {
			return payments.NearbyParams{}, errcode.Invalid(errcode.CodeParameterMissing, k, "%s is required", k)
		}
	}
	p := payments.NearbyParams{Lat: in.Lat, Lon: in.Lon, RadiusM: in.RadiusM, Status: payments.Status(in.Status), Limit: in.Limit}
	if in.present["limit"] && in.Limit == 0 {
		return p, errcode.Invalid(errcode.CodeParameterInvalid, "limit", "limit must be 1 to %d", payments.NearbyLimitMax)
	}
	if in.present["created[gte]"] {
		if in.CreatedGTE < 0 {
			return p, errcode.Invalid(errcode.CodeParameterInvalid, "created[gte]", "created[gte] must be a Unix time")
		}
		t := time.Unix(in.CreatedGTE, 0)
		p.CreatedGTE = &t
	}
	if in.present["created[lte]"] {
		if in.CreatedLTE < 0 {
			return p, errcode.Invalid(errcode.CodeParameterInvalid, "created[lte]", "created[lte] must be a Unix time")
		}
		t := time.Unix(in.CreatedLTE, 0).Add(time.Second - time.Nanosecond)
		p.CreatedLTE = &t
	}
	return p, nil
}

func registerNearby(api huma.API, s *Server) {
	huma.Register(api, operation(huma.Operation{
		OperationID: "list-nearby-payments",
		Method:      http.MethodGet,
		Path:        "/v1/payments/nearby",
		Summary:     "Search payments near a point",
		Description: "Lists your payments with a location within radius_m metres of (lat, lon), nearest first, each with distance_m. " +
			"Searches cover at most 31 days of creation time (default: the last 31 days). " +
			"Coordinates out of range, a radius outside 1 to 50000, a limit outside 1 to 100 or a range over 31 days answer 400 with the parameter at fault.",
		Tags: []string{"Payments"},
	}, schemeSecretKey, http.StatusBadRequest, http.StatusUnprocessableEntity), handle(func(ctx context.Context, in *nearbyInput) (*nearbyOutput, error) {
		p, err := in.params()
		if err != nil {
			return nil, err
		}
		found, err := s.cfg.Payments.Nearby(ctx, principal(ctx).TenantID, p)
		if err != nil {
			return nil, err
		}
		out := &nearbyOutput{Body: nearbyList{Object: "list", Data: make([]NearbyPayment, 0, len(found))}}
		for _, f := range found {
			out.Body.Data = append(out.Body.Data, NearbyPayment{View: f.ToView(), DistanceM: f.DistanceM})
		}
		return out, nil
	}))
}
