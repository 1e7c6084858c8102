package readcache

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/payments"
)

func redisClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(dbtest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if addr != "" {
		o.Addr = addr
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries, o.DialerRetries = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond, 0, 1
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// replica is one process's cache and fence.
type replica struct {
	cache *Cache
	fence *Fence
}

func newReplica(t *testing.T, pool *pgxpool.Pool, rdb *redis.Client, prefix, name string) *replica {
	t.Helper()
	f, err := NewFence(pool, FenceOptions{Refresh: 20 * time.Millisecond, Lease: 100 * time.Millisecond, ReleaseGrace: 200 * time.Millisecond, Holder: name})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{cache: New(rdb, prefix, nil, nil).WithFence(f), fence: f}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.cache.RunFence(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// eventually polls cond until it holds, or fails the test after a bound
// that only a broken fence reaches.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

func bypassRows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM cache_bypass`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReplicaCutFromRedisNeverLeavesOthersStale: replica B caches version
// 1; replica A loses Redis and changes the payment. From the moment A's
// Invalidate returns (its COMMIT follows), B never answers version 1 from
// the cache: not while A is cut off, not after a slow reader on B puts
// version 1 back, and not after A heals and the cache is used again.
func TestReplicaCutFromRedisNeverLeavesOthersStale(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	prefix := dbtest.KeyPrefix(t)
	o, _ := redis.ParseURL(dbtest.RedisURL(t))
	proxy := dbtest.NewCutProxy(t, o.Addr)
	a := newReplica(t, pool, redisClient(t, proxy.Addr), prefix, "replica-a")
	b := newReplica(t, pool, redisClient(t, ""), prefix, "replica-b")
	ctx := context.Background()
	eventually(t, "both fences trust the cache", func() bool { return a.fence.usable() && b.fence.usable() })

	v1 := payments.Payment{ID: ids.New(), TenantID: ids.New(), Status: payments.StatusRequiresCapture, Version: 3}
	b.cache.Put(ctx, v1)
	if got, ok := b.cache.Get(ctx, v1.TenantID, v1.ID); !ok || got.Version != 3 {
		t.Fatalf("setup: B does not cache version 3: %+v %v", got, ok)
	}

	proxy.Cut()
	v2 := v1
	v2.Status, v2.Version = payments.StatusSucceeded, 4
	if err := a.cache.Invalidate(ctx, []payments.Version{{TenantID: v2.TenantID, ID: v2.ID, Version: v2.Version}}); err != nil {
		t.Fatalf("invalidate while cut from Redis: %v", err)
	}
	// A commits version 4 now. Every read on B from here on must not be
	// version 3.
	stale := func(where string) {
		t.Helper()
		if got, ok := b.cache.Get(ctx, v1.TenantID, v1.ID); ok && got.Version < v2.Version {
			t.Fatalf("%s: B answered version %d from the cache after A committed version %d", where, got.Version, v2.Version)
		}
	}
	stale("at once")
	if bypassRows(t, pool) != 1 {
		t.Fatal("A holds no bypass row")
	}
	b.cache.Put(ctx, v1) // a slow reader on B that loaded version 3 before the commit
	stale("after a slow reader's put")
	// Another change by A while it is still cut off relies on the same
	// bypass without waiting again.
	if err := a.cache.Invalidate(ctx, []payments.Version{{TenantID: v2.TenantID, ID: ids.New(), Version: 2}}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		stale("while A is cut off")
		time.Sleep(10 * time.Millisecond)
	}

	proxy.Heal()
	eventually(t, "A releases its bypass once Redis answers", func() bool { return bypassRows(t, pool) == 0 })
	eventually(t, "B uses the cache again", b.fence.usable)
	stale("after the release")
	// The release deleted the entry A could not invalidate; the next read
	// on B loads version 4 from the database and puts it.
	if n, _ := b.cache.rdb.Exists(ctx, b.cache.key(v1.TenantID, v1.ID)).Result(); n != 0 {
		t.Fatal("the release left the entry A changed while cut off")
	}
	b.cache.Put(ctx, v2)
	if got, ok := b.cache.Get(ctx, v2.TenantID, v2.ID); !ok || got.Version != 4 || got.Status != payments.StatusSucceeded {
		t.Fatalf("B after the release: %+v %v, want version 4", got, ok)
	}
}

// TestTombstoneRefusesOlderPuts: an invalidation that reaches Redis leaves
// a tombstone of the new version: reads miss, a put of the old version is
// refused, and the put of the new version lands.
func TestTombstoneRefusesOlderPuts(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	r := newReplica(t, pool, redisClient(t, ""), dbtest.KeyPrefix(t), "replica")
	ctx := context.Background()
	eventually(t, "the fence trusts the cache", r.fence.usable)
	p := payments.Payment{ID: ids.New(), TenantID: ids.New(), Status: payments.StatusRequiresCapture, Version: 2}
	r.cache.Put(ctx, p)
	if err := r.cache.Invalidate(ctx, []payments.Version{{TenantID: p.TenantID, ID: p.ID, Version: 3}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.cache.Get(ctx, p.TenantID, p.ID); ok {
		t.Fatal("a tombstoned entry answered")
	}
	r.cache.Put(ctx, p)
	if _, ok := r.cache.Get(ctx, p.TenantID, p.ID); ok {
		t.Fatal("the older version was put over the tombstone")
	}
	newer := p
	newer.Version, newer.Status = 3, payments.StatusSucceeded
	r.cache.Put(ctx, newer)
	if got, ok := r.cache.Get(ctx, p.TenantID, p.ID); !ok || got.Version != 3 {
		t.Fatalf("after the new version's put: %+v %v", got, ok)
	}
	r.cache.Put(ctx, newer) // the same version again changes nothing
	if got, ok := r.cache.Get(ctx, p.TenantID, p.ID); !ok || got.Version != 3 {
		t.Fatalf("after a repeated put: %+v %v", got, ok)
	}
	if bypassRows(t, pool) != 0 {
		t.Fatal("a bypass was taken although Redis answered")
	}
}

// TestExpiredBypassEmptiesTheCache: a holder that died keeps the cache
// bypassed until its row expires; then another process empties the cache
// (the dead holder's list of changed keys is lost) and deletes the row.
func TestExpiredBypassEmptiesTheCache(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	r := newReplica(t, pool, redisClient(t, ""), dbtest.KeyPrefix(t), "survivor")
	ctx := context.Background()
	eventually(t, "the fence trusts the cache", r.fence.usable)
	p := payments.Payment{ID: ids.New(), TenantID: ids.New(), Status: payments.StatusRequiresCapture, Version: 2}
	r.cache.Put(ctx, p)
	if _, err := pool.Exec(ctx, `INSERT INTO cache_bypass (holder, expires_at) VALUES ('dead', now() + INTERVAL '300 milliseconds')`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the live row bypasses the cache", func() bool { return !r.fence.usable() })
	if _, ok := r.cache.Get(ctx, p.TenantID, p.ID); ok {
		t.Fatal("read from the cache during a bypass")
	}
	eventually(t, "the expired row is cleared", func() bool { return bypassRows(t, pool) == 0 })
	eventually(t, "the cache is used again", r.fence.usable)
	if _, ok := r.cache.Get(ctx, p.TenantID, p.ID); ok {
		t.Fatal("an entry from before the dead holder's bypass survived")
	}
}

func TestFenceOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []FenceOptions{
		{Refresh: time.Second, Lease: time.Second},
		{Lease: time.Minute},
		{ReleaseGrace: -time.Second},
		{Holder: string(make([]byte, 201))},
	} {
		if _, err := NewFence(nil, o); err == nil {
			t.Errorf("NewFence(%+v) accepted", o)
		}
	}
}
