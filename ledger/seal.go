package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/listing"
)

// Sealing limits and defaults.
const (
	// SealPeriodDefault is the length of a sealed period.
	SealPeriodDefault = time.Hour
	// SealsPerCallMax bounds the periods one SealTenant call seals, so that
	// a long unsealed history is caught up over several passes.
	SealsPerCallMax = 24
	// SealEntriesMax bounds the entries of one sealed period, which a seal
	// and a proof read whole. A tenant that books more in one period needs
	// a shorter period.
	SealEntriesMax = 5_000_000
	// CodeNotSealed is the errcode code of a proof asked for a balance
	// transaction whose period is not sealed yet.
	CodeNotSealed = "balance_transaction_not_sealed"
)

// Seal is the tamper evidence of one tenant's closed period: the Merkle root
// of the period's entries in canonical order, their count and totals, chained
// to the tenant's previous seal.
type Seal struct {
	ID          uuid.UUID
	TenantID    uuid.UUID
	PeriodStart time.Time
	PeriodEnd   time.Time
	EntryCount  int64
	// Totals are the sums of the period's entries per currency and account.
	Totals     map[string]map[Account]int64
	MerkleRoot []byte
	// PrevHash is the previous seal's Hash, or 32 zero bytes for the first.
	PrevHash  []byte
	Hash      []byte
	CreatedAt time.Time
}

// ErrSealMismatch reports a seal that does not match the entries it covers.
var ErrSealMismatch = errors.New("ledger seal does not match its entries")

// LeafData is the canonical text of one entry, the input of its leaf hash:
// tenant, balance transaction, account, currency, amount and booking time in
// Unix microseconds, separated by "|".
func LeafData(tenantID, transactionID uuid.UUID, account Account, currency string, amount int64, createdAt time.Time) string {
	return ids.Format(ids.PrefixTenant, tenantID) + "|" + ids.Format(ids.PrefixBalanceTx, transactionID) + "|" +
		string(account) + "|" + currency + "|" + strconv.FormatInt(amount, 10) + "|" + strconv.FormatInt(createdAt.UnixMicro(), 10)
}

// LeafHash is SHA-256(0x00 || data), the leaf hash of RFC 6962.
func LeafHash(data string) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write([]byte(data))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// NodeHash is SHA-256(0x01 || left || right), the interior hash of RFC 6962.
func NodeHash(left, right [32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(left[:])
	h.Write(right[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// splitPoint is the largest power of two smaller than n (n > 1).
func splitPoint(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

// MerkleRoot is the RFC 6962 Merkle tree hash of leaves (at least one).
func MerkleRoot(leaves [][32]byte) [32]byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := splitPoint(len(leaves))
	return NodeHash(MerkleRoot(leaves[:k]), MerkleRoot(leaves[k:]))
}

// ProofStep is one sibling on the way from a leaf to the root: Left means
// the sibling is the left input of the next hash.
type ProofStep struct {
	Left bool
	Hash [32]byte
}

// InclusionPath is the audit path of leaf m (RFC 6962 PATH), leaf first.
func InclusionPath(m int, leaves [][32]byte) []ProofStep {
	if len(leaves) <= 1 {
		return nil
	}
	k := splitPoint(len(leaves))
	if m < k {
		return append(InclusionPath(m, leaves[:k]), ProofStep{Left: false, Hash: MerkleRoot(leaves[k:])})
	}
	return append(InclusionPath(m-k, leaves[k:]), ProofStep{Left: true, Hash: MerkleRoot(leaves[:k])})
}

// VerifyInclusion reports whether leaf, hashed up along path, gives root.
// This is all a merchant needs to check a proof (see docs/API.md).
func VerifyInclusion(leaf [32]byte, path []ProofStep, root [32]byte) bool {
	h := leaf
	for _, s := range path {
		if s.Left {
			h = NodeHash(s.Hash, h)
		} else {
			h = NodeHash(h, s.Hash)
		}
	}
	return h == root
}

// SealText is the canonical text a seal's hash covers: every field the
// seal stores, "|"-separated, times in Unix microseconds, totals as JSON
// with sorted keys, hashes in hex.
func SealText(s Seal) (string, error) {
	totals, err := json.Marshal(s.Totals) // map keys marshal sorted: canonical
	if err != nil {
		return "", fmt.Errorf("encode seal totals: %w", err)
	}
	return "ledger_seal|v1|" + ids.Format(ids.PrefixTenant, s.TenantID) + "|" +
		strconv.FormatInt(s.PeriodStart.UnixMicro(), 10) + "|" + strconv.FormatInt(s.PeriodEnd.UnixMicro(), 10) + "|" +
		strconv.FormatInt(s.EntryCount, 10) + "|" + string(totals) + "|" + hex.EncodeToString(s.MerkleRoot) + "|" +
		hex.EncodeToString(s.PrevHash), nil
}

// sealHash is the hash that chains seals: SHA-256 of SealText.
func sealHash(s Seal) ([]byte, error) {
	text, err := SealText(s)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(text))
	return sum[:], nil
}

// periodLeaves is what a seal is computed from: the period's entries as
// leaves in canonical order (booking time, transaction, account), with the
// totals, and the position of each transaction's first leaf.
type periodLeaves struct {
	leaves  [][32]byte
	data    []string
	txIDs   []uuid.UUID
	totals  map[string]map[Account]int64
	entries int64
}

func readPeriod(ctx context.Context, q Querier, tenantID uuid.UUID, start, end time.Time, keepData bool) (periodLeaves, error) {
	const sql = `SELECT transaction_id, account, currency, amount, created_at FROM ledger_entries
WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3
ORDER BY created_at, transaction_id, account LIMIT $4`
	p := periodLeaves{totals: map[string]map[Account]int64{}}
	rows, err := q.Query(ctx, sql, tenantID, start, end, SealEntriesMax+1)
	if err != nil {
		return p, fmt.Errorf("read sealed period: %w", err)
	}
	var (
		txID     uuid.UUID
		account  string
		currency string
		amount   int64
		at       time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&txID, &account, &currency, &amount, &at}, func() error {
		d := LeafData(tenantID, txID, Account(account), currency, amount, at)
		p.leaves = append(p.leaves, LeafHash(d))
		if keepData {
			p.data = append(p.data, d)
			p.txIDs = append(p.txIDs, txID)
		}
		m := p.totals[currency]
		if m == nil {
			m = map[Account]int64{}
			p.totals[currency] = m
		}
		var ok bool
		if m[Account(account)], ok = addChecked(m[Account(account)], amount); !ok {
			return fmt.Errorf("%w: period total of %s %s", ErrOverflow, currency, account)
		}
		p.entries++
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("read sealed period: %w", err)
	}
	if p.entries > SealEntriesMax {
		return p, errcode.Internal(fmt.Errorf("read sealed period: more than %d entries from %s to %s: shorten the seal period",
			SealEntriesMax, start.Format(time.RFC3339), end.Format(time.RFC3339)))
	}
	return p, nil
}

const sealColumns = `id, tenant_id, period_start, period_end, entry_count, totals, merkle_root, prev_hash, hash, created_at`

func scanSeal(r pgx.Row) (Seal, error) {
	var s Seal
	var totals []byte
	err := r.Scan(&s.ID, &s.TenantID, &s.PeriodStart, &s.PeriodEnd, &s.EntryCount, &totals, &s.MerkleRoot, &s.PrevHash, &s.Hash, &s.CreatedAt)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(totals, &s.Totals); err != nil {
		return s, fmt.Errorf("decode seal totals: %w", err)
	}
	return s, nil
}

// SealTenant seals the tenant's complete periods of length period that end
// before `before` and follow its last seal, at most SealsPerCallMax of them,
// and answers how many it sealed. Periods are aligned to multiples of period
// (hours, for the default); a period without entries gets no seal. Each seal
// moves the tenant's closing to its period's end first, in the same
// transaction, so a posting can never land in a sealed period afterwards;
// `before` lies a closing delay in the past, so none is still in flight
// either (see CheckpointTenant for why this runs at REPEATABLE READ).
func SealTenant(ctx context.Context, pool *pgxpool.Pool, tenantID uuid.UUID, before time.Time, period time.Duration) (int, error) {
	if period <= 0 {
		return 0, errcode.Internal(fmt.Errorf("seal ledger: period %v must be positive", period))
	}
	n := 0
	for n < SealsPerCallMax {
		done, err := sealNext(ctx, pool, tenantID, before, period)
		if err != nil {
			return n, err
		}
		if done {
			return n, nil
		}
		n++
	}
	return n, nil
}

// sealNext seals the tenant's next period, or answers true when none is
// ready.
func sealNext(ctx context.Context, pool *pgxpool.Pool, tenantID uuid.UUID, before time.Time, period time.Duration) (bool, error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return false, fmt.Errorf("seal ledger: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()

	prev := Seal{PrevHash: make([]byte, 32)}
	last, err := scanSeal(tx.QueryRow(ctx, `SELECT `+sealColumns+` FROM ledger_seals WHERE tenant_id = $1 ORDER BY period_start DESC LIMIT 1`, tenantID))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return false, fmt.Errorf("seal ledger: read last seal: %w", err)
	default:
		prev = last
	}
	var first *time.Time
	if err := tx.QueryRow(ctx, `SELECT min(created_at) FROM ledger_entries WHERE tenant_id = $1 AND created_at >= $2`,
		tenantID, prev.PeriodEnd).Scan(&first); err != nil {
		return false, fmt.Errorf("seal ledger: find next period: %w", err)
	}
	if first == nil {
		return true, nil
	}
	start := first.Truncate(period)
	if start.Before(prev.PeriodEnd) { // the period length changed since the last seal
		start = prev.PeriodEnd
	}
	end := start.Truncate(period).Add(period)
	if end.After(before) {
		return true, nil
	}
	if err := moveClosing(ctx, tx, tenantID, end); err != nil {
		return false, err
	}
	p, err := readPeriod(ctx, tx, tenantID, start, end, false)
	if err != nil {
		return false, err
	}
	root := MerkleRoot(p.leaves)
	s := Seal{ID: ids.New(), TenantID: tenantID, PeriodStart: start, PeriodEnd: end, EntryCount: p.entries,
		Totals: p.totals, MerkleRoot: root[:], PrevHash: prev.Hash}
	if s.PrevHash == nil {
		s.PrevHash = make([]byte, 32)
	}
	if s.Hash, err = sealHash(s); err != nil {
		return false, err
	}
	totals, err := json.Marshal(s.Totals)
	if err != nil {
		return false, fmt.Errorf("encode seal totals: %w", err)
	}
	const ins = `INSERT INTO ledger_seals (tenant_id, id, period_start, period_end, entry_count, totals, merkle_root, prev_hash, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	if _, err := tx.Exec(ctx, ins, s.TenantID, s.ID, s.PeriodStart, s.PeriodEnd, s.EntryCount, string(totals), s.MerkleRoot, s.PrevHash, s.Hash); err != nil {
		return false, fmt.Errorf("seal ledger: insert seal: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("seal ledger: commit: %w", err)
	}
	return false, nil
}

// ListSeals answers one page of the tenant's seals, newest first.
func ListSeals(ctx context.Context, q listing.Querier, tenantID uuid.UUID, p listing.Page) ([]Seal, bool, error) {
	if err := p.Validate(); err != nil {
		return nil, false, err
	}
	sql := `SELECT ` + sealColumns + ` FROM ledger_seals WHERE tenant_id = $1`
	return listing.Query(ctx, q, "ledger seals", sql, []any{tenantID}, p, scanSeal)
}

// ProofLeaf is one entry of a balance transaction with its audit path.
type ProofLeaf struct {
	Index int
	Data  string
	Hash  [32]byte
	Path  []ProofStep
}

// Proof shows that a balance transaction's entries are in its period's seal.
type Proof struct {
	Transaction Transaction
	Seal        Seal
	TreeSize    int64
	Leaves      []ProofLeaf
}

// ProveTransaction builds the inclusion proof of one of the tenant's
// transactions. It answers resource_missing when the transaction does not
// exist, CodeNotSealed (kind conflict) when its period is not sealed yet,
// and an internal error wrapping ErrSealMismatch when the entries no longer
// hash to the seal's root.
func ProveTransaction(ctx context.Context, q Querier, tenantID, id uuid.UUID) (Proof, error) {
	t, err := Get(ctx, q, tenantID, id)
	if err != nil {
		return Proof{}, err
	}
	s, err := scanSeal(q.QueryRow(ctx, `SELECT `+sealColumns+` FROM ledger_seals
WHERE tenant_id = $1 AND period_start <= $2 AND period_end > $2`, tenantID, t.CreatedAt))
	if errors.Is(err, pgx.ErrNoRows) {
		return Proof{}, errcode.New(errcode.KindConflict, CodeNotSealed,
			"balance transaction %s is not sealed yet: a period is sealed once it ended and the closing delay passed",
			ids.Format(ids.PrefixBalanceTx, id))
	}
	if err != nil {
		return Proof{}, fmt.Errorf("read seal: %w", err)
	}
	p, err := readPeriod(ctx, q, tenantID, s.PeriodStart, s.PeriodEnd, true)
	if err != nil {
		return Proof{}, err
	}
	if root := MerkleRoot(p.leaves); p.entries == 0 || !bytes.Equal(root[:], s.MerkleRoot) {
		return Proof{}, errcode.Internal(fmt.Errorf("prove %s: %w", ids.Format(ids.PrefixSeal, s.ID), ErrSealMismatch))
	}
	out := Proof{Transaction: t, Seal: s, TreeSize: p.entries}
	for i, txID := range p.txIDs {
		if txID == id {
			out.Leaves = append(out.Leaves, ProofLeaf{Index: i, Data: p.data[i], Hash: p.leaves[i], Path: InclusionPath(i, p.leaves)})
		}
	}
	if len(out.Leaves) != len(t.Entries) {
		return Proof{}, errcode.Internal(fmt.Errorf("prove %s: %w: %d of %d entries in the period",
			ids.Format(ids.PrefixBalanceTx, id), ErrSealMismatch, len(out.Leaves), len(t.Entries)))
	}
	return out, nil
}
