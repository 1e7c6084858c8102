package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
)

// Limits.
const (
	// PostTransactionsMax bounds the transactions of one Post call, and so
	// the size of its array parameters. Batches of DESIGN.md rule 7 are a
	// few dozen payments.
	PostTransactionsMax = 1000
	// ListLimitMax is the largest page List returns.
	ListLimitMax = 100
	// ListLimitDefault is the page size when ListParams.Limit is 0.
	ListLimitDefault = 10
)

// Querier runs read queries. *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it,
// so reads run either on their own or inside a caller's transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// DuplicateSourceError is the cause inside the errcode error with code
// CodeDuplicateSource. Reach it with errors.As to learn which transactions
// of a Post call were refused, for example to drop them from a batch and
// post the rest again.
type DuplicateSourceError struct {
	// IDs are the IDs of the refused transactions, in call order: each one's
	// source was booked before, or appears earlier in the same call.
	IDs []uuid.UUID
}

// Error implements error.
func (e *DuplicateSourceError) Error() string {
	return fmt.Sprintf("%d ledger transactions have a source that is already booked", len(e.IDs))
}

// sourceKey is what the schema's unique source constraint compares.
type sourceKey struct {
	tenantID   uuid.UUID
	sourceID   uuid.UUID
	sourceType string
	typ        Type
}

func (t Transaction) sourceKey() sourceKey {
	return sourceKey{t.TenantID, t.SourceID, t.SourceType, t.Type}
}

// Post writes txs inside tx. It first asserts each transaction's invariants
// (balanced entries, no overflow, consistent header) and writes nothing when
// one fails, returning an errcode.Internal error that wraps ErrUnbalanced,
// ErrOverflow or ErrMalformed. It then writes all transactions with one
// multi-row INSERT and all their entries with a second one.
//
// Post is all or nothing. When any transaction's source is already booked
// (by an earlier, committed transaction, or earlier in the same call), Post
// writes none of txs, leaves tx usable, and returns an errcode error with
// code CodeDuplicateSource (kind conflict) whose cause is a
// *DuplicateSourceError. When another database transaction books the same
// source concurrently, this Post waits for it; under SERIALIZABLE isolation
// it may then fail with a serialization error, which the txn package retries
// and whose retry reports the duplicate.
//
// Database errors are returned wrapped, so that serialization failures stay
// visible to the retry logic.
func Post(ctx context.Context, tx pgx.Tx, txs ...Transaction) error {
	if len(txs) == 0 {
		return nil
	}
	fresh, dups, err := sortCall(txs)
	if err != nil {
		return err
	}
	inserted, err := insertTransactions(ctx, tx, fresh)
	if err != nil {
		return err
	}
	if len(inserted) != len(fresh) || len(dups) > 0 {
		var closed int64
		if len(inserted) != len(fresh) {
			h := headerArgs(fresh)
			if err := tx.QueryRow(ctx, closedAloneSQL, h[0], h[10]).Scan(&closed); err != nil {
				return fmt.Errorf("check ledger closing: %w", err)
			}
		}
		for _, t := range fresh {
			if _, ok := inserted[t.ID]; !ok {
				dups = append(dups, t.ID)
			}
		}
		// Undo this call's own uncommitted rows so that the caller's
		// transaction holds nothing of a refused batch. No savepoint is
		// needed: ON CONFLICT DO NOTHING did not abort the transaction.
		if err := deleteTransactions(ctx, tx, fresh, inserted); err != nil {
			return err
		}
		if closed > 0 {
			return closedError(closed)
		}
		return duplicateError(txs, dups)
	}
	return insertEntries(ctx, tx, fresh, inserted)
}

// postOneSQL writes the header rows and their entries in one statement,
// for a pipeline that cannot wait for RETURNING between the two: the
// entries of a transaction whose source is already booked are not written
// (the join), and the counts it answers tell the caller so.
const postOneSQL = `WITH t AS (` + insertTransactionsSQL + `),
e AS (
  INSERT INTO ledger_entries (tenant_id, transaction_id, account, currency, amount, created_at)
  SELECT u.tenant_id, u.transaction_id, u.account, u.currency, u.amount, t.created_at
  FROM unnest($12::UUID[], $13::UUID[], $14::TEXT[], $15::TEXT[], $16::BIGINT[])
      AS u (tenant_id, transaction_id, account, currency, amount)
  JOIN t ON t.id = u.transaction_id
  RETURNING 1
),
s AS (
  INSERT INTO ledger_balance_slots (tenant_id, currency, account, slot, amount, entries)
  SELECT u.tenant_id, u.currency, u.account, $17::INT, sum(u.amount)::BIGINT, count(*)
  FROM unnest($12::UUID[], $13::UUID[], $14::TEXT[], $15::TEXT[], $16::BIGINT[])
      AS u (tenant_id, transaction_id, account, currency, amount)
  JOIN t ON t.id = u.transaction_id
  GROUP BY u.tenant_id, u.currency, u.account
  ORDER BY u.tenant_id, u.currency, u.account
` + slotConflictSQL + `
  RETURNING 1
)
SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM e), (` + closedSQL + `)`

// BalanceSlots is the number of slots each (tenant, currency, account)
// running total is split over; the schema allows up to 16.
const BalanceSlots = 16

// slotConflictSQL adds a statement's sums to the slot's row. Rows are
// written in key order, so two statements touching the same slots lock them
// in the same order and cannot deadlock.
const slotConflictSQL = `ON CONFLICT (tenant_id, currency, account, slot) DO UPDATE
  SET amount = ledger_balance_slots.amount + excluded.amount, entries = ledger_balance_slots.entries + excluded.entries`

// randomSlot picks the slot a statement adds to.
func randomSlot() int32 { return int32(rand.IntN(BalanceSlots)) }

// QueuePost queues txs into b as one statement, with the checks of Post
// before anything is queued; entries get their transaction's creation
// time, as with Post. When b runs,
// a source already booked fails it with the CodeDuplicateSource error,
// after some rows may have been written: the caller's transaction must
// then be rolled back, which a failing batch does. Post is the form that
// refuses without writing.
func QueuePost(b *pgx.Batch, txs ...Transaction) error {
	if len(txs) == 0 {
		return nil
	}
	if _, dups, err := sortCall(txs); err != nil {
		return err
	} else if len(dups) > 0 {
		return duplicateError(txs, dups)
	}
	entriesTotal := 0
	for _, t := range txs {
		entriesTotal += len(t.Entries)
	}
	args := append(headerArgs(txs), entryArgs(txs, nil)[:5]...)
	args = append(args, randomSlot())
	b.Queue(postOneSQL, args...).QueryRow(func(row pgx.Row) error {
		var headers, entries, closed int64
		if err := row.Scan(&headers, &entries, &closed); err != nil {
			return fmt.Errorf("post ledger transactions: %w", err)
		}
		if closed > 0 {
			return closedError(closed)
		}
		if headers != int64(len(txs)) || entries != int64(entriesTotal) {
			return duplicateError(txs, nil)
		}
		return nil
	})
	return nil
}

// sortCall asserts every transaction of a call before anything is written
// (the limit, each one's invariants, no ID twice) and sets aside the ones
// whose source appears earlier in the same call, so that each source
// reaches the INSERT once.
func sortCall(txs []Transaction) (fresh []Transaction, dups []uuid.UUID, err error) {
	if len(txs) > PostTransactionsMax {
		return nil, nil, errcode.Internal(fmt.Errorf("post %d ledger transactions: more than the limit %d", len(txs), PostTransactionsMax))
	}
	booked := make(map[sourceKey]bool, len(txs))
	byID := make(map[uuid.UUID]bool, len(txs))
	fresh = make([]Transaction, 0, len(txs))
	for _, t := range txs {
		if err := t.check(); err != nil {
			return nil, nil, errcode.Internal(fmt.Errorf("post ledger transaction %s: %w", ids.Format(ids.PrefixBalanceTx, t.ID), err))
		}
		if byID[t.ID] {
			return nil, nil, errcode.Internal(fmt.Errorf("post ledger transaction %s: %w: the id appears twice in one call",
				ids.Format(ids.PrefixBalanceTx, t.ID), ErrMalformed))
		}
		byID[t.ID] = true
		if booked[t.sourceKey()] {
			dups = append(dups, t.ID)
			continue
		}
		booked[t.sourceKey()] = true
		fresh = append(fresh, t)
	}
	return fresh, dups, nil
}

// duplicateError builds the CodeDuplicateSource error for the refused IDs,
// listed in call order.
func duplicateError(txs []Transaction, dups []uuid.UUID) error {
	refused := make(map[uuid.UUID]bool, len(dups))
	for _, id := range dups {
		refused[id] = true
	}
	var inOrder []uuid.UUID
	var firstTx Transaction
	for _, t := range txs {
		if refused[t.ID] {
			if len(inOrder) == 0 {
				firstTx = t
			}
			inOrder = append(inOrder, t.ID)
		}
	}
	prefix := ids.PrefixPayment
	switch firstTx.SourceType {
	case SourceTypeRefund:
		prefix = ids.PrefixRefund
	case SourceTypeDispute:
		prefix = ids.PrefixDispute
	case SourceTypePayout:
		prefix = ids.PrefixPayout
	}
	e := errcode.New(errcode.KindConflict, CodeDuplicateSource, "%s %s is already booked as a %s",
		firstTx.SourceType, ids.Format(prefix, firstTx.SourceID), firstTx.Type)
	if len(inOrder) > 1 {
		e.Message += fmt.Sprintf(" (and %d more of this batch)", len(inOrder)-1)
	}
	e.Err = &DuplicateSourceError{IDs: inOrder}
	return e
}

// The write statements take one array per column, so their text is the
// same for 1 and 1,000 rows: one prepared statement, one round trip.
const insertTransactionsSQL = `INSERT INTO ledger_transactions
    (tenant_id, id, currency, type, source_type, source_id, payment_id, amount, fee, net, created_at)
SELECT u.tenant_id, u.id, u.currency, u.type, u.source_type, u.source_id, u.payment_id, u.amount, u.fee, u.net,
       coalesce(u.created_at, now())
FROM unnest($1::UUID[], $2::UUID[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::UUID[], $7::UUID[],
            $8::BIGINT[], $9::BIGINT[], $10::BIGINT[], $11::TIMESTAMPTZ[])
    AS u (tenant_id, id, currency, type, source_type, source_id, payment_id, amount, fee, net, created_at)
WHERE NOT EXISTS (SELECT 1 FROM ledger_closings AS c
                  WHERE c.tenant_id = u.tenant_id AND c.closed_before > coalesce(u.created_at, now()))
ON CONFLICT (tenant_id, source_id, source_type, type) DO NOTHING
RETURNING id, created_at`

// closedSQL counts the transactions of a call that would be booked in a
// closed period (see ledger_closings): the header insert's guard skips them.
// Its parameters are those of the header insert, which it runs beside.
const closedSQL = `SELECT count(*) FROM unnest($1::UUID[], $11::TIMESTAMPTZ[]) AS u (tenant_id, created_at)
JOIN ledger_closings AS c ON c.tenant_id = u.tenant_id AND c.closed_before > coalesce(u.created_at, now())`

// closedAloneSQL is closedSQL as a statement of its own.
const closedAloneSQL = `SELECT count(*) FROM unnest($1::UUID[], $2::TIMESTAMPTZ[]) AS u (tenant_id, created_at)
JOIN ledger_closings AS c ON c.tenant_id = u.tenant_id AND c.closed_before > coalesce(u.created_at, now())`

// closedError reports postings refused because their booking time lies in
// a closed period. A database transaction older than the closing delay
// causes it (see CloseOptions.Delay): a bug or a misconfiguration, never a
// client's mistake.
func closedError(n int64) error {
	return errcode.Internal(fmt.Errorf("post ledger transactions: %w: %d would be booked before the book's closing", ErrClosed, n))
}

// headerArgs are the eleven array parameters of insertTransactionsSQL.
func headerArgs(txs []Transaction) []any {
	n := len(txs)
	var (
		tenantIDs   = make([]uuid.UUID, n)
		txIDs       = make([]uuid.UUID, n)
		currencies  = make([]string, n)
		types       = make([]string, n)
		sourceTypes = make([]string, n)
		sourceIDs   = make([]uuid.UUID, n)
		paymentIDs  = make([]pgtype.UUID, n)
		amounts     = make([]int64, n)
		fees        = make([]int64, n)
		nets        = make([]int64, n)
		createdAts  = make([]pgtype.Timestamptz, n)
	)
	for i, t := range txs {
		tenantIDs[i], txIDs[i], currencies[i], types[i] = t.TenantID, t.ID, t.Currency, string(t.Type)
		sourceTypes[i], sourceIDs[i] = t.SourceType, t.SourceID
		paymentIDs[i] = pgtype.UUID{Bytes: t.PaymentID, Valid: t.PaymentID != uuid.Nil}
		amounts[i], fees[i], nets[i] = t.Amount, t.Fee, t.Net
		createdAts[i] = pgtype.Timestamptz{Time: t.CreatedAt, Valid: !t.CreatedAt.IsZero()}
	}
	return []any{tenantIDs, txIDs, currencies, types, sourceTypes, sourceIDs, paymentIDs, amounts, fees, nets, createdAts}
}

// insertTransactions writes the header rows and returns the creation time of
// each one written; a transaction whose source exists is skipped.
func insertTransactions(ctx context.Context, tx pgx.Tx, txs []Transaction) (map[uuid.UUID]time.Time, error) {
	n := len(txs)
	rows, err := tx.Query(ctx, insertTransactionsSQL, headerArgs(txs)...)
	if err != nil {
		return nil, fmt.Errorf("insert ledger transactions: %w", err)
	}
	inserted := make(map[uuid.UUID]time.Time, n)
	var id uuid.UUID
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error {
		inserted[id] = at
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("insert ledger transactions: %w", err)
	}
	return inserted, nil
}

const insertEntriesSQL = `WITH e AS (
  INSERT INTO ledger_entries (tenant_id, transaction_id, account, currency, amount, created_at)
  SELECT u.tenant_id, u.transaction_id, u.account, u.currency, u.amount, u.created_at
  FROM unnest($1::UUID[], $2::UUID[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::TIMESTAMPTZ[])
      AS u (tenant_id, transaction_id, account, currency, amount, created_at)
  RETURNING tenant_id, currency, account, amount
)
INSERT INTO ledger_balance_slots (tenant_id, currency, account, slot, amount, entries)
SELECT tenant_id, currency, account, $7::INT, sum(amount)::BIGINT, count(*)
FROM e GROUP BY tenant_id, currency, account
ORDER BY tenant_id, currency, account
` + slotConflictSQL

// insertEntries writes the legs of txs, stamped with their transaction's
// creation time.
func insertEntries(ctx context.Context, tx pgx.Tx, txs []Transaction, createdAt map[uuid.UUID]time.Time) error {
	if _, err := tx.Exec(ctx, insertEntriesSQL, append(entryArgs(txs, createdAt), randomSlot())...); err != nil {
		return fmt.Errorf("insert ledger entries: %w", err)
	}
	return nil
}

// entryArgs are the six array parameters of the entries' insert: the legs
// of txs, stamped with their transaction's creation time.
func entryArgs(txs []Transaction, createdAt map[uuid.UUID]time.Time) []any {
	n := 0
	for _, t := range txs {
		n += len(t.Entries)
	}
	var (
		tenantIDs  = make([]uuid.UUID, 0, n)
		txIDs      = make([]uuid.UUID, 0, n)
		accounts   = make([]string, 0, n)
		currencies = make([]string, 0, n)
		amounts    = make([]int64, 0, n)
		createdAts = make([]time.Time, 0, n)
	)
	for _, t := range txs {
		for _, e := range t.Entries {
			tenantIDs = append(tenantIDs, t.TenantID)
			txIDs = append(txIDs, t.ID)
			accounts = append(accounts, string(e.Account))
			currencies = append(currencies, t.Currency)
			amounts = append(amounts, e.Amount)
			createdAts = append(createdAts, createdAt[t.ID])
		}
	}
	return []any{tenantIDs, txIDs, accounts, currencies, amounts, createdAts}
}

// deleteTransactions removes the header rows this call inserted, before any
// of their entries exist.
func deleteTransactions(ctx context.Context, tx pgx.Tx, txs []Transaction, inserted map[uuid.UUID]time.Time) error {
	if len(inserted) == 0 {
		return nil
	}
	tenantIDs := make([]uuid.UUID, 0, len(inserted))
	txIDs := make([]uuid.UUID, 0, len(inserted))
	for _, t := range txs {
		if _, ok := inserted[t.ID]; ok {
			tenantIDs = append(tenantIDs, t.TenantID)
			txIDs = append(txIDs, t.ID)
		}
	}
	const q = `DELETE FROM ledger_transactions
WHERE (tenant_id, id) IN (SELECT u.tenant_id, u.id FROM unnest($1::UUID[], $2::UUID[]) AS u (tenant_id, id))`
	tag, err := tx.Exec(ctx, q, tenantIDs, txIDs)
	if err != nil {
		return fmt.Errorf("undo refused ledger batch: %w", err)
	}
	if tag.RowsAffected() != int64(len(txIDs)) {
		return errcode.Internal(fmt.Errorf("undo refused ledger batch: deleted %d of %d rows", tag.RowsAffected(), len(txIDs)))
	}
	return nil
}

// Balance is a merchant's balance in one currency, in minor units.
type Balance struct {
	Currency string
	// Available is the sum of the merchant_balance entries: captured -
	// refunded - fees. It is negative when refunds exceed what is left.
	Available int64
	// Pending is always 0 for now: money is available as soon as it is
	// booked, because no settlement delay is modelled yet. The field keeps
	// the API shape stable for when one is.
	Pending int64
}

// Balances returns the tenant's balance in every currency in which it has
// ledger entries, sorted by currency. A tenant without entries has none. It
// reads the running totals that every posting statement updates in the same
// transaction (split over BalanceSlots slots), so it reflects exactly the
// committed postings, and its cost does not depend on the history's size.
func Balances(ctx context.Context, q Querier, tenantID uuid.UUID) ([]Balance, error) {
	const sql = `SELECT currency, sum(CASE WHEN account = $2 THEN amount ELSE 0 END)::BIGINT
FROM ledger_balance_slots WHERE tenant_id = $1
GROUP BY currency ORDER BY currency`
	return queryBalances(ctx, q, sql, tenantID, string(AccountMerchantBalance))
}

// BalancesAt returns the tenant's balances as they were at instant at: the
// sum of the entries booked at or before it (a posting is booked at its
// database transaction's start). It reads the latest checkpoint at or
// before the instant and the entries after it, so its cost is bounded by the
// checkpoint spacing, not by the history's size; for an instant after the
// latest checkpoint (the last minute or so), by the entries since that
// checkpoint. An answer for an instant younger than the closing delay can
// still change while postings that started before it commit.
func BalancesAt(ctx context.Context, q Querier, tenantID uuid.UUID, at time.Time) ([]Balance, error) {
	return queryBalances(ctx, q, balanceAtSQL, tenantID, string(AccountMerchantBalance), at)
}

// balanceAtSQL adds the tail of entries after the latest checkpoint at or
// before $3 to that checkpoint's totals. Every account is read so
// that a currency whose merchant leg happens to be absent still answers 0.
const balanceAtSQL = `WITH c AS (
    SELECT max(as_of) AS as_of FROM ledger_checkpoints WHERE tenant_id = $1 AND as_of <= $3
), parts AS (
    SELECT k.currency, k.account, k.amount_total AS amount
    FROM ledger_checkpoints AS k, c
    WHERE k.tenant_id = $1 AND k.as_of = c.as_of
    UNION ALL
    SELECT e.currency, e.account, e.amount FROM ledger_entries AS e
    WHERE e.tenant_id = $1
      AND e.created_at >= coalesce((SELECT as_of FROM c), '0001-01-01 00:00:00+00'::TIMESTAMPTZ)
      AND e.created_at <= $3
)
SELECT currency, sum(CASE WHEN account = $2 THEN amount ELSE 0 END)::BIGINT
FROM parts GROUP BY currency ORDER BY currency`

func queryBalances(ctx context.Context, q Querier, sql string, args ...any) ([]Balance, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query balances: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Balance, error) {
		var b Balance
		err := r.Scan(&b.Currency, &b.Available)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("query balances: %w", err)
	}
	return out, nil
}

// Sums returns, per currency, the sum of all the tenant's entries. Every
// value is 0 in a correct ledger; this is the invariant check for tests and
// operators. The sum is exact: the database adds in arbitrary precision and
// fails instead of wrapping if a total did not fit in int64.
func Sums(ctx context.Context, q Querier, tenantID uuid.UUID) (map[string]int64, error) {
	const sql = `SELECT currency, sum(amount)::BIGINT FROM ledger_entries WHERE tenant_id = $1 GROUP BY currency`
	rows, err := q.Query(ctx, sql, tenantID)
	if err != nil {
		return nil, fmt.Errorf("query ledger sums: %w", err)
	}
	out := map[string]int64{}
	var currency string
	var sum int64
	if _, err := pgx.ForEachRow(rows, []any{&currency, &sum}, func() error {
		out[currency] = sum
		return nil
	}); err != nil {
		return nil, fmt.Errorf("query ledger sums: %w", err)
	}
	return out, nil
}

// ListParams selects a page of List.
type ListParams struct {
	// Limit is the page size, 1 to ListLimitMax; 0 means ListLimitDefault.
	Limit int
	// StartingAfter, when set, returns the page of transactions older
	// than this ID (the next page when walking newest first).
	StartingAfter *uuid.UUID
	// EndingBefore, when set, returns the page of transactions newer than
	// this ID and closest to it (the previous page). At most one of
	// StartingAfter and EndingBefore may be set. Neither cursor has to
	// name an existing transaction.
	EndingBefore *uuid.UUID
	// Type, when not empty, returns only transactions of this type.
	Type Type
	// Source, when set, returns only transactions whose source is this
	// object or that belong to this payment: a payment's charge and all its
	// refunds, or one refund's transaction.
	Source *uuid.UUID
}

// List returns one page of the tenant's transactions, newest first, and
// whether more exist beyond the page in the direction of travel: older ones
// for a first page or StartingAfter, newer ones for EndingBefore. IDs are
// UUIDv7, so ID order is creation order. Invalid params return an errcode
// error with code parameter_invalid.
func List(ctx context.Context, q Querier, tenantID uuid.UUID, p ListParams) ([]Transaction, bool, error) {
	limit := p.Limit
	switch {
	case limit == 0:
		limit = ListLimitDefault
	case limit < 1 || limit > ListLimitMax:
		return nil, false, errcode.Invalid(errcode.CodeParameterInvalid, "limit",
			"limit must be between 1 and %d, got %d", ListLimitMax, p.Limit)
	}
	if p.StartingAfter != nil && p.EndingBefore != nil {
		return nil, false, errcode.Invalid(errcode.CodeParameterInvalid, "ending_before",
			"starting_after and ending_before cannot be used together")
	}
	if p.Type != "" && !p.Type.valid() {
		return nil, false, errcode.Invalid(errcode.CodeParameterInvalid, "type",
			"type must be one of charge, refund, adjustment, payout, payout_paid, payout_reversal, got %q", p.Type)
	}

	where := []string{"tenant_id = $1"}
	args := []any{tenantID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	order := "DESC"
	switch {
	case p.StartingAfter != nil:
		where = append(where, "id < "+arg(*p.StartingAfter))
	case p.EndingBefore != nil:
		// Walk ascending from the cursor to find the closest newer rows,
		// then reverse them into newest-first order.
		where = append(where, "id > "+arg(*p.EndingBefore))
		order = "ASC"
	}
	if p.Type != "" {
		where = append(where, "type = "+arg(string(p.Type)))
	}
	if p.Source != nil {
		s := arg(*p.Source)
		where = append(where, "(source_id = "+s+" OR payment_id = "+s+")")
	}
	// One more than the page tells whether more rows exist.
	sql := `WITH page AS (
    SELECT ` + transactionColumns + ` FROM ledger_transactions
    WHERE ` + strings.Join(where, " AND ") + `
    ORDER BY id ` + order + `
    LIMIT ` + arg(limit+1) + `
)
SELECT ` + prefixed("p.", transactionColumns) + `, e.account, e.amount
FROM page AS p
LEFT JOIN ledger_entries AS e ON e.tenant_id = p.tenant_id AND e.transaction_id = p.id
ORDER BY p.id ` + order + `, e.account`
	txs, err := query(ctx, q, sql, args...)
	if err != nil {
		return nil, false, fmt.Errorf("list ledger transactions: %w", err)
	}
	more := len(txs) > limit
	if more {
		txs = txs[:limit]
	}
	if order == "ASC" {
		slices.Reverse(txs)
	}
	return txs, more, nil
}

// Get returns one of the tenant's transactions. It returns an errcode
// not-found error (code resource_missing) when no such transaction exists or
// it belongs to another tenant; the two look the same.
func Get(ctx context.Context, q Querier, tenantID, id uuid.UUID) (Transaction, error) {
	sql := `SELECT ` + prefixed("t.", transactionColumns) + `, e.account, e.amount
FROM ledger_transactions AS t
LEFT JOIN ledger_entries AS e ON e.tenant_id = t.tenant_id AND e.transaction_id = t.id
WHERE t.tenant_id = $1 AND t.id = $2
ORDER BY e.account`
	txs, err := query(ctx, q, sql, tenantID, id)
	if err != nil {
		return Transaction{}, fmt.Errorf("get ledger transaction: %w", err)
	}
	if len(txs) == 0 {
		return Transaction{}, errcode.NotFound("balance_transaction", ids.Format(ids.PrefixBalanceTx, id))
	}
	return txs[0], nil
}

const transactionColumns = `tenant_id, id, currency, type, source_type, source_id, payment_id, amount, fee, net, created_at`

// prefixed qualifies each column of a comma-separated list.
func prefixed(prefix, columns string) string {
	cs := strings.Split(columns, ", ")
	for i := range cs {
		cs[i] = prefix + cs[i]
	}
	return strings.Join(cs, ", ")
}

// query runs sql, whose rows are transactionColumns followed by one entry's
// account and amount, ordered so that a transaction's rows are adjacent. It
// groups the rows into transactions and checks each one's invariants.
func query(ctx context.Context, q Querier, sql string, args ...any) ([]Transaction, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	var (
		out       []Transaction
		t         Transaction
		typ       string
		paymentID pgtype.UUID
		account   pgtype.Text
		amount    pgtype.Int8
	)
	_, err = pgx.ForEachRow(rows, []any{&t.TenantID, &t.ID, &t.Currency, &typ, &t.SourceType, &t.SourceID,
		&paymentID, &t.Amount, &t.Fee, &t.Net, &t.CreatedAt, &account, &amount}, func() error {
		if len(out) == 0 || out[len(out)-1].ID != t.ID {
			t.Type = Type(typ)
			t.PaymentID = uuid.Nil
			if paymentID.Valid {
				t.PaymentID = paymentID.Bytes
			}
			t.Entries = nil
			out = append(out, t)
		}
		if account.Valid {
			last := &out[len(out)-1]
			last.Entries = append(last.Entries, Entry{Account: Account(account.String), Amount: amount.Int64})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The second check of the invariants: what was read must be as
	// balanced as what was written.
	for _, t := range out {
		if err := t.check(); err != nil {
			return nil, errcode.Internal(fmt.Errorf("read ledger transaction %s: %w", ids.Format(ids.PrefixBalanceTx, t.ID), err))
		}
	}
	return out, nil
}
