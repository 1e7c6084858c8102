// Package readcache is the Redis read cache of payments. It is never the
// source of truth: every failure falls back to the database.
//
// Staleness is prevented by versions, not by deletes alone. Each entry
// carries the payment's version, and a write replaces the entry only with a
// strictly newer version (one Lua script, atomic in Redis). Writers put the
// new state after every committed change, so a reader that loaded an older
// row before the change cannot overwrite the newer entry afterwards. When a
// put fails (Redis unreachable), the key is remembered and skipped by this
// process's reads, and deleted as soon as Redis answers again.
package readcache

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/payments-api/payments/payments"
)

// Limits.
const (
	// TTL bounds how long an entry lives.
	TTL = 5 * time.Minute
	// DirtyKeysMax bounds the keys remembered while Redis is unreachable;
	// past it reads bypass the cache entirely until Redis is back.
	DirtyKeysMax = 100_000
	// RepairInterval is how often remembered keys are retried.
	RepairInterval = time.Second
)

// putScript stores a version unless the entry holds a newer one, or the
// same one already (a tombstone of that version, which has no 'd', is
// replaced by its data).
var putScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'v')
if cur and (tonumber(cur) > tonumber(ARGV[1]) or (tonumber(cur) == tonumber(ARGV[1]) and redis.call('HEXISTS', KEYS[1], 'd') == 1)) then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// tombstoneScript marks each key's entry as superseded by a version not
// yet committed: the entry's data goes, and puts of older versions are
// refused. ARGV holds the TTL, then one version per key.
var tombstoneScript = redis.NewScript(`
for i, k in ipairs(KEYS) do
  local v = tonumber(ARGV[i + 1])
  local cur = redis.call('HGET', k, 'v')
  if not cur or tonumber(cur) < v then
    redis.call('HDEL', k, 'd')
    redis.call('HSET', k, 'v', v)
    redis.call('PEXPIRE', k, ARGV[1])
  end
end
return 1
`)

// TombstonesPerCallMax bounds the keys of one tombstone script call.
const TombstonesPerCallMax = 256

// Cache implements payments.Cache over Redis.
type Cache struct {
	rdb    redis.UniversalClient
	prefix string
	log    *slog.Logger

	hits, misses, errors prometheus.Counter

	// fence, when set, keeps the cache coherent with other processes; see
	// Fence. Without it the cache serves one process alone.
	fence *Fence

	mu       sync.Mutex
	dirty    map[string]struct{}
	overflow bool
}

// WithFence makes c respect f: reads and fills only while f allows it,
// and invalidations that fall back to f's bypass. Run f with f.Run(ctx, c).
func (c *Cache) WithFence(f *Fence) *Cache {
	c.fence = f
	return c
}

// New returns a cache; keys start with prefix.
func New(rdb redis.UniversalClient, prefix string, reg prometheus.Registerer, log *slog.Logger) *Cache {
	c := &Cache{
		rdb: rdb, prefix: prefix, log: log, dirty: map[string]struct{}{},
		hits:   prometheus.NewCounter(prometheus.CounterOpts{Name: "payments_cache_hits_total", Help: "Payment reads answered by the cache."}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{Name: "payments_cache_misses_total", Help: "Payment reads that went to the database."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "payments_cache_errors_total", Help: "Cache operations that failed; reads fell back to the database."}),
	}
	if reg != nil {
		reg.MustRegister(c.hits, c.misses, c.errors)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c *Cache) key(tenantID, id uuid.UUID) string {
	return c.prefix + "pay:" + tenantID.String() + ":" + id.String()
}

func (c *Cache) isDirty(k string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.overflow {
		return true
	}
	_, ok := c.dirty[k]
	return ok
}

func (c *Cache) markDirty(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.dirty) >= DirtyKeysMax {
		c.overflow = true
		return
	}
	c.dirty[k] = struct{}{}
}

// Get implements payments.Cache.
func (c *Cache) Get(ctx context.Context, tenantID, id uuid.UUID) (payments.Payment, bool) {
	k := c.key(tenantID, id)
	if c.isDirty(k) || !c.fence.usable() {
		c.misses.Inc()
		return payments.Payment{}, false
	}
	b, err := c.rdb.HGet(ctx, k, "d").Bytes()
	if err != nil {
		if err != redis.Nil {
			c.errors.Inc()
		}
		c.misses.Inc()
		return payments.Payment{}, false
	}
	var p payments.Payment
	if err := json.Unmarshal(b, &p); err != nil || p.ID != id || p.TenantID != tenantID {
		c.errors.Inc()
		c.misses.Inc()
		return payments.Payment{}, false
	}
	c.hits.Inc()
	return p, true
}

// Put implements payments.Cache: it stores p unless a newer version is
// cached.
func (c *Cache) Put(ctx context.Context, p payments.Payment) {
	if !c.fence.usable() {
		return
	}
	k := c.key(p.TenantID, p.ID)
	b, err := json.Marshal(p)
	if err != nil {
		c.errors.Inc()
		return
	}
	if err := putScript.Run(ctx, c.rdb, []string{k}, p.Version, b, TTL.Milliseconds()).Err(); err != nil {
		c.errors.Inc()
		c.markDirty(k)
	}
}

// Invalidate implements payments.Cache. It runs inside the transaction
// that changes the payments, before its COMMIT: it writes a tombstone of
// each new version, so that from then on no process answers an older
// version from the cache, and no reader that loaded the row before the
// COMMIT can put it back. When Redis does not take the tombstones, the
// fence's bypass is taken instead (which waits for every process to leave
// the cache alone); only if that fails too is an error returned, and the
// transaction must not commit.
func (c *Cache) Invalidate(ctx context.Context, changed []payments.Version) error {
	if len(changed) == 0 {
		return nil
	}
	keys := make([]string, len(changed))
	for i, v := range changed {
		keys[i] = c.key(v.TenantID, v.ID)
	}
	err := c.tombstone(ctx, keys, changed)
	if err == nil {
		return nil
	}
	c.errors.Inc()
	if c.fence == nil {
		// One process alone: its own reads skip the keys until repaired.
		for _, k := range keys {
			c.markDirty(k)
		}
		return nil
	}
	return c.fence.hold(ctx, keys)
}

func (c *Cache) tombstone(ctx context.Context, keys []string, changed []payments.Version) error {
	for len(keys) > 0 {
		n := min(len(keys), TombstonesPerCallMax)
		args := make([]any, 0, n+1)
		args = append(args, TTL.Milliseconds())
		for _, v := range changed[:n] {
			args = append(args, v.Version)
		}
		if err := tombstoneScript.Run(ctx, c.rdb, keys[:n], args...).Err(); err != nil {
			return err
		}
		keys, changed = keys[n:], changed[n:]
	}
	return nil
}

// Repair deletes the keys whose puts failed, once Redis answers; only then
// does this process read them from the cache again.
func (c *Cache) Repair(ctx context.Context) {
	c.mu.Lock()
	keys := make([]string, 0, len(c.dirty))
	for k := range c.dirty {
		keys = append(keys, k)
	}
	overflow := c.overflow
	c.mu.Unlock()
	if overflow {
		// Too many keys were missed to know which; dropping every payment
		// entry of this prefix is the safe repair.
		if err := c.dropAll(ctx); err != nil {
			return
		}
		c.mu.Lock()
		c.overflow = false
		c.dirty = map[string]struct{}{}
		c.mu.Unlock()
		return
	}
	for _, k := range keys {
		if err := c.rdb.Del(ctx, k).Err(); err != nil {
			return
		}
		c.mu.Lock()
		delete(c.dirty, k)
		c.mu.Unlock()
	}
}

func (c *Cache) dropAll(ctx context.Context) error {
	iter := c.rdb.Scan(ctx, 0, c.prefix+"pay:*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := c.rdb.Del(ctx, iter.Val()).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}

// RunFence keeps the fence current until ctx ends; without a fence it
// returns at once. Until its first refresh the cache is not used.
func (c *Cache) RunFence(ctx context.Context) {
	if c.fence != nil {
		c.fence.Run(ctx, c)
	}
}

// RunRepair repairs every RepairInterval until ctx ends.
func (c *Cache) RunRepair(ctx context.Context) {
	t := time.NewTicker(RepairInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Repair(ctx)
		}
	}
}
