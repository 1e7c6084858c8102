package webhooks

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Schedule says when a failed delivery is tried again and when it is given
// up. The ceiling of the wait after failed attempt n is DelayBase·2^(n-1)
// (capped at Span); the wait is drawn uniformly from the upper half of the
// ceiling. That is "equal jitter" rather than full jitter (drawing from the
// whole [0, ceiling)): full jitter spreads retries just as well, but can
// collapse several of the few retries into minutes, so a receiver that is
// down for an afternoon would exhaust its attempts long before the promised
// three days. No attempt starts later than Span after the delivery's cycle
// began: the last wait is cut to end there.
type Schedule struct {
	// AttemptsMax bounds the attempts of one delivery, the first included.
	AttemptsMax int
	// DelayBase is the ceiling of the first wait.
	DelayBase time.Duration
	// Span bounds the whole schedule, and is also how long an endpoint may
	// fail every delivery before it is disabled.
	Span time.Duration
}

// Default schedule: 15 attempts; the ceilings from 30 s double up to about
// 68 h, so the 14 waits sum to 2.8 to 5.7 days and the span cuts them at 3
// days: retries go on for about 3 days whatever the jitter draws.
const (
	AttemptsMaxDefault = 15
	DelayBaseDefault   = 30 * time.Second
	SpanDefault        = 72 * time.Hour
	// AttemptsMaxLimit bounds AttemptsMax.
	AttemptsMaxLimit = 100
)

// DefaultSchedule answers the production schedule.
func DefaultSchedule() Schedule {
	return Schedule{AttemptsMax: AttemptsMaxDefault, DelayBase: DelayBaseDefault, Span: SpanDefault}
}

// Validate reports a schedule that cannot work.
func (s Schedule) Validate() error {
	switch {
	case s.AttemptsMax < 1 || s.AttemptsMax > AttemptsMaxLimit:
		return fmt.Errorf("webhook schedule: AttemptsMax %d: want 1 to %d", s.AttemptsMax, AttemptsMaxLimit)
	case s.DelayBase <= 0:
		return fmt.Errorf("webhook schedule: DelayBase %v: want a positive duration", s.DelayBase)
	case s.Span < s.DelayBase:
		return fmt.Errorf("webhook schedule: Span %v is shorter than DelayBase %v", s.Span, s.DelayBase)
	}
	return nil
}

// ceiling is the largest wait after failed attempt n (1-based).
func (s Schedule) ceiling(n int) time.Duration {
	c := s.DelayBase
	for i := 1; i < n && c < s.Span; i++ {
		c *= 2
	}
	return min(c, s.Span)
}

// Next answers when to start the attempt after failed attempt n (1-based),
// which ended at now, of a delivery whose cycle began at start; ok is false
// when the delivery is given up. jitter draws a uniform int64 in [0, n); nil
// means math/rand/v2.
func (s Schedule) Next(n int, start, now time.Time, jitter func(int64) int64) (next time.Time, ok bool) {
	deadline := start.Add(s.Span)
	if n >= s.AttemptsMax || !now.Before(deadline) {
		return time.Time{}, false
	}
	if jitter == nil {
		jitter = rand.Int64N
	}
	c := s.ceiling(n)
	half := c / 2
	wait := c - half + time.Duration(jitter(int64(half)+1))
	next = now.Add(wait)
	if next.After(deadline) {
		next = deadline
	}
	return next, true
}
