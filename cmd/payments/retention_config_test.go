package main

import (
	"strings"
	"testing"

	"github.com/payments-api/payments/retention"
)

// TestRetentionConfiguration: both retentions default to 30 days, take a
// number of days, and refuse values out of range with one line naming the
// variable.
func TestRetentionConfiguration(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(envOf(goodEnv()), true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Retention.Events != 30*retention.Day || c.Retention.Deliveries != 30*retention.Day {
		t.Fatalf("defaults %+v, want 30 days each", c.Retention)
	}
	e := goodEnv()
	e["PAYMENTS_EVENT_RETENTION_DAYS"], e["PAYMENTS_WEBHOOK_RETENTION_DAYS"] = "90", "14"
	if c, err = loadConfig(envOf(e), true); err != nil || c.Retention.Events != 90*retention.Day || c.Retention.Deliveries != 14*retention.Day {
		t.Fatalf("set: %+v %v", c.Retention, err)
	}
	for _, bad := range []struct{ key, value string }{
		{"PAYMENTS_EVENT_RETENTION_DAYS", "0"},
		{"PAYMENTS_EVENT_RETENTION_DAYS", "6"},
		{"PAYMENTS_EVENT_RETENTION_DAYS", "3651"},
		{"PAYMENTS_EVENT_RETENTION_DAYS", "thirty"},
		{"PAYMENTS_WEBHOOK_RETENTION_DAYS", "-1"},
		{"PAYMENTS_WEBHOOK_RETENTION_DAYS", "1.5"},
	} {
		e := goodEnv()
		e[bad.key] = bad.value
		_, err := loadConfig(envOf(e), true)
		if err == nil || !strings.Contains(err.Error(), bad.key) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%s: %v", bad.key, bad.value, err)
		}
	}
}
