package stripe

import (
	"errors"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/payments-api/payments/processor"
)

// breaker wraps gobreaker with what gobreaker does not expose: when the
// open state ends, for Retry-After, and the state gauge.
type breaker struct {
	cb      *gobreaker.CircuitBreaker[struct{}]
	open    time.Duration
	account string
	// accountID labels the per-account state gauge.
	accountID string
	metrics   *Metrics

	mu       sync.Mutex
	openedAt time.Time
	state    gobreaker.State
	closed   bool
}

// errNotCounted marks a call whose failure says nothing about Stripe's
// health (our caller went away, Stripe rate-limited us or refused a
// reused idempotency key); gobreaker excludes it from its counts.
var errNotCounted = errors.New("not counted")

// errCounted marks a call that failed for reasons on Stripe's side.
var errCounted = errors.New("counted")

func newBreaker(name, account, accountID string, failures uint32, open time.Duration, m *Metrics) *breaker {
	b := &breaker{open: open, account: account, accountID: accountID, metrics: m, state: gobreaker.StateClosed}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     open,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		IsExcluded:  func(err error) bool { return errors.Is(err, errNotCounted) },
		// Runs under gobreaker's lock: touch only our own fields.
		OnStateChange: func(_ string, from, to gobreaker.State) {
			b.mu.Lock()
			defer b.mu.Unlock()
			if to == gobreaker.StateOpen {
				b.openedAt = time.Now()
			}
			b.state = to
			if !b.closed {
				m.breakerMoved(b, from, to)
			}
		},
	})
	m.breakerAdded(b, gobreaker.StateClosed)
	return b
}

// run calls f unless the breaker is open. f reports errCounted,
// errNotCounted or nil. It returns false when the call was refused.
func (b *breaker) run(f func() error) bool {
	_, err := b.cb.Execute(func() (struct{}, error) { return struct{}{}, f() })
	return !errors.Is(err, gobreaker.ErrOpenState) && !errors.Is(err, gobreaker.ErrTooManyRequests)
}

// ready returns nil unless the breaker is open.
func (b *breaker) ready() error {
	if b.cb.State() != gobreaker.StateOpen {
		return nil
	}
	return b.refusal()
}

// refusal is the error of a call the breaker refused.
func (b *breaker) refusal() error {
	b.mu.Lock()
	left := b.open - time.Since(b.openedAt)
	b.mu.Unlock()
	if left < time.Second {
		// Half-open with its probe in flight, or about to be.
		left = time.Second
	}
	return &OpenError{Remaining: left}
}

// close takes the breaker out of the state gauge.
func (b *breaker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		b.metrics.breakerRemoved(b, b.state)
	}
}

// OpenError is the error of a call refused because the account's circuit
// breaker is open. It wraps processor.ErrUnavailable and implements
// processor.RetryAfter.
type OpenError struct {
	// Remaining is how long the breaker stays open, at least a second.
	Remaining time.Duration
}

// Error implements error.
func (e *OpenError) Error() string {
	return "stripe circuit breaker is open: " + processor.ErrUnavailable.Error()
}

// Unwrap makes errors.Is(err, processor.ErrUnavailable) true.
func (e *OpenError) Unwrap() error { return processor.ErrUnavailable }

// RetryAfter implements processor.RetryAfter.
func (e *OpenError) RetryAfter() time.Duration { return e.Remaining }
