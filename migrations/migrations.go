// Package migrations holds the schema as SQL files embedded in the binary and
// the runner that applies them, in order, to one database.
//
// Two sets exist. The common set (common/*.sql) stays inside the SQL that both
// PostgreSQL 15 and CockroachDB accept (see lint.go and its test). The
// cockroach set (cockroach/*.sql) holds CockroachDB-only DDL and runs only
// when `SELECT version()` reports CockroachDB.
//
// Applying is safe from several replicas at once without advisory locks
// (which CockroachDB lacks): each file is applied in the same transaction that
// claims its row in schema_migrations, so a second runner either blocks on the
// first one's uncommitted claim and then skips, or fails with a serialization
// error and retries from the start.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed common/*.sql cockroach/*.sql
var files embed.FS

// Set names a group of migration files.
type Set string

// The two sets.
const (
	SetCommon    Set = "common"
	SetCockroach Set = "cockroach"
)

// Migration is one SQL file.
type Migration struct {
	Set     Set
	Version string // the file name without ".sql", e.g. "0001_foundation"
	SQL     string
}

// Key is the row key in schema_migrations: "common/0001_foundation".
func (m Migration) Key() string { return string(m.Set) + "/" + m.Version }

// Status is one migration and whether it has been applied.
type Status struct {
	Migration
	AppliedAt *time.Time
}

// AttemptsMax bounds how often one migration is retried after a
// serialization failure caused by a concurrent runner.
const AttemptsMax = 20

// Load returns the migrations of a set in order.
func Load(set Set) ([]Migration, error) {
	entries, err := fs.ReadDir(files, string(set))
	if err != nil {
		return nil, fmt.Errorf("read migrations %s: %w", set, err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		b, err := files.ReadFile(path.Join(string(set), e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Set: set, Version: strings.TrimSuffix(e.Name(), ".sql"), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// IsCockroach reports whether the database behind pool is CockroachDB.
func IsCockroach(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var v string
	if err := pool.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return false, fmt.Errorf("select version: %w", err)
	}
	return strings.Contains(v, "CockroachDB"), nil
}

// applicable returns the sets that apply to the engine behind pool.
func applicable(ctx context.Context, pool *pgxpool.Pool) ([]Migration, error) {
	all, err := Load(SetCommon)
	if err != nil {
		return nil, err
	}
	crdb, err := IsCockroach(ctx, pool)
	if err != nil {
		return nil, err
	}
	if crdb {
		more, err := Load(SetCockroach)
		if err != nil {
			return nil, err
		}
		regions := -1
		for _, m := range more {
			if RequiresRegions(m) {
				if regions < 0 {
					if err := pool.QueryRow(ctx, `SELECT count(*) FROM [SHOW REGIONS FROM DATABASE]`).Scan(&regions); err != nil {
						return nil, fmt.Errorf("read the database's regions: %w", err)
					}
				}
				if regions == 0 {
					continue // applied once the database has regions
				}
			}
			all = append(all, m)
		}
	}
	return all, nil
}

// RequiresRegions reports whether a cockroach-set migration applies only to
// a multi-region database: its first line is "-- requires: regions".
func RequiresRegions(m Migration) bool {
	first, _, _ := strings.Cut(m.SQL, "\n")
	return strings.TrimSpace(first) == "-- requires: regions"
}

const createTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    TEXT        NOT NULL PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`

func ensureTable(ctx context.Context, pool *pgxpool.Pool) error {
	var err error
	for attempt := 0; attempt < AttemptsMax; attempt++ {
		_, err = pool.Exec(ctx, createTable)
		// Two runners creating the table at once can collide on the catalog
		// (unique_violation on pg_type on PostgreSQL); the loser retries and
		// then finds the table.
		if err == nil || !isConcurrencyError(err) {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	return nil
}

func isConcurrencyError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "40001", "40P01", "23505", "42P07", "42710":
		return true
	}
	return false
}

// Up applies every pending migration to the database behind pool and returns
// the keys it applied.
func Up(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	if err := ensureTable(ctx, pool); err != nil {
		return nil, err
	}
	all, err := applicable(ctx, pool)
	if err != nil {
		return nil, err
	}
	var applied []string
	for _, m := range all {
		did, err := applyOne(ctx, pool, m)
		if err != nil {
			return applied, err
		}
		if did {
			applied = append(applied, m.Key())
		}
	}
	return applied, nil
}

func applyOne(ctx context.Context, pool *pgxpool.Pool, m Migration) (bool, error) {
	for attempt := 0; ; attempt++ {
		did, err := tryApply(ctx, pool, m)
		if err == nil {
			return did, nil
		}
		if !isConcurrencyError(err) || attempt+1 >= AttemptsMax {
			return false, fmt.Errorf("apply migration %s: %w", m.Key(), err)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		}
	}
}

func tryApply(ctx context.Context, pool *pgxpool.Pool, m Migration) (bool, error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// The claim blocks while another runner holds an uncommitted claim on the
	// same row, and reports 0 rows once that runner committed.
	tag, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1) ON CONFLICT (version) DO NOTHING`, m.Key())
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// StatusOf lists every migration that applies to the database behind pool
// and when it was applied.
func StatusOf(ctx context.Context, pool *pgxpool.Pool) ([]Status, error) {
	if err := ensureTable(ctx, pool); err != nil {
		return nil, err
	}
	all, err := applicable(ctx, pool)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	done := map[string]time.Time{}
	for rows.Next() {
		var k string
		var at time.Time
		if err := rows.Scan(&k, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan schema_migrations: %w", err)
		}
		done[k] = at
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	out := make([]Status, 0, len(all))
	for _, m := range all {
		s := Status{Migration: m}
		if at, ok := done[m.Key()]; ok {
			at := at
			s.AppliedAt = &at
		}
		out = append(out, s)
	}
	return out, nil
}
