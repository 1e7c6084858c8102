// Command payments is the one binary of the service: it serves the API and
// its background work, applies migrations, creates tenants and prints the
// API description.
//
//	payments serve                 run the API (and workers) until SIGINT/SIGTERM
//	payments migrate up|status     apply or show migrations on every shard
//	payments tenant create --name NAME --region REGION
//	payments openapi [--version 3.1|3.0]
//
// Configuration comes from the environment; see the README's table.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/payments-api/payments/api"
	"github.com/payments-api/payments/migrations"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/sandbox"
	"github.com/payments-api/payments/readcache"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/tenancy"
	"github.com/payments-api/payments/txn"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `usage: payments <command> [flags]

commands:
  serve                                   run the API until SIGINT or SIGTERM
  migrate up                              apply pending migrations to every shard
  migrate status                          show migrations of every shard
  tenant create --name NAME --region R    create a tenant and print its first secret key
  openapi [--version 3.1|3.0]             print the OpenAPI document
`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "payments: "+err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, getenv, stderr)
	case "migrate":
		if len(args) < 2 || (args[1] != "up" && args[1] != "status") {
			return errors.New("usage: payments migrate up|status")
		}
		return migrate(ctx, args[1], getenv, stdout)
	case "tenant":
		if len(args) < 2 || args[1] != "create" {
			return errors.New("usage: payments tenant create --name NAME --region REGION")
		}
		return tenantCreate(ctx, args[2:], getenv, stdout)
	case "openapi":
		return openapi(args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func openShards(ctx context.Context, c config, reg prometheus.Registerer) (*sharding.Map, error) {
	var metrics *txn.Metrics
	if reg != nil {
		metrics = txn.NewMetrics(reg)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	m, err := sharding.Open(ctx, c.Shards, metrics)
	if err != nil {
		return nil, err
	}
	for _, s := range m.All() {
		if err := s.Pool.Ping(ctx); err != nil {
			m.Close()
			return nil, fmt.Errorf("shard %s is unreachable: %s", s.Name, redactErr(err))
		}
	}
	return m, nil
}

func migrate(ctx context.Context, cmd string, getenv func(string) string, stdout io.Writer) error {
	c, err := loadConfig(getenv, false)
	if err != nil {
		return err
	}
	m, err := openShards(ctx, c, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	for _, s := range m.All() {
		if cmd == "up" {
			applied, err := migrations.Up(ctx, s.Pool)
			if err != nil {
				return fmt.Errorf("shard %s: %w", s.Name, err)
			}
			fmt.Fprintf(stdout, "shard %s: %d migration(s) applied\n", s.Name, len(applied))
			for _, k := range applied {
				fmt.Fprintf(stdout, "  applied %s\n", k)
			}
			continue
		}
		st, err := migrations.StatusOf(ctx, s.Pool)
		if err != nil {
			return fmt.Errorf("shard %s: %w", s.Name, err)
		}
		fmt.Fprintf(stdout, "shard %s (%s):\n", s.Name, s.Region)
		for _, x := range st {
			when := "pending"
			if x.AppliedAt != nil {
				when = "applied " + x.AppliedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "  %-40s %s\n", x.Key(), when)
		}
	}
	return nil
}

// pendingMigrations names migrations not yet applied on any shard.
func pendingMigrations(ctx context.Context, m *sharding.Map) ([]string, error) {
	var out []string
	for _, s := range m.All() {
		st, err := migrations.StatusOf(ctx, s.Pool)
		if err != nil {
			return nil, fmt.Errorf("shard %s: %w", s.Name, err)
		}
		for _, x := range st {
			if x.AppliedAt == nil {
				out = append(out, s.Name+":"+x.Key())
			}
		}
	}
	return out, nil
}

func tenantCreate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tenant create", flag.ContinueOnError)
	name := fs.String("name", "", "the merchant's name")
	region := fs.String("region", "", "the home region (default: PAYMENTS_REGION or local)")
	mode := fs.String("mode", "test", "mode of the first key: test or live")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := loadConfig(getenv, false)
	if err != nil {
		return err
	}
	if *region == "" {
		*region = c.Shards[0].Region
	}
	m, err := openShards(ctx, c, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	svc := tenancy.NewService(sharding.NewRouter(m), tenancy.RateLimitDefaults{PerSecond: c.RateLimitPerSecond, Burst: c.RateLimitBurst}, nil, nil)
	t, secret, k, err := svc.CreateTenant(ctx, tenancy.CreateTenantParams{Name: *name, Region: *region, KeyMode: tenancy.Mode(*mode)})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(api.NewTenantCreated(t, secret, k))
}

func openapi(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("openapi", flag.ContinueOnError)
	v := fs.String("version", "3.1", "OpenAPI version: 3.1 or 3.0")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sb, err := sandbox.New(sandbox.DefaultOptions())
	if err != nil {
		return err
	}
	defer sb.Close()
	s := api.New(api.Config{Sandbox: sb})
	var b []byte
	switch *v {
	case "3.1":
		b, err = json.MarshalIndent(s.API.OpenAPI(), "", "  ")
	case "3.0":
		b, err = s.API.OpenAPI().Downgrade()
	default:
		return fmt.Errorf("--version %q: want 3.1 or 3.0", *v)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, string(b))
	return err
}

func newRedis(c config) (*redis.Client, error) {
	opts, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %s", redactErr(err))
	}
	// Short timeouts: Redis is a cache and a limiter, never worth waiting
	// for, and every caller fails open.
	opts.DialTimeout = 250 * time.Millisecond
	opts.ReadTimeout = 150 * time.Millisecond
	opts.WriteTimeout = 150 * time.Millisecond
	opts.PoolTimeout = 250 * time.Millisecond
	opts.MaxRetries = 0
	opts.DialerRetries = 1
	return redis.NewClient(opts), nil
}

func serve(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	c, err := loadConfig(getenv, true)
	if err != nil {
		return err
	}
	log := newLogger(c.LogLevel, stderr)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := openShards(ctx, c, reg)
	if err != nil {
		return err
	}
	defer m.Close()
	if pending, err := pendingMigrations(ctx, m); err != nil {
		return err
	} else if len(pending) > 0 {
		return fmt.Errorf("%d migration(s) pending (%s): run `payments migrate up`", len(pending), strings.Join(pending, ", "))
	}
	reg.MustRegister(sharding.NewPoolCollector(m))
	rdb, err := newRedis(c)
	if err != nil {
		return err
	}
	defer rdb.Close()
	router := sharding.NewRouter(m)
	svc := tenancy.NewService(router, tenancy.RateLimitDefaults{PerSecond: c.RateLimitPerSecond, Burst: c.RateLimitBurst}, nil, log)
	cache := readcache.New(rdb, c.RedisPrefix, reg, log)
	var pays *payments.Service
	sbOpts := sandbox.DefaultOptions()
	sbOpts.Latency, sbOpts.SettleDelay, sbOpts.Logger = c.SandboxLatency, c.SandboxSettleDelay, log
	sbOpts.UpdateHandler = func(ctx context.Context, u processor.Update) error { return pays.ApplyUpdate(ctx, u) }
	sb, err := sandbox.New(sbOpts)
	if err != nil {
		return err
	}
	defer sb.Close()
	pays = payments.NewService(payments.Options{
		Router: router, Processor: sb, Cache: cache, Logger: log, ProcessorTimeout: c.ProcessorTimeout,
	})
	srv := api.New(api.Config{
		Tenancy: svc, RateLimiter: tenancy.NewRateLimiter(rdb, c.RedisPrefix, reg, log), Router: router, Redis: rdb,
		Payments: pays, Sandbox: sb,
		AdminToken: c.AdminToken, Logger: log, Registry: reg,
	})
	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on PAYMENTS_HTTP_ADDR=%s: %v", c.HTTPAddr, err)
	}
	hs := &http.Server{
		Handler:           srv.Handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	wctx, stopWorkers := context.WithCancel(context.Background())
	workers := runWorkers(wctx, c, m, pays, cache, log)
	defer func() { stopWorkers(); workers.Wait() }()
	regions := m.Regions()
	log.Info("serving", "addr", ln.Addr().String(), "shards", len(m.All()), "regions", strings.Join(regions, ","),
		"processor", sb.Name(), "version", version)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests", "timeout", c.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
