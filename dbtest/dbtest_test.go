package dbtest

import (
	"context"
	"testing"
)

func TestNewPoolIsMigratedAndIsolated(t *testing.T) {
	t.Parallel()
	a, b := NewPool(t), NewPool(t)
	ctx := context.Background()
	if _, err := a.Exec(ctx, `INSERT INTO tenant_directory (tenant_id, shard, region) VALUES (gen_random_uuid(), 's0', 'local')`); err != nil {
		t.Fatalf("insert into migrated table: %v", err)
	}
	var n int
	if err := b.QueryRow(ctx, `SELECT count(*) FROM tenant_directory`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("second database sees %d rows of the first", n)
	}
}
