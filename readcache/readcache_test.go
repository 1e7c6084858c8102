package readcache_test

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/readcache"
)

func client(t *testing.T, url string) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	o.DialTimeout, o.ReadTimeout, o.MaxRetries, o.DialerRetries = 200*time.Millisecond, 200*time.Millisecond, 0, 1
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestOlderVersionNeverReplacesNewer is the race a plain delete-on-write
// cache loses: a reader that loaded version 1 before a change puts it after
// the writer put version 2.
func TestOlderVersionNeverReplacesNewer(t *testing.T) {
	t.Parallel()
	c := readcache.New(client(t, dbtest.RedisURL(t)), dbtest.KeyPrefix(t), nil, nil)
	ctx := context.Background()
	p := payments.Payment{ID: ids.New(), TenantID: ids.New(), Status: payments.StatusRequiresCapture, Version: 1}
	if _, ok := c.Get(ctx, p.TenantID, p.ID); ok {
		t.Fatal("hit on an empty cache")
	}
	newer := p
	newer.Status, newer.Version = payments.StatusSucceeded, 2
	c.Put(ctx, newer)
	c.Put(ctx, p) // the slow reader's stale copy
	got, ok := c.Get(ctx, p.TenantID, p.ID)
	if !ok || got.Status != payments.StatusSucceeded || got.Version != 2 {
		t.Fatalf("got %+v %v", got, ok)
	}
	// Another tenant's key never answers.
	if _, ok := c.Get(ctx, ids.New(), p.ID); ok {
		t.Fatal("hit for another tenant")
	}
}

// toggleProxy forwards TCP to Redis while up, and drops connections while
// down, so one client sees Redis go away and come back.
type toggleProxy struct {
	addr string
	up   atomic.Bool
}

func newToggleProxy(t *testing.T, target string) *toggleProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &toggleProxy{addr: ln.Addr().String()}
	p.up.Store(true)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !p.up.Load() {
				c.Close()
				continue
			}
			go func() {
				s, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					return
				}
				go func() { _, _ = io.Copy(s, c); s.Close() }()
				_, _ = io.Copy(c, s)
				c.Close()
			}()
		}
	}()
	return p
}

// TestFailedPutIsNeverServedStale: while Redis is unreachable a put fails
// and the older entry stays in Redis; this process skips the key until
// Repair, once Redis answers, deleted that entry.
func TestFailedPutIsNeverServedStale(t *testing.T) {
	t.Parallel()
	prefix := dbtest.KeyPrefix(t)
	o, _ := redis.ParseURL(dbtest.RedisURL(t))
	proxy := newToggleProxy(t, o.Addr)
	direct := client(t, dbtest.RedisURL(t))
	ctx := context.Background()
	p := payments.Payment{ID: ids.New(), TenantID: ids.New(), Status: payments.StatusRequiresCapture, Version: 1}
	key := prefix + "pay:" + p.TenantID.String() + ":" + p.ID.String()
	readcache.New(direct, prefix, nil, nil).Put(ctx, p)

	proxy.up.Store(false)
	c := readcache.New(client(t, "redis://"+proxy.addr+"/0"), prefix, nil, nil)
	newer := p
	newer.Status, newer.Version = payments.StatusSucceeded, 2
	c.Put(ctx, newer) // fails: Redis is away, the stale version 1 stays in it
	proxy.up.Store(true)
	if n, _ := direct.Exists(ctx, key).Result(); n != 1 {
		t.Fatal("test setup: the stale entry should still be in Redis")
	}
	if _, ok := c.Get(ctx, p.TenantID, p.ID); ok {
		t.Fatal("served a key whose put failed")
	}
	c.Repair(ctx)
	if n, _ := direct.Exists(ctx, key).Result(); n != 0 {
		t.Fatal("repair left the stale entry")
	}
	c.Put(ctx, newer)
	if got, ok := c.Get(ctx, p.TenantID, p.ID); !ok || got.Version != 2 || got.Status != payments.StatusSucceeded {
		t.Fatalf("after repair and put: %+v %v", got.Version, ok)
	}
}
