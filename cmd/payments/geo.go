package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/payments-api/payments/geo"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/tenancy"
)

// geoReindexReport is what `payments geo reindex` prints.
type geoReindexReport struct {
	Tenants  int    `json:"tenants"`
	Days     int    `json:"days"`
	Payments int    `json:"payments"`
	Since    string `json:"since"`
}

// geoReindex rebuilds the Redis geo index of one tenant, or of every
// tenant, from the database, day by day from --since (default: the
// index's whole retention) to today.
func geoReindex(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("geo reindex", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "only this tenant (ten_...); default: every tenant")
	since := fs.String("since", "", "rebuild days from this date (YYYY-MM-DD); default: 32 days ago, the index's retention")
	if err := fs.Parse(args); err != nil {
		return err
	}
	now := time.Now()
	from := geo.Day(now.Add(-geo.IndexRetention))
	if *since != "" {
		t, err := time.Parse("2006-01-02", *since)
		if err != nil {
			return fmt.Errorf("--since %q: want a date such as 2026-11-01", *since)
		}
		from = t
	}
	if from.Before(geo.Day(now.Add(-geo.IndexRetention))) {
		from = geo.Day(now.Add(-geo.IndexRetention)) // older days expire at once
	}
	var only *uuid.UUID
	if *tenant != "" {
		id, ok := ids.Parse(ids.PrefixTenant, *tenant)
		if !ok {
			return errors.New("--tenant: want a tenant ID (ten_...)")
		}
		only = &id
	}
	c, err := loadConfig(getenv, false)
	if err != nil {
		return err
	}
	log := newLogger(c.LogLevel, stderr)
	m, err := openShards(ctx, c, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	if pending, err := pendingMigrations(ctx, m); err != nil {
		return err
	} else if len(pending) > 0 {
		return fmt.Errorf("%d migration(s) pending: run `payments migrate up`", len(pending))
	}
	rdb, err := newRedis(c)
	if err != nil {
		return err
	}
	defer func() { _ = rdb.Close() }()
	router := sharding.NewRouter(m)
	ix := geo.NewIndex(rdb, c.RedisPrefix, nil, log, nil)
	defer ix.Close()
	svc := payments.NewService(payments.Options{Router: router, Logger: log})
	defer svc.Close()
	tenants := []uuid.UUID{}
	if only != nil {
		tenants = append(tenants, *only)
	} else {
		ts := tenancy.NewService(router, tenancy.RateLimitDefaults{PerSecond: 1, Burst: 1}, nil, log)
		var after *uuid.UUID
		for {
			page, more, err := ts.ListTenants(ctx, tenancy.ListLimitMax, after)
			if err != nil {
				return err
			}
			for _, t := range page {
				tenants = append(tenants, t.ID)
			}
			if !more || len(page) == 0 {
				break
			}
			last := page[len(page)-1].ID
			after = &last
		}
	}
	rep := geoReindexReport{Tenants: len(tenants), Since: from.Format("2006-01-02")}
	for _, t := range tenants {
		for _, day := range geo.Days(from, now) {
			es, err := svc.ReindexDay(ctx, t, day)
			if err != nil {
				return fmt.Errorf("tenant %s, %s: %w", ids.Format(ids.PrefixTenant, t), day.Format("2006-01-02"), err)
			}
			if err := ix.Rebuild(ctx, t, day, es); err != nil {
				return fmt.Errorf("tenant %s, %s: %w", ids.Format(ids.PrefixTenant, t), day.Format("2006-01-02"), err)
			}
			rep.Days++
			rep.Payments += len(es)
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
