package main

import (
	"strings"
	"testing"
	"time"

	"github.com/payments-api/payments/processor/sandbox"
)

// TestPayoutConfiguration: the payout variables' defaults, and every bad
// value refused with one line naming the variable.
func TestPayoutConfiguration(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(envOf(goodEnv()), true)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Payouts
	if p.Interval != time.Second || p.Drive.SendAfter != 0 || p.Drive.OverdueAfter != time.Hour || p.Drive.RetryAfter != c.ReconcileAge ||
		p.Drive.RetrieveAfter != p.Interval || p.SandboxDelay != sandbox.PayoutDelayDefault {
		t.Fatalf("defaults %+v", p)
	}
	for key, bad := range map[string]string{
		"PAYMENTS_PAYOUT_INTERVAL_MS":        "10",
		"PAYMENTS_PAYOUT_SEND_DELAY_SECONDS": "-1",
		"PAYMENTS_PAYOUT_OVERDUE_SECONDS":    "soon",
		"PAYMENTS_SANDBOX_PAYOUT_DELAY_MS":   "999999999999",
	} {
		e := goodEnv()
		e[key] = bad
		_, err := loadConfig(envOf(e), true)
		if err == nil || !strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%s: %v", key, bad, err)
		}
	}
	e := goodEnv()
	e["PAYMENTS_PAYOUT_SEND_DELAY_SECONDS"] = "300"
	if c, err := loadConfig(envOf(e), true); err != nil || c.Payouts.Drive.SendAfter != 5*time.Minute {
		t.Fatalf("send delay: %+v %v", c.Payouts, err)
	}
	procs, err := newPayoutProcessors(c, nil, nil)
	if err != nil || len(procs) != 1 || procs[0].Name() != sandbox.Name {
		t.Fatalf("without a Stripe key: %v %v", procs, err)
	}
}
