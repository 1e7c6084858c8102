package api

import (
	"context"
	"encoding/json"
	"math"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/risk"
	"github.com/payments-api/payments/tenancy"
)

// opCreatePayment is the operation whose rate limit also runs the risk
// rules.
const opCreatePayment = "create-payment"

const riskVerdictKey ctxKey = 100

// riskVerdict is the verdict the edge stored for the handler.
func riskVerdict(ctx context.Context) *payments.RiskVerdict {
	v, _ := ctx.Value(riskVerdictKey).(*payments.RiskVerdict)
	return v
}

// spendWithRules spends the rate limit of a payment creation and runs the
// tenant's location risk rules in the same Redis round trip. It reads the
// location and customer from the body (already read by guardWrite); a body
// the handler will refuse anyway (no JSON, coordinates out of range) is
// judged by the rate limit alone.
func (s *Server) spendWithRules(ctx huma.Context, p tenancy.Principal) (huma.Context, bool) {
	rctx := ctx.Context()
	var rules []risk.Rule
	if all, err := s.cfg.Risk.Rules(rctx, p.TenantID); err != nil {
		s.cfg.Logger.Warn("risk rules unavailable; the payment is judged by the rate limit alone", "error", err.Error())
	} else {
		rules = all
	}
	var pay risk.Payment
	if len(rules) > 0 {
		var body struct {
			Customer *string `json:"customer"`
			Location *struct {
				Lat, Lon float64
			} `json:"location"`
		}
		r := ctx.BodyReader()
		if r != nil && json.NewDecoder(r).Decode(&body) == nil && body.Location != nil && validPoint(body.Location.Lat, body.Location.Lon) {
			pay = risk.Payment{TenantID: p.TenantID, Lat: body.Location.Lat, Lon: body.Location.Lon, At: s.cfg.Risk.Now()}
			if body.Customer != nil {
				pay.Customer = *body.Customer
			}
			pay.Member = newRequestID()
			if key := ctx.Header("Idempotency-Key"); key != "" {
				pay.Member = "idem:" + key
			}
			rules = risk.Applicable(rules, pay)
		} else {
			rules = nil
		}
	}
	if len(rules) == 0 {
		return ctx, s.spend(ctx, p, s.cfg.RateLimiter.Allow(rctx, p))
	}
	d, verdict, failedOpen := s.cfg.RateLimiter.AllowPayment(rctx, p, rules, pay)
	s.cfg.Risk.CountFailedOpen(failedOpen)
	if !s.spend(ctx, p, d) {
		return nil, false
	}
	if verdict == nil {
		return ctx, true
	}
	return huma.WithValue(ctx, riskVerdictKey, &payments.RiskVerdict{Rule: verdict.Rule, Block: verdict.Block}), true
}

func validPoint(lat, lon float64) bool {
	return !math.IsNaN(lat) && !math.IsNaN(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// RiskRule is a location risk rule as the API shows it.
type RiskRule struct {
	ID               string `json:"id" doc:"Unique identifier, prefixed rr_." example:"rr_06h17frpsdzff29kp8gyg5mc4w"`
	Object           string `json:"object" enum:"risk_rule" doc:"Always risk_rule."`
	Kind             string `json:"kind" enum:"velocity,impossible_travel" doc:"velocity: more than max_payments payments in one geohash cell within window_seconds. impossible_travel: the same customer paying from two places whose implied speed exceeds speed_kmh." example:"velocity"`
	Action           string `json:"action" enum:"block,review" doc:"block: the payment fails with failure_code risk_blocked (402) and the processor is not called. review: the payment proceeds with risk.review true and a payment.review_opened event." example:"block"`
	FailClosed       bool   `json:"fail_closed" doc:"When the rule cannot be evaluated (Redis unavailable): true applies the action, false (the default) lets the payment through." example:"false"`
	GeohashPrecision *int   `json:"geohash_precision" doc:"velocity: the cell's geohash precision, 4 (about 39 km) to 7 (about 150 m)." example:"6"`
	MaxPayments      *int   `json:"max_payments" doc:"velocity: payments allowed in the cell within the window; one more matches." example:"20"`
	WindowSeconds    *int   `json:"window_seconds" doc:"velocity: the sliding window, 1 to 86400 seconds." example:"60"`
	SpeedKmh         *int   `json:"speed_kmh" doc:"impossible_travel: the highest plausible speed, 1 to 100000 km/h." example:"900"`
	Created          int64  `json:"created" doc:"Creation time, Unix seconds." example:"1764090000"`
	Updated          int64  `json:"updated" doc:"Last change, Unix seconds." example:"1764090000"`
}

func intOrNil(v int) *int {
	if v == 0 {
		return nil
	}
	return &v
}

func riskRuleOf(r risk.Rule) RiskRule {
	return RiskRule{
		ID: r.PublicID(), Object: "risk_rule", Kind: r.Kind, Action: r.Action, FailClosed: r.FailClosed,
		GeohashPrecision: intOrNil(r.Precision), MaxPayments: intOrNil(r.MaxPayments), WindowSeconds: intOrNil(r.WindowSeconds),
		SpeedKmh: intOrNil(r.SpeedKmh), Created: r.CreatedAt.Unix(), Updated: r.UpdatedAt.Unix(),
	}
}

// riskRuleFields are the writable fields of a rule; ranges are checked by
// the handler (400 with param), not by the schema.
type riskRuleFields struct {
	Kind             *string `json:"kind,omitempty" doc:"velocity or impossible_travel. Required on creation; cannot change." example:"velocity"`
	Action           *string `json:"action,omitempty" doc:"block or review. Required on creation." example:"block"`
	FailClosed       *bool   `json:"fail_closed,omitempty" doc:"Apply the action when the rule cannot be evaluated. Default false." example:"false"`
	GeohashPrecision *int    `json:"geohash_precision,omitempty" doc:"velocity only: 4 to 7." example:"6"`
	MaxPayments      *int    `json:"max_payments,omitempty" doc:"velocity only: 1 to 100000." example:"20"`
	WindowSeconds    *int    `json:"window_seconds,omitempty" doc:"velocity only: 1 to 86400." example:"60"`
	SpeedKmh         *int    `json:"speed_kmh,omitempty" doc:"impossible_travel only: 1 to 100000." example:"900"`
}

func (f riskRuleFields) apply(r *risk.Rule) {
	if f.Kind != nil {
		r.Kind = *f.Kind
	}
	if f.Action != nil {
		r.Action = *f.Action
	}
	if f.FailClosed != nil {
		r.FailClosed = *f.FailClosed
	}
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&r.Precision, f.GeohashPrecision)
	set(&r.MaxPayments, f.MaxPayments)
	set(&r.WindowSeconds, f.WindowSeconds)
	set(&r.SpeedKmh, f.SpeedKmh)
}

// checkRanges refuses values the database columns cannot hold before they
// reach validation (an int past int32).
func (f riskRuleFields) checkRanges() error {
	for _, c := range []struct {
		param string
		v     *int
	}{{"geohash_precision", f.GeohashPrecision}, {"max_payments", f.MaxPayments}, {"window_seconds", f.WindowSeconds}, {"speed_kmh", f.SpeedKmh}} {
		if c.v != nil && (*c.v < 1 || *c.v > math.MaxInt32) {
			return errcode.Invalid(errcode.CodeParameterInvalid, c.param, "%s must be a positive integer", c.param)
		}
	}
	return nil
}

type createRiskRuleInput struct {
	IdempotencyHeader
	Body riskRuleFields
}

type updateRiskRuleInput struct {
	IdempotencyHeader
	RiskRulePath
	Body riskRuleFields
}

// RiskRulePath names a rule in the path.
type RiskRulePath struct {
	ID string `path:"id" maxLength:"64" doc:"The rule's ID." example:"rr_06h17frpsdzff29kp8gyg5mc4w"`
}

type riskRuleOutput struct {
	Body RiskRule
}

type riskRuleList struct {
	Object  string     `json:"object" enum:"list"`
	Data    []RiskRule `json:"data" doc:"Every rule of the account, oldest first (at most 20)."`
	HasMore bool       `json:"has_more" doc:"Always false: an account has at most 20 rules."`
}

type riskRuleListOutput struct {
	Body riskRuleList
}

type deletedRiskRule struct {
	ID      string `json:"id" doc:"The deleted rule's ID." example:"rr_06h17frpsdzff29kp8gyg5mc4w"`
	Object  string `json:"object" enum:"risk_rule"`
	Deleted bool   `json:"deleted" doc:"Always true."`
}

type deletedRiskRuleOutput struct {
	Body deletedRiskRule
}

// errNoRules answers the rule routes of a server built without rules.
var errNoRules = errcode.New(errcode.KindUnavailable, errcode.CodeUnavailable, "risk rules are not configured on this server")

func riskRuleID(s string) (uuid.UUID, error) { return objectID(ids.PrefixRiskRule, "risk_rule", s) }

func registerRiskRules(api huma.API, s *Server) {
	tags := []string{"Risk rules"}
	huma.Register(api, operation(huma.Operation{
		OperationID: "create-risk-rule",
		Method:      http.MethodPost,
		Path:        "/v1/risk_rules",
		Summary:     "Create a location risk rule",
		Description: "Creates a rule evaluated on every payment with a location: velocity (more than max_payments payments in one geohash cell within window_seconds) " +
			"or impossible_travel (the same customer at two places whose implied speed exceeds speed_kmh). block answers 402 risk_blocked and keeps the payment failed; " +
			"review lets it proceed with risk.review true. An account has at most 20 rules. Out-of-range values answer 400 with the parameter.",
		Tags:          tags,
		DefaultStatus: http.StatusCreated,
	}, schemeSecretKey), handle(func(ctx context.Context, in *createRiskRuleInput) (*riskRuleOutput, error) {
		if s.cfg.Risk == nil {
			return nil, errNoRules
		}
		if err := in.Body.checkRanges(); err != nil {
			return nil, err
		}
		var r risk.Rule
		in.Body.apply(&r)
		out, err := s.cfg.Risk.Create(ctx, principal(ctx).TenantID, r)
		if err != nil {
			return nil, err
		}
		return &riskRuleOutput{Body: riskRuleOf(out)}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "list-risk-rules",
		Method:      http.MethodGet,
		Path:        "/v1/risk_rules",
		Summary:     "List location risk rules",
		Description: "Lists the account's risk rules, oldest first.",
		Tags:        tags,
	}, schemeSecretKey), handle(func(ctx context.Context, _ *struct{}) (*riskRuleListOutput, error) {
		if s.cfg.Risk == nil {
			return nil, errNoRules
		}
		rules, err := s.cfg.Risk.List(ctx, principal(ctx).TenantID)
		if err != nil {
			return nil, err
		}
		out := &riskRuleListOutput{Body: riskRuleList{Object: "list", Data: []RiskRule{}}}
		for _, r := range rules {
			out.Body.Data = append(out.Body.Data, riskRuleOf(r))
		}
		return out, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "get-risk-rule",
		Method:      http.MethodGet,
		Path:        "/v1/risk_rules/{id}",
		Summary:     "Retrieve a location risk rule",
		Description: "Answers one risk rule. Another account's rule answers 404.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusNotFound), handle(func(ctx context.Context, in *RiskRulePath) (*riskRuleOutput, error) {
		if s.cfg.Risk == nil {
			return nil, errNoRules
		}
		id, err := riskRuleID(in.ID)
		if err != nil {
			return nil, err
		}
		r, err := s.cfg.Risk.Get(ctx, principal(ctx).TenantID, id)
		if err != nil {
			return nil, err
		}
		return &riskRuleOutput{Body: riskRuleOf(r)}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "update-risk-rule",
		Method:      http.MethodPost,
		Path:        "/v1/risk_rules/{id}",
		Summary:     "Update a location risk rule",
		Description: "Changes the given fields of a rule; its kind cannot change. Payments see the change within 5 seconds on every replica.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusNotFound), handle(func(ctx context.Context, in *updateRiskRuleInput) (*riskRuleOutput, error) {
		if s.cfg.Risk == nil {
			return nil, errNoRules
		}
		id, err := riskRuleID(in.ID)
		if err != nil {
			return nil, err
		}
		if err := in.Body.checkRanges(); err != nil {
			return nil, err
		}
		r, err := s.cfg.Risk.Update(ctx, principal(ctx).TenantID, id, func(r *risk.Rule) error {
			if in.Body.Kind != nil && *in.Body.Kind != r.Kind {
				return errcode.Invalid(errcode.CodeParameterInvalid, "kind", "a rule's kind cannot change; create another rule")
			}
			in.Body.apply(r)
			return nil
		})
		if err != nil {
			return nil, err
		}
		return &riskRuleOutput{Body: riskRuleOf(r)}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "delete-risk-rule",
		Method:      http.MethodDelete,
		Path:        "/v1/risk_rules/{id}",
		Summary:     "Delete a location risk rule",
		Description: "Deletes a rule; payments stop seeing it within 5 seconds on every replica. Its counters expire by themselves.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusNotFound), handle(func(ctx context.Context, in *RiskRulePath) (*deletedRiskRuleOutput, error) {
		if s.cfg.Risk == nil {
			return nil, errNoRules
		}
		id, err := riskRuleID(in.ID)
		if err != nil {
			return nil, err
		}
		if err := s.cfg.Risk.Delete(ctx, principal(ctx).TenantID, id); err != nil {
			return nil, err
		}
		return &deletedRiskRuleOutput{Body: deletedRiskRule{ID: in.ID, Object: "risk_rule", Deleted: true}}, nil
	}))
}
