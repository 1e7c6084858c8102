package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/sharding"
)

const ledgerUsage = "usage: payments ledger verify [--tenant ten_...] | payments ledger close"

// ledgerCmd runs `payments ledger verify` (the auditor) and `payments
// ledger close` (checkpoint and seal everything old enough, once, to the
// end: the backfill of existing history).
func ledgerCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(ledgerUsage)
	}
	switch args[0] {
	case "verify":
		fs := flag.NewFlagSet("ledger verify", flag.ContinueOnError)
		fs.SetOutput(stderr)
		tenant := fs.String("tenant", "", "audit only this tenant (ten_...); every tenant with entries by default")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var id uuid.UUID
		if *tenant != "" {
			var ok bool
			if id, ok = ids.Parse(ids.PrefixTenant, *tenant); !ok {
				return fmt.Errorf("--tenant %q: want a tenant ID such as ten_06h17frpsdzff29kp8gyg5mc4w", *tenant)
			}
		}
		return ledgerVerify(ctx, id, getenv, stdout)
	case "close":
		if len(args) > 1 {
			return errors.New(ledgerUsage)
		}
		return ledgerClose(ctx, getenv, stdout)
	default:
		return errors.New(ledgerUsage)
	}
}

// openLedgerShards opens every shard and refuses pending migrations.
func openLedgerShards(ctx context.Context, getenv func(string) string) (config, *sharding.Map, error) {
	c, err := loadConfig(getenv, false)
	if err != nil {
		return c, nil, err
	}
	m, err := openShards(ctx, c, nil)
	if err != nil {
		return c, nil, err
	}
	if pending, err := pendingMigrations(ctx, m); err != nil {
		m.Close()
		return c, nil, err
	} else if len(pending) > 0 {
		m.Close()
		return c, nil, fmt.Errorf("%d migration(s) pending: run `payments migrate up`", len(pending))
	}
	return c, m, nil
}

// errLedgerDiffers is the failure of verify when it found differences.
var errLedgerDiffers = errors.New("the ledger differs from what it should be")

func ledgerVerify(ctx context.Context, tenant uuid.UUID, getenv func(string) string, stdout io.Writer) error {
	_, m, err := openLedgerShards(ctx, getenv)
	if err != nil {
		return err
	}
	defer m.Close()
	// Every shard, even for one tenant: the auditor reads the ledger, not
	// the directory, so it also finds a tenant's rows on a shard where
	// they should not be.
	shards := m.All()
	findings, tenants := 0, 0
	var errs []error
	for _, s := range shards {
		fs, n, err := ledger.VerifyShard(ctx, s.Pool, tenant)
		tenants += n
		for _, f := range fs {
			fmt.Fprintf(stdout, "shard %s: %s\n", s.Name, f)
		}
		findings += len(fs)
		if err != nil {
			errs = append(errs, fmt.Errorf("shard %s: %w", s.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if findings > 0 {
		return fmt.Errorf("%w: %d finding(s) in %d tenant(s) audited", errLedgerDiffers, findings, tenants)
	}
	fmt.Fprintf(stdout, "ledger verified: %d tenant(s), no differences\n", tenants)
	return nil
}

// ledgerCloseRoundsMax bounds the passes of `ledger close`; each one
// advances every tenant by up to ledger.CloseScanEntriesMax entries.
const ledgerCloseRoundsMax = 100_000

func ledgerClose(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	c, m, err := openLedgerShards(ctx, getenv)
	if err != nil {
		return err
	}
	defer m.Close()
	for _, s := range m.All() {
		var sum ledger.CloseReport
		for range ledgerCloseRoundsMax {
			r, err := ledger.Close(ctx, s.Pool, c.LedgerClose)
			if err != nil {
				return fmt.Errorf("shard %s: %w", s.Name, err)
			}
			sum.Tenants = max(sum.Tenants, r.Tenants)
			sum.Checkpoints += r.Checkpoints
			sum.Seals += r.Seals
			if r.Checkpoints == 0 && r.Seals == 0 {
				break
			}
		}
		fmt.Fprintf(stdout, "shard %s: %d tenant(s), %d checkpoint(s), %d seal(s) written\n", s.Name, sum.Tenants, sum.Checkpoints, sum.Seals)
	}
	return nil
}
