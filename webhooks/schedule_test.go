package webhooks

import (
	"testing"
	"time"
)

func TestDefaultScheduleSpansThreeDays(t *testing.T) {
	t.Parallel()
	s := DefaultSchedule()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		jitter func(int64) int64
	}{
		{"shortest waits", func(int64) int64 { return 0 }},
		{"longest waits", func(n int64) int64 { return n - 1 }},
	} {
		now, attempts := start, 1
		for {
			next, ok := s.Next(attempts, start, now, tc.jitter)
			if !ok {
				break
			}
			if !next.After(now) {
				t.Fatalf("%s: attempt %d not after the previous one", tc.name, attempts+1)
			}
			now = next
			attempts++
		}
		span := now.Sub(start)
		if attempts < 13 || attempts > AttemptsMaxDefault {
			t.Errorf("%s: %d attempts, want about %d", tc.name, attempts, AttemptsMaxDefault)
		}
		if span < 66*time.Hour || span > SpanDefault {
			t.Errorf("%s: the last attempt starts %v after the first, want about 3 days", tc.name, span)
		}
		t.Logf("%s: %d attempts over %v", tc.name, attempts, span)
	}
}

func TestScheduleJitterAndLimits(t *testing.T) {
	t.Parallel()
	s := Schedule{AttemptsMax: 5, DelayBase: time.Second, Span: time.Minute}
	start := time.Unix(1_700_000_000, 0)
	for n := 1; n < 5; n++ {
		ceiling := s.ceiling(n)
		if want := time.Second << (n - 1); ceiling != want {
			t.Fatalf("ceiling(%d) = %v, want %v", n, ceiling, want)
		}
		low, high := false, false
		for range 500 {
			next, ok := s.Next(n, start, start, nil)
			wait := next.Sub(start)
			if !ok || wait < ceiling/2 || wait > ceiling {
				t.Fatalf("Next(%d) waits %v (ok %v), want in [%v, %v]", n, wait, ok, ceiling/2, ceiling)
			}
			low = low || wait < ceiling*5/8
			high = high || wait > ceiling*7/8
		}
		if !low || !high {
			t.Errorf("Next(%d): the waits do not spread over the upper half (low %v, high %v)", n, low, high)
		}
	}
	if _, ok := s.Next(5, start, start, nil); ok {
		t.Error("attempt 5 of 5 failed and another is scheduled")
	}
	// Past the span, the delivery is given up; close to it, the last wait
	// is cut to end at the span.
	if _, ok := s.Next(1, start, start.Add(time.Minute), nil); ok {
		t.Error("a retry is scheduled after the span")
	}
	next, ok := s.Next(4, start, start.Add(59*time.Second), nil)
	if !ok || !next.Equal(start.Add(time.Minute)) {
		t.Errorf("near the span: next %v ok %v, want the span's end", next, ok)
	}
	for _, bad := range []Schedule{{}, {AttemptsMax: 1}, {AttemptsMax: 1, DelayBase: time.Hour, Span: time.Minute}, {AttemptsMax: 1000, DelayBase: 1, Span: 1}} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", bad)
		}
	}
}
