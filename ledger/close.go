package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payments-api/payments/errcode"
)

// Closing limits and defaults. See docs/ARCHITECTURE.md, "Ledger closing".
const (
	// CheckpointEntriesDefault is how many entries a checkpoint covers
	// beyond the previous one, at least: it bounds the tail a balance adds
	// up after its checkpoint, whatever the history's size.
	CheckpointEntriesDefault = 1000
	// CloseScanEntriesMax bounds the entries one Checkpoint call reads; a
	// tenant with more to catch up on is advanced over several calls.
	CloseScanEntriesMax = 100_000
	// CloseDelayDefault is how far behind the database's clock the book is
	// closed. A posting is stamped with its database transaction's start,
	// so a transaction that started before the closing and commits after
	// it would land in a closed period: the delay is four times the
	// batcher's transaction timeout (txn.BatchTimeoutDefault, 15 s), and
	// the posting statement refuses what lands before the closing anyway.
	CloseDelayDefault = 60 * time.Second
	// TenantsPerPassMax bounds the tenants one pass of the closer visits on
	// a shard.
	TenantsPerPassMax = 100_000
)

// pairKey names one running total: a currency and an account.
type pairKey struct {
	currency string
	account  Account
}

// total is a running sum of entries and their count.
type total struct {
	amount  int64
	entries int64
}

// Checkpoint is one running total of a tenant's book: the sum and the count
// of its entries in Currency and Account booked before AsOf.
type Checkpoint struct {
	AsOf     time.Time
	Currency string
	Account  Account
	Amount   int64
	Entries  int64
}

// CheckpointTenant advances the tenant's checkpoints over the entries booked
// before `before`, one checkpoint every `every` entries (0 means
// CheckpointEntriesDefault) at an instant where no entry is split, and one at
// `before` for the rest. It reads at most CloseScanEntriesMax entries and
// answers how many checkpoints it wrote; call it again while that is not 0
// to catch up a long history. It also moves the tenant's closing to the last
// checkpoint, so that no posting can land before it afterwards.
//
// It runs at REPEATABLE READ, not SERIALIZABLE: it reads the index range the
// payment path appends to, and SSI's page-grained predicate locks would turn
// that into false conflicts with every batch. It is safe because `before`
// lies at least CloseDelayDefault in the past, longer than any posting's
// transaction lives, and the posting statement refuses a posting older than
// the closing (ErrClosed) if one ever did.
func CheckpointTenant(ctx context.Context, pool *pgxpool.Pool, tenantID uuid.UUID, before time.Time, every int) (int, error) {
	if every <= 0 {
		every = CheckpointEntriesDefault
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return 0, fmt.Errorf("checkpoint ledger: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()

	from, totals, err := latestCheckpoint(ctx, tx, tenantID, time.Time{})
	if err != nil {
		return 0, err
	}
	if !from.IsZero() && !before.After(from) {
		return 0, nil
	}
	const q = `SELECT created_at, currency, account, amount FROM ledger_entries
WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3
ORDER BY created_at LIMIT $4`
	rows, err := tx.Query(ctx, q, tenantID, from, before, CloseScanEntriesMax)
	if err != nil {
		return 0, fmt.Errorf("checkpoint ledger: read entries: %w", err)
	}
	var (
		out     []Checkpoint
		read    int
		since   int
		prev    time.Time
		at      time.Time
		cur     string
		account string
		amount  int64
	)
	emit := func(asOf time.Time) {
		for k, t := range totals {
			out = append(out, Checkpoint{AsOf: asOf, Currency: k.currency, Account: k.account, Amount: t.amount, Entries: t.entries})
		}
		since = 0
	}
	_, err = pgx.ForEachRow(rows, []any{&at, &cur, &account, &amount}, func() error {
		read++
		if since >= every && !at.Equal(prev) {
			emit(at)
		}
		k := pairKey{cur, Account(account)}
		t := totals[k]
		if t == nil {
			t = &total{}
			totals[k] = t
		}
		var ok bool
		if t.amount, ok = addChecked(t.amount, amount); !ok {
			return fmt.Errorf("%w: running total of %s %s", ErrOverflow, cur, account)
		}
		t.entries++
		since++
		prev = at
		return nil
	})
	if err != nil {
		return 0, errcode.Internal(fmt.Errorf("checkpoint ledger: read entries: %w", err))
	}
	if read < CloseScanEntriesMax {
		if since > 0 {
			emit(before)
		}
	} else if len(out) == 0 {
		// Batches stamp all their entries with one instant, but a batch
		// holds at most PostTransactionsMax transactions of three legs.
		return 0, errcode.Internal(fmt.Errorf("checkpoint ledger: more than %d entries of tenant %s share the instant %s",
			CloseScanEntriesMax, tenantID, prev))
	}
	if len(out) == 0 {
		return 0, nil
	}
	if err := insertCheckpoints(ctx, tx, tenantID, out); err != nil {
		return 0, err
	}
	if err := moveClosing(ctx, tx, tenantID, out[len(out)-1].AsOf); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("checkpoint ledger: commit: %w", err)
	}
	n := 0
	for i := range out {
		if i == 0 || !out[i].AsOf.Equal(out[i-1].AsOf) {
			n++
		}
	}
	return n, nil
}

// latestCheckpoint answers the tenant's latest checkpoint at or before at
// (any, when at is zero) as running totals, or a zero time and empty totals
// when none exists.
func latestCheckpoint(ctx context.Context, q Querier, tenantID uuid.UUID, at time.Time) (time.Time, map[pairKey]*total, error) {
	const sql = `SELECT as_of, currency, account, amount_total, entries_total FROM ledger_checkpoints
WHERE tenant_id = $1 AND as_of = (SELECT max(as_of) FROM ledger_checkpoints WHERE tenant_id = $1 AND ($2::TIMESTAMPTZ IS NULL OR as_of <= $2))`
	var atArg any
	if !at.IsZero() {
		atArg = at
	}
	rows, err := q.Query(ctx, sql, tenantID, atArg)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("read ledger checkpoint: %w", err)
	}
	totals := map[pairKey]*total{}
	var (
		asOf, t   time.Time
		cur, acct string
		amount, n int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&t, &cur, &acct, &amount, &n}, func() error {
		asOf = t
		totals[pairKey{cur, Account(acct)}] = &total{amount: amount, entries: n}
		return nil
	}); err != nil {
		return time.Time{}, nil, fmt.Errorf("read ledger checkpoint: %w", err)
	}
	return asOf, totals, nil
}

func insertCheckpoints(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID, cs []Checkpoint) error {
	asOfs := make([]time.Time, len(cs))
	currencies := make([]string, len(cs))
	accounts := make([]string, len(cs))
	amounts := make([]int64, len(cs))
	entries := make([]int64, len(cs))
	for i, c := range cs {
		asOfs[i], currencies[i], accounts[i], amounts[i], entries[i] = c.AsOf, c.Currency, string(c.Account), c.Amount, c.Entries
	}
	const q = `INSERT INTO ledger_checkpoints (tenant_id, as_of, currency, account, amount_total, entries_total)
SELECT $1, u.as_of, u.currency, u.account, u.amount_total, u.entries_total
FROM unnest($2::TIMESTAMPTZ[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::BIGINT[])
    AS u (as_of, currency, account, amount_total, entries_total)`
	if _, err := tx.Exec(ctx, q, tenantID, asOfs, currencies, accounts, amounts, entries); err != nil {
		return fmt.Errorf("insert ledger checkpoints: %w", err)
	}
	return nil
}

// moveClosing moves the tenant's closing forward to before (never back).
func moveClosing(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID, before time.Time) error {
	const q = `INSERT INTO ledger_closings (tenant_id, closed_before) VALUES ($1, $2)
ON CONFLICT (tenant_id) DO UPDATE SET closed_before = greatest(ledger_closings.closed_before, excluded.closed_before)`
	if _, err := tx.Exec(ctx, q, tenantID, before); err != nil {
		return fmt.Errorf("move ledger closing: %w", err)
	}
	return nil
}

// LedgerTenants answers the tenants that have ledger entries, in ID order,
// at most TenantsPerPassMax of them. It skips from one tenant to the next in
// the entries' time index (a loose index scan), so it costs one index seek
// per tenant, not a scan of the entries.
func LedgerTenants(ctx context.Context, q Querier) ([]uuid.UUID, error) {
	const sql = `WITH RECURSIVE t (tenant_id, n) AS (
    (SELECT tenant_id, 1 FROM ledger_entries ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT e.tenant_id FROM ledger_entries AS e WHERE e.tenant_id > t.tenant_id ORDER BY e.tenant_id LIMIT 1), t.n + 1
    FROM t WHERE t.tenant_id IS NOT NULL AND t.n < $1
)
SELECT tenant_id FROM t WHERE tenant_id IS NOT NULL`
	rows, err := q.Query(ctx, sql, TenantsPerPassMax)
	if err != nil {
		return nil, fmt.Errorf("list ledger tenants: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("list ledger tenants: %w", err)
	}
	return out, nil
}

// tenantsToClose answers the tenants with entries booked before cutoff that
// their latest checkpoint (or, when sealing, their latest seal) does not
// cover yet: the only ones a pass of the closer has work for. It is one
// statement however many tenants a shard holds, so idle tenants cost one
// index seek or three each per pass, not transactions of their own.
func tenantsToClose(ctx context.Context, q Querier, cutoff time.Time, sealing bool) ([]uuid.UUID, error) {
	const sql = `WITH RECURSIVE t (tenant_id, n) AS (
    (SELECT tenant_id, 1 FROM ledger_entries ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT e.tenant_id FROM ledger_entries AS e WHERE e.tenant_id > t.tenant_id ORDER BY e.tenant_id LIMIT 1), t.n + 1
    FROM t WHERE t.tenant_id IS NOT NULL AND t.n < $1
), covered AS (
    SELECT t.tenant_id,
        coalesce((SELECT max(k.as_of) FROM ledger_checkpoints AS k WHERE k.tenant_id = t.tenant_id),
                 '0001-01-01 00:00:00+00'::TIMESTAMPTZ) AS checkpointed,
        coalesce((SELECT s.period_end FROM ledger_seals AS s WHERE s.tenant_id = t.tenant_id ORDER BY s.period_start DESC LIMIT 1),
                 '0001-01-01 00:00:00+00'::TIMESTAMPTZ) AS sealed
    FROM t WHERE t.tenant_id IS NOT NULL
)
SELECT c.tenant_id FROM covered AS c
WHERE EXISTS (
    SELECT 1 FROM ledger_entries AS e
    WHERE e.tenant_id = c.tenant_id AND e.created_at < $2
      AND e.created_at >= CASE WHEN $3::BOOL THEN least(c.checkpointed, c.sealed) ELSE c.checkpointed END
)
ORDER BY c.tenant_id`
	rows, err := q.Query(ctx, sql, TenantsPerPassMax, cutoff, sealing)
	if err != nil {
		return nil, fmt.Errorf("list ledger tenants to close: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("list ledger tenants to close: %w", err)
	}
	return out, nil
}

// dbNow answers the database's clock, which stamps every posting.
func dbNow(ctx context.Context, q Querier) (time.Time, error) {
	var now time.Time
	if err := q.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("read database clock: %w", err)
	}
	return now, nil
}

// CloseOptions configure the closer, which Close runs once and RunCloser
// runs periodically.
type CloseOptions struct {
	// Delay is how far behind the database's clock the book is closed;
	// 0 means CloseDelayDefault.
	Delay time.Duration
	// CheckpointEntries is the spacing of checkpoints; 0 means
	// CheckpointEntriesDefault.
	CheckpointEntries int
	// SealPeriod is the length of a sealed period; 0 turns sealing off.
	SealPeriod time.Duration
}

// CloseReport counts what one Close pass wrote.
type CloseReport struct {
	// Tenants counts the tenants that had work: entries not yet covered
	// by a checkpoint or a seal.
	Tenants     int
	Checkpoints int
	Seals       int
}

// Close runs one pass of the closer on one shard: for every tenant with
// entries not yet covered, it checkpoints everything older than the delay and, when sealing
// is on, seals every complete period older than the delay. A tenant with
// more history than one call reads is caught up by later passes; loop
// until the report counts nothing to finish a backfill.
func Close(ctx context.Context, pool *pgxpool.Pool, o CloseOptions) (CloseReport, error) {
	if o.Delay <= 0 {
		o.Delay = CloseDelayDefault
	}
	var r CloseReport
	now, err := dbNow(ctx, pool)
	if err != nil {
		return r, err
	}
	cutoff := now.Add(-o.Delay)
	tenants, err := tenantsToClose(ctx, pool, cutoff, o.SealPeriod > 0)
	if err != nil {
		return r, err
	}
	var errs []error
	for _, t := range tenants {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		r.Tenants++
		n, err := CheckpointTenant(ctx, pool, t, cutoff, o.CheckpointEntries)
		r.Checkpoints += n
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t, err))
			continue
		}
		if o.SealPeriod > 0 {
			n, err := SealTenant(ctx, pool, t, cutoff, o.SealPeriod)
			r.Seals += n
			if err != nil {
				errs = append(errs, fmt.Errorf("tenant %s: %w", t, err))
			}
		}
	}
	return r, errors.Join(errs...)
}
