package ledger

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/listing"
)

// TestMerkleRFC6962Vectors checks the tree hash against the reference
// vectors of RFC 6962's implementation (certificate-transparency), so that a
// merchant's own RFC 6962 code agrees with ours.
func TestMerkleRFC6962Vectors(t *testing.T) {
	t.Parallel()
	inputs := []string{"", "\x00", "\x10", "\x20\x21", "\x30\x31", "\x40\x41\x42\x43",
		"\x50\x51\x52\x53\x54\x55\x56\x57", "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"}
	var leaves [][32]byte
	for _, in := range inputs {
		leaves = append(leaves, LeafHash(in))
	}
	for _, c := range []struct {
		n    int
		root string
	}{
		{1, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"},
		{8, "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"},
	} {
		got := MerkleRoot(leaves[:c.n])
		if hex.EncodeToString(got[:]) != c.root {
			t.Errorf("root of %d leaves = %x, want %s", c.n, got, c.root)
		}
	}
}

// TestInclusionPaths checks every leaf's path against the root for trees of
// every size up to 70, and that a path does not prove another leaf.
func TestInclusionPaths(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 70; n++ {
		leaves := make([][32]byte, n)
		for i := range leaves {
			leaves[i] = LeafHash(strings.Repeat("x", i))
		}
		root := MerkleRoot(leaves)
		for m := range n {
			path := InclusionPath(m, leaves)
			if !VerifyInclusion(leaves[m], path, root) {
				t.Fatalf("n=%d: the path of leaf %d does not verify", n, m)
			}
			if n > 1 && VerifyInclusion(leaves[(m+1)%n], path, root) {
				t.Fatalf("n=%d: the path of leaf %d proves leaf %d", n, m, (m+1)%n)
			}
		}
	}
}

// sealedBook books charges and refunds of one tenant in three past hours
// (none in the hour between the second and the third), checkpoints and
// seals them, and answers the tenant, the hours' starts and the
// transactions.
func sealedBook(t *testing.T, pool *pgxpool.Pool) (uuid.UUID, []time.Time, []Transaction) {
	t.Helper()
	ctx := context.Background()
	tenant := ids.New()
	h0 := time.Now().Add(-6 * time.Hour).Truncate(time.Hour)
	hours := []time.Time{h0, h0.Add(time.Hour), h0.Add(3 * time.Hour)}
	var txs []Transaction
	for i, h := range hours {
		for j := range 5 {
			c := mustCharge(t, tenant, "usd", int64(1000+100*i+j), 30)
			c.CreatedAt = h.Add(time.Duration(j+1) * time.Minute)
			txs = append(txs, c)
			if j == 2 {
				r := mustRefund(t, tenant, "usd", c.SourceID, 400)
				r.CreatedAt = c.CreatedAt.Add(time.Second)
				txs = append(txs, r)
			}
		}
	}
	mustPost(t, pool, txs...)
	cutoff := time.Now().Add(-time.Minute)
	mustCheckpoint(t, pool, tenant, cutoff, 4)
	n, err := SealTenant(ctx, pool, tenant, cutoff, time.Hour)
	if err != nil || n != 3 {
		t.Fatalf("SealTenant = %d, %v; want 3 seals", n, err)
	}
	if n, err := SealTenant(ctx, pool, tenant, cutoff, time.Hour); err != nil || n != 0 {
		t.Fatalf("SealTenant again = %d, %v; want nothing left to seal", n, err)
	}
	return tenant, hours, txs
}

func mustVerify(t *testing.T, pool *pgxpool.Pool, tenant uuid.UUID) []Finding {
	t.Helper()
	fs, err := Verify(context.Background(), pool, tenant)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return fs
}

// findingOf answers the first finding of kind, or fails.
func findingOf(t *testing.T, fs []Finding, kind string) Finding {
	t.Helper()
	for _, f := range fs {
		if f.Kind == kind {
			return f
		}
	}
	t.Fatalf("no %s finding among %v", kind, fs)
	return Finding{}
}

func hourPeriod(h time.Time) string { return period(h, h.Add(time.Hour)) }

func TestSealsChainAndVerifyClean(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	tenant, hours, _ := sealedBook(t, pool)
	if fs := mustVerify(t, pool, tenant); len(fs) != 0 {
		t.Fatalf("Verify on a clean book: %v", fs)
	}
	seals, more, err := ListSeals(ctx, pool, tenant, listing.Page{Limit: 2})
	if err != nil || len(seals) != 2 || !more {
		t.Fatalf("ListSeals(limit 2) = %d seals, more %v, %v", len(seals), more, err)
	}
	older, more, err := ListSeals(ctx, pool, tenant, listing.Page{Limit: 2, StartingAfter: &seals[1].ID})
	if err != nil || len(older) != 1 || more {
		t.Fatalf("ListSeals(next page) = %d seals, more %v, %v", len(older), more, err)
	}
	all := append(slices.Clone(seals), older...)
	slices.Reverse(all)
	for i, s := range all {
		if !s.PeriodStart.Equal(hours[i]) || s.EntryCount != 17 { // 5 charges of 3 legs, 1 refund of 2
			t.Errorf("seal %d: period %s, %d entries; want %s, 17", i, s.PeriodStart, s.EntryCount, hours[i])
		}
		if s.Totals["usd"][AccountMerchantBalance] != int64(5*(1000+100*i)+10-5*30-400) {
			t.Errorf("seal %d: totals %v", i, s.Totals)
		}
		if i > 0 && hex.EncodeToString(s.PrevHash) != hex.EncodeToString(all[i-1].Hash) {
			t.Errorf("seal %d does not chain to seal %d", i, i-1)
		}
	}
	if _, _, err := ListSeals(ctx, pool, tenant, listing.Page{Limit: 101}); !errcode.Is(err, errcode.CodeParameterInvalid) {
		t.Errorf("ListSeals(limit 101) = %v, want invalid", err)
	}
}

func TestPostingNeverLandsInClosedPeriod(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	tenant, hours, txs := sealedBook(t, pool)

	// Into a sealed hour, and into the closed gap after the checkpoint:
	// Post refuses without writing, QueuePost fails its batch.
	for _, at := range []time.Time{hours[1].Add(30 * time.Minute), time.Now().Add(-2 * time.Minute)} {
		late := mustCharge(t, tenant, "usd", 500, 0)
		late.CreatedAt = at
		err := post(t, pool, late)
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Post at %s = %v, want ErrClosed", at, err)
		}
		b := &pgx.Batch{}
		if err := QueuePost(b, late); err != nil {
			t.Fatal(err)
		}
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		err = tx.SendBatch(ctx, b).Close()
		_ = tx.Rollback(ctx)
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("QueuePost at %s = %v, want ErrClosed", at, err)
		}
	}
	// A posting booked now (the database's clock) still lands.
	mustPost(t, pool, mustCharge(t, tenant, "usd", 500, 0))
	if got := mustBalances(t, pool, tenant); len(got) != 1 {
		t.Fatalf("balances %v", got)
	}
	if fs := mustVerify(t, pool, tenant); len(fs) != 0 {
		t.Fatalf("Verify after refused postings: %v", fs)
	}
	_ = txs
}

func TestVerifyDetectsEditedAmount(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	tenant, hours, txs := sealedBook(t, pool)
	victim := txs[7] // a charge of the second hour
	if _, err := pool.Exec(context.Background(), `UPDATE ledger_entries SET amount = amount + 1
WHERE tenant_id = $1 AND transaction_id = $2 AND account = 'merchant_balance'`, tenant, victim.ID); err != nil {
		t.Fatal(err)
	}
	fs := mustVerify(t, pool, tenant)
	if f := findingOf(t, fs, FindingUnbalanced); f.Row != ids.Format(ids.PrefixBalanceTx, victim.ID) {
		t.Errorf("unbalanced finding names %q, want %s", f.Row, ids.Format(ids.PrefixBalanceTx, victim.ID))
	}
	if f := findingOf(t, fs, FindingSeal); f.Period != hourPeriod(hours[1]) {
		t.Errorf("seal finding names period %q, want %s", f.Period, hourPeriod(hours[1]))
	}
	findingOf(t, fs, FindingCheckpoint)
	findingOf(t, fs, FindingBookSum)
	findingOf(t, fs, FindingBalance) // the running totals postings keep no longer match
	// The period no longer matches its seal, so no proof is given for any
	// of its transactions; the edited one is refused as unbalanced first.
	if _, err := ProveTransaction(context.Background(), pool, tenant, victim.ID); !errors.Is(err, ErrUnbalanced) {
		t.Errorf("ProveTransaction of the edited transaction = %v, want ErrUnbalanced", err)
	}
	if _, err := ProveTransaction(context.Background(), pool, tenant, txs[6].ID); !errors.Is(err, ErrSealMismatch) {
		t.Errorf("ProveTransaction of its neighbour = %v, want ErrSealMismatch", err)
	}
}

func TestVerifyDetectsDeletedEntry(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	tenant, hours, txs := sealedBook(t, pool)
	victim := txs[13] // a charge of the third hour
	if _, err := pool.Exec(context.Background(), `DELETE FROM ledger_entries
WHERE tenant_id = $1 AND transaction_id = $2 AND account = 'processor_fees'`, tenant, victim.ID); err != nil {
		t.Fatal(err)
	}
	fs := mustVerify(t, pool, tenant)
	if f := findingOf(t, fs, FindingUnbalanced); f.Row != ids.Format(ids.PrefixBalanceTx, victim.ID) {
		t.Errorf("unbalanced finding names %q", f.Row)
	}
	f := findingOf(t, fs, FindingSeal)
	if f.Period != hourPeriod(hours[2]) || !strings.Contains(f.Detail, "16 entries, the seal counted 17") {
		t.Errorf("seal finding %v, want period %s with 16 of 17 entries", f, hourPeriod(hours[2]))
	}
}

func TestVerifyDetectsInsertedEntry(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	tenant, hours, _ := sealedBook(t, pool)
	// Balanced rows written straight into the tables, bypassing the
	// closing guard: one transaction into a sealed hour, one into the
	// unsealed, empty hour between two seals.
	insert := func(at time.Time) uuid.UUID {
		c := mustCharge(t, tenant, "usd", 777, 0)
		if _, err := pool.Exec(ctx, `INSERT INTO ledger_transactions (tenant_id, id, currency, type, source_type, source_id, amount, fee, net, created_at)
VALUES ($1, $2, 'usd', 'charge', 'payment', $3, 777, 0, 777, $4)`, tenant, c.ID, c.SourceID, at); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO ledger_entries (tenant_id, transaction_id, account, currency, amount, created_at)
VALUES ($1, $2, 'processor_clearing', 'usd', -777, $3), ($1, $2, 'merchant_balance', 'usd', 777, $3)`, tenant, c.ID, at); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	insert(hours[0].Add(30 * time.Minute))
	gap := insert(hours[1].Add(90 * time.Minute))
	fs := mustVerify(t, pool, tenant)
	f := findingOf(t, fs, FindingSeal)
	if f.Period != hourPeriod(hours[0]) || !strings.Contains(f.Detail, "19 entries, the seal counted 17") {
		t.Errorf("seal finding %v, want period %s with 19 of 17 entries", f, hourPeriod(hours[0]))
	}
	if f := findingOf(t, fs, FindingUnsealedRows); f.Row != ids.Format(ids.PrefixBalanceTx, gap) {
		t.Errorf("unsealed finding names %q, want %s", f.Row, ids.Format(ids.PrefixBalanceTx, gap))
	}
	findingOf(t, fs, FindingCheckpoint)
}

func TestVerifyDetectsEditedSeal(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	tenant, hours, _ := sealedBook(t, pool)
	var sealID uuid.UUID
	if err := pool.QueryRow(ctx, `UPDATE ledger_seals SET totals = '{"usd": {"merchant_balance": 1, "processor_clearing": -1}}'
WHERE tenant_id = $1 AND period_start = $2 RETURNING id`, tenant, hours[1]).Scan(&sealID); err != nil {
		t.Fatal(err)
	}
	fs := mustVerify(t, pool, tenant)
	f := findingOf(t, fs, FindingSealEdited)
	if f.Period != hourPeriod(hours[1]) || f.Row != ids.Format(ids.PrefixSeal, sealID) {
		t.Errorf("seal finding %v, want period %s, row %s", f, hourPeriod(hours[1]), ids.Format(ids.PrefixSeal, sealID))
	}
	// Rewriting a seal whole (with a hash that matches its fields) breaks
	// the chain to its successor instead.
	if _, err := pool.Exec(ctx, `UPDATE ledger_seals SET hash = sha256(hash) WHERE tenant_id = $1 AND id = $2`, tenant, sealID); err != nil {
		t.Fatal(err)
	}
	findingOf(t, mustVerify(t, pool, tenant), FindingSealChain)
}

func TestProveTransaction(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	tenant, _, txs := sealedBook(t, pool)
	for _, tx := range []Transaction{txs[0], txs[3], txs[len(txs)-1]} {
		p, err := ProveTransaction(ctx, pool, tenant, tx.ID)
		if err != nil {
			t.Fatalf("ProveTransaction: %v", err)
		}
		if len(p.Leaves) != len(tx.Entries) || p.TreeSize != 17 {
			t.Fatalf("proof of %d leaves in a tree of %d", len(p.Leaves), p.TreeSize)
		}
		var root [32]byte
		copy(root[:], p.Seal.MerkleRoot)
		for i, l := range p.Leaves {
			want := LeafData(tenant, tx.ID, tx.Entries[i].Account, "usd", tx.Entries[i].Amount, tx.CreatedAt)
			if l.Data != want {
				t.Errorf("leaf data %q, want %q", l.Data, want)
			}
			if !VerifyInclusion(LeafHash(l.Data), l.Path, root) {
				t.Errorf("leaf %d does not verify", l.Index)
			}
			forged := strings.Replace(l.Data, "|usd|", "|usd|1", 1)
			if VerifyInclusion(LeafHash(forged), l.Path, root) {
				t.Errorf("a forged amount verifies")
			}
		}
	}
	fresh := mustCharge(t, tenant, "usd", 100, 0)
	mustPost(t, pool, fresh)
	if _, err := ProveTransaction(ctx, pool, tenant, fresh.ID); !errcode.Is(err, CodeNotSealed) {
		t.Errorf("ProveTransaction of an unsealed transaction = %v, want %s", err, CodeNotSealed)
	}
	if _, err := ProveTransaction(ctx, pool, ids.New(), txs[0].ID); errcode.As(err) == nil || errcode.As(err).Kind != errcode.KindNotFound {
		t.Errorf("ProveTransaction of another tenant's transaction = %v, want not found", err)
	}
}

func TestCloseCatchesUpEveryTenant(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	var tenants []uuid.UUID
	past := time.Now().Add(-3 * time.Hour)
	for i := range 3 {
		tenant := ids.New()
		tenants = append(tenants, tenant)
		c := mustCharge(t, tenant, "eur", int64(100*(i+1)), 0)
		c.CreatedAt = past
		mustPost(t, pool, c)
	}
	r, err := Close(ctx, pool, CloseOptions{SealPeriod: time.Hour})
	if err != nil || r.Tenants < 3 || r.Checkpoints < 3 || r.Seals < 3 {
		t.Fatalf("Close = %+v, %v; want 3 tenants checkpointed and sealed", r, err)
	}
	for i, tenant := range tenants {
		if got := mustBalances(t, pool, tenant); len(got) != 1 || got[0].Available != int64(100*(i+1)) {
			t.Errorf("tenant %d: balances %v", i, got)
		}
		var closed time.Time
		if err := pool.QueryRow(ctx, `SELECT closed_before FROM ledger_closings WHERE tenant_id = $1`, tenant).Scan(&closed); err != nil {
			t.Fatal(err)
		}
		if !closed.After(past) || closed.After(time.Now().Add(-CloseDelayDefault)) {
			t.Errorf("tenant %d closed before %s, want between the posting and the closing delay", i, closed)
		}
	}
	r, err = Close(ctx, pool, CloseOptions{SealPeriod: time.Hour})
	if err != nil || r.Tenants != 0 || r.Checkpoints != 0 || r.Seals != 0 {
		t.Fatalf("second Close = %+v, %v; want no tenant with work", r, err)
	}
}
