package geo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Limits of the index.
const (
	// IndexRetention is how long a day's key outlives the day; older
	// windows expire by themselves and are answered from the database.
	IndexRetention = 32 * 24 * time.Hour
	// IndexQueueMax bounds the entries waiting to be written to Redis; an
	// entry that finds it full is dropped and its day marked incomplete.
	IndexQueueMax = 16384
	// IndexFlushMax is the most entries one pipeline writes.
	IndexFlushMax = 512
	// dirtyDaysMax bounds the (tenant, day) pairs remembered as incomplete
	// while Redis is unreachable.
	dirtyDaysMax = 100_000
)

// Entry is one located payment of the index.
type Entry struct {
	TenantID uuid.UUID
	ID       uuid.UUID
	Lat, Lon float64
	Created  time.Time
}

// Hit is a member of a day's key within the searched radius, with the
// distance Redis measured.
type Hit struct {
	ID    uuid.UUID
	DistM float64
}

// DayResult is what one day's key answered.
type DayResult struct {
	Day time.Time
	// Complete reports that the key holds every payment of the day
	// created at or after the asked time; otherwise the day must be
	// answered from the database.
	Complete bool
	Hits     []Hit
}

// Index is the Redis GEO index of located payments: one sorted set per
// tenant and UTC day, written after the payment's transaction commits, and
// a marker per key holding the time from which the key is complete. Redis
// is never the source of truth: a missing or incomplete day is read from
// the database, and Reindex rebuilds days from it.
//
// Writes are queued and sent by one goroutine in pipelines, so a payment
// adds no Redis round trip of its own. A write that fails moves the
// markers of its days forward on the next success, so that the entries it
// lost are never answered as complete. Entries lost to a crash between the
// commit and the write are found by nobody: `payments geo reindex` restores
// them.
type Index struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
	log    *slog.Logger

	queue   chan Entry
	done    chan struct{}
	stopped chan struct{}

	mu    sync.Mutex
	dirty map[dayKey]bool

	errors  prometheus.Counter
	dropped prometheus.Counter
}

type dayKey struct {
	tenant uuid.UUID
	day    int64 // Unix seconds of the day's start
}

// NewIndex returns an index over rdb whose keys start with prefix, and
// starts its writer; Close stops it.
func NewIndex(rdb redis.UniversalClient, prefix string, reg prometheus.Registerer, log *slog.Logger, now func() time.Time) *Index {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ix := &Index{
		rdb: rdb, prefix: prefix, now: now, log: log,
		queue: make(chan Entry, IndexQueueMax), done: make(chan struct{}), stopped: make(chan struct{}),
		dirty: map[dayKey]bool{},
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payments_geo_index_redis_errors_total",
			Help: "Writes and reads of the Redis geo index that failed (reads were answered from the database).",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payments_geo_index_dropped_total",
			Help: "Index entries dropped because the write queue was full; their days are answered from the database.",
		}),
	}
	if reg != nil {
		reg.MustRegister(ix.errors, ix.dropped)
	}
	go ix.run()
	return ix
}

// Day returns the start of t's UTC day.
func Day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// Days returns the UTC days from from's to to's, inclusive.
func Days(from, to time.Time) []time.Time {
	var out []time.Time
	for d := Day(from); !d.After(to); d = d.AddDate(0, 0, 1) {
		out = append(out, d)
	}
	return out
}

func (ix *Index) key(tenant uuid.UUID, day time.Time) string {
	// The tenant in braces is the hash tag: a tenant's keys share a
	// Redis Cluster slot.
	return ix.prefix + "geo:{" + tenant.String() + "}:" + day.Format("20060102")
}

func (ix *Index) marker(tenant uuid.UUID, day time.Time) string {
	return ix.key(tenant, day) + ":since"
}

// ttlOf is how long the keys of day live from now.
func (ix *Index) ttlOf(day time.Time) time.Duration {
	return day.Add(24*time.Hour + IndexRetention).Sub(ix.now())
}

// Add queues entries for the index; it never blocks. Call it after the
// transaction that stored them committed.
func (ix *Index) Add(es ...Entry) {
	for _, e := range es {
		select {
		case ix.queue <- e:
		default:
			ix.dropped.Inc()
			ix.markDirty([]Entry{e})
		}
	}
}

// Close writes what is queued and stops the writer.
func (ix *Index) Close() {
	select {
	case <-ix.done:
	default:
		close(ix.done)
	}
	<-ix.stopped
}

func (ix *Index) run() {
	defer close(ix.stopped)
	batch := make([]Entry, 0, IndexFlushMax)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case e := <-ix.queue:
			batch = append(batch[:0], e)
		drain:
			for len(batch) < IndexFlushMax {
				select {
				case e := <-ix.queue:
					batch = append(batch, e)
				default:
					break drain
				}
			}
			ix.flush(batch)
		case <-tick.C:
			ix.flush(nil) // repairs the markers of failed writes
		case <-ix.done:
			for {
				select {
				case e := <-ix.queue:
					ix.flush([]Entry{e})
				default:
					return
				}
			}
		}
	}
}

// addScript adds members to a day's key. On a key without a marker it
// first records the earliest added creation time as the time from which
// the key is complete: a key made after Redis lost its data holds nothing
// older. It also creates the next day's marker, complete from that day's
// start, while that day has not begun: a tenant with payments every day
// then has every day complete from its start, whatever the order in which
// concurrent payments around midnight reach the index.
// KEYS: the day's key, its marker, the next day's marker. ARGV: since
// (Unix ms), TTL (seconds), the next day's start (Unix ms, 0: it has
// begun), its TTL, then lon, lat, member triples.
var addScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
end
if ARGV[3] ~= '0' then
  redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4], 'NX')
end
local args = {}
for i = 5, #ARGV do args[#args + 1] = ARGV[i] end
redis.call('GEOADD', KEYS[1], unpack(args))
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
`)

// raiseScript moves a marker forward to ARGV[1] (Unix ms): the day's key
// is complete only from then on. KEYS: the marker. ARGV: since, TTL.
var raiseScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return 1
`)

func (ix *Index) flush(es []Entry) {
	ix.mu.Lock()
	dirty := ix.dirty
	if len(dirty) > 0 {
		ix.dirty = map[dayKey]bool{}
	}
	ix.mu.Unlock()
	if len(es) == 0 && len(dirty) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	groups := map[dayKey][]Entry{}
	var order []dayKey
	for _, e := range es {
		k := dayKey{e.TenantID, Day(e.Created).Unix()}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], e)
	}
	pipe := ix.rdb.Pipeline()
	nowMs := strconv.FormatInt(ix.now().UnixMilli(), 10)
	for k := range dirty {
		day := time.Unix(k.day, 0).UTC()
		ttl := ix.ttlOf(day)
		if ttl <= 0 {
			continue
		}
		raiseScript.Eval(ctx, pipe, []string{ix.marker(k.tenant, day)}, nowMs, int64(ttl/time.Second)+1)
	}
	for _, k := range order {
		g := groups[k]
		day := time.Unix(k.day, 0).UTC()
		ttl := ix.ttlOf(day)
		if ttl <= 0 {
			continue
		}
		since := g[0].Created
		next := day.AddDate(0, 0, 1)
		var nextStart int64
		if ix.now().Before(next) {
			nextStart = next.UnixMilli()
		}
		args := []any{0, int64(ttl/time.Second) + 1, nextStart, int64(ix.ttlOf(next)/time.Second) + 1}
		for _, e := range g {
			if e.Created.Before(since) {
				since = e.Created
			}
			args = append(args, e.Lon, e.Lat, e.ID.String())
		}
		args[0] = since.UnixMilli()
		addScript.Eval(ctx, pipe, []string{ix.key(k.tenant, day), ix.marker(k.tenant, day), ix.marker(k.tenant, next)}, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		ix.errors.Inc()
		ix.log.Warn("geo index write failed; its days are read from the database until reindexed or written again", "error", err.Error())
		ix.markDirty(es)
		ix.mu.Lock()
		for k := range dirty {
			ix.addDirty(k)
		}
		ix.mu.Unlock()
	}
}

func (ix *Index) markDirty(es []Entry) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, e := range es {
		ix.addDirty(dayKey{e.TenantID, Day(e.Created).Unix()})
	}
}

func (ix *Index) addDirty(k dayKey) {
	if len(ix.dirty) >= dirtyDaysMax && !ix.dirty[k] {
		ix.log.Error("geo index: too many incomplete days to remember; run `payments geo reindex`")
		return
	}
	ix.dirty[k] = true
}

// Search asks each day's key for its members within radiusM metres of
// (lat, lon), nearest first, at most count of them, in one round trip. A
// day is complete when its marker says the key holds everything created
// from max(from, the day's start). An error means Redis could not answer;
// the caller reads every day from the database then.
func (ix *Index) Search(ctx context.Context, tenant uuid.UUID, days []time.Time, from time.Time, lat, lon, radiusM float64, count int) ([]DayResult, error) {
	pipe := ix.rdb.Pipeline()
	markers := make([]*redis.StringCmd, len(days))
	hits := make([]*redis.GeoSearchLocationCmd, len(days))
	for i, d := range days {
		markers[i] = pipe.Get(ctx, ix.marker(tenant, d))
		hits[i] = pipe.GeoSearchLocation(ctx, ix.key(tenant, d), &redis.GeoSearchLocationQuery{
			GeoSearchQuery: redis.GeoSearchQuery{
				Longitude: lon, Latitude: lat, Radius: radiusM, RadiusUnit: "m", Sort: "ASC", Count: count,
			},
			WithDist: true,
		})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		ix.errors.Inc()
		return nil, fmt.Errorf("geo search: %w", err)
	}
	out := make([]DayResult, len(days))
	for i, d := range days {
		out[i].Day = d
		since, err := markers[i].Int64()
		if err == nil {
			need := max(from.UnixMilli(), d.UnixMilli())
			out[i].Complete = since <= need
		}
		locs, err := hits[i].Result()
		if err != nil {
			out[i].Complete = false
			continue
		}
		for _, l := range locs {
			id, err := uuid.Parse(l.Name)
			if err != nil {
				continue
			}
			out[i].Hits = append(out[i].Hits, Hit{ID: id, DistM: l.Dist})
		}
	}
	return out, nil
}

// rebuildScript replaces a day's key with the union of the rebuilt set and
// what writers added meanwhile, and marks it complete from the day's
// start. KEYS: the day's key, the rebuilt set, the marker. ARGV: the day's
// start (Unix ms), TTL.
var rebuildScript = redis.NewScript(`
if redis.call('ZUNIONSTORE', KEYS[2], 2, KEYS[2], KEYS[1], 'AGGREGATE', 'MAX') > 0 then
  redis.call('RENAME', KEYS[2], KEYS[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[2])
return 1
`)

// Rebuild replaces one tenant's day with entries, every located payment
// the database holds for it, and marks it complete. Writers may add to the
// day meanwhile: their entries are kept.
func (ix *Index) Rebuild(ctx context.Context, tenant uuid.UUID, day time.Time, entries []Entry) error {
	ttl := ix.ttlOf(day)
	if ttl <= 0 {
		return nil
	}
	key, tmp := ix.key(tenant, day), ix.key(tenant, day)+":rebuild"
	if err := ix.rdb.Del(ctx, tmp).Err(); err != nil {
		return fmt.Errorf("geo rebuild: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].ID.String() < entries[j].ID.String() })
	for len(entries) > 0 {
		n := min(len(entries), IndexFlushMax)
		locs := make([]*redis.GeoLocation, 0, n)
		for _, e := range entries[:n] {
			locs = append(locs, &redis.GeoLocation{Name: e.ID.String(), Longitude: e.Lon, Latitude: e.Lat})
		}
		if err := ix.rdb.GeoAdd(ctx, tmp, locs...).Err(); err != nil {
			return fmt.Errorf("geo rebuild: %w", err)
		}
		entries = entries[n:]
	}
	secs := int64(ttl/time.Second) + 1
	if err := ix.rdb.Expire(ctx, tmp, time.Hour).Err(); err != nil {
		return fmt.Errorf("geo rebuild: %w", err)
	}
	if err := rebuildScript.Run(ctx, ix.rdb, []string{key, tmp, ix.marker(tenant, day)}, day.UnixMilli(), secs).Err(); err != nil {
		return fmt.Errorf("geo rebuild: %w", err)
	}
	return nil
}
