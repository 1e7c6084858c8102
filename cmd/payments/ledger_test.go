package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/sharding"
)

func TestLoadLedgerConfig(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(envOf(goodEnv()), true)
	if err != nil {
		t.Fatal(err)
	}
	if c.LedgerCloseInterval != 10*time.Second || c.LedgerClose.Delay != ledger.CloseDelayDefault ||
		c.LedgerClose.SealPeriod != time.Hour || c.LedgerClose.CheckpointEntries != ledger.CheckpointEntriesDefault {
		t.Fatalf("ledger defaults %v %+v", c.LedgerCloseInterval, c.LedgerClose)
	}
	e := goodEnv()
	e["PAYMENTS_LEDGER_SEAL_PERIOD_SECONDS"] = "0"
	if c, err := loadConfig(envOf(e), true); err != nil || c.LedgerClose.SealPeriod != 0 {
		t.Fatalf("sealer off: %+v, %v", c.LedgerClose, err)
	}
	for key, bad := range map[string]string{
		"PAYMENTS_LEDGER_CLOSE_INTERVAL_SECONDS": "0",
		"PAYMENTS_LEDGER_CLOSE_DELAY_SECONDS":    "30",
		"PAYMENTS_LEDGER_CHECKPOINT_ENTRIES":     "1",
		"PAYMENTS_LEDGER_SEAL_PERIOD_SECONDS":    "7000",
	} {
		e := goodEnv()
		e[key] = bad
		_, err := loadConfig(envOf(e), true)
		if err == nil || !strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%s: %v", key, bad, err)
		}
	}
}

// TestLedgerCommands runs `ledger close` and `ledger verify` against a
// migrated database with old history: close backfills checkpoints and
// seals, verify passes, and after an edit by SQL it fails naming the row.
func TestLedgerCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := dbtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	tenant := ids.New()
	var txs []ledger.Transaction
	for i := range 5 {
		c, err := ledger.Charge(tenant, "usd", ids.New(), int64(1000+i), 30)
		if err != nil {
			t.Fatal(err)
		}
		c.CreatedAt = time.Now().Add(-time.Duration(5-i) * time.Hour)
		txs = append(txs, c)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.Post(ctx, tx, txs...); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	e := goodEnv()
	e["DATABASE_URL"] = dsn
	var out bytes.Buffer
	if err := run(ctx, []string{"ledger", "close"}, envOf(e), &out, &out); err != nil {
		t.Fatalf("ledger close: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "1 tenant(s), 1 checkpoint(s), 5 seal(s)") {
		t.Fatalf("ledger close: %s", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"ledger", "verify", "--tenant", ids.Format(ids.PrefixTenant, tenant)}, envOf(e), &out, &out); err != nil {
		t.Fatalf("ledger verify on a clean book: %v\n%s", err, out.String())
	}
	if _, err := pool.Exec(ctx, `UPDATE ledger_entries SET amount = amount - 5 WHERE transaction_id = $1 AND account = 'processor_fees'`, txs[2].ID); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = run(ctx, []string{"ledger", "verify"}, envOf(e), &out, &out)
	if !errors.Is(err, errLedgerDiffers) || !strings.Contains(out.String(), "unbalanced_transaction row "+ids.Format(ids.PrefixBalanceTx, txs[2].ID)) ||
		!strings.Contains(out.String(), "seal_mismatch period ") {
		t.Fatalf("ledger verify after an edit: %v\n%s", err, out.String())
	}
	for _, args := range [][]string{{"ledger"}, {"ledger", "audit"}, {"ledger", "verify", "--tenant", "pay_x"}, {"ledger", "close", "now"}} {
		if err := run(ctx, args, envOf(e), &out, &out); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

// TestLedgerCloserSealsInTheBackground runs the worker's closer loop on a
// shard with old history and waits for it to checkpoint and seal it; with
// the sealer off it only checkpoints.
func TestLedgerCloserSealsInTheBackground(t *testing.T) {
	t.Parallel()
	for _, seal := range []bool{true, false} {
		ctx := context.Background()
		dsn := dbtest.NewDatabase(t)
		m, err := sharding.Open(ctx, []sharding.Config{{Name: "s0", Region: "local", DSN: dsn}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		pool := m.All()[0].Pool
		c, err := ledger.Charge(ids.New(), "eur", ids.New(), 4200, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.CreatedAt = time.Now().Add(-2 * time.Hour)
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := ledger.Post(ctx, tx, c); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		var cfg config
		cfg.LedgerCloseInterval = 50 * time.Millisecond
		if seal {
			cfg.LedgerClose.SealPeriod = time.Hour
		}
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); runLedgerCloser(wctx, cfg, m, slog.New(slog.DiscardHandler)) }()
		var checkpoints, seals int
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if err := pool.QueryRow(ctx, `SELECT (SELECT count(DISTINCT as_of) FROM ledger_checkpoints), (SELECT count(*) FROM ledger_seals)`).Scan(&checkpoints, &seals); err != nil {
				t.Fatal(err)
			}
			if checkpoints > 0 && (seals > 0 || !seal) {
				break
			}
		}
		time.Sleep(200 * time.Millisecond) // a few more passes write nothing new
		stop()
		<-done
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(DISTINCT as_of) FROM ledger_checkpoints), (SELECT count(*) FROM ledger_seals)`).Scan(&checkpoints, &seals); err != nil {
			t.Fatal(err)
		}
		want := 0
		if seal {
			want = 1
		}
		if checkpoints != 1 || seals != want {
			t.Errorf("sealer on %v: %d checkpoints and %d seals, want 1 and %d", seal, checkpoints, seals, want)
		}
	}
}
