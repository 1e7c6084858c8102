// Package txn is the one way the service runs database work: a function in a
// SERIALIZABLE transaction, retried from scratch when the database reports
// that the transaction could not be serialized, with a bounded number of
// attempts, capped exponential backoff with full jitter, and an honest answer
// when the outcome of a COMMIT is unknown.
//
// # Why not cockroach-go's crdbpgx.ExecuteTx (DESIGN.md rule 2)
//
// crdbpgx.ExecuteTx wraps fn in SAVEPOINT cockroach_restart ... RELEASE
// SAVEPOINT cockroach_restart and ignores the error of the COMMIT that
// follows, because on CockroachDB the RELEASE of that savepoint is the
// commit: once it succeeds the COMMIT has nothing left to fail. On PostgreSQL
// RELEASE only forgets a savepoint and commits nothing. PostgreSQL's
// serializable snapshot isolation reports many serialization failures
// (SQLSTATE 40001) at COMMIT, and the helper drops exactly that error: the
// caller sees success for a transaction the server rolled back. Measured on
// PostgreSQL 15 with two concurrent "go off call if two doctors are on call"
// transactions, 200 rounds: in 75 rounds both callers got a nil error while
// one of the two updates was lost. The write-skew test in this package is the
// regression test for that.
//
// So every attempt here is a whole transaction: BEGIN ISOLATION LEVEL
// SERIALIZABLE, fn, COMMIT. When fn or the COMMIT fails with a retryable
// error (see IsRetryable) the transaction is rolled back, the Runner sleeps
// and starts a new transaction, at most Options.AttemptsMax times. No
// savepoint is used on either engine.
//
// # CockroachDB
//
// The engine is detected once, in New, from SELECT version(). On CockroachDB
// the Runner uses the same whole-transaction restart, deliberately, instead
// of the savepoint protocol:
//
//   - one retry loop serves both engines, and it is the loop that the tests
//     here exercise against a real PostgreSQL; there is no CockroachDB server
//     in the test setup, so a CockroachDB-only path could not be tested end
//     to end;
//   - the loop honours the context between attempts, backs off with jitter
//     and records metrics; crdb.ExecuteInTx retries immediately, without
//     backoff or a look at the context, and its bound (crdb.WithMaxRetries)
//     counts retries rather than attempts, with 0 meaning unlimited;
//   - CockroachDB accepts and documents a client-side loop that restarts the
//     whole transaction. What this gives up is the savepoint protocol's
//     property that a restarted transaction keeps its identity and raised
//     priority; under heavy contention a fresh transaction may need more
//     attempts. The
//     backoff and the attempt bound cover that, and DESIGN.md rule 7 keeps
//     hot rows out of the schema in the first place.
//
// What is CockroachDB-specific is only the classification of its errors:
// restart errors arrive as SQLSTATE 40001 with "restart transaction" and a
// RETRY_ or ABORT_ reason in the message, and an unknown commit outcome
// arrives as SQLSTATE 40003 ("result is ambiguous"). IsRetryable and the
// COMMIT classification described next handle both; they are unit-tested
// with synthetic errors, not against a CockroachDB server.
//
// # What a COMMIT can answer
//
// When the context has ended by the time fn returns, Run rolls back and does
// not send COMMIT, so that the outcome stays known. Otherwise:
//
//   - nil: committed.
//   - a server error, severity ERROR, retryable (40001, 40P01): nothing was
//     committed; the Runner retries.
//   - any other server error of severity ERROR, or pgx.ErrTxCommitRollback
//     (the server answered ROLLBACK): nothing was committed; the error is
//     returned.
//   - no answer: the connection broke, an I/O error, the context ended while
//     waiting, SQLSTATE 40003, a 08xxx connection exception, or a FATAL
//     error. The transaction may or may not have committed. Run returns an
//     error matching ErrAmbiguousCommit and never retries it: running fn
//     again could apply it twice. The caller resolves the outcome by reading
//     (for example through an idempotency record written in the same
//     transaction).
//
// # The contract for fn
//
// fn may run several times, each time in a new transaction, so it must not
// have effects outside tx (no network calls, DESIGN.md rule 3) and must not
// carry state between attempts except what it recomputes. It must return
// database errors unchanged or wrapped with %w, so that their SQLSTATE stays
// visible; it must not commit or roll back tx, nor use tx after it returns.
// A statement error that fn ignores aborts the transaction on PostgreSQL; the
// COMMIT then answers ROLLBACK and Run returns pgx.ErrTxCommitRollback.
package txn
