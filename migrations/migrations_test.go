package migrations_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/migrations"
)

// TestUpConcurrently runs the runner from several "replicas" at once on an
// empty database: every migration is applied exactly once and nobody fails.
func TestUpConcurrently(t *testing.T) {
	t.Parallel()
	dsn := dbtest.NewEmptyDatabase(t)
	ctx := context.Background()
	const replicas = 4
	applied := make([][]string, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < replicas; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			pool, err := pgxpool.New(ctx, dsn)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			<-start
			applied[i], errs[i] = migrations.Up(ctx, pool)
		}(i)
	}
	close(start)
	wg.Wait()
	total := map[string]int{}
	for i := 0; i < replicas; i++ {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		for _, k := range applied[i] {
			total[k]++
		}
	}
	want, err := migrations.Load(migrations.SetCommon)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range want {
		if total[m.Key()] != 1 {
			t.Errorf("%s applied %d times, want exactly 1", m.Key(), total[m.Key()])
		}
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st, err := migrations.StatusOf(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.AppliedAt == nil {
			t.Errorf("%s still pending", s.Key())
		}
		if s.Set == migrations.SetCockroach {
			t.Errorf("cockroach-only migration %s listed on PostgreSQL", s.Key())
		}
	}
	// A second run applies nothing.
	again, err := migrations.Up(ctx, pool)
	if err != nil || len(again) != 0 {
		t.Fatalf("second Up applied %v, err %v", again, err)
	}
}
