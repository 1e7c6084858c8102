package chaos

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/payments-api/payments/processor/stripe/stripetest"
)

// Fault kinds: every one is injected at least once per run.
const (
	FaultAPIKill       = "api_sigkill"
	FaultWorkerKill    = "worker_sigkill"
	FaultPostgresKill  = "postgres_sigkill"
	FaultRedisKill     = "redis_kill"
	FaultStripe500     = "stripe_500"
	FaultStripeTimeout = "stripe_timeout"
	FaultStripeReset   = "stripe_reset"
	FaultStripeSlow    = "stripe_slow"
	FaultProxyDrop     = "pg_proxy_drop"
	FaultProxyStall    = "pg_proxy_stall"
	FaultClockSkew     = "clock_skew"
)

// FaultKinds lists every kind, in the order of the table.
var FaultKinds = []string{
	FaultAPIKill, FaultWorkerKill, FaultPostgresKill, FaultRedisKill,
	FaultStripe500, FaultStripeTimeout, FaultStripeReset, FaultStripeSlow,
	FaultProxyDrop, FaultProxyStall, FaultClockSkew,
}

// Window is one injected fault: from Start until Healed, when the
// component is back (restarted and listening, or the network flowing).
type Window struct {
	Kind          string
	Detail        string
	Start, Healed time.Time
	// Recovery is from Healed to the end of the first acknowledged create
	// that started after it; -1 when none did.
	Recovery time.Duration
}

// Profile shapes the schedule of faults.
type Profile struct {
	// LengthMin and LengthMax bound how long a fault lasts.
	LengthMin, LengthMax time.Duration
	// GapMin and GapMax bound the healthy time between faults.
	GapMin, GapMax time.Duration
}

// schedule returns the kinds in the order they are injected: first every
// kind once, in a seeded order (the schedule), then kinds drawn at random.
func schedule(rnd *rand.Rand, n int) []string {
	out := append([]string(nil), FaultKinds...)
	rnd.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	for len(out) < n {
		out = append(out, FaultKinds[rnd.IntN(len(FaultKinds))])
	}
	return out
}

// inject applies one fault for length and heals it; it returns the window.
func (h *harness) inject(kind string, length time.Duration, rnd *rand.Rand) (Window, error) {
	w := Window{Kind: kind, Start: time.Now()}
	var err error
	switch kind {
	case FaultAPIKill:
		i := rnd.IntN(len(h.apis))
		w.Detail = fmt.Sprintf("api %d", i)
		h.apis[i].kill(syscall.SIGKILL)
		time.Sleep(length)
		err = h.startAPI(i, 0)
	case FaultWorkerKill:
		h.worker.kill(syscall.SIGKILL)
		time.Sleep(length)
		err = h.worker.start()
	case FaultPostgresKill:
		h.pg.kill(syscall.SIGKILL)
		time.Sleep(length)
		err = restartPostgres(h.pg, h.directDSN)
	case FaultRedisKill:
		h.redis.kill(syscall.SIGKILL)
		time.Sleep(length)
		err = startRedis(h.redis, h.redisPort)
	case FaultStripe500, FaultStripeTimeout, FaultStripeReset, FaultStripeSlow:
		f := map[string]stripetest.Fault{
			FaultStripe500: {Kind: stripetest.FaultStatus, Status: 500},
			// Longer than PAYMENTS_STRIPE_CALL_TIMEOUT_SECONDS: the call times out.
			FaultStripeTimeout: {Kind: stripetest.FaultSlow, Delay: stripeCallTimeout + time.Second},
			FaultStripeReset:   {Kind: stripetest.FaultReset},
			// Slower than usual, within the timeout.
			FaultStripeSlow: {Kind: stripetest.FaultSlow, Delay: stripeCallTimeout / 2},
		}[kind]
		h.stripe.Always(&f)
		time.Sleep(length)
		h.stripe.Always(nil)
	case FaultProxyDrop:
		for end := time.Now().Add(length); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
			h.proxy.Drop()
		}
	case FaultProxyStall:
		h.proxy.Stall()
		time.Sleep(length)
		h.proxy.Heal()
	case FaultClockSkew:
		i := rnd.IntN(len(h.apis))
		skew := time.Duration(10+rnd.IntN(50)) * time.Second
		if rnd.IntN(2) == 0 {
			skew = -skew
			// A clock behind the endpoints' age once made the fan-out
			// skip events for good; it now compares the database's
			// recorded_at times (docs/RELIABILITY.md), so the full range
			// runs.
		}
		w.Detail = fmt.Sprintf("api %d %+ds", i, int(skew/time.Second))
		// A graceful restart with the clock moved, and back.
		h.apis[i].kill(syscall.SIGTERM)
		if err = h.startAPI(i, skew); err == nil {
			time.Sleep(length)
			h.apis[i].kill(syscall.SIGTERM)
			err = h.startAPI(i, 0)
		}
	default:
		err = fmt.Errorf("unknown fault %q", kind)
	}
	w.Healed = time.Now()
	return w, err
}
