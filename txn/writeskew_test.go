package txn_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/txn"
)

// TestWriteSkewIsPrevented is the regression test for DESIGN.md rule 2: two
// doctors on call, each caller goes off call if it counts two on call. Both
// callers read before either writes, so SERIALIZABLE must abort one of them;
// the aborted one must be retried and then see one doctor on call. With a
// helper that swallows COMMIT's serialization failure (crdbpgx.ExecuteTx on
// PostgreSQL) a caller gets a nil error while its update was rolled back.
func TestWriteSkewIsPrevented(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	mustExec(t, pool, `CREATE TABLE doctors (name text PRIMARY KEY, on_call bool NOT NULL)`)
	mustExec(t, pool, `INSERT INTO doctors (name, on_call) VALUES ('alice', true), ('bob', true)`)
	reg := prometheus.NewRegistry()
	runner := newRunner(t, pool, txn.Options{Name: "skew", Metrics: txn.NewMetrics(reg)})

	const rounds = 200
	names := [2]string{"alice", "bob"}
	var (
		calls         atomic.Int64 // every call of fn, all attempts
		commitRetries atomic.Int64 // retries after an attempt whose fn returned nil: the COMMIT failed
		lostRounds    int          // rounds where a caller got nil but its write is gone
	)
	for round := range rounds {
		mustExec(t, pool, `UPDATE doctors SET on_call = true`)

		// bothRead makes the first attempts overlap: each reads the count,
		// then waits until the other has read too, before writing.
		var bothRead sync.WaitGroup
		bothRead.Add(2)
		var errs [2]error
		var wrote [2]bool // whether the last attempt's fn wrote its row
		var wg sync.WaitGroup
		for i, name := range names {
			wg.Go(func() {
				attempt := 0
				errs[i] = runner.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
					calls.Add(1)
					attempt++
					if attempt > 1 && wrote[i] {
						commitRetries.Add(1)
					}
					wrote[i] = false
					var onCall int
					err := tx.QueryRow(ctx, `SELECT count(*) FROM doctors WHERE on_call`).Scan(&onCall)
					if attempt == 1 {
						bothRead.Done()
						bothRead.Wait()
					}
					if err != nil {
						return err
					}
					if onCall < 2 {
						return nil
					}
					if _, err := tx.Exec(ctx, `UPDATE doctors SET on_call = false WHERE name = $1`, name); err != nil {
						return err
					}
					wrote[i] = true
					return nil
				})
			})
		}
		wg.Wait()

		onCall := map[string]bool{}
		rows, err := pool.Query(ctx, `SELECT name, on_call FROM doctors`)
		if err != nil {
			t.Fatalf("round %d: read doctors: %v", round, err)
		}
		for rows.Next() {
			var name string
			var on bool
			if err := rows.Scan(&name, &on); err != nil {
				t.Fatalf("round %d: scan doctors: %v", round, err)
			}
			onCall[name] = on
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("round %d: read doctors: %v", round, err)
		}

		if !onCall["alice"] && !onCall["bob"] {
			t.Errorf("round %d: both doctors are off call (write skew)", round)
		}
		off := 0
		lost := false
		for i, name := range names {
			if !onCall[name] {
				off++
			}
			if errs[i] != nil {
				t.Errorf("round %d: %s: Run: %v", round, name, errs[i])
				continue
			}
			if wrote[i] && onCall[name] {
				t.Errorf("round %d: %s got a nil error but its update was not kept", round, name)
				lost = true
			}
		}
		if lost {
			lostRounds++
		}
		if off != 1 {
			t.Errorf("round %d: %d doctors off call, want exactly 1", round, off)
		}
	}

	if lostRounds != 0 {
		t.Errorf("%d of %d rounds reported success for an update that was rolled back", lostRounds, rounds)
	}
	// Both first attempts read two doctors on call and write, so
	// SERIALIZABLE must fail at least one of them in every round: at
	// least one retry per round, three calls of fn per round. Without
	// retries this test would prove nothing.
	retries := metricSum(t, reg, "payments_txn_retries_total", map[string]string{"shard": "skew"})
	if retries < rounds {
		t.Errorf("payments_txn_retries_total = %v, want at least one retry per round (%d)", retries, rounds)
	}
	if got := calls.Load(); got < 3*rounds {
		t.Errorf("fn ran %d times, want at least %d (two callers and one retry per round)", got, 3*rounds)
	}
	if got := metricSum(t, reg, "payments_txn_total", map[string]string{"shard": "skew", "outcome": txn.OutcomeCommitted}); got != 2*rounds {
		t.Errorf("payments_txn_total{outcome=committed} = %v, want %d", got, 2*rounds)
	}
	t.Logf("%d rounds: fn ran %d times, %v retries, %d of them after a failed COMMIT",
		rounds, calls.Load(), retries, commitRetries.Load())
}
