package risk

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/mmcloughlin/geohash"

	"github.com/payments-api/payments/geo"
)

// TravelStateTTL is how long a customer's last place is remembered for
// impossible_travel rules.
const TravelStateTTL = 24 * time.Hour

// TravelJitterM is the distance under which two places of a customer count
// as the same one: GPS fixes of one shop differ by tens of metres, which a
// second apart would be an "impossible" speed.
const TravelJitterM = 100

// Payment is what the rules look at: where, who, and when (the injected
// clock's time; Redis' own clock is not used for the rules).
type Payment struct {
	TenantID uuid.UUID
	Lat, Lon float64
	Customer string // empty: no customer, impossible_travel does not apply
	// Member identifies the attempt in the sliding windows: a retry with
	// the same Idempotency-Key counts once.
	Member string
	At     time.Time
}

// Check is the Redis side of the rules that apply to one payment: the keys
// and arguments of the Lua fragment (Script) the rate limiter runs.
type Check struct {
	Rules []Rule
	Keys  []string
	Args  []any
}

// Applicable returns the rules of rules that can judge p: velocity needs a
// location, impossible_travel a location and a customer.
func Applicable(rules []Rule, p Payment) []Rule {
	var out []Rule
	for _, r := range rules {
		if r.Kind == KindImpossibleTravel && p.Customer == "" {
			continue
		}
		out = append(out, r)
	}
	return out
}

// NewCheck builds the check of rules (all applicable to p) with keys under
// prefix.
func NewCheck(prefix string, rules []Rule, p Payment) Check {
	c := Check{Rules: rules, Args: []any{p.At.UnixMilli(), p.Member, len(rules)}}
	tag := "{" + p.TenantID.String() + "}"
	for _, r := range rules {
		switch r.Kind {
		case KindVelocity:
			cell := geohash.EncodeWithPrecision(min(p.Lat, geo.LatitudeMax-1e-9), min(p.Lon, geo.LongitudeMax-1e-9), uint(r.Precision))
			c.Keys = append(c.Keys, prefix+"risk:"+tag+":v:"+r.ID.String()+":"+cell)
			c.Args = append(c.Args, "v", r.MaxPayments, int64(r.WindowSeconds)*1000, 0)
		case KindImpossibleTravel:
			sum := sha256.Sum256([]byte(p.Customer))
			c.Keys = append(c.Keys, prefix+"risk:"+tag+":t:"+r.ID.String()+":"+hex.EncodeToString(sum[:12]))
			c.Args = append(c.Args, "t", r.SpeedKmh, TravelStateTTL.Milliseconds(), TravelJitterM)
		}
	}
	c.Args = append(c.Args, strconv.FormatFloat(p.Lat, 'f', -1, 64), strconv.FormatFloat(p.Lon, 'f', -1, 64))
	return c
}

// Script is the Lua fragment of the rules. It runs after the rate limit
// allowed the request, in the same script; KEYS and ARGV start at the
// offsets kbase and abase (the rate limit's own come first). It returns
// one 0/1 per rule: whether it matched.
//
// velocity: a sorted set per rule and cell of attempts scored by their
// time; those at or before now - window are dropped, this attempt added,
// and more than max_payments left means a match.
// impossible_travel: a hash per rule and customer with the last place and
// time; the distance over the time since is the implied speed.
const Script = `
local function risk_rules(kbase, abase)
  local now = tonumber(ARGV[abase])
  local member = ARGV[abase + 1]
  local n = tonumber(ARGV[abase + 2])
  local lat = tonumber(ARGV[abase + 3 + 4 * n])
  local lon = tonumber(ARGV[abase + 4 + 4 * n])
  local out = {}
  for i = 1, n do
    local key = KEYS[kbase + i - 1]
    local a = abase + 3 + 4 * (i - 1)
    local kind, limit, span, extra = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local hit = 0
    if kind == 'v' then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
      redis.call('ZADD', key, now, member)
      redis.call('PEXPIRE', key, span)
      if redis.call('ZCARD', key) > limit then hit = 1 end
    else
      local last = redis.call('HMGET', key, 'lat', 'lon', 't')
      if last[1] then
        local rad = math.pi / 180
        local lat0, lon0, t0 = tonumber(last[1]), tonumber(last[2]), tonumber(last[3])
        local dlat, dlon = (lat - lat0) * rad, (lon - lon0) * rad
        local h = math.sin(dlat / 2) ^ 2 + math.cos(lat0 * rad) * math.cos(lat * rad) * math.sin(dlon / 2) ^ 2
        local dist = 2 * 6372797.560856 * math.asin(math.sqrt(math.min(h, 1)))
        if dist > extra then
          local hours = (now - t0) / 3600000
          if hours <= 0 or dist / 1000 / hours > limit then hit = 1 end
        end
      end
      redis.call('HSET', key, 'lat', ARGV[abase + 3 + 4 * n], 'lon', ARGV[abase + 4 + 4 * n], 't', now)
      redis.call('PEXPIRE', key, span)
    end
    out[i] = hit
  end
  return out
end
`

// Verdict is the decision of a payment's rules.
type Verdict struct {
	Rule  uuid.UUID
	Block bool
}

// Decide turns the matches (one per rule of c, nil when Redis could not
// answer) into a verdict: a matching block rule wins over a review rule,
// then the oldest rule. Without Redis a rule with FailClosed matches and
// the others are let through, and counted in the second result. The
// verdict is nil when nothing matched.
func Decide(c Check, matched []bool) (*Verdict, int) {
	var review, block *Rule
	failedOpen := 0
	for i := range c.Rules {
		r := &c.Rules[i]
		hit := false
		if matched == nil {
			hit = r.FailClosed
			if !hit {
				failedOpen++
			}
		} else {
			hit = matched[i]
		}
		if !hit {
			continue
		}
		if r.Action == ActionBlock && block == nil {
			block = r
		}
		if r.Action == ActionReview && review == nil {
			review = r
		}
	}
	switch {
	case block != nil:
		return &Verdict{Rule: block.ID, Block: true}, failedOpen
	case review != nil:
		return &Verdict{Rule: review.ID}, failedOpen
	}
	return nil, failedOpen
}
