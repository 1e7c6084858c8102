package stripe_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

// Limits of these tests.
const (
	// waitMax bounds every poll; it is a deadline for giving up, never an
	// assertion about speed.
	waitMax = 20 * time.Second
	// callTimeoutTest is the adapter's per-attempt timeout against the
	// double; FaultSlow answers take longer.
	callTimeoutTest = 300 * time.Millisecond
	testKey         = "sk_test_0123456789abcdefghijklmnop"
)

type fixture struct {
	d   *stripetest.Double
	a   *stripe.Adapter
	reg *prometheus.Registry
}

// newFixture returns an adapter talking to a fresh double. change adjusts
// the options.
func newFixture(tb testing.TB, change func(*stripe.Options)) fixture {
	tb.Helper()
	d := stripetest.New(tb)
	reg := prometheus.NewRegistry()
	o := stripe.DefaultOptions()
	o.SecretKey, o.APIBase, o.CallTimeout, o.Metrics = testKey, d.URL, callTimeoutTest, stripe.NewMetrics(reg)
	if change != nil {
		change(&o)
	}
	a, err := stripe.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	return fixture{d: d, a: a, reg: reg}
}

func authorize(pm, capture string, amount int64, payment string) processor.AuthorizeRequest {
	return processor.AuthorizeRequest{
		TenantID: "ten_test", PaymentID: payment, Amount: amount, Currency: "usd", PaymentMethod: pm,
		CaptureMethod: capture, IdempotencyKey: payment + ":authorize", Metadata: map[string]string{"order": "42"},
	}
}

func wantUnavailable(tb testing.TB, err error) {
	tb.Helper()
	if !errors.Is(err, processor.ErrUnavailable) || errcode.As(err) != nil {
		tb.Fatalf("error %v: want one wrapping processor.ErrUnavailable and no errcode", err)
	}
}

func TestAuthorizeOutcomes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	cases := []struct {
		pm, capture string
		status      processor.Status
		decline     string
	}{
		{stripetest.PaymentMethodVisa, "", processor.StatusSucceeded, ""},
		{stripetest.PaymentMethodVisa, processor.CaptureManual, processor.StatusRequiresCapture, ""},
		{stripetest.PaymentMethodDeclined, "", processor.StatusFailed, "generic_decline"},
		{stripetest.PaymentMethodInsufficientFunds, "", processor.StatusFailed, "insufficient_funds"},
		{stripetest.PaymentMethodExpired, "", processor.StatusFailed, "expired_card"},
		{stripetest.PaymentMethodThreeDSecure, "", processor.StatusRequiresAction, ""},
		{stripetest.PaymentMethodProcessing, "", processor.StatusPending, ""},
	}
	for i, c := range cases {
		pay := "pay_outcome" + string(rune('a'+i))
		ch, err := f.a.Authorize(ctx, authorize(c.pm, c.capture, 2000, pay))
		if err != nil {
			t.Fatalf("%s: %v", c.pm, err)
		}
		if ch.Status != c.status || ch.DeclineCode != c.decline || !strings.HasPrefix(ch.Ref, "pi_") {
			t.Fatalf("%s %s: charge %+v, want status %s decline %q", c.pm, c.capture, ch, c.status, c.decline)
		}
		switch ch.Status {
		case processor.StatusSucceeded:
			if ch.AmountCaptured != 2000 || ch.Fee != 88 {
				t.Fatalf("succeeded charge %+v: want 2000 captured, fee 88 from the balance transaction", ch)
			}
		case processor.StatusRequiresCapture:
			if ch.AmountCapturable != 2000 {
				t.Fatalf("authorized charge %+v", ch)
			}
		case processor.StatusFailed:
			if ch.FailureCode != processor.FailureCardDeclined || ch.FailureMessage == "" {
				t.Fatalf("declined charge %+v", ch)
			}
		case processor.StatusRequiresAction:
			if ch.NextAction == nil || ch.NextAction.Type != processor.NextActionUseStripeSDK {
				t.Fatalf("3-D Secure charge %+v: want next action use_stripe_sdk", ch)
			}
		}
		if n := f.d.Created(pay + ":authorize"); n != 1 {
			t.Fatalf("%s: %d PaymentIntents for its key", c.pm, n)
		}
	}
	_, err := f.a.Authorize(ctx, authorize("pm_card_unknown", "", 2000, "pay_unknownpm"))
	if !errcode.Is(err, processor.CodePaymentMethodInvalid) || errcode.As(err).Param != "payment_method" {
		t.Fatalf("unknown payment method: %v", err)
	}
	if got := metric(t, f.reg, "payments_stripe_calls_total", "operation", "authorize", "outcome", stripe.OutcomeDeclined); got != 3 {
		t.Fatalf("%v declined authorize calls counted, want 3", got)
	}
}

func TestManualCapturePartialAndCancel(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	ch, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, processor.CaptureManual, 5000, "pay_capture"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.a.Capture(ctx, processor.CaptureRequest{Ref: ch.Ref, Amount: 6000, IdempotencyKey: "pay_capture:capture-too-much"})
	if !errcode.Is(err, processor.CodeAmountExceedsCapturable) {
		t.Fatalf("capture above capturable: %v", err)
	}
	got, err := f.a.Capture(ctx, processor.CaptureRequest{Ref: ch.Ref, Amount: 3000, IdempotencyKey: "pay_capture:capture"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != processor.StatusSucceeded || got.AmountCaptured != 3000 || got.Fee != 117 {
		t.Fatalf("partial capture %+v", got)
	}
	_, err = f.a.Cancel(ctx, processor.CancelRequest{Ref: ch.Ref, IdempotencyKey: "pay_capture:cancel"})
	if !errcode.Is(err, processor.CodeUnexpectedState) {
		t.Fatalf("cancel of a captured payment: %v", err)
	}

	ch, err = f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, processor.CaptureManual, 5000, "pay_cancel"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"pay_cancel:cancel", "pay_cancel:cancel-again"} {
		got, err := f.a.Cancel(ctx, processor.CancelRequest{Ref: ch.Ref, IdempotencyKey: key})
		if err != nil || got.Status != processor.StatusCanceled {
			t.Fatalf("cancel with key %s: %+v %v", key, got, err)
		}
	}
	if _, err := f.a.Retrieve(ctx, "pi_doesnotexist"); !errcode.Is(err, errcode.CodeResourceMissing) {
		t.Fatalf("retrieve of an unknown PaymentIntent: %v", err)
	}
}

func TestRefundPendingThenRetrieved(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	ch, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 5000, "pay_refund"))
	if err != nil {
		t.Fatal(err)
	}
	f.d.SetRefundStatus("pending")
	req := processor.RefundRequest{Ref: ch.Ref, TenantID: "ten_test", PaymentID: "pay_refund", RefundID: "re_one", Amount: 1500, IdempotencyKey: "re_one:create"}
	r, err := f.a.Refund(ctx, req)
	if err != nil || r.Status != processor.RefundPending || r.Amount != 1500 {
		t.Fatalf("refund %+v %v", r, err)
	}
	again, err := f.a.Refund(ctx, req)
	if err != nil || again.Ref != r.Ref {
		t.Fatalf("repeated refund %+v %v: want the same refund %s", again, err, r.Ref)
	}
	f.d.FinishRefund(r.Ref, "succeeded")
	got, err := f.a.RetrieveRefund(ctx, r.Ref)
	if err != nil || got.Status != processor.RefundSucceeded {
		t.Fatalf("retrieved refund %+v %v", got, err)
	}
	f.d.SetRefundStatus("failed")
	r2, err := f.a.Refund(ctx, processor.RefundRequest{Ref: ch.Ref, RefundID: "re_two", Amount: 100, IdempotencyKey: "re_two:create"})
	if err != nil || r2.Status != processor.RefundFailed || r2.FailureReason == "" {
		t.Fatalf("failed refund %+v %v", r2, err)
	}
	if _, err := f.a.Refund(ctx, processor.RefundRequest{Ref: ch.Ref, RefundID: "re_three", Amount: 100}); err == nil || errors.Is(err, processor.ErrUnavailable) {
		t.Fatalf("refund without an idempotency key: %v, want a refusal", err)
	}
	if n := f.d.Requests(stripetest.OpRefund); n != 3 {
		t.Fatalf("%d refund requests reached Stripe, want 3 (none without a key)", n)
	}
}

// TestNetworkFaults: every fault ends in exactly one PaymentIntent for the
// payment's key, whoever retries.
func TestNetworkFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("timeout longer than the client's, then stripe-go retries", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil)
		f.d.Script(stripetest.OpCreate, stripetest.Fault{Kind: stripetest.FaultSlow, Delay: 10 * callTimeoutTest})
		ch, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_slow"))
		if err != nil || ch.Status != processor.StatusSucceeded {
			t.Fatalf("authorize %+v %v", ch, err)
		}
		if keys := f.d.Keys(stripetest.OpCreate); keys["pay_slow:authorize"] != 2 || len(keys) != 1 {
			t.Fatalf("create requests per key %v, want 2 with one key", keys)
		}
		if n := f.d.Created("pay_slow:authorize"); n != 1 {
			t.Fatalf("%d PaymentIntents", n)
		}
	})
	t.Run("timeouts beyond the retries leave the outcome unknown", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, func(o *stripe.Options) { o.NetworkRetries = 0 })
		f.d.Script(stripetest.OpCreate, stripetest.Fault{Kind: stripetest.FaultSlow, Delay: 10 * callTimeoutTest})
		_, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_slow2"))
		wantUnavailable(t, err)
		ch, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_slow2"))
		if err != nil || ch.Status != processor.StatusSucceeded {
			t.Fatalf("repeated authorize %+v %v", ch, err)
		}
		if n := f.d.Created("pay_slow2:authorize"); n != 1 {
			t.Fatalf("%d PaymentIntents", n)
		}
	})
	t.Run("500 then success when we repeat with the same key", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil)
		f.d.Script(stripetest.OpCreate, stripetest.Fault{Kind: stripetest.FaultStatus, Status: http.StatusInternalServerError})
		_, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_500"))
		wantUnavailable(t, err)
		ch, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_500"))
		if err != nil || ch.Status != processor.StatusSucceeded {
			t.Fatalf("repeated authorize %+v %v", ch, err)
		}
		if keys := f.d.Keys(stripetest.OpCreate); keys["pay_500:authorize"] != 2 || len(keys) != 1 {
			t.Fatalf("create requests per key %v", keys)
		}
	})
	t.Run("503 is retried by stripe-go with the same key", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil)
		f.d.Script(stripetest.OpCreate, stripetest.Fault{Kind: stripetest.FaultStatus, Status: http.StatusServiceUnavailable})
		ch, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_503"))
		if err != nil || ch.Status != processor.StatusSucceeded {
			t.Fatalf("authorize %+v %v", ch, err)
		}
		if keys := f.d.Keys(stripetest.OpCreate); keys["pay_503:authorize"] != 2 {
			t.Fatalf("create requests per key %v", keys)
		}
	})
	t.Run("429 is unavailable and does not count against the breaker", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, func(o *stripe.Options) { o.BreakerFailures = 1 })
		f.d.Script(stripetest.OpCreate, stripetest.Fault{Kind: stripetest.FaultStatus, Status: http.StatusTooManyRequests})
		_, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_429"))
		wantUnavailable(t, err)
		if err := f.a.Ready(); err != nil {
			t.Fatalf("breaker after a 429: %v", err)
		}
		ch, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_429"))
		if err != nil || ch.Status != processor.StatusSucceeded {
			t.Fatalf("repeated authorize %+v %v", ch, err)
		}
		if got := metric(t, f.reg, "payments_stripe_calls_total", "operation", "authorize", "outcome", stripe.OutcomeRateLimited); got != 1 {
			t.Fatalf("%v rate-limited calls counted", got)
		}
	})
	t.Run("connection reset after the effect", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil)
		f.d.Script(stripetest.OpCreate, stripetest.Fault{Kind: stripetest.FaultReset})
		ch, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_reset"))
		if err != nil || ch.Status != processor.StatusSucceeded {
			t.Fatalf("authorize %+v %v", ch, err)
		}
		if n := f.d.Created("pay_reset:authorize"); n != 1 {
			t.Fatalf("%d PaymentIntents", n)
		}
	})
	t.Run("a write without an idempotency key is never sent", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil)
		req := authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_nokey")
		req.IdempotencyKey = ""
		if _, err := f.a.Authorize(ctx, req); err == nil {
			t.Fatal("authorize without a key succeeded")
		}
		if n := f.d.Requests(stripetest.OpCreate); n != 0 {
			t.Fatalf("%d requests sent", n)
		}
	})
}

func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, func(o *stripe.Options) { o.BreakerFailures, o.BreakerOpen = 2, time.Minute })
	for i := range 2 {
		f.d.Script(stripetest.OpCreate, stripetest.Fault{Kind: stripetest.FaultStatus, Status: http.StatusInternalServerError})
		_, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_breaker"))
		wantUnavailable(t, err)
		if i == 0 && f.a.Ready() != nil {
			t.Fatal("breaker open after one failure")
		}
	}
	err := f.a.Ready()
	var open *stripe.OpenError
	if !errors.As(err, &open) || !errors.Is(err, processor.ErrUnavailable) {
		t.Fatalf("Ready after two failures: %v, want an OpenError", err)
	}
	if ra := processor.RetryAfterOf(err); ra < 59*time.Second || ra > time.Minute {
		t.Fatalf("retry after %v, want about a minute", ra)
	}
	sent := f.d.Requests(stripetest.OpCreate)
	_, err = f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_breaker"))
	if !errors.As(err, &open) {
		t.Fatalf("authorize with an open breaker: %v", err)
	}
	if n := f.d.Requests(stripetest.OpCreate); n != sent {
		t.Fatalf("%d requests reached Stripe while the breaker was open", n-sent)
	}
	if got := metric(t, f.reg, "payments_stripe_calls_total", "operation", "authorize", "outcome", stripe.OutcomeRejected); got != 1 {
		t.Fatalf("%v rejected calls counted", got)
	}
	if got := metric(t, f.reg, "payments_stripe_circuit_breakers", "state", "open"); got != 1 {
		t.Fatalf("open breakers gauge %v, want 1", got)
	}
	if got := metric(t, f.reg, "payments_stripe_circuit_breakers", "state", "closed"); got != 0 {
		t.Fatalf("closed breakers gauge %v, want 0", got)
	}
}

func TestCircuitBreakerHalfOpenProbeCloses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, func(o *stripe.Options) { o.BreakerFailures, o.BreakerOpen = 1, 50*time.Millisecond })
	f.d.Script(stripetest.OpCreate, stripetest.Fault{Kind: stripetest.FaultStatus, Status: http.StatusBadGateway})
	_, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_probe"))
	wantUnavailable(t, err)
	deadline := time.Now().Add(waitMax)
	for f.a.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the breaker never let a probe through")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ch, err := f.a.Authorize(ctx, authorize(stripetest.PaymentMethodVisa, "", 2000, "pay_probe"))
	if err != nil || ch.Status != processor.StatusSucceeded {
		t.Fatalf("probe %+v %v", ch, err)
	}
	if got := metric(t, f.reg, "payments_stripe_circuit_breakers", "state", "closed"); got != 1 {
		t.Fatalf("closed breakers gauge %v after a successful probe", got)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(*stripe.Options){
		"no key":          func(o *stripe.Options) { o.SecretKey = "" },
		"publishable key": func(o *stripe.Options) { o.SecretKey = "pk_test_0123456789abcdef" },
		"bad base":        func(o *stripe.Options) { o.APIBase = "ftp://x" },
		"retries":         func(o *stripe.Options) { o.NetworkRetries = 99 },
		"timeout":         func(o *stripe.Options) { o.CallTimeout = 0 },
		"breaker":         func(o *stripe.Options) { o.BreakerFailures = 0 },
	} {
		o := stripe.DefaultOptions()
		o.SecretKey = testKey
		change(&o)
		_, err := stripe.New(o)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "0123456789abcdef") {
			t.Errorf("%s: the error echoes the key: %v", name, err)
		}
	}
}

// metric returns the value of the series of name whose labels include the
// given pairs (account "platform" is implied), or 0.
func metric(tb testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	want := map[string]string{"account": stripe.AccountPlatform}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}
