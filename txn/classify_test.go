package txn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestIsRetryable(t *testing.T) {
	t.Parallel()
	serialization := &pgconn.PgError{Code: "40001", Message: "could not serialize access due to read/write dependencies among transactions"}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"40001 serialization failure", serialization, true},
		{"40001 wrapped by fn", fmt.Errorf("debit account: %w", serialization), true},
		{"40P01 deadlock", &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}, true},
		{"crdb restart", &pgconn.PgError{Code: "40001", Message: "restart transaction: TransactionRetryWithProtoRefreshError: TransactionRetryError: retry txn (RETRY_SERIALIZABLE - failed preemptive refresh)"}, true},
		{"crdb legacy CR000", &pgconn.PgError{Code: "CR000", Message: "restart transaction"}, true},
		{"crdb restart text without SQLSTATE", errors.New("restart transaction: TransactionRetryWithProtoRefreshError: WriteTooOldError"), true},
		{"crdb RETRY_ reason without SQLSTATE", errors.New("TransactionRetryError: retry txn (RETRY_WRITE_TOO_OLD)"), true},
		{"40003 statement completion unknown", &pgconn.PgError{Code: "40003", Message: "result is ambiguous (error=rpc error: ... restart transaction)"}, false},
		{"23505 unique violation", &pgconn.PgError{Code: "23505", Message: "duplicate key value violates unique constraint"}, false},
		{"08006 connection failure", &pgconn.PgError{Code: "08006"}, false},
		{"io error", io.ErrUnexpectedEOF, false},
		{"context canceled", context.Canceled, false},
		{"plain error", errors.New("insufficient funds"), false},
		{"ambiguous commit, even around a 40001", ambiguousCommitError("s", 1, serialization), false},
	} {
		if got := IsRetryable(tc.err); got != tc.want {
			t.Errorf("%s: IsRetryable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// claimsNotSent mimics pgx's "conn closed" error, which claims SafeToRetry
// even when it reports a connection lost after the COMMIT was sent.
type claimsNotSent struct{}

func (claimsNotSent) Error() string     { return "conn closed" }
func (claimsNotSent) SafeToRetry() bool { return true }

func TestClassifyCommit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want commitVerdict
	}{
		{"40001 at commit", &pgconn.PgError{Severity: "ERROR", Code: "40001"}, commitRetry},
		{"40001 crdb restart at commit", &pgconn.PgError{Severity: "ERROR", Code: "40001", Message: "restart transaction: TransactionRetryWithProtoRefreshError"}, commitRetry},
		{"40P01 at commit", &pgconn.PgError{Severity: "ERROR", Code: "40P01"}, commitRetry},
		{"deferred unique violation", &pgconn.PgError{Severity: "ERROR", Code: "23505"}, commitFailed},
		{"server answered ROLLBACK", pgx.ErrTxCommitRollback, commitFailed},
		{"fn ended the transaction", pgx.ErrTxClosed, commitFailed},
		{"40003 result is ambiguous", &pgconn.PgError{Severity: "ERROR", Code: "40003", Message: "result is ambiguous"}, commitAmbiguous},
		{"08006 connection failure", &pgconn.PgError{Severity: "FATAL", Code: "08006"}, commitAmbiguous},
		{"08P01 protocol violation", &pgconn.PgError{Severity: "ERROR", Code: "08P01"}, commitAmbiguous},
		{"57P01 admin shutdown", &pgconn.PgError{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P01"}, commitAmbiguous},
		{"connection lost", fmt.Errorf("commit: %w", io.ErrUnexpectedEOF), commitAmbiguous},
		{"network error", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, commitAmbiguous},
		{"deadline while waiting", fmt.Errorf("timeout: %w", context.DeadlineExceeded), commitAmbiguous},
		{"conn closed claiming SafeToRetry", claimsNotSent{}, commitAmbiguous},
	} {
		if got := classifyCommit(tc.err); got != tc.want {
			t.Errorf("%s: classifyCommit(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestAmbiguousCommitErrorWrapsCause(t *testing.T) {
	t.Parallel()
	cause := &pgconn.PgError{Code: "40003"}
	err := ambiguousCommitError("s1", 2, cause)
	if !errors.Is(err, ErrAmbiguousCommit) {
		t.Errorf("%v does not match ErrAmbiguousCommit", err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr != cause {
		t.Errorf("%v does not wrap its cause", err)
	}
}

func TestEngineFromVersion(t *testing.T) {
	t.Parallel()
	for version, want := range map[string]Engine{
		"PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc 12.2.0, 64-bit":        EnginePostgreSQL,
		"CockroachDB CCL v24.1.0 (x86_64-pc-linux-gnu, built 2024/05/15 21:28:29, go1.22.2 X:nocoverageredesign)": EngineCockroachDB,
	} {
		if got := engineFromVersion(version); got != want {
			t.Errorf("engineFromVersion(%q) = %v, want %v", version, got, want)
		}
	}
}
