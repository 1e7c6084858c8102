package migrations

import (
	"regexp"
	"strings"
	"testing"
)

// TestCommonSetIsPortable fails the build when a common-set migration uses a
// construct that CockroachDB does not accept or that rule 1 forbids.
func TestCommonSetIsPortable(t *testing.T) {
	t.Parallel()
	ms, err := Load(SetCommon)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no common migrations found")
	}
	for _, m := range ms {
		for _, v := range Lint(m) {
			t.Errorf("%s line %d: %s", v.Key, v.Line, v.Reason)
		}
	}
}

// TestLintCatchesForbiddenConstructs proves the linter is not blind: each
// forbidden construct is reported, and portable SQL is not.
func TestLintCatchesForbiddenConstructs(t *testing.T) {
	t.Parallel()
	bad := []string{
		"CREATE TABLE t (id BIGSERIAL PRIMARY KEY)",
		"CREATE TABLE t (id serial)",
		"CREATE SEQUENCE s",
		"SELECT nextval('s')",
		"CREATE TABLE t (id INT GENERATED ALWAYS AS IDENTITY)",
		"SELECT pg_advisory_lock(1)",
		"SELECT pg_try_advisory_xact_lock(1)",
		"LISTEN payments",
		"NOTIFY payments",
		"SELECT pg_notify('a','b')",
		"CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW EXECUTE FUNCTION f()",
		"CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql",
		"CREATE PROCEDURE p() AS $$ $$ LANGUAGE sql",
		"CREATE TABLE c () INHERITS (p)",
		"CREATE EXTENSION pgcrypto",
		"CREATE UNLOGGED TABLE t (id UUID)",
		"CREATE INDEX i ON t USING gin (doc)",
		"ALTER TABLE t SET LOCALITY REGIONAL BY ROW",
		"CREATE INDEX CONCURRENTLY i ON t (a)",
		"DO $$ BEGIN END $$",
	}
	for _, sql := range bad {
		if v := Lint(Migration{Set: SetCommon, Version: "x", SQL: sql}); len(v) == 0 {
			t.Errorf("not reported: %s", sql)
		}
	}
	good := []string{
		"CREATE TABLE t (tenant_id UUID NOT NULL, id UUID NOT NULL, PRIMARY KEY (tenant_id, id))",
		"-- a comment that says serial and trigger\nCREATE INDEX t_created ON t (tenant_id, created_at)",
		"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO NOTHING",
	}
	for _, sql := range good {
		if v := Lint(Migration{Set: SetCommon, Version: "x", SQL: sql}); len(v) != 0 {
			t.Errorf("false positive %v on: %s", v, sql)
		}
	}
}

// TestCockroachSetIsCockroachOnly checks the CockroachDB-only set statement
// by statement with the lint's rules turned around. No CockroachDB server
// runs here, so this is what can be checked of it: every DDL statement uses
// a CockroachDB-only construct, none a PostgreSQL-only one, and the
// multi-region file waits for regions.
func TestCockroachSetIsCockroachOnly(t *testing.T) {
	t.Parallel()
	ms, err := Load(SetCockroach)
	if err != nil {
		t.Fatal(err)
	}
	multiRegion := false
	for _, m := range ms {
		for _, v := range LintCockroach(m) {
			t.Errorf("%s line %d: %s", v.Key, v.Line, v.Reason)
		}
		if strings.Contains(m.SQL, "REGIONAL BY ROW") {
			multiRegion = true
			if !RequiresRegions(m) {
				t.Errorf("%s sets REGIONAL BY ROW but does not wait for regions", m.Key())
			}
		}
	}
	if !multiRegion {
		t.Fatal("no cockroach migration makes tables REGIONAL BY ROW")
	}
}

// TestCockroachSetCoversTenantTables checks that every table of the common
// set is placed: tenant-scoped ones REGIONAL BY ROW, the directory GLOBAL.
func TestCockroachSetCoversTenantTables(t *testing.T) {
	t.Parallel()
	common, err := Load(SetCommon)
	if err != nil {
		t.Fatal(err)
	}
	crdb, err := Load(SetCockroach)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, m := range crdb {
		all.WriteString(m.SQL)
	}
	create := regexp.MustCompile(`(?i)CREATE TABLE (\w+)`)
	global := map[string]bool{"tenant_directory": true, "api_keys": true, "cache_bypass": true}
	for _, m := range common {
		for _, c := range create.FindAllStringSubmatch(m.SQL, -1) {
			table := c[1]
			want := "ALTER TABLE " + table + " SET LOCALITY REGIONAL BY ROW AS crdb_region;"
			if global[table] {
				want = "ALTER TABLE " + table + " SET LOCALITY GLOBAL;"
			}
			if !strings.Contains(all.String(), want) {
				t.Errorf("table %s (%s) is not placed: want %q in the cockroach set", table, m.Key(), want)
			}
		}
	}
}

// TestCockroachLintIsNotBlind proves the turned-around lint refuses what
// it must.
func TestCockroachLintIsNotBlind(t *testing.T) {
	t.Parallel()
	bad := []string{
		"CREATE TABLE t (id UUID PRIMARY KEY)",                      // portable: belongs in the common set
		"CREATE INDEX i ON t (a)",                                   // portable
		"CREATE INDEX i ON t USING gin (doc)",                       // PostgreSQL-only method
		"CREATE SEQUENCE s",                                         // sequences
		"ALTER TABLE t SET LOCALITY GLOBAL; LISTEN x",               // the second statement
		"CREATE TABLE t (id BIGSERIAL PRIMARY KEY) LOCALITY GLOBAL", // PostgreSQL-only inside CockroachDB DDL
	}
	for _, sql := range bad {
		if v := LintCockroach(Migration{Set: SetCockroach, Version: "x", SQL: sql}); len(v) == 0 {
			t.Errorf("not reported: %s", sql)
		}
	}
	good := []string{
		"ALTER TABLE t SET LOCALITY REGIONAL BY ROW AS crdb_region",
		"ALTER TABLE t ALTER PRIMARY KEY USING COLUMNS (tenant_id, id) USING HASH WITH (bucket_count = 16)",
		"DROP INDEX t@i; CREATE INDEX i ON t (created_at) USING HASH WITH (bucket_count = 16)",
		"-- a comment\nSELECT 1;",
	}
	for _, sql := range good {
		if v := LintCockroach(Migration{Set: SetCockroach, Version: "x", SQL: sql}); len(v) != 0 {
			t.Errorf("false positive %v on: %s", v, sql)
		}
	}
	// The common-set lint still refuses the CockroachDB constructs.
	for _, sql := range good[:3] {
		if v := Lint(Migration{Set: SetCommon, Version: "x", SQL: sql}); len(v) == 0 {
			t.Errorf("common lint accepts: %s", sql)
		}
	}
}
