package txn_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/txn"
)

// fastRetries keeps retry tests quick; the backoff itself is tested in
// backoff_test.go.
var fastRetries = txn.Options{BackoffBase: time.Microsecond, BackoffMax: time.Microsecond}

func countRows(tb testing.TB, pool *pgxpool.Pool, table string) int {
	tb.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		tb.Fatalf("count %s: %v", table, err)
	}
	return n
}

func TestNewDetectsPostgreSQL(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	r := newRunner(t, pool, txn.Options{})
	if r.Engine() != txn.EnginePostgreSQL {
		t.Errorf("Engine() = %v, want %v", r.Engine(), txn.EnginePostgreSQL)
	}
	if r.Pool() != pool {
		t.Errorf("Pool() is not the pool given to New")
	}
}

func TestNewRejectsUnusableOptions(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	for _, opts := range []txn.Options{
		{AttemptsMax: -1},
		{BackoffBase: -time.Millisecond},
		{BackoffBase: time.Second, BackoffMax: time.Millisecond},
	} {
		if _, err := txn.New(context.Background(), pool, opts); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", opts)
		}
	}
	if _, err := txn.New(context.Background(), nil, txn.Options{}); err == nil {
		t.Errorf("New with a nil pool succeeded, want an error")
	}
}

func TestRunCommits(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	mustExec(t, pool, `CREATE TABLE entries (id int PRIMARY KEY)`)
	reg := prometheus.NewRegistry()
	r := newRunner(t, pool, txn.Options{Name: "s1", Metrics: txn.NewMetrics(reg)})

	var isolation string
	err := r.Run(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SHOW transaction_isolation`).Scan(&isolation); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO entries (id) VALUES (1)`)
		return err
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if isolation != "serializable" {
		t.Errorf("transaction_isolation = %q, want serializable", isolation)
	}
	if n := countRows(t, pool, "entries"); n != 1 {
		t.Errorf("%d rows after Run, want 1", n)
	}
	if got := metricSum(t, reg, "payments_txn_total", map[string]string{"shard": "s1", "outcome": txn.OutcomeCommitted}); got != 1 {
		t.Errorf("payments_txn_total{shard=s1,outcome=committed} = %v, want 1", got)
	}
	if got := metricSum(t, reg, "payments_txn_attempts", map[string]string{"shard": "s1"}); got != 1 {
		t.Errorf("payments_txn_attempts observations = %v, want 1", got)
	}
}

// domainError stands for an error type of a caller; Run must hand it back
// untouched.
type domainError struct{ code string }

func (e *domainError) Error() string { return "domain: " + e.code }

func TestRunReturnsNonRetryableErrorUnchanged(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	mustExec(t, pool, `CREATE TABLE entries (id int PRIMARY KEY)`)
	r := newRunner(t, pool, fastRetries)

	want := &domainError{code: "insufficient_funds"}
	calls := 0
	err := r.Run(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		calls++
		if _, err := tx.Exec(ctx, `INSERT INTO entries (id) VALUES (1)`); err != nil {
			return err
		}
		return want
	})
	if err != want { //nolint:errorlint // identity is the point: the error is returned unchanged
		t.Errorf("Run returned %v, want fn's error itself", err)
	}
	var de *domainError
	if !errors.As(err, &de) || de.code != "insufficient_funds" {
		t.Errorf("errors.As(%v, *domainError) failed", err)
	}
	if calls != 1 {
		t.Errorf("fn ran %d times, want 1", calls)
	}
	if n := countRows(t, pool, "entries"); n != 0 {
		t.Errorf("%d rows after fn failed, want 0: the transaction was not rolled back", n)
	}
}

func TestRunReturnsConstraintViolationWithoutRetry(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	mustExec(t, pool, `CREATE TABLE entries (id int PRIMARY KEY)`)
	mustExec(t, pool, `INSERT INTO entries (id) VALUES (1)`)
	r := newRunner(t, pool, fastRetries)

	calls := 0
	err := r.Run(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		calls++
		_, err := tx.Exec(ctx, `INSERT INTO entries (id) VALUES (1)`)
		return err
	})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Errorf("Run: %v, want unique_violation 23505", err)
	}
	if calls != 1 {
		t.Errorf("fn ran %d times, want 1", calls)
	}
}

// TestRunReportsRejectedCommit makes the COMMIT itself fail with a server
// answer that is not retryable: a deferred unique constraint is checked at
// COMMIT. Nothing committed, so the error is definite, not ambiguous.
func TestRunReportsRejectedCommit(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	mustExec(t, pool, `CREATE TABLE entries (id int, CONSTRAINT entries_id_key UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)`)
	r := newRunner(t, pool, fastRetries)

	calls := 0
	err := r.Run(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		calls++
		_, err := tx.Exec(ctx, `INSERT INTO entries (id) VALUES (1), (1)`)
		return err
	})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Errorf("Run: %v, want unique_violation 23505 from COMMIT", err)
	}
	if errors.Is(err, txn.ErrAmbiguousCommit) {
		t.Errorf("Run: %v: a COMMIT the server rejected is not ambiguous", err)
	}
	if calls != 1 {
		t.Errorf("fn ran %d times, want 1", calls)
	}
	if n := countRows(t, pool, "entries"); n != 0 {
		t.Errorf("%d rows, want 0", n)
	}
}

// TestRunReportsSwallowedStatementError: fn ignores a failed statement, which
// aborts the transaction on PostgreSQL; the COMMIT answers ROLLBACK and Run
// must say so rather than report success.
func TestRunReportsSwallowedStatementError(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	mustExec(t, pool, `CREATE TABLE entries (id int PRIMARY KEY)`)
	r := newRunner(t, pool, fastRetries)

	err := r.Run(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO entries (id) VALUES (1)`); err != nil {
			return err
		}
		_, _ = tx.Exec(ctx, `SELECT 1/0`) // ignored on purpose
		return nil
	})
	if !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Errorf("Run: %v, want pgx.ErrTxCommitRollback", err)
	}
	if errors.Is(err, txn.ErrAmbiguousCommit) {
		t.Errorf("Run: %v: the server answered ROLLBACK, the outcome is known", err)
	}
	if n := countRows(t, pool, "entries"); n != 0 {
		t.Errorf("%d rows, want 0", n)
	}
}

func TestRunRetriesRetryableErrorsFromFn(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	mustExec(t, pool, `CREATE TABLE entries (id int PRIMARY KEY)`)
	reg := prometheus.NewRegistry()
	opts := fastRetries
	opts.Metrics = txn.NewMetrics(reg)
	r := newRunner(t, pool, opts)

	failures := []error{
		&pgconn.PgError{Code: "40001", Message: "could not serialize access"},
		&pgconn.PgError{Code: "40P01", Message: "deadlock detected"},
	}
	calls := 0
	err := r.Run(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		calls++
		if _, err := tx.Exec(ctx, `INSERT INTO entries (id) VALUES (1)`); err != nil {
			return err // a previous attempt's insert was not rolled back
		}
		if calls <= len(failures) {
			return failures[calls-1]
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if calls != 3 {
		t.Errorf("fn ran %d times, want 3", calls)
	}
	if n := countRows(t, pool, "entries"); n != 1 {
		t.Errorf("%d rows, want exactly 1", n)
	}
	for reason, want := range map[string]float64{"serialization_failure": 1, "deadlock_detected": 1} {
		if got := metricSum(t, reg, "payments_txn_retries_total", map[string]string{"reason": reason}); got != want {
			t.Errorf("payments_txn_retries_total{reason=%s} = %v, want %v", reason, got, want)
		}
	}
}

// TestRunRetriesSerializationFailureAtCommit makes PostgreSQL report the
// serialization failure at COMMIT, after fn returned nil: the case that
// crdbpgx.ExecuteTx swallows on PostgreSQL. The late caller's first fn
// succeeds, the first caller commits, then the late caller's COMMIT fails
// with 40001 and Run must run fn again.
func TestRunRetriesSerializationFailureAtCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	mustExec(t, pool, `CREATE TABLE doctors (name text PRIMARY KEY, on_call bool NOT NULL)`)
	mustExec(t, pool, `INSERT INTO doctors (name, on_call) VALUES ('alice', true), ('bob', true)`)
	r := newRunner(t, pool, fastRetries)

	goOffCall := func(name string, beforeReturn func(attempt int)) (attempts int, wrote bool, err error) {
		err = r.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			wrote = false
			var onCall int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM doctors WHERE on_call`).Scan(&onCall); err != nil {
				return err
			}
			if onCall >= 2 {
				if _, err := tx.Exec(ctx, `UPDATE doctors SET on_call = false WHERE name = $1`, name); err != nil {
					return err
				}
				wrote = true
			}
			beforeReturn(attempts)
			return nil
		})
		return attempts, wrote, err
	}

	var (
		bothWrote    sync.WaitGroup
		aliceDone    = make(chan struct{})
		aliceErr     error
		aliceAttempt int
	)
	bothWrote.Add(2)
	go func() {
		defer close(aliceDone)
		aliceAttempt, _, aliceErr = goOffCall("alice", func(attempt int) {
			if attempt == 1 {
				bothWrote.Done()
				bothWrote.Wait()
			}
		})
	}()
	bobAttempts, bobWrote, bobErr := goOffCall("bob", func(attempt int) {
		if attempt == 1 {
			bothWrote.Done()
			bothWrote.Wait()
			<-aliceDone // commit only after alice committed
		}
	})
	<-aliceDone

	if aliceErr != nil || bobErr != nil {
		t.Fatalf("Run: alice %v, bob %v", aliceErr, bobErr)
	}
	if aliceAttempt != 1 {
		t.Errorf("alice ran %d attempts, want 1: she committed first", aliceAttempt)
	}
	if bobAttempts != 2 {
		t.Errorf("bob ran %d attempts, want 2: his first COMMIT must fail with 40001 and be retried", bobAttempts)
	}
	if bobWrote {
		t.Errorf("bob's retry went off call although only one doctor was on call")
	}
	var onCall int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM doctors WHERE on_call`).Scan(&onCall); err != nil {
		t.Fatalf("count on call: %v", err)
	}
	if onCall != 1 {
		t.Errorf("%d doctors on call, want 1", onCall)
	}
}

func TestRunExhaustsAttempts(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	reg := prometheus.NewRegistry()
	opts := fastRetries
	opts.AttemptsMax = 3
	opts.Metrics = txn.NewMetrics(reg)
	r := newRunner(t, pool, opts)

	var failures []*pgconn.PgError
	err := r.Run(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		failures = append(failures, &pgconn.PgError{Code: "40001", Message: "could not serialize access"})
		return failures[len(failures)-1]
	})
	if len(failures) != 3 {
		t.Fatalf("fn ran %d times, want AttemptsMax = 3", len(failures))
	}
	if !errors.Is(err, txn.ErrAttemptsExhausted) {
		t.Errorf("Run: %v, want an error matching ErrAttemptsExhausted", err)
	}
	if !errors.Is(err, failures[2]) {
		t.Errorf("Run: %v does not wrap the last attempt's error", err)
	}
	if errors.Is(err, failures[0]) {
		t.Errorf("Run: %v wraps the first attempt's error, want the last", err)
	}
	if !txn.IsRetryable(err) {
		t.Errorf("IsRetryable(%v) = false, want true: nothing committed, a caller further out may try later", err)
	}
	if got := metricSum(t, reg, "payments_txn_total", map[string]string{"outcome": txn.OutcomeExhausted}); got != 1 {
		t.Errorf("payments_txn_total{outcome=exhausted} = %v, want 1", got)
	}
	if got := metricSum(t, reg, "payments_txn_retries_total", nil); got != 2 {
		t.Errorf("payments_txn_retries_total = %v, want 2 (the third failure is not retried)", got)
	}
}

func TestRunStopsBeforeStartingWhenContextEnded(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	r := newRunner(t, pool, txn.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	calls := 0
	err := r.Run(ctx, func(context.Context, pgx.Tx) error {
		calls++
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
	if calls != 0 {
		t.Errorf("fn ran %d times, want 0", calls)
	}
}

// TestRunDoesNotCommitAfterContextEnded: fn succeeds but the caller gave up
// meanwhile. Run must not send COMMIT, so that the answer is a definite
// "not committed" rather than an ambiguous one.
func TestRunDoesNotCommitAfterContextEnded(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	mustExec(t, pool, `CREATE TABLE entries (id int PRIMARY KEY)`)
	r := newRunner(t, pool, txn.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	err := r.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO entries (id) VALUES (1)`); err != nil {
			return err
		}
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want an error matching context.Canceled", err)
	}
	if errors.Is(err, txn.ErrAmbiguousCommit) {
		t.Errorf("Run: %v: no COMMIT was sent, the outcome is known", err)
	}
	if n := countRows(t, pool, "entries"); n != 0 {
		t.Errorf("%d rows, want 0", n)
	}
}

func TestRunRollsBackWhenFnPanics(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	mustExec(t, pool, `CREATE TABLE entries (id int PRIMARY KEY)`)
	r := newRunner(t, pool, txn.Options{})

	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the panic of fn", p)
			}
		}()
		_ = r.Run(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO entries (id) VALUES (1)`); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	if n := countRows(t, pool, "entries"); n != 0 {
		t.Errorf("%d rows after fn panicked, want 0", n)
	}
}

func TestNewMetricsTwiceOnOneRegistryCountsTogether(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	reg := prometheus.NewRegistry()
	a := newRunner(t, pool, txn.Options{Name: "a", Metrics: txn.NewMetrics(reg)})
	b := newRunner(t, pool, txn.Options{Name: "b", Metrics: txn.NewMetrics(reg)})
	for _, r := range []*txn.Runner{a, b} {
		if err := r.Run(context.Background(), func(context.Context, pgx.Tx) error { return nil }); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	for _, shard := range []string{"a", "b"} {
		if got := metricSum(t, reg, "payments_txn_total", map[string]string{"shard": shard}); got != 1 {
			t.Errorf("payments_txn_total{shard=%s} = %v, want 1", shard, got)
		}
	}
}
