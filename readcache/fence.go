package readcache

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// The fence keeps the cache coherent across processes when one of them
// cannot reach Redis. A process that changes payments first writes a
// tombstone of each new version into Redis, before its COMMIT (see
// Cache.Invalidate): then no process can answer the old version from the
// cache, even if the writer dies before it puts the new one. When the
// tombstone cannot be written, the writer takes a bypass instead: a row in
// cache_bypass (on the directory shard, the one thing every process
// reaches) that tells every process to leave the cache alone. It commits
// only once every process has seen the row or stopped trusting what it
// last read (the reader lease), so no process reads an entry the writer
// could not invalidate.
//
// Every process reads cache_bypass every FenceOptions.Refresh and trusts
// the answer for FenceOptions.Lease from the moment it sent the query,
// measured on its own monotonic clock: clock offsets between processes do
// not matter, only rates. When its answer is older than the lease, or a
// bypass row exists, the process bypasses the cache (a miss, read from the
// database).
const (
	// RefreshDefault is how often a process reads the bypass table.
	RefreshDefault = 250 * time.Millisecond
	// LeaseDefault is how long a process trusts what it read.
	LeaseDefault = time.Second
	// HoldTTL is how long a bypass row lives past its last renewal, in the
	// database's clock; a holder renews it every Refresh.
	HoldTTL = 60 * time.Second
	// holdRelianceMax is how long after its last renewal was sent a holder
	// still commits changes on the strength of its row. The gap to HoldTTL
	// (40 s) is longer than any batch takes to commit (txn.BatchTimeoutDefault
	// is 15 s), so the row outlives every commit that relied on it.
	holdRelianceMax = 20 * time.Second
	// ReleaseGraceDefault is how long a holder keeps its row after it last
	// relied on it and Redis answers again: longer than a commit can take,
	// so the entries it deletes on release cannot be refilled by a reader
	// with the state before a commit still landing.
	ReleaseGraceDefault = 30 * time.Second
	// ChangedKeysMax bounds the keys a holder remembers to delete on
	// release; past it, it empties the whole cache instead.
	ChangedKeysMax = 100_000
)

// FenceOptions configures a Fence. Zero values take the defaults.
type FenceOptions struct {
	Refresh      time.Duration
	Lease        time.Duration
	ReleaseGrace time.Duration
	// Holder names this process in cache_bypass; default host:pid:random.
	Holder  string
	Logger  *slog.Logger
	Metrics prometheus.Registerer
}

// Fence is one process's view of cache_bypass, and its own bypass row when
// it holds one. Run keeps it current.
type Fence struct {
	pool *pgxpool.Pool
	opts FenceOptions
	log  *slog.Logger

	bypassed prometheus.Gauge
	holds    prometheus.Counter

	mu sync.Mutex
	// trustedUntil is when the last answer stops being trusted; bypass is
	// whether it found any row.
	trustedUntil time.Time
	bypass       bool
	// The holder's state: holding since holdCommitted (the row is in the
	// database), renewed with the query sent at renewSent.
	holding       bool
	holdCommitted time.Time
	renewSent     time.Time
	reliedAt      time.Time
	changed       map[string]struct{}
	overflow      bool
	// holdMu serializes taking the row, so that concurrent writers wait for
	// one insert and one lease.
	holdMu sync.Mutex
}

// NewFence returns a fence over the cache_bypass table of pool (the
// directory shard). Run must run for the cache to be used at all.
func NewFence(pool *pgxpool.Pool, o FenceOptions) (*Fence, error) {
	if o.Refresh == 0 {
		o.Refresh = RefreshDefault
	}
	if o.Lease == 0 {
		o.Lease = LeaseDefault
	}
	if o.ReleaseGrace == 0 {
		o.ReleaseGrace = ReleaseGraceDefault
	}
	switch {
	case o.Refresh < 0 || o.Lease < 2*o.Refresh:
		return nil, fmt.Errorf("readcache: fence lease %v must be at least twice the refresh %v", o.Lease, o.Refresh)
	case o.Lease > holdRelianceMax/2:
		return nil, fmt.Errorf("readcache: fence lease %v: at most %v", o.Lease, holdRelianceMax/2)
	case o.ReleaseGrace < 0:
		return nil, errors.New("readcache: fence release grace must not be negative")
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = crand.Read(b)
		o.Holder = fmt.Sprintf("%.100s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if len(o.Holder) > 200 {
		return nil, errors.New("readcache: fence holder must be at most 200 bytes")
	}
	f := &Fence{pool: pool, opts: o, log: o.Logger, changed: map[string]struct{}{},
		bypassed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "payments_cache_bypassed",
			Help: "1 while this process leaves the read cache alone: a process could not invalidate entries (cache_bypass), or the bypass table was not read within the lease."}),
		holds: prometheus.NewCounter(prometheus.CounterOpts{Name: "payments_cache_bypass_holds_total",
			Help: "Times this process took a cache bypass because it could not write tombstones to Redis."}),
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics != nil {
		o.Metrics.MustRegister(f.bypassed, f.holds)
	}
	return f, nil
}

// usable reports whether this process may read and fill the cache now.
func (f *Fence) usable() bool {
	if f == nil {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.bypass && time.Now().Before(f.trustedUntil)
}

// refresh reads cache_bypass. It also renews this process's row, and
// empties the cache and deletes rows whose holders stopped renewing them.
func (f *Fence) refresh(ctx context.Context, c *Cache) error {
	sent := time.Now()
	f.mu.Lock()
	holding := f.holding
	f.mu.Unlock()
	if holding {
		if err := f.renew(ctx, sent); err != nil {
			return err
		}
	}
	var live, expired int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE expires_at > now()), count(*) FILTER (WHERE expires_at <= now()) FROM cache_bypass`).
		Scan(&live, &expired); err != nil {
		return fmt.Errorf("read cache bypass: %w", err)
	}
	f.mu.Lock()
	f.trustedUntil, f.bypass = sent.Add(f.opts.Lease), live+expired > 0
	f.mu.Unlock()
	if expired > 0 {
		f.clearExpired(ctx, c)
	}
	if holding {
		f.maybeRelease(ctx, c)
	}
	return nil
}

// renew extends this process's row.
func (f *Fence) renew(ctx context.Context, sent time.Time) error {
	_, err := f.pool.Exec(ctx, `INSERT INTO cache_bypass (holder, expires_at) VALUES ($1, now() + $2 * INTERVAL '1 second')
		ON CONFLICT (holder) DO UPDATE SET expires_at = excluded.expires_at`, f.opts.Holder, int64(HoldTTL/time.Second))
	if err != nil {
		return fmt.Errorf("renew cache bypass: %w", err)
	}
	f.mu.Lock()
	f.renewSent = sent
	f.mu.Unlock()
	return nil
}

// clearExpired empties the cache for rows whose holders stopped renewing
// them (their lists of changed keys are lost), then deletes those rows.
func (f *Fence) clearExpired(ctx context.Context, c *Cache) {
	if err := c.dropAll(ctx); err != nil {
		return // Redis is away: the rows stay, and so does the bypass
	}
	if _, err := f.pool.Exec(ctx, `DELETE FROM cache_bypass WHERE expires_at <= now()`); err != nil {
		f.log.Warn("delete expired cache bypass", "error", err.Error())
		return
	}
	f.log.Info("read cache emptied: a process that bypassed it stopped renewing its bypass")
}

// hold makes it safe to commit changes whose cache entries could not be
// invalidated: it takes (or renews) this process's bypass row and waits
// until every process has seen it or stopped trusting its last answer. The
// keys are deleted from the cache when the bypass is released.
func (f *Fence) hold(ctx context.Context, keys []string) error {
	f.holdMu.Lock()
	defer f.holdMu.Unlock()
	f.mu.Lock()
	f.remember(keys)
	fresh := f.holding && time.Since(f.renewSent) < holdRelianceMax
	committed := f.holdCommitted
	f.mu.Unlock()
	if !fresh {
		sent := time.Now()
		if err := f.renew(ctx, sent); err != nil {
			return err
		}
		f.mu.Lock()
		if !f.holding {
			f.holding, f.holdCommitted = true, time.Now()
			f.holds.Inc()
			f.log.Warn("read cache bypassed by every process: Redis is unreachable from this one")
		}
		committed = f.holdCommitted
		f.bypass = true
		f.mu.Unlock()
	}
	if wait := time.Until(committed.Add(f.opts.Lease + f.opts.Refresh)); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	f.mu.Lock()
	f.reliedAt = time.Now()
	f.mu.Unlock()
	return nil
}

// remember keeps keys to delete on release; f.mu is held.
func (f *Fence) remember(keys []string) {
	for _, k := range keys {
		if len(f.changed) >= ChangedKeysMax {
			f.overflow = true
			return
		}
		f.changed[k] = struct{}{}
	}
}

// maybeRelease ends this process's bypass once Redis answers and no commit
// relied on the row for ReleaseGrace: it deletes the entries of what it
// changed (or every entry, past ChangedKeysMax), then its row.
func (f *Fence) maybeRelease(ctx context.Context, c *Cache) {
	f.holdMu.Lock()
	defer f.holdMu.Unlock()
	f.mu.Lock()
	if !f.holding || time.Since(f.reliedAt) < f.opts.ReleaseGrace {
		f.mu.Unlock()
		return
	}
	keys := make([]string, 0, len(f.changed))
	for k := range f.changed {
		keys = append(keys, k)
	}
	overflow := f.overflow
	f.mu.Unlock()
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return
	}
	if overflow {
		if err := c.dropAll(ctx); err != nil {
			return
		}
	} else {
		for len(keys) > 0 {
			n := min(len(keys), 500)
			if err := c.rdb.Del(ctx, keys[:n]...).Err(); err != nil {
				return
			}
			keys = keys[n:]
		}
	}
	if _, err := f.pool.Exec(ctx, `DELETE FROM cache_bypass WHERE holder = $1`, f.opts.Holder); err != nil {
		f.log.Warn("release cache bypass", "error", err.Error())
		return
	}
	f.mu.Lock()
	f.holding, f.overflow, f.changed = false, false, map[string]struct{}{}
	f.mu.Unlock()
	f.log.Info("read cache bypass released: Redis answers again")
}

// Run refreshes the fence every Refresh until ctx ends.
func (f *Fence) Run(ctx context.Context, c *Cache) {
	t := time.NewTicker(f.opts.Refresh)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, f.opts.Lease)
		if err := f.refresh(rctx, c); err != nil && ctx.Err() == nil {
			f.log.Warn("read cache fence", "error", err.Error())
		}
		cancel()
		f.bypassed.Set(map[bool]float64{true: 0, false: 1}[f.usable()])
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
