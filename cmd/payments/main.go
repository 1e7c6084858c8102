// Command payments is the one binary of the service: it serves the API and
// its background work, applies migrations, creates tenants and prints the
// API description.
//
//	payments serve                 run the API (and workers) until SIGINT/SIGTERM
//	payments worker                run only the background workers until SIGINT/SIGTERM
//	payments migrate up|status     apply or show migrations on every shard
//	payments tenant create --name NAME --region REGION
//	payments openapi [--version 3.1|3.0]
//	payments reconcile --tenant TENANT --since DATE [--repair]
//	payments keys rotate [--batch N]
//	payments ledger verify [--tenant TENANT] | payments ledger close
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
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/payments-api/payments/api"
	"github.com/payments-api/payments/geo"
	"github.com/payments-api/payments/migrations"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/sandbox"
	"github.com/payments-api/payments/readcache"
	"github.com/payments-api/payments/risk"
	"github.com/payments-api/payments/secretbox"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/tenancy"
	"github.com/payments-api/payments/tracing"
	"github.com/payments-api/payments/txn"
	"github.com/payments-api/payments/webhooks"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `usage: payments <command> [flags]

commands:
  serve                                   run the API and the background workers until SIGINT or SIGTERM
  worker                                  run only the background workers (webhooks, reconciler, ...)
  migrate up                              apply pending migrations to every shard
  migrate status                          show migrations of every shard
  tenant create --name NAME --region R    create a tenant and print its first secret key
  openapi [--version 3.1|3.0]             print the OpenAPI document
  geo reindex [--tenant T] [--since DATE] rebuild the Redis geo index of payments from the database
  reconcile --tenant T --since DATE       compare a tenant's payments and refunds with its processor ([--repair] [--limit N])
  keys rotate [--batch N]                 seal every stored secret again under the current PAYMENTS_ENCRYPTION_KEYS key
  ledger verify [--tenant T]              audit the ledger: balances, checkpoints, seals; exits non-zero naming each difference
  ledger close                            checkpoint and seal all history older than the closing delay (backfill)
`

// httpDeadlineMargin is what the HTTP connection deadlines add to the
// edge's bound on a request.
const httpDeadlineMargin = 15 * time.Second

// gcPercentDefault is the garbage collector's target when GOGC is unset.
// The process's live heap is small (tens of MiB) and allocation per
// request high, so Go's default of 100 spends a tenth of the CPU under load
// on collection; 400 trades a few hundred MiB of headroom for it.
const gcPercentDefault = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercentDefault)
	}
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
	case "worker":
		return worker(ctx, getenv, stderr)
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
	case "reconcile":
		return reconcileCmd(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		return keysCmd(ctx, args[1:], getenv, stdout, stderr)
	case "ledger":
		return ledgerCmd(ctx, args[1:], getenv, stdout, stderr)
	case "geo":
		if len(args) < 2 || args[1] != "reindex" {
			return errors.New("usage: payments geo reindex [--tenant T] [--since YYYY-MM-DD]")
		}
		return geoReindex(ctx, args[2:], getenv, stdout, stderr)
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
	return openShardsTraced(ctx, c, reg, nil)
}

// openShardsTraced is openShards whose statements, transactions and
// batches are traced into tp; nil traces nothing.
func openShardsTraced(ctx context.Context, c config, reg prometheus.Registerer, tp trace.TracerProvider) (*sharding.Map, error) {
	var metrics *txn.Metrics
	if reg != nil {
		metrics = txn.NewMetrics(reg)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cfgs := c.Shards
	if tp != nil {
		cfgs = append([]sharding.Config(nil), c.Shards...)
		qt, tr := tracing.QueryTracer(tp), tracing.Tracer(tp)
		for i := range cfgs {
			cfgs[i].QueryTracer, cfgs[i].Tracer = qt, tr
		}
	}
	m, err := sharding.Open(ctx, cfgs, metrics)
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
	// RESP2: nothing here subscribes to push messages, and RESP3 makes the
	// client look for pending notifications around every command.
	opts.Protocol = 2
	return redis.NewClient(opts), nil
}

// core is what serve and worker share: shards, Redis, the read cache, the
// processor and the use cases.
type core struct {
	shards   *sharding.Map
	router   *sharding.Router
	rdb      *redis.Client
	cache    *readcache.Cache
	geo      *geo.Index
	sandbox  *sandbox.Sandbox
	procs    *processors
	payments *payments.Service
	webhooks *webhooks.Service
	guard    *webhooks.Guard
	// box seals secrets at rest; nil without PAYMENTS_ENCRYPTION_KEY.
	box *secretbox.Box
}

// openCore connects to every shard (refusing to start with pending
// migrations) and to Redis, and builds the use cases. close releases them.
// tp, when set, traces the shards, Redis and processor calls.
func openCore(ctx context.Context, c config, reg *prometheus.Registry, log *slog.Logger, tp trace.TracerProvider) (_ *core, closeAll func(), err error) {
	var closers []func()
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	m, err := openShardsTraced(ctx, c, reg, tp)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, m.Close)
	if pending, err := pendingMigrations(ctx, m); err != nil {
		return nil, nil, err
	} else if len(pending) > 0 {
		return nil, nil, fmt.Errorf("%d migration(s) pending (%s): run `payments migrate up`", len(pending), strings.Join(pending, ", "))
	}
	reg.MustRegister(sharding.NewPoolCollector(m))
	rdb, err := newRedis(c)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, func() { _ = rdb.Close() })
	if tp != nil {
		if err := tracing.InstrumentRedis(rdb, tp); err != nil {
			return nil, nil, fmt.Errorf("trace redis: %w", err)
		}
	}
	k := &core{shards: m, router: sharding.NewRouter(m), rdb: rdb}
	fence, err := readcache.NewFence(m.Directory().Pool, readcache.FenceOptions{Logger: log, Metrics: reg})
	if err != nil {
		return nil, nil, err
	}
	k.cache = readcache.New(rdb, c.RedisPrefix, reg, log).WithFence(fence)
	k.geo = geo.NewIndex(rdb, c.RedisPrefix, reg, log, nil)
	closers = append(closers, k.geo.Close)
	k.procs, err = newProcessors(c, k.router, reg, log, func(ctx context.Context, u processor.Update) error { return k.payments.ApplyUpdate(ctx, u) },
		func(ctx context.Context, u processor.DisputeUpdate) error {
			return k.payments.ApplyDisputeUpdate(ctx, u)
		})
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, k.procs.close)
	k.sandbox = k.procs.sandbox
	now := time.Now
	if c.ClockOffset != 0 {
		// Test-only (PAYMENTS_TEST_CLOCK_OFFSET_MS): a skewed clock for the
		// payments' timestamps and the reconciler's age cutoff.
		log.Warn("PAYMENTS_TEST_CLOCK_OFFSET_MS is set: this process's payments clock is shifted; for fault-injection tests only", "offset", c.ClockOffset.String())
		now = func() time.Time { return time.Now().Add(c.ClockOffset) }
	}
	k.payments = payments.NewService(payments.Options{
		Now: now, Router: k.router, Accounts: k.procs.resolver.ForAccount, Cache: k.cache, Geo: k.geo, Logger: log, ProcessorTimeout: c.ProcessorTimeout,
		Batch: batchOptions(c, reg), BatchLanes: c.BatchLanes, Tracer: tracing.Tracer(tp), Metrics: payments.NewMetrics(reg),
		Payouts: k.procs.payouts,
	})
	closers = append(closers, k.payments.Close)
	k.guard = &webhooks.Guard{AllowPrivateNetworks: c.Webhooks.AllowPrivateNetworks}
	if k.box, err = c.Stripe.box(); err != nil {
		return nil, nil, err
	}
	if k.box == nil {
		log.Warn("PAYMENTS_ENCRYPTION_KEY is not set: webhook signing secrets are stored unencrypted and tenants cannot set their own Stripe accounts")
	}
	k.webhooks = webhooks.NewService(webhooks.Options{Router: k.router, Guard: k.guard, Box: k.box, Logger: log})
	if c.Webhooks.AllowPrivateNetworks {
		log.Warn("PAYMENTS_WEBHOOK_ALLOW_PRIVATE_NETWORKS is on: webhook endpoints may use http and private addresses; use this for local development only")
	}
	return k, closeAll, nil
}

// servePprof serves Go's profiler on a loopback address, for measuring
// where a process spends its CPU under load.
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("profiler", "addr", addr)
	if err := s.ListenAndServe(); err != nil {
		log.Warn("profiler stopped", "error", err.Error())
	}
}

// batchOptions are the group-commit bounds with their metrics.
func batchOptions(c config, reg prometheus.Registerer) txn.BatchOptions {
	b := c.Batch
	b.Metrics = txn.NewBatchMetrics(reg)
	return b
}

// newWebhookWorker builds the webhook worker from the configuration.
func newWebhookWorker(c config, k *core, reg prometheus.Registerer, log *slog.Logger) (*webhooks.Worker, error) {
	return webhooks.NewWorker(webhooks.WorkerOptions{
		Shards: k.shards, Guard: k.guard, Schedule: c.Webhooks.Schedule, Timeout: c.Webhooks.Timeout,
		Lease: c.Webhooks.Lease, Concurrency: c.Webhooks.Concurrency, PollInterval: c.Webhooks.PollInterval,
		TenantConcurrency: c.Webhooks.TenantConcurrency, EndpointConcurrency: c.Webhooks.EndpointConcurrency,
		Box: k.box, Metrics: webhooks.NewMetrics(reg), Logger: log,
	})
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// worker runs the background work without the API, so it can be scaled
// apart from the HTTP edge; several may run at once.
func worker(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	c, err := loadConfig(getenv, false)
	if err != nil {
		return err
	}
	log := newLogger(c.LogLevel, stderr)
	reg := newRegistry()
	k, closeAll, err := openCore(ctx, c, reg, log, nil)
	if err != nil {
		return err
	}
	defer closeAll()
	hooks, err := newWebhookWorker(c, k, reg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	metricsAddr := ""
	if c.WorkerMetricsAddr != "off" {
		ln, err := net.Listen("tcp", c.WorkerMetricsAddr)
		if err != nil {
			return fmt.Errorf("listen on PAYMENTS_WORKER_METRICS_ADDR=%s: %v", c.WorkerMetricsAddr, err)
		}
		metricsAddr = ln.Addr().String()
		ms := newMetricsServer(reg, log)
		go func() {
			if err := ms.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("metrics server stopped", "error", err.Error())
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = ms.Shutdown(sctx)
		}()
	}
	log.Info("working", "shards", len(k.shards.All()), "webhook_owner", hooks.Owner(), "metrics_addr", metricsAddr, "version", version)
	runWorkers(ctx, c, k.shards, k.payments, k.cache, hooks, log).Wait()
	log.Info("stopped")
	return nil
}

// newMetricsServer serves the worker's /metrics, and /healthz for the
// kubelet's probes: the worker has no other listener.
func newMetricsServer(reg *prometheus.Registry, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	return &http.Server{
		Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 120 * time.Second, MaxHeaderBytes: 16 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func serve(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	c, err := loadConfig(getenv, true)
	if err != nil {
		return err
	}
	log := newLogger(c.LogLevel, stderr)
	if c.OTLPEndpoint == "" {
		return serveWith(ctx, c, log, nil)
	}
	tp, err := tracing.NewProvider(ctx, tracing.Options{Endpoint: c.OTLPEndpoint, Service: "payments", Version: version})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), tracing.ShutdownTimeout)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("flush traces", "error", err.Error())
		}
	}()
	log.Info("exporting traces over OTLP/HTTP", "endpoint", redact(c.OTLPEndpoint))
	return serveWith(ctx, c, log, tp)
}

// serveWith runs the API with its workers until ctx ends or a signal
// comes; tp, when set, traces every request.
func serveWith(ctx context.Context, c config, log *slog.Logger, tp trace.TracerProvider) error {
	reg := newRegistry()
	k, closeAll, err := openCore(ctx, c, reg, log, tp)
	if err != nil {
		return err
	}
	defer closeAll()
	m, router, rdb, cache, sb, pays := k.shards, k.router, k.rdb, k.cache, k.sandbox, k.payments
	hooks, err := newWebhookWorker(c, k, reg, log)
	if err != nil {
		return err
	}
	svc := tenancy.NewService(router, tenancy.RateLimitDefaults{PerSecond: c.RateLimitPerSecond, Burst: c.RateLimitBurst}, nil, log)
	srv := api.New(api.Config{
		Tenancy: svc, RateLimiter: tenancy.NewRateLimiter(rdb, c.RedisPrefix, reg, log), Router: router, Redis: rdb,
		Payments: pays, Sandbox: sb, Webhooks: k.webhooks, Risk: risk.NewService(router, nil, reg),
		StripeWebhookSecrets: c.Stripe.WebhookSecrets, StripeAccounts: k.procs.accounts,
		AdminToken: c.AdminToken, Logger: log, Registry: reg, IdempotencyLease: c.IdempotencyLease,
	})
	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on PAYMENTS_HTTP_ADDR=%s: %v", c.HTTPAddr, err)
	}
	// The connection deadlines outlast the edge's bound on a request
	// (api.RequestTimeoutSlack over the longest request): net/http cancels
	// a request's context when its connection's read deadline passes, even
	// while the handler runs, which answered 500 to requests that were
	// merely slow under overload (measured with 15 s). Headers have their
	// own short bound against slow clients.
	requestMax := c.ProcessorTimeout + payments.DetachedSlack + api.RequestTimeoutSlack + httpDeadlineMargin
	handler := srv.Handler
	if tp != nil {
		handler = tracing.HTTPHandler(handler, tp)
	}
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       requestMax,
		WriteTimeout:      requestMax,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if c.PprofAddr != "" {
		go servePprof(c.PprofAddr, log)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	wctx, stopWorkers := context.WithCancel(context.Background())
	workers := runWorkers(wctx, c, m, pays, cache, hooks, log)
	defer func() { stopWorkers(); workers.Wait() }()
	regions := m.Regions()
	log.Info("serving", append([]any{"addr", ln.Addr().String(), "shards", len(m.All()), "regions", strings.Join(regions, ",")},
		append(k.procs.describe(c), "version", version)...)...)
	if c.Stripe.SecretKey != "" && len(c.Stripe.WebhookSecrets) == 0 {
		log.Warn("STRIPE_SECRET_KEY is set without STRIPE_WEBHOOK_SECRET: /v1/stripe/webhooks refuses every event, and outcomes Stripe reports later arrive only through the reconciler")
	}
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
