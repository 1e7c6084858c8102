package sharding_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/sharding"
)

// TestUUIDsRoundTripInBinary writes and reads uuid.UUID values, alone, in
// arrays, through pointers and as NULL, through a shard pool whose type
// map encodes them in binary.
func TestUUIDsRoundTripInBinary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, err := sharding.Open(ctx, []sharding.Config{{Name: "s0", Region: "local", DSN: dbtest.NewDatabase(t)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pool := m.All()[0].Pool
	a, b := uuid.New(), uuid.New()
	var one uuid.UUID
	var many []uuid.UUID
	var text string
	var null uuid.UUID
	var ptr *uuid.UUID
	err = pool.QueryRow(ctx, `SELECT $1::UUID, $2::UUID[], $1::UUID::TEXT, NULL::UUID, $3::UUID`, a, []uuid.UUID{a, b}, &b).
		Scan(&one, &many, &text, &null, &ptr)
	if err != nil {
		t.Fatal(err)
	}
	if one != a || len(many) != 2 || many[0] != a || many[1] != b || text != a.String() || null != uuid.Nil || ptr == nil || *ptr != b {
		t.Fatalf("round trip: %v %v %q %v %v; want %v [%v %v] %q nil %v", one, many, text, null, ptr, a, a, b, a.String(), b)
	}
}
