package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor/payout"
	"github.com/payments-api/payments/processor/sandbox"
	"github.com/payments-api/payments/processor/stripe"
)

// payoutConfig configures the payout driver and the sandbox's payouts.
type payoutConfig struct {
	// Interval is how often the driver runs
	// (PAYMENTS_PAYOUT_INTERVAL_MS).
	Interval time.Duration
	// Drive holds the ages the driver acts at: SendAfter from
	// PAYMENTS_PAYOUT_SEND_DELAY_SECONDS, RetryAfter the reconcile age,
	// RetrieveAfter the interval, OverdueAfter from
	// PAYMENTS_PAYOUT_OVERDUE_SECONDS.
	Drive payments.PayoutDriveOptions
	// SandboxDelay is how long a sandbox payout stays in transit
	// (PAYMENTS_SANDBOX_PAYOUT_DELAY_MS).
	SandboxDelay time.Duration
}

// loadPayoutConfig reads the payout variables; reconcileAge is the age at
// which a send whose outcome was not recorded is repeated.
func loadPayoutConfig(e env, reconcileAge time.Duration) (payoutConfig, error) {
	var p payoutConfig
	ms, err := intFrom(e, "PAYMENTS_PAYOUT_INTERVAL_MS", 1000, 50, 600_000)
	if err != nil {
		return p, err
	}
	p.Interval = time.Duration(ms) * time.Millisecond
	secs, err := intFrom(e, "PAYMENTS_PAYOUT_SEND_DELAY_SECONDS", 0, 0, 7*86400)
	if err != nil {
		return p, err
	}
	p.Drive.SendAfter = time.Duration(secs) * time.Second
	if secs, err = intFrom(e, "PAYMENTS_PAYOUT_OVERDUE_SECONDS", 3600, 60, 7*86400); err != nil {
		return p, err
	}
	p.Drive.OverdueAfter = time.Duration(secs) * time.Second
	p.Drive.RetryAfter = reconcileAge
	p.Drive.RetrieveAfter = p.Interval
	if ms, err = intFrom(e, "PAYMENTS_SANDBOX_PAYOUT_DELAY_MS", int(sandbox.PayoutDelayDefault/time.Millisecond), 0, int(sandbox.PayoutDelayMax/time.Millisecond)); err != nil {
		return p, err
	}
	p.SandboxDelay = time.Duration(ms) * time.Millisecond
	return p, nil
}

// newPayoutProcessors builds the payout adapters: Stripe Connect on the
// platform's account when STRIPE_SECRET_KEY is set (new payouts go there),
// and the sandbox, which also finishes payouts recorded with it.
func newPayoutProcessors(c config, m *stripe.Metrics, log *slog.Logger) ([]payout.Processor, error) {
	sb, err := sandbox.NewPayouts(sandbox.PayoutOptions{Delay: c.Payouts.SandboxDelay})
	if err != nil {
		return nil, fmt.Errorf("PAYMENTS_SANDBOX_PAYOUT_DELAY_MS: %w", err)
	}
	if c.Stripe.SecretKey == "" {
		return []payout.Processor{sb}, nil
	}
	cp, err := stripe.NewConnectPayouts(c.Stripe.options(c.Stripe.SecretKey, stripe.AccountPlatform, m, log))
	if err != nil {
		return nil, fmt.Errorf("STRIPE_SECRET_KEY: %w", err)
	}
	return []payout.Processor{cp, sb}, nil
}
