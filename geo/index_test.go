package geo_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/geo"
)

// failHook makes every command fail while on: Redis unreachable, seen
// from the client.
type failHook struct{ on atomic.Bool }

var errInjected = errors.New("injected: redis unreachable")

func (h *failHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *failHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.on.Load() {
			return errInjected
		}
		return next(ctx, cmd)
	}
}

func (h *failHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.on.Load() {
			return errInjected
		}
		return next(ctx, cmds)
	}
}

// TestIndexMarkersFollowLostWrites checks the completeness markers: a
// fresh day is complete from its first entry, the next day from its start,
// a failed write makes its day incomplete until the time of the next
// successful write, and a rebuild makes the day complete again.
func TestIndexMarkersFollowLostWrites(t *testing.T) {
	t.Parallel()
	o, err := redis.ParseURL(dbtest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(o)
	t.Cleanup(func() { _ = rdb.Close() })
	hook := &failHook{}
	rdb.AddHook(hook)
	day := geo.Day(time.Now().Add(-48 * time.Hour))
	var clock atomic.Int64
	clock.Store(day.Add(12 * time.Hour).UnixNano())
	ix := geo.NewIndex(rdb, dbtest.KeyPrefix(t), nil, nil, func() time.Time { return time.Unix(0, clock.Load()) })
	t.Cleanup(ix.Close)
	tenant := uuid.New()
	ctx := context.Background()
	entry := func(at time.Duration) geo.Entry {
		return geo.Entry{TenantID: tenant, ID: uuid.New(), Lat: 52.52, Lon: 13.405, Created: day.Add(at)}
	}
	search := func(from time.Time) []geo.DayResult {
		t.Helper()
		res, err := ix.Search(ctx, tenant, []time.Time{day, day.AddDate(0, 0, 1)}, from, 52.52, 13.405, 1000, 100)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	waitHits := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; {
			if len(search(day)[0].Hits) == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the day holds %d entries, want %d", len(search(day)[0].Hits), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	e1 := entry(10 * time.Hour)
	ix.Add(e1)
	waitHits(1)
	res := search(day)
	if res[0].Complete || !search(e1.Created)[0].Complete {
		t.Fatalf("a fresh day must be complete from its first entry only: %+v", res)
	}
	if !res[1].Complete {
		t.Fatal("the next day is not complete from its start")
	}

	// Redis unreachable: the entry is lost, and the day must not claim it.
	hook.on.Store(true)
	e2 := entry(11 * time.Hour)
	ix.Add(e2)
	time.Sleep(200 * time.Millisecond)
	hook.on.Store(false)
	clock.Store(day.Add(13 * time.Hour).UnixNano())
	e3 := entry(13 * time.Hour)
	ix.Add(e3)
	waitHits(2)
	for deadline := time.Now().Add(10 * time.Second); search(e1.Created)[0].Complete; {
		if time.Now().After(deadline) {
			t.Fatal("the day still claims to be complete from before the lost write")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !search(day.Add(13 * time.Hour))[0].Complete {
		t.Fatal("the day is not complete from the write after the failure")
	}

	// A rebuild from the database restores it whole.
	if err := ix.Rebuild(ctx, tenant, day, []geo.Entry{e1, e2, e3}); err != nil {
		t.Fatal(err)
	}
	res = search(day)
	if !res[0].Complete || len(res[0].Hits) != 3 {
		t.Fatalf("after rebuild: complete %v, %d entries", res[0].Complete, len(res[0].Hits))
	}
	// Searches fail as errors while Redis is unreachable.
	hook.on.Store(true)
	if _, err := ix.Search(ctx, tenant, []time.Time{day}, day, 52.52, 13.405, 1000, 10); err == nil {
		t.Fatal("search without Redis answered no error")
	}
	hook.on.Store(false)
}
