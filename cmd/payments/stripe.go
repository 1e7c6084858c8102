package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payments-api/payments/accounts"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/payout"
	"github.com/payments-api/payments/processor/sandbox"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/secretbox"
	"github.com/payments-api/payments/sharding"
)

// stripeConfig is the Stripe part of the configuration. Its String never
// shows a secret.
type stripeConfig struct {
	// SecretKey is the platform account's key; empty keeps the sandbox as
	// the platform's processor.
	SecretKey      string
	WebhookSecrets []string
	APIBase        string
	// EncryptionKey is the current key: it seals tenants' own Stripe keys
	// and webhook signing secrets; nil disables them.
	EncryptionKey []byte
	// EncryptionKeysOlder only open values sealed before a rotation
	// (PAYMENTS_ENCRYPTION_KEYS after its first key).
	EncryptionKeysOlder [][]byte
	CallTimeout         time.Duration
	NetworkRetries      int
	BreakerFailures     int
	BreakerOpen         time.Duration
}

// loadStripeConfig reads the Stripe variables. Errors name the variable
// and never echo a secret.
func loadStripeConfig(e env, processorTimeout time.Duration) (stripeConfig, error) {
	s := stripeConfig{SecretKey: e.or("STRIPE_SECRET_KEY", ""), APIBase: e.or("STRIPE_API_BASE", "")}
	if s.SecretKey != "" {
		if err := stripe.ValidateSecretKey(s.SecretKey); err != nil {
			return s, fmt.Errorf("STRIPE_SECRET_KEY: %v", err)
		}
	}
	if hooks := e.or("STRIPE_WEBHOOK_SECRET", ""); hooks != "" {
		if s.SecretKey == "" {
			return s, errors.New("STRIPE_WEBHOOK_SECRET is set but STRIPE_SECRET_KEY is not: set both for the platform's Stripe account, or neither for the sandbox")
		}
		for _, h := range strings.Split(hooks, ",") {
			h = strings.TrimSpace(h)
			if err := stripe.ValidateWebhookSecret(h); err != nil {
				return s, fmt.Errorf("STRIPE_WEBHOOK_SECRET: %v (several secrets during a rotation: separate them with commas)", err)
			}
			s.WebhookSecrets = append(s.WebhookSecrets, h)
		}
		if len(s.WebhookSecrets) > stripe.WebhookSecretsMax {
			return s, fmt.Errorf("STRIPE_WEBHOOK_SECRET: %d secrets, at most %d", len(s.WebhookSecrets), stripe.WebhookSecretsMax)
		}
	}
	if s.APIBase != "" && !strings.HasPrefix(s.APIBase, "http://") && !strings.HasPrefix(s.APIBase, "https://") {
		return s, fmt.Errorf("STRIPE_API_BASE=%q: want an http(s) URL such as http://127.0.0.1:12111 (stripe-mock)", s.APIBase)
	}
	if err := loadEncryptionKeys(e, &s); err != nil {
		return s, err
	}
	secs, err := intFrom(e, "PAYMENTS_STRIPE_CALL_TIMEOUT_SECONDS", int(stripe.CallTimeoutDefault/time.Second), 1, 120)
	if err != nil {
		return s, err
	}
	s.CallTimeout = time.Duration(secs) * time.Second
	if s.CallTimeout > processorTimeout {
		return s, fmt.Errorf("PAYMENTS_STRIPE_CALL_TIMEOUT_SECONDS (%s) must not exceed PAYMENTS_PROCESSOR_TIMEOUT_SECONDS (%s), which bounds a call with its retries", s.CallTimeout, processorTimeout)
	}
	if s.NetworkRetries, err = intFrom(e, "PAYMENTS_STRIPE_NETWORK_RETRIES", stripe.NetworkRetriesDefault, 0, stripe.NetworkRetriesMax); err != nil {
		return s, err
	}
	if s.BreakerFailures, err = intFrom(e, "PAYMENTS_STRIPE_BREAKER_FAILURES", stripe.BreakerFailuresDefault, 1, stripe.BreakerFailuresMax); err != nil {
		return s, err
	}
	if secs, err = intFrom(e, "PAYMENTS_STRIPE_BREAKER_OPEN_SECONDS", int(stripe.BreakerOpenDefault/time.Second), 1, int(stripe.BreakerOpenMax/time.Second)); err != nil {
		return s, err
	}
	s.BreakerOpen = time.Duration(secs) * time.Second
	return s, nil
}

// loadEncryptionKeys reads PAYMENTS_ENCRYPTION_KEYS (the current key, then
// older ones that only open, comma-separated) and PAYMENTS_ENCRYPTION_KEY
// (the current key alone). With both set they must agree on the current
// key, so a deployment moving from one variable to the other never seals
// under two keys at once. Errors never echo a key.
func loadEncryptionKeys(e env, s *stripeConfig) error {
	if k := e.or("PAYMENTS_ENCRYPTION_KEY", ""); k != "" {
		key, err := secretbox.ParseKey(k)
		if err != nil {
			return fmt.Errorf("PAYMENTS_ENCRYPTION_KEY: %v", err)
		}
		s.EncryptionKey = key
	}
	list := e.or("PAYMENTS_ENCRYPTION_KEYS", "")
	if list == "" {
		return nil
	}
	parts := strings.Split(list, ",")
	if len(parts) > secretbox.KeysMax {
		return fmt.Errorf("PAYMENTS_ENCRYPTION_KEYS: %d keys, at most %d (remove keys that `payments keys rotate` has rotated out)", len(parts), secretbox.KeysMax)
	}
	keys := make([][]byte, 0, len(parts))
	for i, p := range parts {
		key, err := secretbox.ParseKey(p)
		if err != nil {
			return fmt.Errorf("PAYMENTS_ENCRYPTION_KEYS: key %d: %v (separate keys with commas, the current one first)", i+1, err)
		}
		keys = append(keys, key)
	}
	if s.EncryptionKey != nil && !bytes.Equal(s.EncryptionKey, keys[0]) {
		return errors.New("PAYMENTS_ENCRYPTION_KEY and the first key of PAYMENTS_ENCRYPTION_KEYS differ: set only PAYMENTS_ENCRYPTION_KEYS, the current key first")
	}
	if _, err := secretbox.NewRing(keys[0], keys[1:]...); err != nil {
		return fmt.Errorf("PAYMENTS_ENCRYPTION_KEYS: %v", err)
	}
	s.EncryptionKey, s.EncryptionKeysOlder = keys[0], keys[1:]
	return nil
}

// box returns the keyring of the encryption keys, nil without a key.
func (s stripeConfig) box() (*secretbox.Box, error) {
	if s.EncryptionKey == nil {
		return nil, nil
	}
	b, err := secretbox.NewRing(s.EncryptionKey, s.EncryptionKeysOlder...)
	if err != nil {
		return nil, fmt.Errorf("PAYMENTS_ENCRYPTION_KEYS: %w", err)
	}
	return b, nil
}

// options returns the adapter options of an account.
func (s stripeConfig) options(key, account string, m *stripe.Metrics, log *slog.Logger) stripe.Options {
	o := stripe.DefaultOptions()
	o.SecretKey, o.APIBase, o.Account, o.Metrics, o.Logger = key, s.APIBase, account, m, log
	o.CallTimeout, o.NetworkRetries, o.BreakerFailures, o.BreakerOpen = s.CallTimeout, s.NetworkRetries, s.BreakerFailures, s.BreakerOpen
	return o
}

// processors is the processor wiring: the platform's processor (Stripe
// with STRIPE_SECRET_KEY, else the sandbox), tenants' own Stripe accounts,
// and the resolver that picks between them.
type processors struct {
	// sandbox is the platform's processor when no Stripe key is set.
	sandbox  *sandbox.Sandbox
	platform processor.Processor
	accounts *accounts.Store
	resolver *accounts.Resolver
	// payouts are the payout adapters, the one of new payouts first.
	payouts []payout.Processor
	close   func()
}

// describe says which processor is active, for the start log line.
func (p *processors) describe(c config) []any {
	attrs := []any{"processor", p.platform.Name(), "tenant_stripe_accounts", c.Stripe.EncryptionKey != nil}
	if c.Stripe.APIBase != "" {
		attrs = append(attrs, "stripe_api_base", c.Stripe.APIBase)
	}
	return attrs
}

// newProcessors builds the processors. update receives the sandbox's
// asynchronous outcomes, dispute its disputes (nil: none are opened).
func newProcessors(c config, router *sharding.Router, reg prometheus.Registerer, log *slog.Logger, update processor.UpdateHandler, dispute processor.DisputeHandler) (*processors, error) {
	p := &processors{close: func() {}}
	metrics := stripe.NewMetrics(reg)
	if c.Stripe.SecretKey != "" {
		a, err := stripe.New(c.Stripe.options(c.Stripe.SecretKey, stripe.AccountPlatform, metrics, log))
		if err != nil {
			return nil, fmt.Errorf("STRIPE_SECRET_KEY: %w", err)
		}
		p.platform = a
	} else {
		o := sandbox.DefaultOptions()
		o.Latency, o.SettleDelay, o.Logger, o.UpdateHandler = c.SandboxLatency, c.SandboxSettleDelay, log, update
		o.DisputeDelay, o.DisputeFee, o.DisputeHandler = c.SandboxDisputeDelay, c.SandboxDisputeFee, dispute
		if c.Stripe.EncryptionKey != nil {
			o.ActionKey = sandboxActionKey(c.Stripe.EncryptionKey)
		} else {
			log.Warn("PAYMENTS_ENCRYPTION_KEY is not set: sandbox 3-D Secure links complete only on the process that issued them")
		}
		sb, err := sandbox.New(o)
		if err != nil {
			return nil, err
		}
		p.sandbox, p.platform = sb, sb
		p.close = func() { _ = sb.Close() }
	}
	box, err := c.Stripe.box()
	if err != nil {
		return nil, err
	}
	p.accounts = accounts.NewStore(router, box, nil)
	p.resolver = accounts.NewTenantResolver(p.accounts, p.platform, func(tenant, key string) (processor.Processor, error) {
		o := c.Stripe.options(key, stripe.AccountTenant, metrics, log)
		o.AccountID = tenant
		return stripe.New(o)
	})
	if p.payouts, err = newPayoutProcessors(c, metrics, log); err != nil {
		return nil, err
	}
	return p, nil
}

// reconcileCmd is `payments reconcile`: the reconciliation report of one
// tenant, printed as JSON.
func reconcileCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, stderr io.Writer) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "the tenant (ten_...)")
	since := fs.String("since", "", "compare objects created at or after this date (YYYY-MM-DD) or RFC 3339 time")
	repair := fs.Bool("repair", false, "apply the processor's state where ours may still move to it")
	limit := fs.Int("limit", payments.ReportObjectsMax, "payments, and refunds, to compare at most")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, ok := ids.Parse(ids.PrefixTenant, *tenant)
	if !ok {
		return errors.New("usage: payments reconcile --tenant ten_... --since 2026-11-01 [--repair] [--limit N]")
	}
	from, err := payments.ParseSince(*since)
	if err != nil {
		return fmt.Errorf("--since %q: want a date such as 2026-11-01 or an RFC 3339 time", *since)
	}
	if *limit < 1 || *limit > payments.ReportObjectsMax {
		return fmt.Errorf("--limit %d: want 1 to %d", *limit, payments.ReportObjectsMax)
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
	router := sharding.NewRouter(m)
	var svc *payments.Service
	procs, err := newProcessors(c, router, nil, log, func(ctx context.Context, u processor.Update) error { return svc.ApplyUpdate(ctx, u) }, nil)
	if err != nil {
		return err
	}
	defer procs.close()
	svc = payments.NewService(payments.Options{Router: router, Accounts: procs.resolver.ForAccount, Logger: log, ProcessorTimeout: c.ProcessorTimeout})
	rep, err := svc.ReconciliationReport(ctx, id, payments.ReportParams{Since: from, Limit: *limit, Repair: *repair})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// sandboxActionKey derives the key that signs sandbox 3-D Secure links
// from the encryption key, which every process of a deployment shares. The
// label keeps the derived key apart from the sealing key itself.
func sandboxActionKey(encryptionKey []byte) []byte {
	m := hmac.New(sha256.New, encryptionKey)
	m.Write([]byte("payments sandbox 3-D Secure link key v1"))
	return m.Sum(nil)
}
