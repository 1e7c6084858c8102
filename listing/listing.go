// Package listing holds the list contract shared by every collection of the
// API: newest first, a bounded limit, and cursors (starting_after,
// ending_before) that are object IDs. IDs are UUIDv7, so ordering by ID is
// ordering by creation time, and a cursor is an index seek.
package listing

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/errcode"
)

// Limits of a page.
const (
	LimitDefault = 10
	LimitMax     = 100
)

// Page describes which page of a collection to read.
type Page struct {
	Limit         int
	StartingAfter *uuid.UUID
	EndingBefore  *uuid.UUID
}

// Validate checks the limit and that at most one cursor is set.
func (p *Page) Validate() error {
	if p.Limit == 0 {
		p.Limit = LimitDefault
	}
	if p.Limit < 1 || p.Limit > LimitMax {
		return errcode.Invalid(errcode.CodeParameterInvalid, "limit", "limit must be 1 to %d", LimitMax)
	}
	if p.StartingAfter != nil && p.EndingBefore != nil {
		return errcode.Invalid(errcode.CodeParameterInvalid, "ending_before", "use starting_after or ending_before, not both")
	}
	return nil
}

// SQL returns the WHERE fragment, ORDER BY and LIMIT for the page, given
// the ID column and the number of the next positional parameter; args are
// appended. When reversed is true the rows come back oldest first and the
// caller must reverse them (Finish does).
func (p Page) SQL(idColumn string, next int, args []any) (where, orderLimit string, outArgs []any, reversed bool) {
	switch {
	case p.StartingAfter != nil:
		where = fmt.Sprintf(" AND %s < $%d", idColumn, next)
		args = append(args, *p.StartingAfter)
		next++
	case p.EndingBefore != nil:
		where = fmt.Sprintf(" AND %s > $%d", idColumn, next)
		args = append(args, *p.EndingBefore)
		next++
		reversed = true
	}
	dir := "DESC"
	if reversed {
		dir = "ASC"
	}
	orderLimit = fmt.Sprintf(" ORDER BY %s %s LIMIT $%d", idColumn, dir, next)
	args = append(args, p.Limit+1)
	return where, orderLimit, args, reversed
}

// Finish trims the extra row that tells whether more exist, restores
// newest-first order, and reports has_more.
func Finish[T any](rows []T, limit int, reversed bool) ([]T, bool) {
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	if reversed {
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
	}
	return rows, more
}

// Querier runs a query: a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Query reads one page: sql selects the rows with its WHERE clause already
// open, args are its parameters, and the page's cursor, order and limit are
// appended. Each row is read with scan; what names the collection in
// errors.
func Query[T any](ctx context.Context, q Querier, what, sql string, args []any, p Page, scan func(pgx.Row) (T, error)) ([]T, bool, error) {
	where, order, args, reversed := p.SQL("id", len(args)+1, args)
	rows, err := q.Query(ctx, sql+where+order, args...)
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", what, err)
	}
	out, more := Finish(out, p.Limit, reversed)
	return out, more, nil
}
