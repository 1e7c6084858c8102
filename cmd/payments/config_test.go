package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/txn"
	"github.com/payments-api/payments/webhooks"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func goodEnv() map[string]string {
	return map[string]string{
		"DATABASE_URL":         "postgres://u:secretpw@127.0.0.1:5432/payments",
		"PAYMENTS_ADMIN_TOKEN": strings.Repeat("a", 40),
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(envOf(goodEnv()), true)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || len(c.Shards) != 1 || c.Shards[0].Name != "s0" || c.Shards[0].Region != "local" {
		t.Fatalf("defaults %+v", c)
	}
}

func TestLoadConfigWebhookDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(envOf(goodEnv()), true)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Webhooks
	if w.AllowPrivateNetworks || w.Timeout != webhooks.TimeoutMax || w.Lease != webhooks.LeaseDefault || w.Schedule != webhooks.DefaultSchedule() {
		t.Fatalf("webhook defaults %+v", w)
	}
	e := goodEnv()
	e["PAYMENTS_WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "true"
	e["PAYMENTS_WEBHOOK_RETRY_BASE_MS"] = "10"
	e["PAYMENTS_WEBHOOK_RETRY_SPAN_SECONDS"] = "5"
	if c, err = loadConfig(envOf(e), true); err != nil || !c.Webhooks.AllowPrivateNetworks || c.Webhooks.Schedule.DelayBase != 10*time.Millisecond {
		t.Fatalf("webhook settings %+v (%v)", c.Webhooks, err)
	}
}

func TestLoadConfigShards(t *testing.T) {
	t.Parallel()
	e := goodEnv()
	e["PAYMENTS_SHARDS"] = "eu1:eu-west=postgres://127.0.0.1:5433/p ; us2:us-east=postgres://127.0.0.1:5434/p"
	c, err := loadConfig(envOf(e), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Shards) != 3 || c.Shards[1].Name != "eu1" || c.Shards[1].Region != "eu-west" || c.Shards[2].DSN != "postgres://127.0.0.1:5434/p" {
		t.Fatalf("shards %+v", c.Shards)
	}
}

// TestBadConfigurationIsOneClearLine: every bad value stops the process
// with one line that names the variable, and never echoes a password.
func TestBadConfigurationIsOneClearLine(t *testing.T) {
	t.Parallel()
	cases := map[string]map[string]string{
		"PAYMENTS_ADMIN_TOKEN":                    {"PAYMENTS_ADMIN_TOKEN": "short"},
		"DATABASE_URL":                            {"DATABASE_URL": ""},
		"PAYMENTS_HTTP_ADDR":                      {"PAYMENTS_HTTP_ADDR": "8080"},
		"REDIS_URL":                               {"REDIS_URL": "http://nope"},
		"PAYMENTS_SHARDS":                         {"PAYMENTS_SHARDS": "eu1=postgres://x:secretpw@h/p"},
		"shard name":                              {"PAYMENTS_SHARDS": "EU!:eu=postgres://h/p"},
		"declared twice":                          {"PAYMENTS_SHARDS": "s0:local=postgres://h/p"},
		"PAYMENTS_RATE_LIMIT_PER_SECOND":          {"PAYMENTS_RATE_LIMIT_PER_SECOND": "lots"},
		"PAYMENTS_DB_CONNS_MAX":                   {"PAYMENTS_DB_CONNS_MAX": "0"},
		"PAYMENTS_LOG_LEVEL":                      {"PAYMENTS_LOG_LEVEL": "loud"},
		"PAYMENTS_SANDBOX_LATENCY_MS":             {"PAYMENTS_SANDBOX_LATENCY_MS": "-1"},
		"PAYMENTS_RECONCILE_AGE_SECONDS":          {"PAYMENTS_RECONCILE_AGE_SECONDS": "5"},
		"PAYMENTS_SANDBOX_SETTLE_DELAY_SECONDS":   {"PAYMENTS_SANDBOX_SETTLE_DELAY_SECONDS": "x"},
		"PAYMENTS_SANDBOX_DISPUTE_DELAY_MS":       {"PAYMENTS_SANDBOX_DISPUTE_DELAY_MS": "3600001"},
		"PAYMENTS_SANDBOX_DISPUTE_FEE":            {"PAYMENTS_SANDBOX_DISPUTE_FEE": "-5"},
		"PAYMENTS_WEBHOOK_ALLOW_PRIVATE_NETWORKS": {"PAYMENTS_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "maybe"},
		"PAYMENTS_WEBHOOK_CONCURRENCY":            {"PAYMENTS_WEBHOOK_CONCURRENCY": "0"},
		"PAYMENTS_WEBHOOK_TENANT_CONCURRENCY":     {"PAYMENTS_WEBHOOK_TENANT_CONCURRENCY": "17"},
		"PAYMENTS_WEBHOOK_TENANT_CONCURRENCY ":    {"PAYMENTS_WEBHOOK_TENANT_CONCURRENCY": "-1"},
		"PAYMENTS_WEBHOOK_ENDPOINT_CONCURRENCY":   {"PAYMENTS_WEBHOOK_TENANT_CONCURRENCY": "2", "PAYMENTS_WEBHOOK_ENDPOINT_CONCURRENCY": "3"},
		"PAYMENTS_WEBHOOK_TIMEOUT_SECONDS":        {"PAYMENTS_WEBHOOK_TIMEOUT_SECONDS": "30"},
		"PAYMENTS_WEBHOOK_LEASE_SECONDS":          {"PAYMENTS_WEBHOOK_LEASE_SECONDS": "10"},
		"PAYMENTS_WEBHOOK_POLL_INTERVAL_MS":       {"PAYMENTS_WEBHOOK_POLL_INTERVAL_MS": "1"},
		"PAYMENTS_WEBHOOK_ATTEMPTS_MAX":           {"PAYMENTS_WEBHOOK_ATTEMPTS_MAX": "0"},
		"PAYMENTS_WEBHOOK_RETRY_BASE_MS":          {"PAYMENTS_WEBHOOK_RETRY_BASE_MS": "x"},
		"PAYMENTS_WEBHOOK_RETRY_SPAN_SECONDS":     {"PAYMENTS_WEBHOOK_RETRY_SPAN_SECONDS": "0"},
		"PAYMENTS_WEBHOOK_RETRY_SPAN_SECONDS ":    {"PAYMENTS_WEBHOOK_RETRY_BASE_MS": "120000", "PAYMENTS_WEBHOOK_RETRY_SPAN_SECONDS": "60"},
		"PAYMENTS_BATCH_SIZE_MAX":                 {"PAYMENTS_BATCH_SIZE_MAX": "0"},
		"PAYMENTS_BATCH_SIZE_MAX ":                {"PAYMENTS_BATCH_SIZE_MAX": "5000"},
		"PAYMENTS_BATCH_DELAY_MS":                 {"PAYMENTS_BATCH_DELAY_MS": "-1"},
		"PAYMENTS_BATCH_INFLIGHT_MAX":             {"PAYMENTS_BATCH_INFLIGHT_MAX": "many"},
		"PAYMENTS_PPROF_ADDR":                     {"PAYMENTS_PPROF_ADDR": "0.0.0.0:6060"},
		"PAYMENTS_BATCH_LANES":                    {"PAYMENTS_BATCH_LANES": "0"},
		"PAYMENTS_WORKER_METRICS_ADDR":            {"PAYMENTS_WORKER_METRICS_ADDR": "9090"},
		"PAYMENTS_WORKER_METRICS_ADDR ":           {"PAYMENTS_WORKER_METRICS_ADDR": "0.0.0.0:"},
	}
	for want, override := range cases {
		e := goodEnv()
		for k, v := range override {
			e[k] = v
		}
		_, err := loadConfig(envOf(e), true)
		if err == nil {
			t.Errorf("%s: accepted", want)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, strings.TrimSpace(want)) || strings.Contains(msg, "\n") || strings.Contains(msg, "secretpw") {
			t.Errorf("%s: message %q", want, msg)
		}
	}
}

func TestRunRefusesBadConfigurationWithoutPanic(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"serve"}, envOf(map[string]string{}), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "PAYMENTS_ADMIN_TOKEN") {
		t.Fatalf("serve without configuration: %v", err)
	}
	if err := run(context.Background(), []string{"worker"}, envOf(map[string]string{}), &out, &errb); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("worker without configuration: %v", err)
	}
	if err := run(context.Background(), []string{"frobnicate"}, envOf(nil), &out, &errb); err == nil {
		t.Fatal("unknown command accepted")
	}
	if err := run(context.Background(), []string{"migrate", "sideways"}, envOf(goodEnv()), &out, &errb); err == nil {
		t.Fatal("bad migrate command accepted")
	}
}

func TestOpenAPICommand(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"3.1", "3.0"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"openapi", "--version", v}, envOf(nil), &out, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), `"openapi": "`+v) && !strings.Contains(out.String(), `"openapi":"`+v) {
			t.Fatalf("openapi %s: %.200s", v, out.String())
		}
	}
}

// TestIdempotencyLeaseOutlivesTheLongestRequest: the lease of a key follows
// the processor timeout, so that a retry never takes over the key of a
// request that may still be running (processor call plus the detached
// recording of its outcome).
func TestIdempotencyLeaseOutlivesTheLongestRequest(t *testing.T) {
	t.Parallel()
	for _, secs := range []string{"10", "30", "120"} {
		e := goodEnv()
		e["PAYMENTS_PROCESSOR_TIMEOUT_SECONDS"] = secs
		e["PAYMENTS_RECONCILE_AGE_SECONDS"] = "600"
		c, err := loadConfig(envOf(e), true)
		if err != nil {
			t.Fatalf("timeout %s s: %v", secs, err)
		}
		runMax := c.ProcessorTimeout + payments.DetachedSlack
		if c.IdempotencyLease <= runMax {
			t.Errorf("timeout %s s: lease %v does not exceed the longest request %v", secs, c.IdempotencyLease, runMax)
		}
	}
}

func TestLoadConfigBatchDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(envOf(goodEnv()), true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Batch.SizeMax != txn.BatchSizeMaxDefault || c.Batch.DelayMax != txn.BatchDelayMaxDefault || c.Batch.InflightMax != txn.BatchInflightMaxDefault {
		t.Fatalf("batch defaults %+v", c.Batch)
	}
	e := goodEnv()
	e["PAYMENTS_BATCH_SIZE_MAX"], e["PAYMENTS_BATCH_DELAY_MS"], e["PAYMENTS_BATCH_INFLIGHT_MAX"] = "1", "0", "4"
	if c, err = loadConfig(envOf(e), true); err != nil || c.Batch.SizeMax != 1 || c.Batch.DelayMax > time.Microsecond || c.Batch.InflightMax != 4 {
		t.Fatalf("batch settings %+v (%v)", c.Batch, err)
	}
}

func TestLoadClockOffset(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(envOf(goodEnv()), true)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClockOffset != 0 {
		t.Fatalf("default offset %s, want 0", c.ClockOffset)
	}
	e := goodEnv()
	e["PAYMENTS_TEST_CLOCK_OFFSET_MS"] = "-45000"
	if c, err = loadConfig(envOf(e), true); err != nil || c.ClockOffset != -45*time.Second {
		t.Fatalf("offset %s, %v; want -45s", c.ClockOffset, err)
	}
	for _, bad := range []string{"3600001", "-3600001", "soon"} {
		e["PAYMENTS_TEST_CLOCK_OFFSET_MS"] = bad
		if _, err := loadConfig(envOf(e), true); err == nil || !strings.HasPrefix(err.Error(), "PAYMENTS_TEST_CLOCK_OFFSET_MS") {
			t.Errorf("%q: %v, want an error naming PAYMENTS_TEST_CLOCK_OFFSET_MS", bad, err)
		}
	}
}
