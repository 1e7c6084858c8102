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
}

// rules lists PostgreSQL-only constructs. The match runs on SQL with
// comments removed, case-insensitively.
var rules = []rule{
	{regexp.MustCompile(`(?i)\b(big)?serial\b|\bsmallserial\b`), "SERIAL columns are sequences; use UUID keys"},
	{regexp.MustCompile(`(?i)\bcreate\s+sequence\b|\bnextval\s*\(`), "sequences make hot keys; use UUID keys"},
	{regexp.MustCompile(`(?i)\bgenerated\s+(always|by\s+default)\s+as\s+identity\b`), "identity columns are sequences; use UUID keys"},
	{regexp.MustCompile(`(?i)\bpg_(try_)?advisory_(xact_)?lock`), "advisory locks do not exist on CockroachDB"},
	{regexp.MustCompile(`(?i)\b(listen|notify|unlisten)\b\s+\w+|\bpg_notify\s*\(`), "LISTEN/NOTIFY does not exist on CockroachDB"},
	{regexp.MustCompile(`(?i)\bcreate\s+(or\s+replace\s+)?(constraint\s+)?trigger\b`), "triggers are not allowed"},
	{regexp.MustCompile(`(?i)\bcreate\s+(or\s+replace\s+)?(function|procedure)\b`), "stored procedures and functions are not allowed"},
	{regexp.MustCompile(`(?i)\binherits\s*\(`), "table inheritance does not exist on CockroachDB"},
	{regexp.MustCompile(`(?i)\bcreate\s+(extension|rule)\b`), "extensions and rules are PostgreSQL-only"},
	{regexp.MustCompile(`(?i)\bexclude\s+using\b`), "exclusion constraints are PostgreSQL-only"},
	{regexp.MustCompile(`(?i)\bunlogged\b`), "unlogged tables are PostgreSQL-only"},
	{regexp.MustCompile(`(?i)\bcreate\s+materialized\s+view\b`), "keep materialized views out of the common set"},
	{regexp.MustCompile(`(?i)\busing\s+(gin|gist|brin|spgist|hash)\b`), "index methods other than btree are engine-specific"},
	{regexp.MustCompile(`(?i)\blocality\b|\bregional\s+by\s+row\b|\bbucket_count\b|\bconfigure\s+zone\b`), "CockroachDB-only DDL belongs in the cockroach set"},
	{regexp.MustCompile(`(?i)\bconcurrently\b`), "CREATE INDEX CONCURRENTLY cannot run inside the migration transaction"},
	{regexp.MustCompile(`(?i)\bdo\s+\$`), "anonymous code blocks are PostgreSQL-only"},
}

var lineComment = regexp.MustCompile(`--[^\n]*`)

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
