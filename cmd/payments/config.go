package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payments-api/payments/idempotency"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/retention"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/tracing"
	"github.com/payments-api/payments/txn"
	"github.com/payments-api/payments/webhooks"
)

// config is everything the process reads from its environment, parsed and
// validated once at start.
type config struct {
	HTTPAddr           string
	Shards             []sharding.Config
	RedisURL           string
	RedisPrefix        string
	AdminToken         string
	RateLimitPerSecond int
	RateLimitBurst     int
	DBConnsMax         int32
	ShutdownTimeout    time.Duration
	LogLevel           string
	SandboxLatency     time.Duration
	SandboxSettleDelay time.Duration
	// SandboxDisputeDelay is how long after its capture a
	// pm_card_createDispute payment is disputed, and how long after
	// evidence a sandbox dispute closes; SandboxDisputeFee is the dispute
	// fee withdrawn with its funds, in minor units.
	SandboxDisputeDelay time.Duration
	SandboxDisputeFee   int64
	ReconcileInterval   time.Duration
	ReconcileAge        time.Duration
	ProcessorTimeout    time.Duration
	// IdempotencyLease is how long a request's claim of its key blocks a
	// retry: longer than the request may run.
	IdempotencyLease time.Duration
	// PprofAddr, when set, serves Go's profiler there (loopback only).
	PprofAddr string
	// OTLPEndpoint, when set (OTEL_EXPORTER_OTLP_ENDPOINT), exports traces
	// over OTLP/HTTP; empty creates no tracer provider at all.
	OTLPEndpoint string
	// WorkerMetricsAddr is where `payments worker` serves /metrics and
	// /healthz; "off" serves nothing.
	WorkerMetricsAddr string
	Batch             txn.BatchOptions
	// BatchLanes is the number of batchers per shard.
	BatchLanes int
	Webhooks   webhookConfig
	Stripe     stripeConfig
	// LedgerCloseInterval is how often the worker checkpoints (and seals)
	// the ledger.
	LedgerCloseInterval time.Duration
	// LedgerClose configures the ledger closer; SealPeriod 0 turns the
	// sealer off.
	LedgerClose ledger.CloseOptions
	// Retention is how long events and finished webhook deliveries are
	// kept (the ledger is kept forever).
	Retention retentionConfig
	// ClockOffset shifts the payments clock of this process (test-only:
	// PAYMENTS_TEST_CLOCK_OFFSET_MS), so that the chaos suite can run two
	// API processes whose clocks disagree.
	ClockOffset time.Duration
	// Payouts configures the payout driver.
	Payouts payoutConfig
}

// retentionConfig configures the retention purge.
type retentionConfig struct {
	Events     time.Duration
	Deliveries time.Duration
}

// loadRetentionConfig reads PAYMENTS_EVENT_RETENTION_DAYS and
// PAYMENTS_WEBHOOK_RETENTION_DAYS.
func loadRetentionConfig(e env) (retentionConfig, error) {
	lo, hi := int(retention.RetentionMin/retention.Day), int(retention.RetentionMax/retention.Day)
	events, err := intFrom(e, "PAYMENTS_EVENT_RETENTION_DAYS", int(retention.EventRetentionDefault/retention.Day), lo, hi)
	if err != nil {
		return retentionConfig{}, err
	}
	deliveries, err := intFrom(e, "PAYMENTS_WEBHOOK_RETENTION_DAYS", int(retention.DeliveryRetentionDefault/retention.Day), lo, hi)
	if err != nil {
		return retentionConfig{}, err
	}
	return retentionConfig{Events: time.Duration(events) * retention.Day, Deliveries: time.Duration(deliveries) * retention.Day}, nil
}

// ClockOffsetMax bounds PAYMENTS_TEST_CLOCK_OFFSET_MS either way.
const ClockOffsetMax = time.Hour

// webhookConfig configures the webhook worker.
type webhookConfig struct {
	AllowPrivateNetworks bool
	Concurrency          int
	TenantConcurrency    int
	EndpointConcurrency  int
	Timeout              time.Duration
	Lease                time.Duration
	PollInterval         time.Duration
	Schedule             webhooks.Schedule
}

// WorkerMetricsAddrDefault is where `payments worker` serves /metrics
// unless PAYMENTS_WORKER_METRICS_ADDR says otherwise.
const WorkerMetricsAddrDefault = "127.0.0.1:9090"

// AdminTokenLengthMin keeps the admin token out of guessing range.
const AdminTokenLengthMin = 32

type env func(string) string

func (e env) or(key, def string) string {
	if v := strings.TrimSpace(e(key)); v != "" {
		return v
	}
	return def
}

func intFrom(e env, key string, def, lo, hi int) (int, error) {
	s := e.or(key, "")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want an integer from %d to %d", key, s, lo, hi)
	}
	return n, nil
}

// loadBatchConfig reads the group-commit bounds of the payment write path.
func loadBatchConfig(e env) (txn.BatchOptions, error) {
	var b txn.BatchOptions
	var err error
	if b.SizeMax, err = intFrom(e, "PAYMENTS_BATCH_SIZE_MAX", txn.BatchSizeMaxDefault, 1, 1024); err != nil {
		return b, err
	}
	ms, err := intFrom(e, "PAYMENTS_BATCH_DELAY_MS", int(txn.BatchDelayMaxDefault/time.Millisecond), 0, 1000)
	if err != nil {
		return b, err
	}
	// Zero means the default in BatchOptions; a configured 0 means "never
	// wait", which a negligible delay expresses.
	b.DelayMax = max(time.Duration(ms)*time.Millisecond, time.Nanosecond)
	if b.InflightMax, err = intFrom(e, "PAYMENTS_BATCH_INFLIGHT_MAX", txn.BatchInflightMaxDefault, 1, 64); err != nil {
		return b, err
	}
	return b, nil
}

// loadConfig reads the environment. needAdmin is false for subcommands that
// do not serve HTTP.
func loadConfig(getenv func(string) string, needAdmin bool) (config, error) {
	e := env(getenv)
	c := config{
		HTTPAddr:    e.or("PAYMENTS_HTTP_ADDR", "127.0.0.1:8080"),
		RedisURL:    e.or("REDIS_URL", "redis://127.0.0.1:6379/0"),
		RedisPrefix: e.or("PAYMENTS_REDIS_PREFIX", "payments:"),
		AdminToken:  e.or("PAYMENTS_ADMIN_TOKEN", ""),
		LogLevel:    e.or("PAYMENTS_LOG_LEVEL", "info"),
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return c, fmt.Errorf("PAYMENTS_HTTP_ADDR=%q: want host:port, such as 127.0.0.1:8080", c.HTTPAddr)
	}
	if _, err := redis.ParseURL(c.RedisURL); err != nil {
		return c, fmt.Errorf("REDIS_URL: want redis://host:port/db (%v)", redactErr(err))
	}
	if needAdmin && len(c.AdminToken) < AdminTokenLengthMin {
		return c, fmt.Errorf("PAYMENTS_ADMIN_TOKEN must be set to at least %d characters (for example: openssl rand -hex 32)", AdminTokenLengthMin)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return c, fmt.Errorf("PAYMENTS_LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel)
	}
	var err error
	if c.RateLimitPerSecond, err = intFrom(e, "PAYMENTS_RATE_LIMIT_PER_SECOND", 100, 1, 1_000_000); err != nil {
		return c, err
	}
	if c.RateLimitBurst, err = intFrom(e, "PAYMENTS_RATE_LIMIT_BURST", 2*c.RateLimitPerSecond, 1, 1_000_000); err != nil {
		return c, err
	}
	conns, err := intFrom(e, "PAYMENTS_DB_CONNS_MAX", 32, 1, 10_000)
	if err != nil {
		return c, err
	}
	c.DBConnsMax = int32(conns)
	secs, err := intFrom(e, "PAYMENTS_SHUTDOWN_TIMEOUT_SECONDS", 20, 1, 600)
	if err != nil {
		return c, err
	}
	c.ShutdownTimeout = time.Duration(secs) * time.Second

	ms, err := intFrom(e, "PAYMENTS_SANDBOX_LATENCY_MS", 0, 0, 10_000)
	if err != nil {
		return c, err
	}
	c.SandboxLatency = time.Duration(ms) * time.Millisecond
	if secs, err = intFrom(e, "PAYMENTS_SANDBOX_SETTLE_DELAY_SECONDS", 10, 0, 3600); err != nil {
		return c, err
	}
	c.SandboxSettleDelay = time.Duration(secs) * time.Second
	if ms, err = intFrom(e, "PAYMENTS_SANDBOX_DISPUTE_DELAY_MS", 5000, 0, 3_600_000); err != nil {
		return c, err
	}
	c.SandboxDisputeDelay = time.Duration(ms) * time.Millisecond
	fee, err := intFrom(e, "PAYMENTS_SANDBOX_DISPUTE_FEE", 1500, 0, 100_000)
	if err != nil {
		return c, err
	}
	c.SandboxDisputeFee = int64(fee)
	if secs, err = intFrom(e, "PAYMENTS_RECONCILE_INTERVAL_SECONDS", 10, 1, 3600); err != nil {
		return c, err
	}
	c.ReconcileInterval = time.Duration(secs) * time.Second
	if secs, err = intFrom(e, "PAYMENTS_RECONCILE_AGE_SECONDS", 60, 1, 86400); err != nil {
		return c, err
	}
	c.ReconcileAge = time.Duration(secs) * time.Second
	if secs, err = intFrom(e, "PAYMENTS_PROCESSOR_TIMEOUT_SECONDS", 30, 1, 120); err != nil {
		return c, err
	}
	c.ProcessorTimeout = time.Duration(secs) * time.Second
	if c.ReconcileAge <= c.ProcessorTimeout {
		return c, fmt.Errorf("PAYMENTS_RECONCILE_AGE_SECONDS (%s) must exceed PAYMENTS_PROCESSOR_TIMEOUT_SECONDS (%s), or the reconciler races running requests", c.ReconcileAge, c.ProcessorTimeout)
	}

	// A request runs at most its processor call plus the detached
	// recording of the outcome; a lease any shorter would let a retry take
	// over the key of a request that is still running.
	runMax := c.ProcessorTimeout + payments.DetachedSlack
	c.IdempotencyLease = idempotency.LeaseFor(runMax)
	if c.IdempotencyLease <= runMax || c.IdempotencyLease >= idempotency.Retention {
		return c, fmt.Errorf("idempotency lease %s must exceed the longest request (%s) and stay under the key retention %s: lower PAYMENTS_PROCESSOR_TIMEOUT_SECONDS",
			c.IdempotencyLease, runMax, idempotency.Retention)
	}
	if c.Batch, err = loadBatchConfig(e); err != nil {
		return c, err
	}
	if c.BatchLanes, err = intFrom(e, "PAYMENTS_BATCH_LANES", payments.BatchLanesDefault, 1, 64); err != nil {
		return c, err
	}
	if c.LedgerCloseInterval, c.LedgerClose, err = loadLedgerConfig(e, c.Batch); err != nil {
		return c, err
	}
	if c.PprofAddr = e.or("PAYMENTS_PPROF_ADDR", ""); c.PprofAddr != "" {
		host, _, err := net.SplitHostPort(c.PprofAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return c, fmt.Errorf("PAYMENTS_PPROF_ADDR=%q: want a loopback host:port such as 127.0.0.1:6060; the profiler must not be reachable from the network", c.PprofAddr)
		}
	}
	if c.OTLPEndpoint = e.or("OTEL_EXPORTER_OTLP_ENDPOINT", ""); c.OTLPEndpoint != "" {
		if err := tracing.ValidateEndpoint(c.OTLPEndpoint); err != nil {
			return c, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %v", err)
		}
	}

	c.WorkerMetricsAddr = e.or("PAYMENTS_WORKER_METRICS_ADDR", WorkerMetricsAddrDefault)
	if c.WorkerMetricsAddr != "off" {
		if _, port, err := net.SplitHostPort(c.WorkerMetricsAddr); err != nil || port == "" {
			return c, fmt.Errorf("PAYMENTS_WORKER_METRICS_ADDR=%q: want host:port, such as 0.0.0.0:9090, or off", c.WorkerMetricsAddr)
		}
	}

	offsetMS, err := intFrom(e, "PAYMENTS_TEST_CLOCK_OFFSET_MS", 0, -int(ClockOffsetMax/time.Millisecond), int(ClockOffsetMax/time.Millisecond))
	if err != nil {
		return c, err
	}
	c.ClockOffset = time.Duration(offsetMS) * time.Millisecond

	if c.Webhooks, err = loadWebhookConfig(e); err != nil {
		return c, err
	}
	if c.Payouts, err = loadPayoutConfig(e, c.ReconcileAge); err != nil {
		return c, err
	}
	if c.Stripe, err = loadStripeConfig(e, c.ProcessorTimeout); err != nil {
		return c, err
	}
	if c.Retention, err = loadRetentionConfig(e); err != nil {
		return c, err
	}

	dsn := e.or("DATABASE_URL", "")
	if dsn == "" {
		return c, errors.New("DATABASE_URL is not set: point it at PostgreSQL or CockroachDB, such as postgres://user@127.0.0.1:5432/payments")
	}
	c.Shards = []sharding.Config{{
		Name: e.or("PAYMENTS_SHARD_NAME", "s0"), Region: e.or("PAYMENTS_REGION", "local"), DSN: dsn, ConnsMax: c.DBConnsMax,
	}}
	more, err := parseShards(e.or("PAYMENTS_SHARDS", ""), c.DBConnsMax)
	if err != nil {
		return c, err
	}
	c.Shards = append(c.Shards, more...)
	if err := sharding.ValidateConfigs(c.Shards); err != nil {
		return c, err
	}
	return c, nil
}

func boolFrom(e env, key string, def bool) (bool, error) {
	switch s := strings.ToLower(e.or(key, "")); s {
	case "":
		return def, nil
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	default:
		return false, fmt.Errorf("%s=%q: want true or false", key, s)
	}
}

func loadWebhookConfig(e env) (webhookConfig, error) {
	var w webhookConfig
	var err error
	if w.AllowPrivateNetworks, err = boolFrom(e, "PAYMENTS_WEBHOOK_ALLOW_PRIVATE_NETWORKS", false); err != nil {
		return w, err
	}
	if w.Concurrency, err = intFrom(e, "PAYMENTS_WEBHOOK_CONCURRENCY", webhooks.ConcurrencyDefault, 1, webhooks.ConcurrencyMax); err != nil {
		return w, err
	}
	// 0 takes the worker's defaults (a quarter of the concurrency; 4 per
	// endpoint), which depend on the concurrency.
	if w.TenantConcurrency, err = intFrom(e, "PAYMENTS_WEBHOOK_TENANT_CONCURRENCY", 0, 0, w.Concurrency); err != nil {
		return w, err
	}
	endpointMax := w.TenantConcurrency
	if endpointMax == 0 {
		endpointMax = w.Concurrency
	}
	if w.EndpointConcurrency, err = intFrom(e, "PAYMENTS_WEBHOOK_ENDPOINT_CONCURRENCY", 0, 0, endpointMax); err != nil {
		return w, err
	}
	secs, err := intFrom(e, "PAYMENTS_WEBHOOK_TIMEOUT_SECONDS", int(webhooks.TimeoutMax/time.Second), 1, int(webhooks.TimeoutMax/time.Second))
	if err != nil {
		return w, err
	}
	w.Timeout = time.Duration(secs) * time.Second
	if secs, err = intFrom(e, "PAYMENTS_WEBHOOK_LEASE_SECONDS", int(webhooks.LeaseDefault/time.Second), 2, 3600); err != nil {
		return w, err
	}
	w.Lease = time.Duration(secs) * time.Second
	if w.Lease <= w.Timeout {
		return w, fmt.Errorf("PAYMENTS_WEBHOOK_LEASE_SECONDS (%s) must exceed PAYMENTS_WEBHOOK_TIMEOUT_SECONDS (%s), or running deliveries are taken over", w.Lease, w.Timeout)
	}
	ms, err := intFrom(e, "PAYMENTS_WEBHOOK_POLL_INTERVAL_MS", int(webhooks.PollIntervalDefault/time.Millisecond), 10, 60_000)
	if err != nil {
		return w, err
	}
	w.PollInterval = time.Duration(ms) * time.Millisecond
	w.Schedule = webhooks.DefaultSchedule()
	if w.Schedule.AttemptsMax, err = intFrom(e, "PAYMENTS_WEBHOOK_ATTEMPTS_MAX", webhooks.AttemptsMaxDefault, 1, webhooks.AttemptsMaxLimit); err != nil {
		return w, err
	}
	if ms, err = intFrom(e, "PAYMENTS_WEBHOOK_RETRY_BASE_MS", int(webhooks.DelayBaseDefault/time.Millisecond), 1, 3_600_000); err != nil {
		return w, err
	}
	w.Schedule.DelayBase = time.Duration(ms) * time.Millisecond
	if secs, err = intFrom(e, "PAYMENTS_WEBHOOK_RETRY_SPAN_SECONDS", int(webhooks.SpanDefault/time.Second), 1, 30*86400); err != nil {
		return w, err
	}
	w.Schedule.Span = time.Duration(secs) * time.Second
	if err := w.Schedule.Validate(); err != nil {
		return w, fmt.Errorf("PAYMENTS_WEBHOOK_RETRY_BASE_MS and PAYMENTS_WEBHOOK_RETRY_SPAN_SECONDS: %v", err)
	}
	return w, nil
}

var shardEntry = regexp.MustCompile(`^([^:=\s]+):([^:=\s]+)=(\S+)$`)

// parseShards reads PAYMENTS_SHARDS: entries "NAME:REGION=DATABASE_URL"
// separated by spaces, newlines or semicolons.
func parseShards(s string, conns int32) ([]sharding.Config, error) {
	var out []sharding.Config
	for _, entry := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ' ' || r == '\n' || r == '\t' }) {
		m := shardEntry.FindStringSubmatch(entry)
		if m == nil {
			return nil, fmt.Errorf("PAYMENTS_SHARDS: entry %q: want NAME:REGION=DATABASE_URL", redact(entry))
		}
		out = append(out, sharding.Config{Name: m[1], Region: m[2], DSN: m[3], ConnsMax: conns})
	}
	return out, nil
}

var userinfo = regexp.MustCompile(`://[^@/\s]*@`)

// redact hides the user and password of a connection string.
func redact(s string) string { return userinfo.ReplaceAllString(s, "://***@") }

func redactErr(err error) string { return redact(err.Error()) }

func osEnv() func(string) string { return os.Getenv }

// loadLedgerConfig reads the ledger closer's settings. The closing delay
// must outlast any posting's transaction, which the batcher bounds.
func loadLedgerConfig(e env, b txn.BatchOptions) (time.Duration, ledger.CloseOptions, error) {
	var o ledger.CloseOptions
	secs, err := intFrom(e, "PAYMENTS_LEDGER_CLOSE_INTERVAL_SECONDS", 10, 1, 3600)
	if err != nil {
		return 0, o, err
	}
	interval := time.Duration(secs) * time.Second
	if secs, err = intFrom(e, "PAYMENTS_LEDGER_CLOSE_DELAY_SECONDS", int(ledger.CloseDelayDefault/time.Second), 1, 3600); err != nil {
		return 0, o, err
	}
	o.Delay = time.Duration(secs) * time.Second
	batchTimeout := b.Timeout
	if batchTimeout == 0 {
		batchTimeout = txn.BatchTimeoutDefault
	}
	if o.Delay <= 2*batchTimeout {
		return 0, o, fmt.Errorf("PAYMENTS_LEDGER_CLOSE_DELAY_SECONDS (%s) must exceed twice the batch timeout (%s): a posting's transaction must end before its instant is closed", o.Delay, batchTimeout)
	}
	if o.CheckpointEntries, err = intFrom(e, "PAYMENTS_LEDGER_CHECKPOINT_ENTRIES", ledger.CheckpointEntriesDefault, 10, 100_000); err != nil {
		return 0, o, err
	}
	if secs, err = intFrom(e, "PAYMENTS_LEDGER_SEAL_PERIOD_SECONDS", int(ledger.SealPeriodDefault/time.Second), 0, 86400); err != nil {
		return 0, o, err
	}
	if secs != 0 && (secs < 60 || 86400%secs != 0) {
		return 0, o, fmt.Errorf("PAYMENTS_LEDGER_SEAL_PERIOD_SECONDS=%d: want 0 (no seals) or a divisor of a day of at least 60, such as 3600", secs)
	}
	o.SealPeriod = time.Duration(secs) * time.Second
	return interval, o, nil
}
