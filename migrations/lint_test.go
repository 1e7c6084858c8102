package migrations

import "testing"

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
