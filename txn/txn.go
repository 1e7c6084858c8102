package txn

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Defaults applied to the zero values of Options.
const (
	AttemptsMaxDefault = 10
	BackoffBaseDefault = 2 * time.Millisecond
	BackoffMaxDefault  = 250 * time.Millisecond
	NameDefault        = "default"
)

// rollbackTimeoutMax bounds the ROLLBACK after a failed attempt. The ROLLBACK
// runs even when the caller's context has ended, so that the connection goes
// back to the pool clean instead of being closed.
const rollbackTimeoutMax = 5 * time.Second

// The isolation levels: Run uses SERIALIZABLE; RunReadCommitted, for work
// that a fencing token or version guard already makes safe, READ COMMITTED.
var (
	serializable  = pgx.TxOptions{IsoLevel: pgx.Serializable}
	readCommitted = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}
)

// Options configures a Runner. The zero value is usable.
type Options struct {
	// AttemptsMax bounds the transactions one call of Run starts, the first
	// included. Zero means AttemptsMaxDefault.
	AttemptsMax int
	// BackoffBase is the ceiling of the sleep after the first failed
	// attempt; the ceiling doubles after each further failure, up to
	// BackoffMax. The sleep is drawn uniformly below the ceiling (full
	// jitter), so that contending callers spread out. Zero means
	// BackoffBaseDefault.
	BackoffBase time.Duration
	// BackoffMax caps the ceiling of the sleep. Zero means BackoffMaxDefault.
	BackoffMax time.Duration
	// Metrics receives counts; nil records nothing.
	Metrics *Metrics
	// Name is the shard name used as the shard label of the metrics and in
	// error messages. Empty means NameDefault.
	Name string
	// Tracer, when set, records a span per call of Run (and per batch and
	// batch wait of a Batcher) inside a traced caller's span; nil records
	// nothing and costs nothing.
	Tracer trace.Tracer
}

// withDefaults fills zero values and rejects values that cannot work.
func (o Options) withDefaults() (Options, error) {
	if o.AttemptsMax == 0 {
		o.AttemptsMax = AttemptsMaxDefault
	}
	if o.BackoffBase == 0 {
		o.BackoffBase = BackoffBaseDefault
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = BackoffMaxDefault
	}
	if o.Name == "" {
		o.Name = NameDefault
	}
	switch {
	case o.AttemptsMax < 0:
		return o, fmt.Errorf("AttemptsMax is %d: use a positive bound, or 0 for the default %d", o.AttemptsMax, AttemptsMaxDefault)
	case o.BackoffBase < 0 || o.BackoffMax < 0:
		return o, fmt.Errorf("BackoffBase %v and BackoffMax %v must not be negative (0 means the defaults %v and %v)",
			o.BackoffBase, o.BackoffMax, BackoffBaseDefault, BackoffMaxDefault)
	case o.BackoffBase > o.BackoffMax:
		return o, fmt.Errorf("BackoffBase %v exceeds BackoffMax %v: the cap must be at least the first sleep", o.BackoffBase, o.BackoffMax)
	}
	return o, nil
}

// Runner runs functions in SERIALIZABLE transactions on one pool (one shard)
// and retries them correctly for the pool's engine. It is safe for
// concurrent use.
type Runner struct {
	pool   *pgxpool.Pool
	engine Engine
	opts   Options
	// sleep waits for d or until ctx ends; tests replace it to observe
	// the backoff.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a Runner for pool. It asks the server once which engine it is,
// so it fails when the database cannot be reached.
func New(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Runner, error) {
	if pool == nil {
		return nil, errors.New("txn: new runner: pool is nil")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("txn: new runner for shard %s: %w", opts.Name, err)
	}
	engine, err := DetectEngine(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("txn: new runner for shard %s: %w", opts.Name, err)
	}
	return &Runner{pool: pool, engine: engine, opts: opts, sleep: sleepContext}, nil
}

// Pool returns the pool the Runner uses, for reads that need no transaction.
// Writes go through Run.
func (r *Runner) Pool() *pgxpool.Pool { return r.pool }

// Engine returns the engine detected when the Runner was built.
func (r *Runner) Engine() Engine { return r.engine }

// Run calls fn in a SERIALIZABLE transaction and commits it. When fn or the
// COMMIT fails with a retryable error (IsRetryable), Run rolls back, sleeps
// and calls fn again in a new transaction, at most Options.AttemptsMax
// times. See the package documentation for the contract fn must keep.
//
// Run returns:
//   - nil when a COMMIT succeeded;
//   - fn's error itself, after rollback, when it is not retryable, so that
//     errors.Is and errors.As see it unchanged;
//   - an error matching ErrAmbiguousCommit when the COMMIT got no answer;
//     the transaction may have committed, and Run does not retry;
//   - an error matching ErrAttemptsExhausted and wrapping the last
//     retryable error when every attempt failed;
//   - an error wrapping ctx.Err() when ctx ended between attempts, during
//     the backoff, or before the COMMIT was sent (nothing committed);
//   - a wrapped error when BEGIN fails or the server rejects the COMMIT
//     with a non-retryable error (nothing committed).
func (r *Runner) Run(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return r.run(ctx, serializable, fn)
}

// RunReadCommitted is Run at READ COMMITTED, with the same retries and the
// same answers. It is for background work whose every write is guarded by
// a condition the statement itself re-checks (a fencing token, a version,
// "still undispatched"), so that it never takes SERIALIZABLE predicate
// locks on the index pages every payment writes, and never becomes the
// pivot that aborts a payment. On CockroachDB without read committed
// enabled the engine runs it as SERIALIZABLE, which is stronger.
func (r *Runner) RunReadCommitted(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return r.run(ctx, readCommitted, fn)
}

func (r *Runner) run(ctx context.Context, iso pgx.TxOptions, fn func(ctx context.Context, tx pgx.Tx) error) error {
	if r.opts.Tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return r.attempts(ctx, iso, fn, nil)
	}
	ctx, span := r.opts.Tracer.Start(ctx, "txn", trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(
		attribute.String("payments.shard", r.opts.Name), attribute.String("payments.txn.isolation", string(iso.IsoLevel))))
	var attempts int
	err := r.attempts(ctx, iso, fn, &attempts)
	span.SetAttributes(attribute.Int("payments.txn.attempts", attempts))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "transaction not committed")
	}
	span.End()
	return err
}

// attempts runs fn in transactions until one commits or the outcome is
// final; n, when set, receives the number of attempts started.
func (r *Runner) attempts(ctx context.Context, iso pgx.TxOptions, fn func(ctx context.Context, tx pgx.Tx) error, n *int) error {
	var last error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return r.canceled(attempt-1, err, last)
		}
		if n != nil {
			*n = attempt
		}
		v, err := r.attempt(ctx, iso, attempt, fn)
		switch v {
		case attemptCommitted:
			r.opts.Metrics.finish(r.opts.Name, OutcomeCommitted, attempt)
			return nil
		case attemptAmbiguous:
			r.opts.Metrics.finish(r.opts.Name, OutcomeAmbiguous, attempt)
			return err
		case attemptFailed:
			outcome := OutcomeFailed
			if ctx.Err() != nil {
				outcome = OutcomeCanceled
			}
			r.opts.Metrics.finish(r.opts.Name, outcome, attempt)
			return err
		}
		// attemptRetry: nothing committed and a new transaction may succeed.
		last = err
		if attempt >= r.opts.AttemptsMax {
			r.opts.Metrics.finish(r.opts.Name, OutcomeExhausted, attempt)
			return fmt.Errorf("%w: shard %s, %d of %d attempts failed, the last with: %w",
				ErrAttemptsExhausted, r.opts.Name, attempt, r.opts.AttemptsMax, err)
		}
		r.opts.Metrics.retry(r.opts.Name, retryReason(err))
		if err := r.sleep(ctx, r.backoff(attempt)); err != nil {
			return r.canceled(attempt, err, last)
		}
	}
}

// attemptVerdict is how one attempt ended.
type attemptVerdict int

const (
	attemptCommitted attemptVerdict = iota + 1
	attemptRetry
	attemptFailed
	attemptAmbiguous
)

// attempt runs one whole transaction: BEGIN, fn, COMMIT.
func (r *Runner) attempt(ctx context.Context, iso pgx.TxOptions, attempt int, fn func(ctx context.Context, tx pgx.Tx) error) (attemptVerdict, error) {
	tx, err := r.pool.BeginTx(ctx, iso)
	if err != nil {
		err = fmt.Errorf("txn: shard %s: begin: %w", r.opts.Name, err)
		if IsRetryable(err) {
			return attemptRetry, err
		}
		return attemptFailed, err
	}
	defer func() {
		if p := recover(); p != nil {
			r.rollback(ctx, tx)
			panic(p)
		}
	}()

	if err := fn(ctx, tx); err != nil {
		r.rollback(ctx, tx)
		if IsRetryable(err) {
			return attemptRetry, err
		}
		return attemptFailed, err
	}

	if err := ctx.Err(); err != nil {
		// Not sending COMMIT keeps the outcome known: nothing committed.
		r.rollback(ctx, tx)
		return attemptFailed, fmt.Errorf("txn: shard %s: not committed: %w", r.opts.Name, err)
	}
	err = tx.Commit(ctx)
	if err == nil {
		return attemptCommitted, nil
	}
	switch classifyCommit(err) {
	case commitRetry:
		return attemptRetry, fmt.Errorf("txn: shard %s: commit: %w", r.opts.Name, err)
	case commitFailed:
		if errors.Is(err, pgx.ErrTxClosed) {
			return attemptFailed, fmt.Errorf("txn: shard %s: fn must not commit or roll back the transaction itself: %w", r.opts.Name, err)
		}
		return attemptFailed, fmt.Errorf("txn: shard %s: commit rejected, nothing committed: %w", r.opts.Name, err)
	default:
		return attemptAmbiguous, ambiguousCommitError(r.opts.Name, attempt, err)
	}
}

// rollback ends a failed attempt. Its error is dropped on purpose: pgx closes
// a connection whose ROLLBACK failed, and the server rolls back the
// transaction of a closed connection, so nothing is left to do.
func (r *Runner) rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeoutMax)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// canceled records and builds the error for a context that ended after
// attempts attempts. The last retryable error is kept in the message only:
// wrapping it would make the result look retryable to IsRetryable.
func (r *Runner) canceled(attempts int, ctxErr, last error) error {
	r.opts.Metrics.finish(r.opts.Name, OutcomeCanceled, attempts)
	if last == nil {
		return fmt.Errorf("txn: shard %s: %w", r.opts.Name, ctxErr)
	}
	return fmt.Errorf("txn: shard %s: stopped after %d attempts (last error: %v): %w", r.opts.Name, attempts, last, ctxErr)
}

// backoff returns the sleep after failed attempt n (1-based): uniform in
// [0, ceiling) with ceiling = min(BackoffMax, BackoffBase * 2^(n-1)).
func (r *Runner) backoff(n int) time.Duration {
	ceiling := backoffCeiling(r.opts.BackoffBase, r.opts.BackoffMax, n)
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}

// backoffCeiling returns min(limit, base * 2^(n-1)) without overflowing.
func backoffCeiling(base, limit time.Duration, n int) time.Duration {
	ceiling := base
	for i := 1; i < n && ceiling < limit; i++ {
		if ceiling > limit/2 {
			return limit
		}
		ceiling *= 2
	}
	return min(ceiling, limit)
}

// sleepContext waits for d or until ctx ends, whichever comes first.
func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
