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

	"github.com/payments-api/payments/sharding"
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
	ReconcileInterval  time.Duration
	ReconcileAge       time.Duration
	ProcessorTimeout   time.Duration
}

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
