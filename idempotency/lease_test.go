package idempotency_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/idempotency"
)

// TestLeaseBlocksRetriesForItsWholeLength claims a key with a lease longer
// than the default, as a service with a long processor timeout does: a
// retry after the default lease but within the request's own lease is
// refused as in flight, and only a retry after it takes the key over.
func TestLeaseBlocksRetriesForItsWholeLength(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	start := time.Now().UTC().Truncate(time.Millisecond)
	lease := idempotency.LeaseFor(130 * time.Second)
	if lease <= 130*time.Second {
		t.Fatalf("LeaseFor(130s) = %v, want more than 130s", lease)
	}
	tenant, resource := uuid.New(), uuid.New()
	req := func(at time.Time) *idempotency.Request {
		return &idempotency.Request{
			TenantID: tenant, Key: "k-1", Method: "POST", Path: "/v1/payments", Lease: lease,
			Fingerprint: idempotency.Fingerprint("POST", "/v1/payments", []byte(`{"amount":1}`)),
			Now:         func() time.Time { return at },
		}
	}
	claim := func(r *idempotency.Request, res uuid.UUID) (*uuid.UUID, error) {
		var got *uuid.UUID
		tx, err := pool.BeginTx(ctx, pgx.TxOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		got, err = r.Claim(ctx, tx)
		if err == nil && got == nil {
			err = r.SetResource(ctx, tx, res)
		}
		if err == nil {
			err = tx.Commit(ctx)
		}
		return got, err
	}

	if _, err := claim(req(start), resource); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	late := start.Add(idempotency.LeaseDefault + 10*time.Second)
	if _, err := claim(req(late), uuid.New()); !errcode.Is(err, errcode.CodeIdempotencyInFlight) {
		t.Fatalf("retry after the default lease, within the request's lease: %v, want %s", err, errcode.CodeIdempotencyInFlight)
	}
	after := start.Add(lease + time.Second)
	got, err := claim(req(after), uuid.New())
	if err != nil || got == nil || *got != resource {
		t.Fatalf("retry after the lease: resume %v, %v; want the first attempt's resource %v", got, err, resource)
	}
}
