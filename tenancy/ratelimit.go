package tenancy

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/payments-api/payments/risk"
)

// RateLimitErrorLogInterval bounds how often an unreachable Redis is logged.
const RateLimitErrorLogInterval = 30 * time.Second

// Decision is the outcome of one rate-limit check.
type Decision struct {
	Allowed    bool
	Limit      int
	Remaining  int
	RetryAfter time.Duration // when not allowed: wait this long
	ResetAfter time.Duration // until the bucket is full again
	// FailedOpen reports that Redis could not be asked and the request
	// was let through.
	FailedOpen bool
}

// RateLimiter limits requests per tenant with GCRA in Redis. It fails open:
// when Redis is unreachable the request is allowed, the failure counted, and
// logged at most once per RateLimitErrorLogInterval, because payments must
// not stop when a cache is gone.
type RateLimiter struct {
	limiter  *redis_rate.Limiter
	rdb      redis.UniversalClient
	prefix   string
	log      *slog.Logger
	failures prometheus.Counter
	// riskFailures counts payments whose risk rules could not be
	// evaluated because Redis did not answer.
	riskFailures prometheus.Counter
	now          func() time.Time

	mu         sync.Mutex
	lastLogged time.Time
}

// NewRateLimiter returns a limiter over rdb; keys start with prefix.
func NewRateLimiter(rdb redis.UniversalClient, prefix string, reg prometheus.Registerer, log *slog.Logger) *RateLimiter {
	failures := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "payments_ratelimit_redis_errors_total",
		Help: "Rate-limit checks that could not reach Redis and failed open.",
	})
	riskFailures := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "payments_risk_redis_errors_total",
		Help: "Payments whose location risk rules could not reach Redis: each rule failed open, or closed where it says fail_closed.",
	})
	if reg != nil {
		reg.MustRegister(failures, riskFailures)
	}
	return &RateLimiter{limiter: redis_rate.NewLimiter(rdb), rdb: rdb, prefix: prefix, log: log, failures: failures, riskFailures: riskFailures, now: time.Now}
}

// Allow spends one request of the tenant's budget.
func (r *RateLimiter) Allow(ctx context.Context, p Principal) Decision {
	limit := redis_rate.Limit{Rate: p.RateLimitPerSecond, Burst: max(p.RateLimitBurst, 1), Period: time.Second}
	res, err := r.limiter.Allow(ctx, r.prefix+"rl:"+p.TenantID.String(), limit)
	if err != nil {
		r.failures.Inc()
		r.logFailure(err)
		return Decision{Allowed: true, Limit: limit.Burst, Remaining: limit.Burst, FailedOpen: true}
	}
	return Decision{
		Allowed:    res.Allowed > 0,
		Limit:      limit.Burst,
		Remaining:  res.Remaining,
		RetryAfter: res.RetryAfter,
		ResetAfter: res.ResetAfter,
	}
}

func (r *RateLimiter) logFailure(err error) {
	r.mu.Lock()
	now := r.now()
	due := now.Sub(r.lastLogged) >= RateLimitErrorLogInterval
	if due {
		r.lastLogged = now
	}
	r.mu.Unlock()
	if due && r.log != nil {
		r.log.Warn("rate limiter cannot reach redis; failing open", "error", err.Error())
	}
}

// paymentScript is the rate limit's GCRA, the same algorithm and key as
// redis_rate's (Copyright (c) 2017 Pavel Pravosud,
// https://github.com/rwz/redis-gcra), followed, when the request is
// allowed, by the location risk rules' counters (risk.Script): one script,
// one round trip. KEYS: the rate-limit key, then the rules' keys. ARGV:
// burst, rate, period, cost, then the rules' arguments.
var paymentScript = redis.NewScript(risk.Script + `
redis.replicate_commands()
local rate_limit_key = KEYS[1]
local burst = ARGV[1]
local rate = ARGV[2]
local period = ARGV[3]
local cost = tonumber(ARGV[4])
local emission_interval = period / rate
local increment = emission_interval * cost
local burst_offset = emission_interval * burst
local jan_1_2017 = 1483228800
local now = redis.call("TIME")
now = (now[1] - jan_1_2017) + (now[2] / 1000000)
local tat = redis.call("GET", rate_limit_key)
if not tat then
  tat = now
else
  tat = tonumber(tat)
end
tat = math.max(tat, now)
local new_tat = tat + increment
local allow_at = new_tat - burst_offset
local diff = now - allow_at
local remaining = diff / emission_interval
if remaining < 0 then
  return {0, 0, tostring(diff * -1), tostring(tat - now)}
end
local reset_after = new_tat - now
if reset_after > 0 then
  redis.call("SET", rate_limit_key, new_tat, "EX", math.ceil(reset_after))
end
local res = {cost, remaining, tostring(-1), tostring(reset_after)}
local hits = risk_rules(2, 5)
for i = 1, #hits do res[#res + 1] = hits[i] end
return res
`)

// redisRatePrefix is the prefix redis_rate puts before its keys; the
// payment script uses the same key, so both share one budget.
const redisRatePrefix = "rate:"

// AllowPayment spends one request of the tenant's budget and, if allowed,
// evaluates the location risk rules (all applicable to pay, see
// risk.Applicable) in the same script and round trip. It answers the rate
// limit's decision, the rules' verdict (nil: none matched) and how many
// rules failed open. Both fail open when Redis cannot be asked: the
// request is allowed, a rule with fail_closed matches and the others are
// let through; such payments are counted in
// payments_risk_redis_errors_total.
func (r *RateLimiter) AllowPayment(ctx context.Context, p Principal, rules []risk.Rule, pay risk.Payment) (Decision, *risk.Verdict, int) {
	c := risk.NewCheck(r.prefix, rules, pay)
	limit := redis_rate.Limit{Rate: p.RateLimitPerSecond, Burst: max(p.RateLimitBurst, 1), Period: time.Second}
	keys := append([]string{redisRatePrefix + r.prefix + "rl:" + p.TenantID.String()}, c.Keys...)
	args := append([]any{limit.Burst, limit.Rate, limit.Period.Seconds(), 1}, c.Args...)
	v, err := paymentScript.Run(ctx, r.rdb, keys, args...).Slice()
	d, matched, perr := parsePaymentResult(v, err, len(c.Rules))
	if perr != nil {
		r.failures.Inc()
		r.riskFailures.Inc()
		r.logFailure(perr)
		verdict, open := risk.Decide(c, nil)
		return Decision{Allowed: true, Limit: limit.Burst, Remaining: limit.Burst, FailedOpen: true}, verdict, open
	}
	d.Limit = limit.Burst
	if !d.Allowed {
		return d, nil, 0
	}
	verdict, _ := risk.Decide(c, matched)
	return d, verdict, 0
}

func parsePaymentResult(v []any, err error, rules int) (Decision, []bool, error) {
	if err != nil {
		return Decision{}, nil, err
	}
	if len(v) < 4 {
		return Decision{}, nil, fmt.Errorf("payment script answered %d values", len(v))
	}
	allowed, _ := v[0].(int64)
	remaining, _ := v[1].(int64)
	rs, _ := v[2].(string)
	ss, _ := v[3].(string)
	retry, err1 := strconv.ParseFloat(rs, 64)
	reset, err2 := strconv.ParseFloat(ss, 64)
	if err1 != nil || err2 != nil {
		return Decision{}, nil, fmt.Errorf("payment script answered %v", v)
	}
	d := Decision{Allowed: allowed > 0, Remaining: int(remaining), RetryAfter: seconds(retry), ResetAfter: seconds(reset)}
	if !d.Allowed {
		return d, nil, nil
	}
	if len(v) != 4+rules {
		return Decision{}, nil, fmt.Errorf("payment script answered %d matches for %d rules", len(v)-4, rules)
	}
	matched := make([]bool, rules)
	for i := range matched {
		n, _ := v[4+i].(int64)
		matched[i] = n == 1
	}
	return d, matched, nil
}

func seconds(f float64) time.Duration {
	if f == -1 {
		return -1
	}
	return time.Duration(f * float64(time.Second))
}
