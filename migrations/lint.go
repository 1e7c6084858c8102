package migrations

import (
	"regexp"
	"strings"
)

// Violation is one construct in a common-set migration that CockroachDB does
// not accept (or that the design forbids, see DESIGN.md rule 1).
type Violation struct {
	Key    string
	Line   int
	Reason string
}

type rule struct {
	re     *regexp.Regexp
	reason string
	// cockroach marks the CockroachDB-only constructs: refused in the
	// common set, and what the cockroach set is made of.
	cockroach bool
}

// rules lists the constructs that only one engine accepts: PostgreSQL-only
// ones, refused everywhere, and CockroachDB-only ones (cockroach: true),
// refused in the common set only. The match runs on SQL with comments
// removed, case-insensitively.
var rules = []rule{
	{regexp.MustCompile(`(?i)\b(big)?serial\b|\bsmallserial\b`), "SERIAL columns are sequences; use UUID keys", false},
	{regexp.MustCompile(`(?i)\bcreate\s+sequence\b|\bnextval\s*\(`), "sequences make hot keys; use UUID keys", false},
	{regexp.MustCompile(`(?i)\bgenerated\s+(always|by\s+default)\s+as\s+identity\b`), "identity columns are sequences; use UUID keys", false},
	{regexp.MustCompile(`(?i)\bpg_(try_)?advisory_(xact_)?lock`), "advisory locks do not exist on CockroachDB", false},
	{regexp.MustCompile(`(?i)\b(listen|notify|unlisten)\b\s+\w+|\bpg_notify\s*\(`), "LISTEN/NOTIFY does not exist on CockroachDB", false},
	{regexp.MustCompile(`(?i)\bcreate\s+(or\s+replace\s+)?(constraint\s+)?trigger\b`), "triggers are not allowed", false},
	{regexp.MustCompile(`(?i)\bcreate\s+(or\s+replace\s+)?(function|procedure)\b`), "stored procedures and functions are not allowed", false},
	{regexp.MustCompile(`(?i)\binherits\s*\(`), "table inheritance does not exist on CockroachDB", false},
	{regexp.MustCompile(`(?i)\bcreate\s+(extension|rule)\b`), "extensions and rules are PostgreSQL-only", false},
	{regexp.MustCompile(`(?i)\bexclude\s+using\b`), "exclusion constraints are PostgreSQL-only", false},
	{regexp.MustCompile(`(?i)\bunlogged\b`), "unlogged tables are PostgreSQL-only", false},
	{regexp.MustCompile(`(?i)\bcreate\s+materialized\s+view\b`), "keep materialized views out of the common set", false},
	{regexp.MustCompile(`(?i)\busing\s+(gin|gist|brin|spgist)\b`), "index methods other than btree are engine-specific", false},
	{regexp.MustCompile(`(?i)\busing\s+hash\b`), "USING HASH is a hash-sharded index on CockroachDB (a hash index on PostgreSQL): it belongs in the cockroach set", true},
	{regexp.MustCompile(`(?i)\blocality\b|\bregional\s+by\s+row\b|\bbucket_count\b|\bconfigure\s+zone\b|\bcrdb_internal_region\b|\bgateway_region\s*\(|\balter\s+primary\s+key\b|\b(primary|add|drop)\s+region\b|\bsurvive\b|\bdrop\s+index\s+\w+@`), "CockroachDB-only DDL belongs in the cockroach set", true},
	{regexp.MustCompile(`(?i)\bconcurrently\b`), "CREATE INDEX CONCURRENTLY cannot run inside the migration transaction", false},
	{regexp.MustCompile(`(?i)\bdo\s+\$`), "anonymous code blocks are PostgreSQL-only", false},
}

var lineComment = regexp.MustCompile(`--[^\n]*`)

var ddl = regexp.MustCompile(`(?is)^\s*(create|alter|drop)\b`)

// LintCockroach checks a cockroach-set migration statement by statement,
// the rules of Lint turned around: every DDL statement must use a
// CockroachDB-only construct (otherwise it belongs in the common set, where
// both engines run it), and none may use a PostgreSQL-only one.
func LintCockroach(m Migration) []Violation {
	var out []Violation
	line := 1
	for _, stmt := range strings.Split(m.SQL, ";") {
		start := line + strings.Count(stmt, "\n") - strings.Count(strings.TrimLeft(stmt, " \t\r\n"), "\n")
		line += strings.Count(stmt, "\n")
		code := lineComment.ReplaceAllString(stmt, "")
		if strings.TrimSpace(code) == "" {
			continue
		}
		crdb := false
		for _, r := range rules {
			if !r.re.MatchString(code) {
				continue
			}
			if r.cockroach {
				crdb = true
				continue
			}
			out = append(out, Violation{Key: m.Key(), Line: start, Reason: r.reason})
		}
		if ddl.MatchString(code) && !crdb {
			out = append(out, Violation{Key: m.Key(), Line: start, Reason: "portable DDL belongs in the common set, where both engines run it"})
		}
	}
	return out
}

// Lint reports the constructs of rule 1 that a common-set migration uses.
func Lint(m Migration) []Violation {
	var out []Violation
	for i, line := range strings.Split(m.SQL, "\n") {
		code := lineComment.ReplaceAllString(line, "")
		for _, r := range rules {
			if r.re.MatchString(code) {
				out = append(out, Violation{Key: m.Key(), Line: i + 1, Reason: r.reason})
			}
		}
	}
	return out
}
