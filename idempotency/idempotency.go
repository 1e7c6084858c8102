// Package idempotency makes every POST safe to retry, with the semantics of
// the IETF Idempotency-Key draft as Stripe implements them:
//
//   - keys are scoped per tenant, 1 to 255 printable characters, and kept at
//     least 24 hours (Purge removes older ones);
//   - the same key with the same request (method, path and canonicalized
//     JSON body) replays the stored answer, status and body byte for byte;
//   - the same key with a different request answers 422;
//   - the same key while the first request still runs answers 409;
//   - a request refused by validation before it starts stores nothing.
//
// The record is written by the use case inside its own database
// transaction (Claim in the first, Complete in the last), so a crash never
// leaves effects without a record or a record without its effects. A request
// whose process died mid-way leaves an in_progress record with a lease; a
// retry after the lease expires takes it over and resumes from the recovery
// point (the resource the first attempt created).
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payments-api/payments/errcode"
)

// Limits and durations.
const (
	KeyLengthMax = 255
	// Retention is how long a key is kept at least.
	Retention = 24 * time.Hour
	// LeaseDefault is how long an in_progress record blocks retries before
	// a retry may take it over, when the request sets no Lease. A service
	// whose requests may run longer sets Request.Lease from its bounds
	// (see LeaseFor).
	LeaseDefault = 60 * time.Second
	// LeaseMargin is what a lease adds to the longest a request may run.
	LeaseMargin = 20 * time.Second
	// PurgeBatchMax bounds one purge statement.
	PurgeBatchMax = 1000
)

// Stored is a completed answer.
type Stored struct {
	Status int
	Body   []byte
}

// Renderer turns a use case's result (or its error) into the exact answer
// the client receives.
type Renderer func(result any, err error) (status int, body []byte, rerr error)

// Request is one POST that carries an Idempotency-Key.
type Request struct {
	TenantID    uuid.UUID
	Key         string
	Fingerprint [32]byte
	Method      string
	Path        string
	Now         func() time.Time
	// Lease is how long the claim blocks a retry; zero means LeaseDefault.
	// It must exceed the longest the request may run, or a retry could take
	// over a live request's key.
	Lease time.Duration

	render    Renderer
	claimed   bool
	completed bool
}

type ctxKey struct{}

// WithRequest attaches r to ctx for the use case to find.
func WithRequest(ctx context.Context, r *Request) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// From returns the request attached to ctx, or nil when the client sent no
// Idempotency-Key.
func From(ctx context.Context) *Request {
	r, _ := ctx.Value(ctxKey{}).(*Request)
	return r
}

// SetRenderer sets how the answer is rendered for storage.
func (r *Request) SetRenderer(f Renderer) { r.render = f }

// Claimed reports whether a use case claimed the key.
func (r *Request) Claimed() bool { return r.claimed }

// LeaseFor returns the lease of requests that run at most runMax: runMax
// plus LeaseMargin, and never less than LeaseDefault.
func LeaseFor(runMax time.Duration) time.Duration {
	return max(runMax+LeaseMargin, LeaseDefault)
}

func (r *Request) lease() time.Duration {
	if r.Lease > 0 {
		return r.Lease
	}
	return LeaseDefault
}

func (r *Request) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// ValidateKey checks a client's key. Errors: idempotency_key_invalid.
func ValidateKey(key string) error {
	if len(key) == 0 || len(key) > KeyLengthMax {
		return errcode.Invalid(errcode.CodeIdempotencyKeyInvalid, "Idempotency-Key", "the Idempotency-Key header must be 1 to %d characters", KeyLengthMax)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return errcode.Invalid(errcode.CodeIdempotencyKeyInvalid, "Idempotency-Key", "the Idempotency-Key header must be printable ASCII")
		}
	}
	return nil
}

// Fingerprint identifies a request: method, path and the body with JSON
// canonicalized (object keys sorted, insignificant whitespace removed,
// numbers kept as written), so a client that re-serializes the same request
// differently is still recognized. A body that is not JSON is taken as is.
func Fingerprint(method, path string, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(canonical(body))
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func canonical(body []byte) []byte {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return body
	}
	// encoding/json writes map keys sorted.
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

var (
	errReused = errcode.New(errcode.KindUnprocessable, errcode.CodeIdempotencyReused,
		"this Idempotency-Key was used with a different request; use a new key for a new request")
	errInFlight = errcode.New(errcode.KindConflict, errcode.CodeIdempotencyInFlight,
		"a request with this Idempotency-Key is still being processed; retry later")
)

// Replay is Claim's answer for a key whose request completed: the stored
// answer, which the edge sends again as it is, marked replayed.
type Replay struct {
	Stored
}

func (r *Replay) Error() string {
	return fmt.Sprintf("idempotency: replay of the stored answer (status %d)", r.Status)
}

// Claim takes the key inside the use case's first transaction. It returns
// the recovery point, the resource that an earlier attempt whose lease
// expired had created, or nil for a fresh key. Errors: *Replay for a key
// whose request completed with the same fingerprint,
// idempotency_key_reused, idempotency_key_in_use.
func (r *Request) Claim(ctx context.Context, tx pgx.Tx) (*uuid.UUID, error) {
	now := r.now()
	tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (tenant_id, key, fingerprint, method, path, status, locked_until, created_at)
		VALUES ($1, $2, $3, $4, $5, 'in_progress', $6, $7) ON CONFLICT (tenant_id, key) DO NOTHING`,
		r.TenantID, r.Key, r.Fingerprint[:], r.Method, r.Path, now.Add(r.lease()), now)
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if tag.RowsAffected() == 1 {
		r.claimed = true
		return nil, nil
	}
	var fp []byte
	var status string
	var lockedUntil *time.Time
	var resource *uuid.UUID
	var respStatus *int
	var respBody []byte
	err = tx.QueryRow(ctx, `SELECT fingerprint, status, locked_until, resource_id, response_status, response_body
		FROM idempotency_keys WHERE tenant_id = $1 AND key = $2`,
		r.TenantID, r.Key).Scan(&fp, &status, &lockedUntil, &resource, &respStatus, &respBody)
	if err != nil {
		return nil, fmt.Errorf("read idempotency key: %w", err)
	}
	if !bytes.Equal(fp, r.Fingerprint[:]) {
		return nil, errReused
	}
	if status == "completed" && respStatus != nil {
		return nil, &Replay{Stored: Stored{Status: *respStatus, Body: respBody}}
	}
	if status == "completed" || (lockedUntil != nil && now.Before(*lockedUntil)) {
		return nil, errInFlight
	}
	if _, err := tx.Exec(ctx, `UPDATE idempotency_keys SET locked_until = $3 WHERE tenant_id = $1 AND key = $2`,
		r.TenantID, r.Key, now.Add(r.lease())); err != nil {
		return nil, fmt.Errorf("take over idempotency key: %w", err)
	}
	r.claimed = true
	return resource, nil
}

// SetResource records the recovery point in the same transaction that
// created the resource.
func (r *Request) SetResource(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	if _, err := tx.Exec(ctx, `UPDATE idempotency_keys SET resource_id = $3 WHERE tenant_id = $1 AND key = $2`, r.TenantID, r.Key, id); err != nil {
		return fmt.Errorf("record idempotency recovery point: %w", err)
	}
	return nil
}

// Complete stores the final answer inside the use case's last transaction.
func (r *Request) Complete(ctx context.Context, tx pgx.Tx, result any, resultErr error) error {
	if r.render == nil {
		return errors.New("idempotency: no renderer set")
	}
	status, body, err := r.render(result, resultErr)
	if err != nil {
		return fmt.Errorf("render idempotent answer: %w", err)
	}
	if _, err := tx.Exec(ctx, completeSQL, r.TenantID, r.Key, status, body, r.now()); err != nil {
		return fmt.Errorf("complete idempotency key: %w", err)
	}
	r.completed = true
	return nil
}

// Completed reports whether Complete stored the answer (in a transaction
// that may still roll back: callers check it after their commit).
func (r *Request) Completed() bool { return r.completed }

// claimManySQL claims every free key of a batch in one statement whose
// text is the same for any number of keys (one prepared statement).
const claimManySQL = `INSERT INTO idempotency_keys (tenant_id, key, fingerprint, method, path, status, locked_until, created_at, resource_id)
SELECT u.tenant_id, u.key, u.fingerprint, u.method, u.path, 'in_progress', u.locked_until, u.created_at, u.resource_id
FROM unnest($1::UUID[], $2::TEXT[], $3::BYTEA[], $4::TEXT[], $5::TEXT[], $6::TIMESTAMPTZ[], $7::TIMESTAMPTZ[], $8::UUID[])
    AS u (tenant_id, key, fingerprint, method, path, locked_until, created_at, resource_id)
ON CONFLICT (tenant_id, key) DO NOTHING
RETURNING tenant_id, key`

type tenantKey struct {
	tenant uuid.UUID
	key    string
}

// QueueClaims queues into b one statement that claims every key of reqs
// that is still free, each with resources[i] as its recovery point: the
// resource the request creates in the same transaction. After b ran,
// Claimed reports which keys were taken; a key that already existed was
// not, and its request goes through Claim to learn why.
func QueueClaims(b *pgx.Batch, reqs []*Request, resources []uuid.UUID) {
	if len(reqs) == 0 {
		return
	}
	n := len(reqs)
	tenants, keys, fps := make([]uuid.UUID, n), make([]string, n), make([][]byte, n)
	methods, paths := make([]string, n), make([]string, n)
	locked, created := make([]time.Time, n), make([]time.Time, n)
	byKey := make(map[tenantKey]*Request, n)
	for i, r := range reqs {
		r.claimed = false
		now := r.now()
		tenants[i], keys[i], fps[i] = r.TenantID, r.Key, r.Fingerprint[:]
		methods[i], paths[i] = r.Method, r.Path
		locked[i], created[i] = now.Add(r.lease()), now
		byKey[tenantKey{r.TenantID, r.Key}] = r
	}
	b.Queue(claimManySQL, tenants, keys, fps, methods, paths, locked, created, resources).Query(func(rows pgx.Rows) error {
		var k tenantKey
		_, err := pgx.ForEachRow(rows, []any{&k.tenant, &k.key}, func() error {
			if r := byKey[k]; r != nil {
				r.claimed = true
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("claim idempotency keys: %w", err)
		}
		return nil
	})
}

// Completions stores the final answers of many requests with one
// statement, in the use cases' last transaction.
type Completions struct {
	tenants  []uuid.UUID
	keys     []string
	statuses []int32
	bodies   [][]byte
	at       []time.Time
}

// Add renders r's final answer for storage.
func (c *Completions) Add(r *Request, result any, resultErr error) error {
	if r.render == nil {
		return errors.New("idempotency: no renderer set")
	}
	status, body, err := r.render(result, resultErr)
	if err != nil {
		return fmt.Errorf("render idempotent answer: %w", err)
	}
	c.tenants, c.keys = append(c.tenants, r.TenantID), append(c.keys, r.Key)
	c.statuses, c.bodies, c.at = append(c.statuses, int32(status)), append(c.bodies, body), append(c.at, r.now())
	return nil
}

// Queue queues the storage of every added answer into b.
func (c *Completions) Queue(b *pgx.Batch) {
	if len(c.keys) == 0 {
		return
	}
	b.Queue(completeManySQL, c.tenants, c.keys, c.statuses, c.bodies, c.at).Exec(func(pgconn.CommandTag) error { return nil })
}

const completeManySQL = `UPDATE idempotency_keys AS k SET status = 'completed', locked_until = NULL,
    response_status = u.status, response_body = u.body, completed_at = u.at
FROM unnest($1::UUID[], $2::TEXT[], $3::INT[], $4::BYTEA[], $5::TIMESTAMPTZ[]) AS u (tenant_id, key, status, body, at)
WHERE k.tenant_id = u.tenant_id AND k.key = u.key`

const completeSQL = `UPDATE idempotency_keys SET status = 'completed', locked_until = NULL, response_status = $3, response_body = $4, completed_at = $5
		WHERE tenant_id = $1 AND key = $2`

// Release ends the lease early when a request stops without an answer to
// store (the processor was unreachable), so the client's retry resumes at
// once instead of waiting for the lease.
func (r *Request) Release(ctx context.Context, pool *pgxpool.Pool) error {
	if !r.claimed {
		return nil
	}
	_, err := pool.Exec(ctx, `UPDATE idempotency_keys SET locked_until = NULL WHERE tenant_id = $1 AND key = $2 AND status = 'in_progress'`, r.TenantID, r.Key)
	if err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// Purge deletes up to PurgeBatchMax records created before cutoff on one
// shard and reports how many it deleted; call it until it returns 0.
func Purge(ctx context.Context, pool *pgxpool.Pool, cutoff time.Time) (int64, error) {
	tag, err := pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE (tenant_id, key) IN (
		SELECT tenant_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)`, cutoff, PurgeBatchMax)
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Abandon deletes a claim whose request ended without an answer to store,
// as if the key had never been sent: a retry runs the request again. Use it
// only where running again is safe (the request left no effect, or its
// effect is the same when repeated).
func (r *Request) Abandon(ctx context.Context, pool *pgxpool.Pool) error {
	if !r.claimed {
		return nil
	}
	_, err := pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND status = 'in_progress'`, r.TenantID, r.Key)
	if err != nil {
		return fmt.Errorf("abandon idempotency key: %w", err)
	}
	r.claimed = false
	return nil
}
