package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payments-api/payments/ids"
)

// Kinds of audit findings.
const (
	FindingUnbalanced   = "unbalanced_transaction" // a transaction's legs do not sum to zero or disagree with its header
	FindingBookSum      = "book_not_zero"          // a currency's entries do not sum to zero
	FindingBalance      = "balance_mismatch"       // the balance the API answers differs from the entries
	FindingCheckpoint   = "checkpoint_mismatch"    // a checkpoint's totals differ from the entries before it
	FindingSeal         = "seal_mismatch"          // a sealed period's entries no longer hash to its seal
	FindingSealEdited   = "seal_edited"            // a seal's fields no longer hash to its stored hash
	FindingSealChain    = "seal_chain_broken"      // a seal does not point at its predecessor's hash
	FindingUnsealedRows = "entry_outside_seals"    // an entry in a closed period that no seal covers
)

// Finding is one difference the auditor found, naming where it is.
type Finding struct {
	TenantID uuid.UUID
	Kind     string
	// Period is the sealed period concerned, "start/end" in RFC 3339, or
	// empty.
	Period string
	// Row names the row concerned: a balance transaction, a seal or a
	// checkpoint instant.
	Row    string
	Detail string
}

// String renders the finding on one line.
func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", ids.Format(ids.PrefixTenant, f.TenantID), f.Kind)
	if f.Period != "" {
		fmt.Fprintf(&b, " period %s", f.Period)
	}
	if f.Row != "" {
		fmt.Fprintf(&b, " row %s", f.Row)
	}
	fmt.Fprintf(&b, ": %s", f.Detail)
	return b.String()
}

func period(start, end time.Time) string {
	return start.UTC().Format(time.RFC3339) + "/" + end.UTC().Format(time.RFC3339)
}

// Verify audits one tenant's book in one consistent snapshot and answers
// every difference it finds (none for a clean book). It recomputes every
// running total from the entries and compares it with every checkpoint and
// with the balances the API answers (now and at each seal's end); checks
// that every transaction's legs sum to zero and agree with its header;
// recomputes every seal's root, count and totals from its period's entries;
// checks each seal's hash and its chain; and finds entries in closed periods
// that no seal covers. Its cost is one pass over the tenant's entries.
func Verify(ctx context.Context, pool *pgxpool.Pool, tenantID uuid.UUID) ([]Finding, error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("verify ledger: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	v := &verifier{tenantID: tenantID, q: tx}
	if err := v.transactions(ctx); err != nil {
		return nil, err
	}
	if err := v.stream(ctx); err != nil {
		return nil, err
	}
	return v.out, nil
}

type verifier struct {
	tenantID uuid.UUID
	q        pgx.Tx
	out      []Finding
}

func (v *verifier) add(kind, per, row, format string, args ...any) {
	v.out = append(v.out, Finding{TenantID: v.tenantID, Kind: kind, Period: per, Row: row, Detail: fmt.Sprintf(format, args...)})
}

// transactions names every transaction whose legs do not sum to zero, whose
// legs disagree with its header (net, fee, currency, booking time), or that
// has fewer than two legs.
func (v *verifier) transactions(ctx context.Context) error {
	const sql = `SELECT t.id, t.net, t.fee,
    coalesce(sum(e.amount), 0)::BIGINT,
    count(e.account),
    coalesce(sum(CASE WHEN e.account = 'merchant_balance' THEN e.amount ELSE 0 END), 0)::BIGINT,
    coalesce(sum(CASE WHEN e.account = 'processor_fees' THEN e.amount ELSE 0 END), 0)::BIGINT,
    coalesce(sum(CASE WHEN e.currency <> t.currency OR e.created_at <> t.created_at THEN 1 ELSE 0 END), 0)::BIGINT
FROM ledger_transactions AS t
LEFT JOIN ledger_entries AS e ON e.tenant_id = t.tenant_id AND e.transaction_id = t.id
WHERE t.tenant_id = $1
GROUP BY t.id, t.net, t.fee
HAVING coalesce(sum(e.amount), 0) <> 0 OR count(e.account) < 2
    OR coalesce(sum(CASE WHEN e.account = 'merchant_balance' THEN e.amount ELSE 0 END), 0) <> t.net
    OR coalesce(sum(CASE WHEN e.account = 'processor_fees' THEN e.amount ELSE 0 END), 0) <> t.fee
    OR coalesce(sum(CASE WHEN e.currency <> t.currency OR e.created_at <> t.created_at THEN 1 ELSE 0 END), 0) <> 0
ORDER BY t.id`
	rows, err := v.q.Query(ctx, sql, v.tenantID)
	if err != nil {
		return fmt.Errorf("verify ledger transactions: %w", err)
	}
	var (
		id                                  uuid.UUID
		net, fee, sum, legs, merchant, fees int64
		mismatched                          int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &net, &fee, &sum, &legs, &merchant, &fees, &mismatched}, func() error {
		var why []string
		if sum != 0 {
			why = append(why, fmt.Sprintf("legs sum to %d", sum))
		}
		if legs < 2 {
			why = append(why, fmt.Sprintf("%d legs", legs))
		}
		if merchant != net {
			why = append(why, fmt.Sprintf("merchant_balance leg %d, header net %d", merchant, net))
		}
		if fees != fee {
			why = append(why, fmt.Sprintf("processor_fees leg %d, header fee %d", fees, fee))
		}
		if mismatched != 0 {
			why = append(why, fmt.Sprintf("%d legs differ from the header's currency or booking time", mismatched))
		}
		v.add(FindingUnbalanced, "", ids.Format(ids.PrefixBalanceTx, id), "%s", strings.Join(why, "; "))
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify ledger transactions: %w", err)
	}
	return nil
}

// sealState is one seal being recomputed while the entries stream by.
type sealState struct {
	Seal
	leaves  [][32]byte
	totals  map[string]map[Account]int64
	entries int64
}

// stream walks the tenant's entries once in canonical order (booking time,
// transaction, account), checking checkpoints and seals as it passes them.
func (v *verifier) stream(ctx context.Context) error {
	checkpoints, err := v.checkpoints(ctx)
	if err != nil {
		return err
	}
	seals, err := v.seals(ctx)
	if err != nil {
		return err
	}
	running := map[pairKey]*total{}
	nextCP := 0
	checkCheckpointsBefore := func(t time.Time, all bool) {
		for nextCP < len(checkpoints) && (all || !checkpoints[nextCP].asOf.After(t)) {
			cp := checkpoints[nextCP]
			nextCP++
			row := "checkpoint " + cp.asOf.UTC().Format(time.RFC3339Nano)
			for k, want := range cp.totals {
				got := running[k]
				if got == nil {
					got = &total{}
				}
				if *got != *want {
					v.add(FindingCheckpoint, "", row, "%s %s: checkpoint says %d in %d entries, the entries before it sum to %d in %d",
						k.currency, k.account, want.amount, want.entries, got.amount, got.entries)
				}
			}
			for k, got := range running {
				if _, ok := cp.totals[k]; !ok {
					v.add(FindingCheckpoint, "", row, "%s %s: missing from the checkpoint, the entries before it sum to %d in %d",
						k.currency, k.account, got.amount, got.entries)
				}
			}
		}
	}

	var sealedBefore time.Time
	if len(seals) > 0 {
		sealedBefore = seals[len(seals)-1].PeriodEnd
	}
	nextSeal := 0
	var cur *sealState
	var pending []balanceCheck
	finishSeal := func() error {
		if cur == nil {
			return nil
		}
		v.checkSeal(cur)
		// The API's point-in-time answer at the period's last instant must
		// be what the entries up to then sum to; it is asked once the
		// stream, which holds the connection, is done.
		pending = append(pending, balanceCheck{cur.PeriodEnd.Add(-time.Microsecond), merchantTotals(running), "at the end of " + ids.Format(ids.PrefixSeal, cur.ID)})
		cur = nil
		return nil
	}
	// advanceSeals finishes the seals that end at or before t and opens the
	// one that contains t, if any.
	advanceSeals := func(t time.Time) error {
		for {
			if cur != nil && t.Before(cur.PeriodEnd) {
				return nil
			}
			if err := finishSeal(); err != nil {
				return err
			}
			if nextSeal >= len(seals) || t.Before(seals[nextSeal].PeriodStart) {
				return nil
			}
			cur = &sealState{Seal: seals[nextSeal], totals: map[string]map[Account]int64{}}
			nextSeal++
		}
	}

	const sql = `SELECT transaction_id, account, currency, amount, created_at FROM ledger_entries
WHERE tenant_id = $1 ORDER BY created_at, transaction_id, account`
	rows, err := v.q.Query(ctx, sql, v.tenantID)
	if err != nil {
		return fmt.Errorf("verify ledger entries: %w", err)
	}
	var (
		txID     uuid.UUID
		account  string
		currency string
		amount   int64
		at       time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&txID, &account, &currency, &amount, &at}, func() error {
		checkCheckpointsBefore(at, false)
		if err := advanceSeals(at); err != nil {
			return err
		}
		if cur != nil && !at.Before(cur.PeriodStart) {
			cur.leaves = append(cur.leaves, LeafHash(LeafData(v.tenantID, txID, Account(account), currency, amount, at)))
			m := cur.totals[currency]
			if m == nil {
				m = map[Account]int64{}
				cur.totals[currency] = m
			}
			m[Account(account)] += amount
			cur.entries++
		} else if at.Before(sealedBefore) {
			v.add(FindingUnsealedRows, "", ids.Format(ids.PrefixBalanceTx, txID),
				"%s entry of %d %s booked %s lies before the last seal's end but in no sealed period",
				account, amount, currency, at.UTC().Format(time.RFC3339Nano))
		}
		k := pairKey{currency, Account(account)}
		t := running[k]
		if t == nil {
			t = &total{}
			running[k] = t
		}
		var ok bool
		if t.amount, ok = addChecked(t.amount, amount); !ok {
			return fmt.Errorf("%w: running total of %s %s", ErrOverflow, currency, account)
		}
		t.entries++
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify ledger entries: %w", err)
	}
	checkCheckpointsBefore(time.Time{}, true)
	// Seals after the last entry have lost all their entries.
	if err := advanceSeals(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		return err
	}

	sums := map[string]int64{}
	for k, t := range running {
		sums[k.currency] += t.amount
	}
	for _, c := range slices.Sorted(maps.Keys(sums)) {
		if sums[c] != 0 {
			v.add(FindingBookSum, "", "", "%s entries sum to %d", c, sums[c])
		}
	}
	if err := v.checkSlots(ctx, running); err != nil {
		return err
	}
	pending = append(pending, balanceCheck{time.Time{}, merchantTotals(running), "now"})
	for _, c := range pending {
		if err := v.checkBalancesAt(ctx, c.at, c.want, c.when); err != nil {
			return err
		}
	}
	return nil
}

// balanceCheck is a balance the API must answer: want per currency at at
// (now, when zero).
type balanceCheck struct {
	at   time.Time
	want map[string]int64
	when string
}

// merchantTotals are the merchant_balance running totals per currency, with
// 0 for a currency that only has other accounts' entries.
func merchantTotals(running map[pairKey]*total) map[string]int64 {
	want := map[string]int64{}
	for k, t := range running {
		if _, ok := want[k.currency]; !ok {
			want[k.currency] = 0
		}
		if k.account == AccountMerchantBalance {
			want[k.currency] += t.amount
		}
	}
	return want
}

// checkBalancesAt compares the balances the API answers at `at` (now, when
// zero) with what the entries sum to.
func (v *verifier) checkBalancesAt(ctx context.Context, at time.Time, want map[string]int64, when string) error {
	var bs []Balance
	var err error
	if at.IsZero() {
		bs, err = Balances(ctx, v.q, v.tenantID)
	} else {
		bs, err = BalancesAt(ctx, v.q, v.tenantID, at)
	}
	if err != nil {
		return err
	}
	got := map[string]int64{}
	for _, b := range bs {
		got[b.Currency] = b.Available
	}
	for _, c := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[c]; !ok || g != want[c] {
			v.add(FindingBalance, "", "", "%s balance %s: the API answers %d, the entries sum to %d", c, when, g, want[c])
		}
	}
	for _, c := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[c]; !ok {
			v.add(FindingBalance, "", "", "%s balance %s: the API answers %d, no entries exist", c, when, got[c])
		}
	}
	return nil
}

// checkSeal compares a seal with what its period's entries recompute to.
func (v *verifier) checkSeal(s *sealState) {
	per := period(s.PeriodStart, s.PeriodEnd)
	row := ids.Format(ids.PrefixSeal, s.ID)
	if h, err := sealHash(s.Seal); err != nil || !bytes.Equal(h, s.Hash) {
		v.add(FindingSealEdited, per, row, "the seal's fields no longer hash to its stored hash")
	}
	if s.entries != s.EntryCount {
		v.add(FindingSeal, per, row, "the period has %d entries, the seal counted %d", s.entries, s.EntryCount)
	}
	for _, c := range slices.Sorted(maps.Keys(unionKeys(s.totals, s.Totals))) {
		for _, a := range accountsAll {
			if g, w := s.totals[c][a], s.Totals[c][a]; g != w {
				v.add(FindingSeal, per, row, "%s %s: the period's entries sum to %d, the seal says %d", c, a, g, w)
			}
		}
	}
	if len(s.leaves) == 0 {
		v.add(FindingSeal, per, row, "the period has no entries left")
		return
	}
	if root := MerkleRoot(s.leaves); !bytes.Equal(root[:], s.MerkleRoot) {
		v.add(FindingSeal, per, row, "the period's entries no longer hash to the seal's Merkle root")
	}
}

func unionKeys[V any](a, b map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

type checkpointTotals struct {
	asOf   time.Time
	totals map[pairKey]*total
}

func (v *verifier) checkpoints(ctx context.Context) ([]checkpointTotals, error) {
	rows, err := v.q.Query(ctx, `SELECT as_of, currency, account, amount_total, entries_total FROM ledger_checkpoints
WHERE tenant_id = $1 ORDER BY as_of`, v.tenantID)
	if err != nil {
		return nil, fmt.Errorf("verify ledger checkpoints: %w", err)
	}
	var (
		out       []checkpointTotals
		at        time.Time
		cur, acct string
		amount, n int64
	)
	_, err = pgx.ForEachRow(rows, []any{&at, &cur, &acct, &amount, &n}, func() error {
		if len(out) == 0 || !out[len(out)-1].asOf.Equal(at) {
			out = append(out, checkpointTotals{asOf: at, totals: map[pairKey]*total{}})
		}
		out[len(out)-1].totals[pairKey{cur, Account(acct)}] = &total{amount: amount, entries: n}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify ledger checkpoints: %w", err)
	}
	return out, nil
}

// seals reads the tenant's seals in period order and checks the chain.
func (v *verifier) seals(ctx context.Context) ([]Seal, error) {
	rows, err := v.q.Query(ctx, `SELECT `+sealColumns+` FROM ledger_seals WHERE tenant_id = $1 ORDER BY period_start`, v.tenantID)
	if err != nil {
		return nil, fmt.Errorf("verify ledger seals: %w", err)
	}
	seals, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Seal, error) { return scanSeal(r) })
	if err != nil {
		return nil, fmt.Errorf("verify ledger seals: %w", err)
	}
	prev := make([]byte, 32)
	var prevEnd time.Time
	for _, s := range seals {
		per := period(s.PeriodStart, s.PeriodEnd)
		if !bytes.Equal(s.PrevHash, prev) {
			v.add(FindingSealChain, per, ids.Format(ids.PrefixSeal, s.ID), "previous hash %x, the previous seal's hash is %x", s.PrevHash, prev)
		}
		if s.PeriodStart.Before(prevEnd) {
			v.add(FindingSealChain, per, ids.Format(ids.PrefixSeal, s.ID), "the period overlaps the previous seal's")
		}
		prev, prevEnd = s.Hash, s.PeriodEnd
	}
	return seals, nil
}

// VerifyShard audits every tenant with entries on one shard (or only
// tenantID, when it is not uuid.Nil).
func VerifyShard(ctx context.Context, pool *pgxpool.Pool, tenantID uuid.UUID) ([]Finding, int, error) {
	tenants := []uuid.UUID{tenantID}
	if tenantID == uuid.Nil {
		var err error
		if tenants, err = LedgerTenants(ctx, pool); err != nil {
			return nil, 0, err
		}
	}
	var out []Finding
	var errs []error
	for _, t := range tenants {
		fs, err := Verify(ctx, pool, t)
		if err != nil {
			errs = append(errs, fmt.Errorf("verify %s: %w", ids.Format(ids.PrefixTenant, t), err))
			continue
		}
		out = append(out, fs...)
	}
	return out, len(tenants), errors.Join(errs...)
}

// checkSlots compares the running totals that postings keep (the balance
// slots) with what the entries sum to, per currency and account.
func (v *verifier) checkSlots(ctx context.Context, running map[pairKey]*total) error {
	rows, err := v.q.Query(ctx, `SELECT currency, account, sum(amount)::BIGINT, sum(entries)::BIGINT
FROM ledger_balance_slots WHERE tenant_id = $1 GROUP BY currency, account`, v.tenantID)
	if err != nil {
		return fmt.Errorf("verify ledger balance slots: %w", err)
	}
	slots := map[pairKey]*total{}
	var (
		cur, acct string
		amount, n int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&cur, &acct, &amount, &n}, func() error {
		slots[pairKey{cur, Account(acct)}] = &total{amount: amount, entries: n}
		return nil
	}); err != nil {
		return fmt.Errorf("verify ledger balance slots: %w", err)
	}
	keys := unionPairs(slots, running)
	for _, k := range keys {
		got, want := slots[k], running[k]
		if got == nil {
			got = &total{}
		}
		if want == nil {
			want = &total{}
		}
		if *got != *want {
			v.add(FindingBalance, "", "", "%s %s running total: the balance slots hold %d in %d entries, the entries sum to %d in %d",
				k.currency, k.account, got.amount, got.entries, want.amount, want.entries)
		}
	}
	return nil
}

func unionPairs(a, b map[pairKey]*total) []pairKey {
	seen := map[pairKey]bool{}
	var out []pairKey
	for _, m := range []map[pairKey]*total{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	slices.SortFunc(out, func(x, y pairKey) int {
		if c := strings.Compare(x.currency, y.currency); c != 0 {
			return c
		}
		return strings.Compare(string(x.account), string(y.account))
	})
	return out
}
