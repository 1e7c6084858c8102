package txn

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrAmbiguousCommit matches (errors.Is) the error Run returns when a COMMIT
// was sent but no answer came back: the transaction may or may not have
// committed. Run never retries such a transaction. The returned error also
// wraps the cause (an I/O error, a context error, a *pgconn.PgError with
// SQLSTATE 40003 or 08xxx).
var ErrAmbiguousCommit = errors.New("txn: commit outcome unknown")

// ErrAttemptsExhausted matches (errors.Is) the error Run returns when every
// one of Options.AttemptsMax attempts failed with a retryable error. The
// returned error also wraps the last retryable cause, so IsRetryable reports
// true for it: nothing committed, and a caller further out (a client, after
// a Retry-After) may try again later.
var ErrAttemptsExhausted = errors.New("txn: attempts exhausted")

// SQLSTATE codes this package acts on.
const (
	codeSerializationFailure = "40001" // PostgreSQL SSI, CockroachDB restarts
	codeDeadlockDetected     = "40P01" // PostgreSQL deadlock victim
	codeCompletionUnknown    = "40003" // statement_completion_unknown: CockroachDB "result is ambiguous"
	codeCockroachRetryLegacy = "CR000" // CockroachDB's former retry code, kept for old servers
	classConnectionException = "08"
)

// cockroachRetryMessage matches the text of a CockroachDB restart error,
// for errors whose SQLSTATE was lost on the way (a driver or a caller that
// rebuilt the error from its text). Examples: "restart transaction:
// TransactionRetryWithProtoRefreshError: ... (RETRY_SERIALIZABLE)",
// "... TransactionAbortedError(ABORT_REASON_CLIENT_REJECT)".
var cockroachRetryMessage = regexp.MustCompile(`restart transaction|TransactionRetry|RETRY_[A-Z_]+|ABORT_REASON_[A-Z_]+`)

// sqlState returns the SQLSTATE of the first error in err's chain that has
// one (a *pgconn.PgError, or any driver error with a SQLState method), or "".
func sqlState(err error) string {
	var withState interface{ SQLState() string }
	if errors.As(err, &withState) {
		return withState.SQLState()
	}
	return ""
}

// IsRetryable reports whether err means the transaction was not committed and
// running it again from the start may succeed: SQLSTATE 40001
// (serialization failure, including every CockroachDB restart error), 40P01
// (deadlock victim) or CockroachDB's legacy CR000; or, for an error that lost
// its SQLSTATE, a CockroachDB restart message. An error with any other
// SQLSTATE is not retryable, notably 40003 (statement completion unknown),
// which means the outcome is unknown. Errors matching ErrAmbiguousCommit are
// never retryable.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, ErrAmbiguousCommit) {
		return false
	}
	switch sqlState(err) {
	case codeSerializationFailure, codeDeadlockDetected, codeCockroachRetryLegacy:
		return true
	case "":
		return cockroachRetryMessage.MatchString(err.Error())
	default:
		return false
	}
}

// retryReason returns the bounded metric label for a retryable err.
func retryReason(err error) string {
	switch sqlState(err) {
	case codeSerializationFailure:
		return "serialization_failure"
	case codeDeadlockDetected:
		return "deadlock_detected"
	default:
		return "restart"
	}
}

// commitVerdict is what a failed COMMIT says about the transaction.
type commitVerdict int

const (
	commitRetry     commitVerdict = iota + 1 // the server rolled back, retryable
	commitFailed                             // the server rolled back, not retryable
	commitAmbiguous                          // no answer: committed or not, unknown
)

// classifyCommit decides what a non-nil COMMIT error means. Only an answer
// from the server (an ERROR-severity PgError, or the ROLLBACK command tag)
// proves that nothing committed; everything else is ambiguous.
//
// pgconn.SafeToRetry is deliberately not consulted: pgx v5.12 reports a
// connection lost while waiting for the COMMIT's answer as "conn closed", an
// error whose SafeToRetry is true although the COMMIT was sent (the
// ambiguous-commit test catches this). Run checks the context before sending
// COMMIT instead, which covers the one case SafeToRetry would add.
func classifyCommit(err error) commitVerdict {
	if errors.Is(err, pgx.ErrTxCommitRollback) || errors.Is(err, pgx.ErrTxClosed) {
		// The server answered ROLLBACK, or fn ended the transaction
		// itself and no COMMIT was sent.
		return commitFailed
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return commitAmbiguous // I/O error, broken connection, context ended while waiting
	}
	severity := pgErr.SeverityUnlocalized
	if severity == "" {
		severity = pgErr.Severity
	}
	switch {
	case pgErr.Code == codeCompletionUnknown,
		strings.HasPrefix(pgErr.Code, classConnectionException),
		severity == "FATAL", severity == "PANIC":
		// The server says itself that it does not know, or it is
		// dropping the connection.
		return commitAmbiguous
	case IsRetryable(pgErr):
		return commitRetry
	default:
		return commitFailed
	}
}

// ambiguousCommitError wraps cause so that errors.Is(err, ErrAmbiguousCommit)
// holds and the cause stays reachable.
func ambiguousCommitError(name string, attempt int, cause error) error {
	return fmt.Errorf("%w: shard %s, attempt %d: the transaction may or may not have committed: %w",
		ErrAmbiguousCommit, name, attempt, cause)
}
