// Package sharding owns where a tenant's data lives: the shard map (each
// shard a name, a region and a database), the placement rule for new
// tenants, the directory that records each tenant's shard, and the router
// that hands out a tenant's shard. Every tenant-scoped database access goes
// through Router.ForTenant (DESIGN.md rule 4), even with one shard, so adding
// shards changes configuration and not call sites.
//
// The first shard of the map is the directory shard: it holds the
// tenant_directory and api_keys tables, which are looked up before the
// tenant is known. On CockroachDB those become GLOBAL tables.
package sharding

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/txn"
)

// ShardsMax bounds the shard map.
const ShardsMax = 256

// Config declares one shard.
type Config struct {
	Name   string
	Region string
	DSN    string
	// ConnsMax bounds the shard's connection pool; 0 keeps pgx's default.
	ConnsMax int32
	// QueryTracer, when set, traces the pool's statements (otelpgx).
	QueryTracer pgx.QueryTracer
	// Tracer, when set, gives the shard's transactions and batches spans.
	Tracer trace.Tracer
}

// Shard is one database with its pool and transaction runner.
type Shard struct {
	Name   string
	Region string
	Pool   *pgxpool.Pool
	Tx     *txn.Runner
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidateConfigs checks a shard list before any connection is made.
func ValidateConfigs(cfgs []Config) error {
	if len(cfgs) == 0 {
		return errors.New("no shard configured: set DATABASE_URL")
	}
	if len(cfgs) > ShardsMax {
		return fmt.Errorf("%d shards configured, at most %d", len(cfgs), ShardsMax)
	}
	seen := map[string]bool{}
	for _, c := range cfgs {
		if !namePattern.MatchString(c.Name) {
			return fmt.Errorf("shard name %q: use 1-63 lowercase letters, digits, '-' or '_'", c.Name)
		}
		if !namePattern.MatchString(c.Region) {
			return fmt.Errorf("shard %s: region %q: use 1-63 lowercase letters, digits, '-' or '_'", c.Name, c.Region)
		}
		if seen[c.Name] {
			return fmt.Errorf("shard name %q declared twice", c.Name)
		}
		seen[c.Name] = true
		if _, err := pgxpool.ParseConfig(c.DSN); err != nil {
			return fmt.Errorf("shard %s: bad database URL: %s", c.Name, redactDSNError(err))
		}
	}
	return nil
}

// redactDSNError keeps a connection string (which may hold a password) out
// of the message.
func redactDSNError(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return regexp.MustCompile(`://[^@/\s]*@`).ReplaceAllString(msg, "://***@")
}

// Map is the set of shards.
type Map struct {
	shards []*Shard
	byName map[string]*Shard
}

// Open connects to every shard and detects each one's engine.
func Open(ctx context.Context, cfgs []Config, metrics *txn.Metrics) (*Map, error) {
	if err := ValidateConfigs(cfgs); err != nil {
		return nil, err
	}
	m := &Map{byName: map[string]*Shard{}}
	for _, c := range cfgs {
		pc, _ := pgxpool.ParseConfig(c.DSN)
		if c.ConnsMax > 0 {
			pc.MaxConns = c.ConnsMax
		}
		if c.QueryTracer != nil {
			pc.ConnConfig.Tracer = c.QueryTracer
		}
		pc.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
			registerUUID(conn.TypeMap())
			return nil
		}
		pool, err := pgxpool.NewWithConfig(ctx, pc)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("shard %s: connect: %s", c.Name, redactDSNError(err))
		}
		runner, err := txn.New(ctx, pool, txn.Options{Name: c.Name, Metrics: metrics, Tracer: c.Tracer})
		if err != nil {
			pool.Close()
			m.Close()
			return nil, fmt.Errorf("shard %s: %s", c.Name, redactDSNError(err))
		}
		s := &Shard{Name: c.Name, Region: c.Region, Pool: pool, Tx: runner}
		m.shards = append(m.shards, s)
		m.byName[c.Name] = s
	}
	return m, nil
}

// Close closes every pool.
func (m *Map) Close() {
	for _, s := range m.shards {
		s.Pool.Close()
	}
}

// All returns the shards in configuration order; the first is the
// directory shard.
func (m *Map) All() []*Shard { return append([]*Shard(nil), m.shards...) }

// Directory returns the shard that holds the tenant directory and API keys.
func (m *Map) Directory() *Shard { return m.shards[0] }

// ByName returns a shard by name.
func (m *Map) ByName(name string) (*Shard, bool) {
	s, ok := m.byName[name]
	return s, ok
}

// Regions returns the regions that have at least one shard, sorted.
func (m *Map) Regions() []string {
	set := map[string]bool{}
	for _, s := range m.shards {
		set[s.Region] = true
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// Place picks the shard for a new tenant among the shards of its home region
// by rendezvous (highest random weight) hashing: each shard scores
// hash(shard name, tenant ID) and the highest score wins. Adding a shard to a
// region moves only the new tenants that now score highest on it, and the
// choice needs no shared state. It answers region_unavailable when the
// region has no shard.
func (m *Map) Place(tenantID uuid.UUID, region string) (*Shard, error) {
	var best *Shard
	var bestScore uint64
	for _, s := range m.shards {
		if s.Region != region {
			continue
		}
		score := rendezvousScore(s.Name, tenantID)
		if best == nil || score > bestScore || (score == bestScore && s.Name < best.Name) {
			best, bestScore = s, score
		}
	}
	if best == nil {
		e := errcode.Invalid(errcode.CodeRegionUnavailable, "region", "no shard serves region '%s'; configured regions: %v", region, m.Regions())
		return nil, e
	}
	return best, nil
}

func rendezvousScore(shard string, tenantID uuid.UUID) uint64 {
	h := sha256.New()
	h.Write([]byte(shard))
	h.Write([]byte{0})
	h.Write(tenantID[:])
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

// Router resolves a tenant to its shard through the directory, caching the
// answers: a placement never changes while the process runs (moving a tenant
// is an offline operation that restarts the fleet).
type Router struct {
	m     *Map
	mu    sync.RWMutex
	cache map[uuid.UUID]*Shard
}

// CacheEntriesMax bounds the router's memory; past it the cache is reset.
const CacheEntriesMax = 1_000_000

// NewRouter returns a router over m.
func NewRouter(m *Map) *Router {
	return &Router{m: m, cache: map[uuid.UUID]*Shard{}}
}

// Map returns the shard map.
func (r *Router) Map() *Map { return r.m }

// Record writes a tenant's placement to the directory inside the caller's
// transaction on the directory shard.
func (r *Router) Record(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID, s *Shard) error {
	if _, err := tx.Exec(ctx, `INSERT INTO tenant_directory (tenant_id, shard, region) VALUES ($1, $2, $3)`,
		tenantID, s.Name, s.Region); err != nil {
		return fmt.Errorf("record tenant placement: %w", err)
	}
	return nil
}

// ForTenant returns the shard that holds the tenant's data. It answers
// resource_missing for an unknown tenant.
func (r *Router) ForTenant(ctx context.Context, tenantID uuid.UUID) (*Shard, error) {
	r.mu.RLock()
	s, ok := r.cache[tenantID]
	r.mu.RUnlock()
	if ok {
		return s, nil
	}
	var name string
	err := r.m.Directory().Pool.QueryRow(ctx, `SELECT shard FROM tenant_directory WHERE tenant_id = $1`, tenantID).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errcode.NotFound("tenant", tenantID.String())
	}
	if err != nil {
		return nil, fmt.Errorf("look up tenant shard: %w", err)
	}
	s, ok = r.m.ByName(name)
	if !ok {
		return nil, fmt.Errorf("tenant %s is placed on shard %q, which is not configured", tenantID, name)
	}
	r.mu.Lock()
	if len(r.cache) >= CacheEntriesMax {
		r.cache = map[uuid.UUID]*Shard{}
	}
	r.cache[tenantID] = s
	r.mu.Unlock()
	return s, nil
}
