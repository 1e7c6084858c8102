package api_test

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/payments-api/payments/geo"
)

func located(lat, lon float64, extra ...any) map[string]any {
	return with(visa(1000), append([]any{"location", map[string]any{"lat": lat, "lon": lon}}, extra...)...)
}

func (h *harness) rule(secret string, body map[string]any) string {
	h.t.Helper()
	r := h.do("POST", "/v1/risk_rules", secret, body)
	if r.Status != http.StatusCreated {
		h.t.Fatalf("create risk rule: %d %s", r.Status, r.Body)
	}
	id, _ := r.json(h.t)["id"].(string)
	if !strings.HasPrefix(id, "rr_") {
		h.t.Fatalf("rule ID %q has no rr_ prefix", id)
	}
	return id
}

func TestRiskRuleVelocityBlocksAcrossTheWindowEdge(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("velocity", nil)
	other := h.createTenant("velocity other", nil)
	rule := h.rule(ten.Secret, map[string]any{"kind": "velocity", "action": "block", "geohash_precision": 6, "max_payments": 2, "window_seconds": 60})
	const lat, lon = 52.5200, 13.4050

	for i := range 2 {
		if r := h.pay(ten.Secret, located(lat, lon)); r.Status != http.StatusCreated {
			t.Fatalf("payment %d: %d %s", i, r.Status, r.Body)
		}
	}
	// Another tenant's payments in the same cell count for that tenant only.
	if r := h.pay(other.Secret, located(lat, lon)); r.Status != http.StatusCreated {
		t.Fatalf("other tenant: %d %s", r.Status, r.Body)
	}
	h.clock.Advance(59*time.Second + 999*time.Millisecond)
	r := h.pay(ten.Secret, located(lat+0.0001, lon), "Idempotency-Key", "blocked-1")
	m := expectProblem(t, r, http.StatusPaymentRequired, "risk_blocked")
	payID, _ := m["payment"].(string)
	if payID == "" {
		t.Fatalf("blocked answer names no payment: %s", r.Body)
	}
	p := h.do("GET", "/v1/payments/"+payID, ten.Secret, nil).json(t)
	risk, _ := p["risk"].(map[string]any)
	if p["status"] != "failed" || p["failure_code"] != "risk_blocked" || risk["rule"] != rule || risk["review"] != false || num(p["amount_received"]) != 0 {
		t.Fatalf("blocked payment: %v", p)
	}
	// pm_card_visa would have succeeded: the processor was not called.
	types := h.eventTypes(ten.Secret)
	if !contains(types, "payment.failed") {
		t.Fatalf("no payment.failed event among %v", types)
	}
	// The same key answers the stored 402 again.
	again := h.pay(ten.Secret, located(lat+0.0001, lon), "Idempotency-Key", "blocked-1")
	if again.Status != http.StatusPaymentRequired || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay of a blocked payment: %d %v %s", again.Status, again.Header, again.Body)
	}
	// A payment in another cell is not counted with them.
	if r := h.pay(ten.Secret, located(48.8566, 2.3522)); r.Status != http.StatusCreated {
		t.Fatalf("other cell: %d %s", r.Status, r.Body)
	}
	// At 60 s the first two leave the window: the blocked attempt and
	// this one make 2, not more than 2.
	h.clock.Advance(time.Millisecond)
	if r := h.pay(ten.Secret, located(lat, lon)); r.Status != http.StatusCreated {
		t.Fatalf("after the window: %d %s", r.Status, r.Body)
	}
	// ... and a third within the window is blocked again.
	expectProblem(t, h.pay(ten.Secret, located(lat, lon)), http.StatusPaymentRequired, "risk_blocked")
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestRiskRuleImpossibleTravelReviews(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("travel", nil)
	rule := h.rule(ten.Secret, map[string]any{"kind": "impossible_travel", "action": "review", "speed_kmh": 900})
	berlin, paris := [2]float64{52.52, 13.405}, [2]float64{48.8566, 2.3522}
	km := geo.DistanceM(berlin[0], berlin[1], paris[0], paris[1]) / 1000
	edge := time.Duration(km / 900 * float64(time.Hour)) // the time at which the speed is exactly 900 km/h

	first := h.pay(ten.Secret, located(berlin[0], berlin[1], "customer", "cus_1"))
	if first.Status != http.StatusCreated || first.json(t)["risk"].(map[string]any)["review"] != false {
		t.Fatalf("first payment: %d %s", first.Status, first.Body)
	}
	h.clock.Advance(edge - time.Second) // faster than 900 km/h
	r := h.pay(ten.Secret, located(paris[0], paris[1], "customer", "cus_1"))
	if r.Status != http.StatusCreated {
		t.Fatalf("review payment: %d %s", r.Status, r.Body)
	}
	p := r.json(t)
	risk, _ := p["risk"].(map[string]any)
	if p["status"] != "succeeded" || risk["review"] != true || risk["rule"] != rule {
		t.Fatalf("payment under review: %v", p)
	}
	if !contains(h.eventTypes(ten.Secret), "payment.review_opened") {
		t.Fatal("no payment.review_opened event")
	}
	// Another customer at the other place is not the same traveller.
	if r := h.pay(ten.Secret, located(berlin[0], berlin[1], "customer", "cus_2")); r.json(t)["risk"].(map[string]any)["review"] != false {
		t.Fatalf("another customer sent to review: %s", r.Body)
	}
	// Back to Berlin slower than 900 km/h: no review.
	h.clock.Advance(edge + time.Second)
	r = h.pay(ten.Secret, located(berlin[0], berlin[1], "customer", "cus_1"))
	if r.Status != http.StatusCreated || r.json(t)["risk"].(map[string]any)["review"] != false {
		t.Fatalf("plausible trip sent to review: %d %s", r.Status, r.Body)
	}
	// A payment without a customer is not judged by the rule.
	if r := h.pay(ten.Secret, located(paris[0], paris[1])); r.json(t)["risk"].(map[string]any)["review"] != false {
		t.Fatalf("payment without customer sent to review: %s", r.Body)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestRiskRulesWithRedisDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{RedisURL: "redis://" + closedPort(t) + "/0"})
	open := h.createTenant("fail open", nil)
	closed := h.createTenant("fail closed", nil)
	h.rule(open.Secret, map[string]any{"kind": "velocity", "action": "block", "geohash_precision": 5, "max_payments": 1, "window_seconds": 60})
	ruleClosed := h.rule(closed.Secret, map[string]any{"kind": "velocity", "action": "block", "geohash_precision": 5, "max_payments": 1000, "window_seconds": 60, "fail_closed": true})
	for i := range 3 {
		if r := h.pay(open.Secret, located(52.52, 13.405)); r.Status != http.StatusCreated {
			t.Fatalf("fail-open payment %d: %d %s", i, r.Status, r.Body)
		}
	}
	if got := counterValue(t, h, "payments_risk_rules_failed_open_total"); got != 3 {
		t.Errorf("payments_risk_rules_failed_open_total = %v, want 3", got)
	}
	// Nearby search answers from the database without Redis.
	near := h.do("GET", "/v1/payments/nearby?lat=52.52&lon=13.405&radius_m=10", open.Secret, nil)
	if near.Status != http.StatusOK || len(near.json(t)["data"].([]any)) != 3 {
		t.Fatalf("nearby without Redis: %d %s", near.Status, near.Body)
	}
	m := expectProblem(t, h.pay(closed.Secret, located(52.52, 13.405)), http.StatusPaymentRequired, "risk_blocked")
	p := h.do("GET", "/v1/payments/"+m["payment"].(string), closed.Secret, nil).json(t)
	if p["risk"].(map[string]any)["rule"] != ruleClosed {
		t.Fatalf("fail-closed payment: %v", p)
	}
	// Payments without a location are not judged by the rules.
	if r := h.pay(closed.Secret, visa(500)); r.Status != http.StatusCreated {
		t.Fatalf("payment without location: %d %s", r.Status, r.Body)
	}
}

// counterValue reads a counter of the harness' registry.
func counterValue(t *testing.T, h *harness, name string) float64 {
	t.Helper()
	mfs, err := h.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

func TestRiskRuleValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("rules", nil)
	other := h.createTenant("rules other", nil)
	for _, tt := range []struct {
		body  map[string]any
		param string
	}{
		{map[string]any{"action": "block", "speed_kmh": 900}, "kind"},
		{map[string]any{"kind": "teleport", "action": "block"}, "kind"},
		{map[string]any{"kind": "impossible_travel", "action": "deny", "speed_kmh": 900}, "action"},
		{map[string]any{"kind": "impossible_travel", "speed_kmh": 900}, "action"},
		{map[string]any{"kind": "impossible_travel", "action": "block", "speed_kmh": 0}, "speed_kmh"},
		{map[string]any{"kind": "impossible_travel", "action": "block", "speed_kmh": 100_001}, "speed_kmh"},
		{map[string]any{"kind": "velocity", "action": "block", "geohash_precision": 3, "max_payments": 2, "window_seconds": 60}, "geohash_precision"},
		{map[string]any{"kind": "velocity", "action": "block", "geohash_precision": 8, "max_payments": 2, "window_seconds": 60}, "geohash_precision"},
		{map[string]any{"kind": "velocity", "action": "block", "geohash_precision": 6, "max_payments": 0, "window_seconds": 60}, "max_payments"},
		{map[string]any{"kind": "velocity", "action": "block", "geohash_precision": 6, "max_payments": 2, "window_seconds": 86_401}, "window_seconds"},
		{map[string]any{"kind": "velocity", "action": "block", "geohash_precision": 6, "max_payments": 2, "window_seconds": 60, "speed_kmh": 9}, "speed_kmh"},
		{map[string]any{"kind": "velocity", "action": "block", "geohash_precision": 6, "max_payments": 2, "window_seconds": 9_999_999_999}, "window_seconds"},
	} {
		r := h.do("POST", "/v1/risk_rules", ten.Secret, tt.body)
		if r.Status != http.StatusBadRequest || r.json(t)["param"] != tt.param {
			t.Errorf("%v: %d %s, want 400 with param %s", tt.body, r.Status, r.Body, tt.param)
		}
	}
	id := h.rule(ten.Secret, map[string]any{"kind": "impossible_travel", "action": "review", "speed_kmh": 900})
	// Another tenant sees nothing of it.
	expectProblem(t, h.do("GET", "/v1/risk_rules/"+id, other.Secret, nil), http.StatusNotFound, "resource_missing")
	expectProblem(t, h.do("POST", "/v1/risk_rules/"+id, other.Secret, map[string]any{"action": "block"}), http.StatusNotFound, "resource_missing")
	expectProblem(t, h.do("DELETE", "/v1/risk_rules/"+id, other.Secret, nil), http.StatusNotFound, "resource_missing")
	if l := h.do("GET", "/v1/risk_rules", other.Secret, nil).json(t); len(l["data"].([]any)) != 0 {
		t.Fatalf("other tenant lists %v", l)
	}
	// Update, then refuse a change of kind and an out-of-range value.
	u := h.do("POST", "/v1/risk_rules/"+id, ten.Secret, map[string]any{"action": "block", "fail_closed": true})
	if u.Status != http.StatusOK || u.json(t)["action"] != "block" || u.json(t)["fail_closed"] != true {
		t.Fatalf("update: %d %s", u.Status, u.Body)
	}
	if r := h.do("POST", "/v1/risk_rules/"+id, ten.Secret, map[string]any{"kind": "velocity"}); r.Status != http.StatusBadRequest || r.json(t)["param"] != "kind" {
		t.Fatalf("kind change: %d %s", r.Status, r.Body)
	}
	if r := h.do("POST", "/v1/risk_rules/"+id, ten.Secret, map[string]any{"speed_kmh": -1}); r.Status != http.StatusBadRequest || r.json(t)["param"] != "speed_kmh" {
		t.Fatalf("speed -1: %d %s", r.Status, r.Body)
	}
	if g := h.do("GET", "/v1/risk_rules/"+id, ten.Secret, nil).json(t); g["action"] != "block" || num(g["speed_kmh"]) != 900 {
		t.Fatalf("refused updates changed the rule: %v", g)
	}
	// At most 20 rules.
	for range 19 {
		h.rule(ten.Secret, map[string]any{"kind": "impossible_travel", "action": "review", "speed_kmh": 900})
	}
	expectProblem(t, h.do("POST", "/v1/risk_rules", ten.Secret, map[string]any{"kind": "impossible_travel", "action": "review", "speed_kmh": 900}), http.StatusBadRequest, "risk_rules_limit_reached")
	if l := h.do("GET", "/v1/risk_rules", ten.Secret, nil).json(t); len(l["data"].([]any)) != 20 {
		t.Fatalf("list has %d rules, want 20", len(l["data"].([]any)))
	}
	if d := h.do("DELETE", "/v1/risk_rules/"+id, ten.Secret, nil); d.Status != http.StatusOK || d.json(t)["deleted"] != true {
		t.Fatalf("delete: %d %s", d.Status, d.Body)
	}
	expectProblem(t, h.do("GET", "/v1/risk_rules/"+id, ten.Secret, nil), http.StatusNotFound, "resource_missing")
}

func TestNearbyHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("nearby", nil)
	other := h.createTenant("nearby other", nil)
	points := [][2]float64{{52.5200, 13.4050}, {52.5210, 13.4050}, {52.5300, 13.4050}, {48.8566, 2.3522}}
	for _, p := range points {
		if r := h.pay(ten.Secret, located(p[0], p[1])); r.Status != http.StatusCreated {
			t.Fatalf("pay: %d %s", r.Status, r.Body)
		}
		if r := h.pay(other.Secret, located(p[0], p[1])); r.Status != http.StatusCreated {
			t.Fatalf("pay: %d %s", r.Status, r.Body)
		}
	}
	q := url.Values{"lat": {"52.5200"}, "lon": {"13.4050"}, "radius_m": {"2000"}}
	r := h.do("GET", "/v1/payments/nearby?"+q.Encode(), ten.Secret, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("nearby: %d %s", r.Status, r.Body)
	}
	data := r.json(t)["data"].([]any)
	if len(data) != 3 {
		t.Fatalf("nearby answered %d payments, want 3: %s", len(data), r.Body)
	}
	mine := map[string]bool{}
	for _, p := range h.do("GET", "/v1/payments?limit=100", ten.Secret, nil).json(t)["data"].([]any) {
		mine[p.(map[string]any)["id"].(string)] = true
	}
	prev := -1.0
	for i, d := range data {
		p := d.(map[string]any)
		dist := p["distance_m"].(float64)
		want := geo.DistanceM(52.52, 13.405, points[i][0], points[i][1])
		if dist < prev || math.Abs(dist-want) > 0.01 || !mine[p["id"].(string)] {
			t.Fatalf("result %d: distance %v (want %v, previous %v), own %v", i, dist, want, prev, mine[p["id"].(string)])
		}
		prev = dist
	}
	// limit and status.
	q.Set("limit", "1")
	if d := h.do("GET", "/v1/payments/nearby?"+q.Encode(), ten.Secret, nil).json(t)["data"].([]any); len(d) != 1 {
		t.Fatalf("limit 1 answered %d", len(d))
	}
	q.Set("status", "failed")
	if d := h.do("GET", "/v1/payments/nearby?"+q.Encode(), ten.Secret, nil).json(t)["data"].([]any); len(d) != 0 {
		t.Fatalf("status failed answered %d", len(d))
	}

	now := time.Now().Unix()
	for _, tt := range []struct {
		query, param string
	}{
		{"lon=13.4&radius_m=100", "lat"},
		{"lat=52.5&radius_m=100", "lon"},
		{"lat=52.5&lon=13.4", "radius_m"},
		{"lat=90.01&lon=13.4&radius_m=100", "lat"},
		{"lat=-91&lon=13.4&radius_m=100", "lat"},
		{"lat=52.5&lon=180.5&radius_m=100", "lon"},
		{"lat=52.5&lon=13.4&radius_m=0", "radius_m"},
		{"lat=52.5&lon=13.4&radius_m=50001", "radius_m"},
		{"lat=52.5&lon=13.4&radius_m=100&limit=0", "limit"},
		{"lat=52.5&lon=13.4&radius_m=100&limit=101", "limit"},
		{"lat=52.5&lon=13.4&radius_m=100&status=paid", "status"},
		{fmt.Sprintf("lat=52.5&lon=13.4&radius_m=100&created[gte]=%d&created[lte]=%d", now-32*86400, now), "created[gte]"},
		{fmt.Sprintf("lat=52.5&lon=13.4&radius_m=100&created[gte]=%d", now-40*86400), "created[gte]"},
	} {
		r := h.do("GET", "/v1/payments/nearby?"+tt.query, ten.Secret, nil)
		if r.Status != http.StatusBadRequest || r.json(t)["param"] != tt.param {
			t.Errorf("%s: %d %s, want 400 with param %s", tt.query, r.Status, r.Body, tt.param)
		}
	}
}

func TestRegions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("regions", map[string]any{"region": "eu"})
	r := h.do("GET", "/v1/regions", ten.Secret, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("regions: %d %s", r.Status, r.Body)
	}
	got := map[string]string{}
	for _, d := range r.json(t)["data"].([]any) {
		reg := d.(map[string]any)
		var shards []string
		for _, s := range reg["shards"].([]any) {
			shards = append(shards, s.(string))
		}
		got[reg["id"].(string)] = strings.Join(shards, ",")
	}
	if len(got) != 2 || got["eu"] != "eu1" || got["local"] != "s0,s1" {
		t.Fatalf("regions %v, want eu: eu1 and local: s0,s1", got)
	}
	if a := h.do("GET", "/v1/account", ten.Secret, nil).json(t); a["region"] != "eu" {
		t.Fatalf("account region %v, want eu", a["region"])
	}
}
