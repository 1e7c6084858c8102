package tenancy

import (
	"context"
	"sync"
	"time"

	"github.com/payments-api/payments/errcode"
)

// Limits of unauthenticated traffic. Each client address has a bucket of
// failed authentications (a missing, malformed, unknown or revoked key, a
// wrong admin token). Once it is empty, that address's requests whose key
// is not already known good are refused with 429 before any database
// query. The buckets live in the process, not in Redis: refusing an
// attacker must cost less than serving them, and a per-replica limit is
// still a limit.
const (
	FailedAuthPerSecond = 5
	FailedAuthBurst     = 20
	// FailedAuthAddressesMax bounds the buckets kept; when it is reached
	// the full buckets are dropped first, then all of them.
	FailedAuthAddressesMax = 100_000
	// RefusalCacheEntriesMax bounds the negative cache of unknown keys, apart
	// from the cache of good keys, so a flood of random keys never evicts a
	// merchant's key.
	RefusalCacheEntriesMax = 100_000
)

// ErrAddressLimited answers a client address past its failed-auth budget.
var ErrAddressLimited = errcode.New(errcode.KindRateLimited, errcode.CodeRateLimited,
	"too many requests without a valid key from this address; retry after the Retry-After delay")

type bucket struct {
	tokens float64
	at     time.Time
}

// addressLimiter is a token bucket per client address.
type addressLimiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

func (l *addressLimiter) refill(addr string, now time.Time) *bucket {
	b := l.buckets[addr]
	if b == nil {
		return nil
	}
	b.tokens = min(FailedAuthBurst, b.tokens+now.Sub(b.at).Seconds()*FailedAuthPerSecond)
	b.at = now
	return b
}

// limited reports whether addr has no failure left, and how long until it
// has one.
func (l *addressLimiter) limited(addr string, now time.Time) (time.Duration, bool) {
	if addr == "" {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(addr, now)
	if b == nil || b.tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - b.tokens) / FailedAuthPerSecond * float64(time.Second)), true
}

// fail spends one failure of addr.
func (l *addressLimiter) fail(addr string, now time.Time) {
	if addr == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	b := l.refill(addr, now)
	if b == nil {
		if len(l.buckets) >= FailedAuthAddressesMax {
			for a := range l.buckets {
				if l.refill(a, now).tokens >= FailedAuthBurst {
					delete(l.buckets, a)
				}
			}
			if len(l.buckets) >= FailedAuthAddressesMax {
				l.buckets = map[string]*bucket{}
			}
		}
		b = &bucket{tokens: FailedAuthBurst, at: now}
		l.buckets[addr] = b
	}
	b.tokens = max(b.tokens-1, 0)
}

// AddressLimited reports whether addr has spent its failed-auth budget and
// how long until it may try again. Callers check it before a check that
// would cost something (a database query, a constant-time comparison
// worth brute-forcing).
func (s *Service) AddressLimited(addr string) (time.Duration, bool) {
	return s.addresses.limited(addr, s.now())
}

// NoteFailedAuth spends one failure of addr's budget.
func (s *Service) NoteFailedAuth(addr string) { s.addresses.fail(addr, s.now()) }

// AuthenticateFrom is Authenticate for a request from the client address
// addr: a key already known good is always served, and otherwise an
// address past its failed-auth budget is refused with ErrAddressLimited
// before any query. Errors: those of Authenticate, rate_limited.
func (s *Service) AuthenticateFrom(ctx context.Context, secret, addr string) (Principal, error) {
	if p, ok := s.cachedGood(secret); ok {
		return p, nil
	}
	if _, limited := s.AddressLimited(addr); limited {
		return Principal{}, ErrAddressLimited
	}
	p, err := s.Authenticate(ctx, secret)
	if errcode.Is(err, errcode.CodeUnauthenticated) {
		s.NoteFailedAuth(addr)
	}
	return p, err
}
