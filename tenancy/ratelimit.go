package tenancy

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
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
	prefix   string
	log      *slog.Logger
	failures prometheus.Counter
	now      func() time.Time

	mu         sync.Mutex
	lastLogged time.Time
}

// NewRateLimiter returns a limiter over rdb; keys start with prefix.
func NewRateLimiter(rdb redis.UniversalClient, prefix string, reg prometheus.Registerer, log *slog.Logger) *RateLimiter {
	failures := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "payments_ratelimit_redis_errors_total",
		Help: "Rate-limit checks that could not reach Redis and failed open.",
	})
	if reg != nil {
		reg.MustRegister(failures)
	}
	return &RateLimiter{limiter: redis_rate.NewLimiter(rdb), prefix: prefix, log: log, failures: failures, now: time.Now}
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
