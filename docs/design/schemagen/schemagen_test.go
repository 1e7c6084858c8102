package schemagen

import (
	"context"
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/payments-api/payments/dbtest"
)

// update rewrites docs/design/schema.md instead of comparing with it;
// `make generate` passes it.
var update = flag.Bool("update", false, "rewrite docs/design/schema.md from the migrations")

const committedPath = "../schema.md"

func TestSchemaDiagramMatchesMigrations(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	s, err := Read(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Tables) == 0 || len(s.ForeignKeys) == 0 {
		t.Fatalf("migrated database gave %d tables and %d foreign keys", len(s.Tables), len(s.ForeignKeys))
	}
	got := Render(s)
	if *update {
		if err := os.WriteFile(committedPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(committedPath)
	if err != nil {
		t.Fatalf("read the committed diagram: %v (run `make generate`)", err)
	}
	if string(want) != got {
		t.Fatalf("docs/design/schema.md differs from the schema the migrations build: run `make generate` and commit it\n%s", firstDifference(string(want), got))
	}
}

// TestReadFollowsTheDatabase changes the migrated schema and checks the
// diagram changes with it, so the drift test above compares something real.
func TestReadFollowsTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	before, err := Read(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		CREATE TABLE schemagen_probe (
			id text PRIMARY KEY,
			tenant_id uuid NOT NULL REFERENCES tenants (tenant_id),
			note varchar(40),
			tags text[] NOT NULL DEFAULT '{}'
		);
		CREATE TABLE schemagen_probe_detail (
			probe_id text PRIMARY KEY REFERENCES schemagen_probe (id),
			parent_id text REFERENCES schemagen_probe (id)
		);
		CREATE INDEX schemagen_probe_note ON schemagen_probe (note)`); err != nil {
		t.Fatal(err)
	}
	after, err := Read(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Tables) != len(before.Tables)+2 || len(after.ForeignKeys) != len(before.ForeignKeys)+3 {
		t.Fatalf("tables %d -> %d, foreign keys %d -> %d; want +2 and +3",
			len(before.Tables), len(after.Tables), len(before.ForeignKeys), len(after.ForeignKeys))
	}
	out := Render(after)
	for _, want := range []string{
		"    schemagen_probe {\n        text id PK\n        uuid tenant_id FK\n        character_varying_40 note \"null\"\n        text_array tags\n    }\n",
		`    tenants ||--o{ schemagen_probe : "tenant_id"`,
		`    schemagen_probe ||--o| schemagen_probe_detail : "probe_id"`,
		`    schemagen_probe |o--o{ schemagen_probe_detail : "parent_id"`,
		"| schemagen_probe | schemagen_probe_note | `CREATE INDEX schemagen_probe_note ON public.schemagen_probe USING btree (note)` |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diagram lacks %q", want)
		}
	}
	if out == Render(before) {
		t.Fatal("diagram unchanged after adding two tables")
	}
}

func TestMermaidType(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"text":                     "text",
		"timestamp with time zone": "timestamp_with_time_zone",
		"character varying(64)":    "character_varying_64",
		"numeric(10,2)":            "numeric_10_2",
		"bigint[]":                 "bigint_array",
	} {
		if got := mermaidType(in); got != want {
			t.Errorf("mermaidType(%q) = %q, want %q", in, got, want)
		}
	}
}

// firstDifference shows the first line where the two texts part.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n  committed: " + wl + "\n  migrations: " + gl
		}
	}
	return ""
}
