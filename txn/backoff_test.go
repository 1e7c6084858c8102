package txn

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/payments-api/payments/dbtest"
)

func TestBackoffCeiling(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	for _, tc := range []struct {
		base, limit time.Duration
		n           int
		want        time.Duration
	}{
		{2 * ms, 250 * ms, 1, 2 * ms},
		{2 * ms, 250 * ms, 2, 4 * ms},
		{2 * ms, 250 * ms, 7, 128 * ms},
		{2 * ms, 250 * ms, 8, 250 * ms},
		{2 * ms, 250 * ms, 1000, 250 * ms},
		{ms, ms, 5, ms},
		{1, math.MaxInt64, 200, math.MaxInt64}, // doubling must not overflow
	} {
		if got := backoffCeiling(tc.base, tc.limit, tc.n); got != tc.want {
			t.Errorf("backoffCeiling(%v, %v, %d) = %v, want %v", tc.base, tc.limit, tc.n, got, tc.want)
		}
	}
}

// TestBackoffIsFullJitter checks that sleeps fall below the ceiling and spread
// over its whole range, so that contending callers do not retry in step.
func TestBackoffIsFullJitter(t *testing.T) {
	t.Parallel()
	opts, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{opts: opts}
	const samples = 2000
	for n := 1; n <= 12; n++ {
		ceiling := backoffCeiling(opts.BackoffBase, opts.BackoffMax, n)
		low, high := false, false
		for range samples {
			d := r.backoff(n)
			if d < 0 || d >= ceiling {
				t.Fatalf("backoff(%d) = %v, want in [0, %v)", n, d, ceiling)
			}
			low = low || d < ceiling/4
			high = high || d >= ceiling*3/4
		}
		if !low || !high {
			t.Errorf("backoff(%d) over %d samples: below a quarter %v, above three quarters %v; want both", n, samples, low, high)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	got, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if got.AttemptsMax != AttemptsMaxDefault || got.BackoffBase != BackoffBaseDefault ||
		got.BackoffMax != BackoffMaxDefault || got.Name != NameDefault {
		t.Errorf("withDefaults() = %+v, want the defaults", got)
	}
}

// TestRunStopsDuringBackoffWhenContextEnds gives Run an hour-long backoff and
// cancels the context while Run sleeps: Run must return the context's error
// instead of sleeping on or starting another attempt.
func TestRunStopsDuringBackoffWhenContextEnds(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	r, err := New(context.Background(), pool, Options{BackoffBase: time.Hour, BackoffMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sleeps := 0
	r.sleep = func(ctx context.Context, d time.Duration) error {
		sleeps++
		go cancel() // the caller gives up while Run is backing off
		return sleepContext(ctx, time.Hour)
	}

	calls := 0
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, func(context.Context, pgx.Tx) error {
			calls++
			return &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
		})
	}()
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(time.Minute): // a hang detector, far below the hour of backoff
		t.Fatal("Run kept sleeping after the context was canceled")
	}
	if !errors.Is(runErr, context.Canceled) {
		t.Errorf("Run: %v, want an error matching context.Canceled", runErr)
	}
	if IsRetryable(runErr) {
		t.Errorf("IsRetryable(%v) = true: a canceled Run must not invite a retry", runErr)
	}
	if calls != 1 || sleeps != 1 {
		t.Errorf("fn ran %d times and Run slept %d times, want 1 and 1", calls, sleeps)
	}
}

func TestSleepContextReturnsWhenContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sleepContext(ctx, time.Hour) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("sleepContext: %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute): // a hang detector, far below the hour of sleep
		t.Fatal("sleepContext kept sleeping after the context was canceled")
	}
}
