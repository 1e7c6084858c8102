package txn_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/txn"
)

// row is a unit of the test batcher: one row to insert.
type row struct {
	id, amount int
}

// insertRows writes a batch with one multi-row statement, as the payment
// path does, so that one bad row fails the whole statement.
func insertRows(ctx context.Context, tx pgx.Tx, units []*row) error {
	ids := make([]int32, len(units))
	amounts := make([]int32, len(units))
	for i, u := range units {
		ids[i], amounts[i] = int32(u.id), int32(u.amount)
	}
	_, err := tx.Exec(ctx, `INSERT INTO rows (id, amount) SELECT * FROM unnest($1::INT[], $2::INT[])`, ids, amounts)
	return err
}

func newRowsDB(tb testing.TB) (string, *pgxpool.Pool) {
	tb.Helper()
	dsn := dbtest.NewDatabase(tb)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(pool.Close)
	mustExec(tb, pool, `CREATE TABLE rows (id INT PRIMARY KEY, amount INT NOT NULL CHECK (amount > 0))`)
	return dsn, pool
}

func storedRows(tb testing.TB, pool *pgxpool.Pool) map[int]bool {
	tb.Helper()
	rows, err := pool.Query(context.Background(), `SELECT id FROM rows`)
	if err != nil {
		tb.Fatalf("read rows: %v", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		tb.Fatalf("read rows: %v", err)
	}
	out := map[int]bool{}
	for _, id := range ids {
		out[int(id)] = true
	}
	return out
}

// TestBatcherGroupsAndIsolatesFailingUnits sends 200 concurrent units, of
// which every 37th breaks the CHECK constraint. Each bad unit gets its own
// error; every other unit commits exactly once, in shared transactions.
func TestBatcherGroupsAndIsolatesFailingUnits(t *testing.T) {
	t.Parallel()
	_, pool := newRowsDB(t)
	reg := prometheus.NewRegistry()
	m := txn.NewBatchMetrics(reg)
	b, err := txn.NewBatcher(newRunner(t, pool, txn.Options{Name: "rows"}),
		txn.BatchOptions{SizeMax: 32, DelayMax: 5 * time.Millisecond, InflightMax: 1, Metrics: m}, insertRows)
	if err != nil {
		t.Fatalf("NewBatcher: %v", err)
	}
	defer b.Close()

	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			amount := 10
			if i%37 == 0 {
				amount = -1
			}
			errs[i] = b.Do(context.Background(), &row{id: i, amount: amount})
		})
	}
	wg.Wait()

	stored := storedRows(t, pool)
	for i, err := range errs {
		bad := i%37 == 0
		switch {
		case bad && err == nil:
			t.Errorf("unit %d broke the CHECK and was answered success", i)
		case !bad && err != nil:
			t.Errorf("unit %d failed with its batch-mate's error: %v", i, err)
		case bad == stored[i]:
			t.Errorf("unit %d: stored = %v, want %v", i, stored[i], !bad)
		}
	}
	if len(stored) != n-6 {
		t.Errorf("%d rows stored, want %d", len(stored), n-6)
	}
	batches := metricSum(t, reg, "payments_txn_batch_units", map[string]string{"shard": "rows"})
	if batches >= n {
		t.Errorf("%v batch transactions for %d units: nothing was grouped", batches, n)
	}
	if got := metricSum(t, reg, "payments_txn_batch_splits_total", nil); got == 0 {
		t.Errorf("no batch was split, yet %d units failed", 6)
	}
}

// TestBatcherSplitsABatchThatKeepsConflicting: a batch whose every attempt
// fails with a serialization failure (raised by PostgreSQL itself, as the
// transactions of a contention storm are) is split, and its units commit in
// smaller transactions instead of all being answered attempts exhausted. A
// lone unit that keeps conflicting still gets ErrAttemptsExhausted.
func TestBatcherSplitsABatchThatKeepsConflicting(t *testing.T) {
	t.Parallel()
	_, pool := newRowsDB(t)
	reg := prometheus.NewRegistry()
	m := txn.NewBatchMetrics(reg)
	conflict := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'contended' USING ERRCODE = '40001'; END $$`)
		return err
	}
	// Batches of more than two units always conflict, and so does any
	// batch that holds unit 7.
	apply := func(ctx context.Context, tx pgx.Tx, units []*row) error {
		if len(units) > 2 || slices.ContainsFunc(units, func(u *row) bool { return u.id == 7 }) {
			return conflict(ctx, tx)
		}
		return insertRows(ctx, tx, units)
	}
	runner := newRunner(t, pool, txn.Options{Name: "rows", AttemptsMax: 3, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond})
	b, err := txn.NewBatcher(runner, txn.BatchOptions{SizeMax: 16, DelayMax: 50 * time.Millisecond, InflightMax: 1, Metrics: m}, apply)
	if err != nil {
		t.Fatalf("NewBatcher: %v", err)
	}
	defer b.Close()

	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = b.Do(context.Background(), &row{id: i, amount: 10}) })
	}
	wg.Wait()

	stored := storedRows(t, pool)
	for i, err := range errs {
		switch {
		case i == 7 && !errors.Is(err, txn.ErrAttemptsExhausted):
			t.Errorf("unit 7 always conflicts and was answered %v, want attempts exhausted", err)
		case i == 7 && stored[i]:
			t.Errorf("unit 7 was stored, yet never committed")
		case i != 7 && err != nil:
			t.Errorf("unit %d was answered %v: its batch was not split", i, err)
		case i != 7 && !stored[i]:
			t.Errorf("unit %d answered success but is not stored", i)
		}
	}
	if got := metricSum(t, reg, "payments_txn_batch_splits_total", map[string]string{"reason": "contention"}); got == 0 {
		t.Errorf("no split counted for contention")
	}
}

// TestBatcherAmbiguousCommitIsNeverSuccess cuts the connection after the
// COMMIT of a batch was sent: every unit of it must be answered with
// ErrAmbiguousCommit, even those whose rows did commit.
func TestBatcherAmbiguousCommitIsNeverSuccess(t *testing.T) {
	t.Parallel()
	for _, mode := range []cutMode{cutBeforeCommit, cutAfterCommitSent} {
		t.Run(map[cutMode]string{cutBeforeCommit: "commit lost", cutAfterCommitSent: "answer lost"}[mode], func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn, direct := newRowsDB(t)
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			proxy := newCommitCutter(t, u.Host)
			u.Host = proxy.ln.Addr().String()
			proxied, err := pgxpool.New(ctx, u.String())
			if err != nil {
				t.Fatalf("connect through proxy: %v", err)
			}
			t.Cleanup(proxied.Close)

			// The first batch (unit 0) is held open until the other units
			// are queued, so that they share the second batch, whose COMMIT
			// the proxy cuts.
			const n = 20
			gate := make(chan struct{})
			var once sync.Once
			apply := func(ctx context.Context, tx pgx.Tx, units []*row) error {
				once.Do(func() { <-gate })
				if len(units) > 1 {
					proxy.arm(mode)
				}
				return insertRows(ctx, tx, units)
			}
			b, err := txn.NewBatcher(newRunner(t, proxied, txn.Options{Name: "cut"}),
				txn.BatchOptions{SizeMax: 64, DelayMax: 50 * time.Millisecond, InflightMax: 1}, apply)
			if err != nil {
				t.Fatalf("NewBatcher: %v", err)
			}
			defer b.Close()

			errs := make([]error, n+1)
			var wg sync.WaitGroup
			wg.Go(func() { errs[0] = b.Do(ctx, &row{id: 0, amount: 1}) })
			time.Sleep(20 * time.Millisecond) // the first batch is running
			for i := 1; i <= n; i++ {
				wg.Go(func() { errs[i] = b.Do(ctx, &row{id: i, amount: 1}) })
			}
			time.Sleep(50 * time.Millisecond) // the rest are queued behind it
			close(gate)
			wg.Wait()

			if proxy.cuts.Load() != 1 {
				t.Fatalf("the proxy cut %d connections, want 1", proxy.cuts.Load())
			}
			stored := storedRows(t, direct)
			if errs[0] != nil || !stored[0] {
				t.Errorf("unit 0, alone in the first batch: %v, stored %v; want committed", errs[0], stored[0])
			}
			for i := 1; i <= n; i++ {
				if !errors.Is(errs[i], txn.ErrAmbiguousCommit) {
					t.Errorf("unit %d of the cut batch: %v, want ErrAmbiguousCommit", i, errs[i])
				}
				if want := mode == cutAfterCommitSent; stored[i] != want {
					t.Errorf("unit %d: stored = %v, want %v", i, stored[i], want)
				}
			}
		})
	}
}

// TestBatcherOptionsRejectWrongValues checks the bounds.
func TestBatcherOptionsRejectWrongValues(t *testing.T) {
	t.Parallel()
	_, pool := newRowsDB(t)
	r := newRunner(t, pool, txn.Options{})
	for _, o := range []txn.BatchOptions{{SizeMax: -1}, {SizeMax: 5000}, {DelayMax: -time.Millisecond}, {DelayMax: 2 * time.Second}, {InflightMax: 100}, {QueueMax: -3}} {
		if _, err := txn.NewBatcher(r, o, insertRows); err == nil {
			t.Errorf("NewBatcher(%+v) accepted a wrong value", o)
		}
	}
}
