// Package schemagen renders the entity-relationship diagram of
// docs/design/schema.md from a migrated database's catalog, so the diagram
// is the schema the migrations build rather than a drawing of it. Its test
// fails when the committed file differs from what the migrations give;
// `make generate` rewrites the file.
package schemagen

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// TablesMax bounds the tables one diagram holds; a schema past it is not
// one a reader can take in, and a runaway query is caught.
const TablesMax = 200

// Querier is the part of pgx the generator needs.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Column is one column of a table as the catalog gives it.
type Column struct {
	Name     string
	Type     string
	Nullable bool
	Key      string // "PK", "FK", "UK" or a comma-separated mix; empty for none
}

// Table is one table with its columns in ordinal order and its indexes.
type Table struct {
	Name    string
	Columns []Column
	Indexes []Index
}

// Index is one index with its definition as pg_indexes prints it.
type Index struct {
	Name       string
	Definition string
}

// ForeignKey is one foreign-key constraint from Child to Parent.
type ForeignKey struct {
	Name     string
	Child    string
	Parent   string
	Columns  []string
	Nullable bool // any of the child's columns accepts NULL
	Unique   bool // the child's columns are unique: one-to-one
}

// Schema is what Render draws.
type Schema struct {
	Tables      []Table
	ForeignKeys []ForeignKey
}

// Read loads the public schema of the database q is connected to.
func Read(ctx context.Context, q Querier) (Schema, error) {
	var s Schema
	tables := map[string]*Table{}
	rows, err := q.Query(ctx, `
		SELECT c.relname
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
		ORDER BY c.relname`)
	if err != nil {
		return s, fmt.Errorf("list tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return s, fmt.Errorf("list tables: %w", err)
	}
	if len(names) > TablesMax {
		return s, fmt.Errorf("list tables: %d tables, more than %d", len(names), TablesMax)
	}
	s.Tables = make([]Table, len(names))
	for i, n := range names {
		s.Tables[i].Name = n
		tables[n] = &s.Tables[i]
	}

	// Columns with the keys they take part in. format_type gives the type
	// as a reader writes it (varchar(64), timestamp with time zone).
	rows, err = q.Query(ctx, `
		SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
		       COALESCE((SELECT string_agg(k, ',' ORDER BY k) FROM (
		           SELECT DISTINCT CASE con.contype WHEN 'p' THEN 'PK' WHEN 'f' THEN 'FK' ELSE 'UK' END AS k
		           FROM pg_constraint con
		           WHERE con.conrelid = c.oid AND con.contype IN ('p', 'f', 'u') AND a.attnum = ANY (con.conkey)
		       ) keys), '')
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY c.relname, a.attnum`)
	if err != nil {
		return s, fmt.Errorf("list columns: %w", err)
	}
	var table string
	var col Column
	_, err = pgx.ForEachRow(rows, []any{&table, &col.Name, &col.Type, &col.Nullable, &col.Key}, func() error {
		t, ok := tables[table]
		if !ok {
			return fmt.Errorf("column %s of unknown table %s", col.Name, table)
		}
		t.Columns = append(t.Columns, col)
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("list columns: %w", err)
	}

	rows, err = q.Query(ctx, `
		SELECT tablename, indexname, indexdef FROM pg_indexes
		WHERE schemaname = 'public' ORDER BY tablename, indexname`)
	if err != nil {
		return s, fmt.Errorf("list indexes: %w", err)
	}
	var ix Index
	_, err = pgx.ForEachRow(rows, []any{&table, &ix.Name, &ix.Definition}, func() error {
		if t, ok := tables[table]; ok {
			t.Indexes = append(t.Indexes, ix)
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("list indexes: %w", err)
	}

	// Foreign keys with their columns in key order; unique when some
	// primary key or unique constraint of the child has exactly those
	// columns.
	rows, err = q.Query(ctx, `
		SELECT con.conname, child.relname, parent.relname,
		       array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, i)
		             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.i),
		       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = con.conrelid
		               AND a.attnum = ANY (con.conkey) AND NOT a.attnotnull),
		       EXISTS (SELECT 1 FROM pg_constraint u WHERE u.conrelid = con.conrelid
		               AND u.contype IN ('p', 'u') AND u.conkey @> con.conkey AND con.conkey @> u.conkey)
		FROM pg_constraint con
		JOIN pg_class child ON child.oid = con.conrelid
		JOIN pg_class parent ON parent.oid = con.confrelid
		JOIN pg_namespace n ON n.oid = child.relnamespace
		WHERE con.contype = 'f' AND n.nspname = 'public'
		ORDER BY child.relname, con.conname`)
	if err != nil {
		return s, fmt.Errorf("list foreign keys: %w", err)
	}
	var fk ForeignKey
	_, err = pgx.ForEachRow(rows, []any{&fk.Name, &fk.Child, &fk.Parent, &fk.Columns, &fk.Nullable, &fk.Unique}, func() error {
		s.ForeignKeys = append(s.ForeignKeys, fk)
		fk = ForeignKey{}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("list foreign keys: %w", err)
	}
	return s, nil
}

// mermaidType turns a catalog type into a Mermaid attribute type, which
// admits no spaces, parentheses or commas: "timestamp with time zone"
// becomes timestamp_with_time_zone, "character varying(64)" becomes
// character_varying_64, "text[]" becomes text_array.
func mermaidType(t string) string {
	t = strings.ReplaceAll(t, "[]", " array")
	r := strings.NewReplacer(" ", "_", "(", "_", ")", "", ",", "_", `"`, "")
	return r.Replace(t)
}

// Render returns the Markdown of docs/design/schema.md for s: a Mermaid
// erDiagram with every table, column and foreign key, then each table's
// indexes. The output depends only on s, so it is stable across runs.
func Render(s Schema) string {
	var b strings.Builder
	b.WriteString("<!-- Generated by docs/design/schemagen from the migrations applied to PostgreSQL; do not edit. Regenerate with `make generate`. -->\n")
	b.WriteString("# Schema: entity-relationship diagram\n\n")
	b.WriteString("The tables, columns and foreign keys that `migrations/common` builds on PostgreSQL, read from the catalog\n")
	b.WriteString("(`pg_class`, `pg_attribute`, `pg_constraint`, `pg_indexes`) by `docs/design/schemagen`. Its test\n")
	b.WriteString("(`go test ./docs/design/schemagen`, part of `make test`) fails when this file differs from what the migrations give.\n")
	b.WriteString("Keys: PK primary key, FK foreign key, UK unique constraint; \"null\" marks a nullable column.\n\n")
	fmt.Fprintf(&b, "%d tables, %d foreign keys.\n\n", len(s.Tables), len(s.ForeignKeys))
	b.WriteString("```mermaid\nerDiagram\n")
	for _, t := range s.Tables {
		fmt.Fprintf(&b, "    %s {\n", t.Name)
		for _, c := range t.Columns {
			fmt.Fprintf(&b, "        %s %s", mermaidType(c.Type), c.Name)
			if c.Key != "" {
				fmt.Fprintf(&b, " %s", strings.ReplaceAll(c.Key, ",", ", "))
			}
			if c.Nullable {
				b.WriteString(` "null"`)
			}
			b.WriteString("\n")
		}
		b.WriteString("    }\n")
	}
	fks := append([]ForeignKey(nil), s.ForeignKeys...)
	sort.SliceStable(fks, func(i, j int) bool {
		if fks[i].Parent != fks[j].Parent {
			return fks[i].Parent < fks[j].Parent
		}
		if fks[i].Child != fks[j].Child {
			return fks[i].Child < fks[j].Child
		}
		return fks[i].Name < fks[j].Name
	})
	for _, fk := range fks {
		// The parent side is exactly one row; it is zero-or-one when the
		// child's columns may be NULL. The child side is zero-or-many,
		// zero-or-one when the columns are unique in the child.
		left, right := "||", "o{"
		if fk.Nullable {
			left = "|o"
		}
		if fk.Unique {
			right = "o|"
		}
		fmt.Fprintf(&b, "    %s %s--%s %s : \"%s\"\n", fk.Parent, left, right, fk.Child, strings.Join(fk.Columns, ", "))
	}
	b.WriteString("```\n\n## Indexes\n\n")
	b.WriteString("| table | index | definition |\n| --- | --- | --- |\n")
	for _, t := range s.Tables {
		for _, ix := range t.Indexes {
			def := strings.ReplaceAll(ix.Definition, "|", `\|`)
			fmt.Fprintf(&b, "| %s | %s | `%s` |\n", t.Name, ix.Name, def)
		}
	}
	return b.String()
}
