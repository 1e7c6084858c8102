package stripe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	gostripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/dispute"
	"github.com/stripe/stripe-go/v76/paymentintent"
	"github.com/stripe/stripe-go/v76/refund"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/processor"
)

// Name is what Adapter.Name returns and what payments record as their
// processor.
const Name = "stripe"

// Defaults and limits of Options.
const (
	// CallTimeoutDefault bounds one HTTP attempt to Stripe. stripe-go's
	// retries each get their own; the caller's context bounds them all.
	CallTimeoutDefault = 10 * time.Second
	// CallTimeoutMax is the largest Options.CallTimeout.
	CallTimeoutMax = 2 * time.Minute
	// NetworkRetriesDefault is stripe-go's default number of retries.
	NetworkRetriesDefault = 2
	// NetworkRetriesMax is the largest Options.NetworkRetries.
	NetworkRetriesMax = 5
	// BreakerFailuresDefault is how many consecutive failed calls open the
	// circuit breaker.
	BreakerFailuresDefault = 5
	// BreakerFailuresMax is the largest Options.BreakerFailures.
	BreakerFailuresMax = 1000
	// BreakerOpenDefault is how long an open breaker refuses calls before
	// it lets one probe through.
	BreakerOpenDefault = 30 * time.Second
	// BreakerOpenMax is the largest Options.BreakerOpen.
	BreakerOpenMax = 10 * time.Minute
	// MetadataKeysMax is Stripe's limit of metadata keys per object. Our
	// own keys always go; the merchant's fill what is left, in key order.
	MetadataKeysMax = 50
	// SecretKeyLengthMin and SecretKeyLengthMax bound a Stripe secret key
	// (Stripe's are 32 to about 110 characters).
	SecretKeyLengthMin = 24
	SecretKeyLengthMax = 255
)

// Metadata keys the adapter sets on every PaymentIntent and refund, and
// that webhooks are routed by.
const (
	MetadataTenantID  = "tenant_id"
	MetadataPaymentID = "payment_id"
	MetadataRefundID  = "refund_id"
)

// expandFee asks Stripe to embed the latest charge's balance transaction,
// whose fee becomes the Charge's Fee.
const expandFee = "latest_charge.balance_transaction"

// Options configures an Adapter. Start from DefaultOptions.
type Options struct {
	// SecretKey is the account's secret (sk_...) or restricted (rk_...)
	// key. It is sent to Stripe and nowhere else.
	SecretKey string
	// APIBase replaces https://api.stripe.com, e.g. with stripe-mock or a
	// test double. Empty means Stripe.
	APIBase string
	// CallTimeout bounds one HTTP attempt.
	CallTimeout time.Duration
	// NetworkRetries is how often stripe-go retries a failed attempt with
	// the same idempotency key (0: never).
	NetworkRetries int
	// BreakerFailures consecutive failed calls open the circuit breaker,
	// for BreakerOpen.
	BreakerFailures int
	BreakerOpen     time.Duration
	// Account labels the metrics: AccountPlatform or AccountTenant.
	Account string
	// AccountID names the account in the per-account breaker state
	// gauge: the tenant's ID for a tenant's own account; empty means
	// Account.
	AccountID string
	// Metrics receives call and breaker metrics; nil keeps them
	// unregistered.
	Metrics *Metrics
	// Transport carries the HTTP requests; nil means a transport shared by
	// every Adapter of the process, so tenant accounts share connections.
	Transport http.RoundTripper
	// Logger receives stripe-go's retry notices at debug level; nil
	// discards. Nothing logged holds a key, a request body or an answer.
	Logger *slog.Logger
}

// DefaultOptions returns the defaults, without a key.
func DefaultOptions() Options {
	return Options{
		CallTimeout:     CallTimeoutDefault,
		NetworkRetries:  NetworkRetriesDefault,
		BreakerFailures: BreakerFailuresDefault,
		BreakerOpen:     BreakerOpenDefault,
		Account:         AccountPlatform,
	}
}

// sharedTransport keeps one connection pool to Stripe for every Adapter.
var sharedTransport = func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}()

// Adapter is the Stripe processor of one account. It is safe for
// concurrent use. It implements processor.Processor, processor.Gate and
// processor.RefundRetriever.
type Adapter struct {
	intents paymentintent.Client
	refunds refund.Client
	// disputes answers and changes disputes (disputes.go).
	disputes dispute.Client
	breaker  *breaker
	metrics  *Metrics
	account  string
}

var (
	_ processor.Processor       = (*Adapter)(nil)
	_ processor.Gate            = (*Adapter)(nil)
	_ processor.RefundRetriever = (*Adapter)(nil)
	_ processor.FeeRetriever    = (*Adapter)(nil)
)

// ValidateSecretKey checks the shape of a Stripe secret or restricted key
// without echoing it.
func ValidateSecretKey(key string) error {
	ok := false
	for _, p := range []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_"} {
		ok = ok || strings.HasPrefix(key, p)
	}
	if !ok || len(key) > SecretKeyLengthMax || len(key) < SecretKeyLengthMin || strings.ContainsAny(key, " \t\r\n") {
		return errors.New("a Stripe secret key starts with sk_test_, sk_live_, rk_test_ or rk_live_, has 24 to 255 characters and no spaces")
	}
	return nil
}

// New returns the Adapter of the account whose key is o.SecretKey, or an
// error naming the option that is out of range. It makes no call.
func New(o Options) (*Adapter, error) {
	if err := ValidateSecretKey(o.SecretKey); err != nil {
		return nil, err
	}
	switch {
	case o.CallTimeout <= 0 || o.CallTimeout > CallTimeoutMax:
		return nil, fmt.Errorf("stripe call timeout %v: must be above 0 and at most %v", o.CallTimeout, CallTimeoutMax)
	case o.NetworkRetries < 0 || o.NetworkRetries > NetworkRetriesMax:
		return nil, fmt.Errorf("stripe network retries %d: must be between 0 and %d", o.NetworkRetries, NetworkRetriesMax)
	case o.BreakerFailures < 1 || o.BreakerFailures > BreakerFailuresMax:
		return nil, fmt.Errorf("stripe breaker failures %d: must be between 1 and %d", o.BreakerFailures, BreakerFailuresMax)
	case o.BreakerOpen <= 0 || o.BreakerOpen > BreakerOpenMax:
		return nil, fmt.Errorf("stripe breaker open time %v: must be above 0 and at most %v", o.BreakerOpen, BreakerOpenMax)
	}
	if o.APIBase != "" {
		u, err := url.Parse(o.APIBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("stripe API base %q: want an http(s) URL such as http://127.0.0.1:12111", o.APIBase)
		}
	}
	if o.Account == "" {
		o.Account = AccountPlatform
	}
	if o.AccountID == "" {
		o.AccountID = o.Account
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Transport == nil {
		o.Transport = sharedTransport
	}
	cfg := &gostripe.BackendConfig{
		HTTPClient:        &http.Client{Timeout: o.CallTimeout, Transport: o.Transport},
		MaxNetworkRetries: gostripe.Int64(int64(o.NetworkRetries)),
		LeveledLogger:     leveledLogger{o.Logger},
		EnableTelemetry:   gostripe.Bool(false),
	}
	if o.APIBase != "" {
		cfg.URL = gostripe.String(strings.TrimRight(o.APIBase, "/"))
	}
	backend := gostripe.GetBackendWithConfig(gostripe.APIBackend, cfg)
	return &Adapter{
		intents: paymentintent.Client{B: backend, Key: o.SecretKey},
		refunds: refund.Client{B: backend, Key: o.SecretKey},

		disputes: dispute.Client{B: backend, Key: o.SecretKey},
		breaker:  newBreaker("stripe-"+o.Account, o.Account, o.AccountID, uint32(o.BreakerFailures), o.BreakerOpen, o.Metrics),
		metrics:  o.Metrics,
		account:  o.Account,
	}, nil
}

// Name returns "stripe".
func (a *Adapter) Name() string { return Name }

// Account returns the account the adapter calls: AccountPlatform or
// AccountTenant (Options.Account).
func (a *Adapter) Account() string { return a.account }

// Ready implements processor.Gate: nil unless the circuit breaker is open,
// then an *OpenError.
func (a *Adapter) Ready() error { return a.breaker.ready() }

// Close takes the adapter's breaker out of the metrics; the resolver calls
// it when it replaces a tenant's adapter. Calls still work after Close.
func (a *Adapter) Close() { a.breaker.close() }

// do runs one Stripe call through the breaker and records its metrics. f
// makes the call and returns stripe-go's error; do returns it translated
// (see translate), or an *OpenError when the breaker refused the call.
func (a *Adapter) do(ctx context.Context, op string, f func(ctx context.Context) error) error {
	var out error
	var outcome string
	start := time.Now()
	ran := a.breaker.run(func() error {
		err := f(ctx)
		out, outcome = translate(op, err)
		switch {
		case outcome == OutcomeRateLimited, errors.Is(err, context.Canceled), errors.Is(out, errIdempotencyConflict):
			return errNotCounted
		case outcome == OutcomeUnavailable:
			return errCounted
		default:
			return nil
		}
	})
	if !ran {
		a.metrics.rejected(a.account, op)
		return fmt.Errorf("stripe %s: %w", op, a.breaker.refusal())
	}
	a.metrics.observe(a.account, op, outcome, time.Since(start))
	return out
}

// requireKey refuses a write without an idempotency key before anything is
// sent: stripe-go would invent a random key, and a retry would be a second
// request to Stripe.
func requireKey(op, key string) error {
	if key == "" {
		return fmt.Errorf("stripe %s: refused to call without an idempotency key", op)
	}
	return nil
}

// Authorize implements processor.Processor: it creates a PaymentIntent and
// confirms it in the same call. A decline comes back as a failed Charge
// with Stripe's decline_code; 3-D Secure as StatusRequiresAction with the
// next action; a payment method that settles later as StatusPending.
func (a *Adapter) Authorize(ctx context.Context, req processor.AuthorizeRequest) (processor.Charge, error) {
	capture := req.CaptureMethod
	switch capture {
	case "":
		capture = processor.CaptureAutomatic
	case processor.CaptureAutomatic, processor.CaptureManual:
	default:
		return processor.Charge{}, errcode.Invalid(errcode.CodeParameterInvalid, "capture_method",
			"capture_method must be '%s' or '%s'", processor.CaptureAutomatic, processor.CaptureManual)
	}
	if req.TenantID == "" || req.PaymentID == "" {
		return processor.Charge{}, errcode.Invalid(errcode.CodeParameterMissing, "payment_id", "a payment needs its tenant and payment IDs")
	}
	if req.PaymentMethod == "" {
		return processor.Charge{}, errcode.Invalid(errcode.CodeParameterMissing, "payment_method", "payment_method is required")
	}
	if err := requireKey("authorize", req.IdempotencyKey); err != nil {
		return processor.Charge{}, err
	}
	p := &gostripe.PaymentIntentParams{
		Amount:             gostripe.Int64(req.Amount),
		Currency:           gostripe.String(strings.ToLower(req.Currency)),
		PaymentMethod:      gostripe.String(req.PaymentMethod),
		PaymentMethodTypes: []*string{gostripe.String("card")},
		CaptureMethod:      gostripe.String(capture),
		Confirm:            gostripe.Bool(true),
	}
	for k, v := range metadata(req.Metadata, MetadataTenantID, req.TenantID, MetadataPaymentID, req.PaymentID) {
		p.AddMetadata(k, v)
	}
	p.AddExpand(expandFee)
	p.IdempotencyKey = gostripe.String(req.IdempotencyKey)
	var pi *gostripe.PaymentIntent
	err := a.do(ctx, "authorize", func(ctx context.Context) error {
		p.Context = ctx
		var err error
		pi, err = a.intents.New(p)
		return err
	})
	var ce *cardError
	if errors.As(err, &ce) {
		return declined(ce.err, req), nil
	}
	if e := errcode.As(err); e != nil && e.Param == "payment_method" {
		// No such PaymentMethod: the token is not echoed, since a client
		// may have put card data in it.
		return processor.Charge{}, errcode.Invalid(processor.CodePaymentMethodInvalid, "payment_method",
			"payment_method is not a usable Stripe payment method, such as pm_card_visa")
	}
	if err != nil {
		return processor.Charge{}, err
	}
	return chargeOf(pi), nil
}

// Capture implements processor.Processor. Amount 0 captures everything
// that is capturable.
func (a *Adapter) Capture(ctx context.Context, req processor.CaptureRequest) (processor.Charge, error) {
	if err := checkRef(req.Ref); err != nil {
		return processor.Charge{}, err
	}
	if err := requireKey("capture", req.IdempotencyKey); err != nil {
		return processor.Charge{}, err
	}
	p := &gostripe.PaymentIntentCaptureParams{}
	if req.Amount > 0 {
		p.AmountToCapture = gostripe.Int64(req.Amount)
	}
	p.AddExpand(expandFee)
	p.IdempotencyKey = gostripe.String(req.IdempotencyKey)
	var pi *gostripe.PaymentIntent
	err := a.do(ctx, "capture", func(ctx context.Context) error {
		p.Context = ctx
		var err error
		pi, err = a.intents.Capture(req.Ref, p)
		return err
	})
	if e := errcode.As(err); e != nil && e.Param == "amount_to_capture" {
		return processor.Charge{}, errcode.Invalid(processor.CodeAmountExceedsCapturable, "amount", "%s", e.Message)
	}
	if err != nil {
		return processor.Charge{}, err
	}
	return chargeOf(pi), nil
}

// Cancel implements processor.Processor. Canceling a canceled
// PaymentIntent returns it unchanged.
func (a *Adapter) Cancel(ctx context.Context, req processor.CancelRequest) (processor.Charge, error) {
	if err := checkRef(req.Ref); err != nil {
		return processor.Charge{}, err
	}
	if err := requireKey("cancel", req.IdempotencyKey); err != nil {
		return processor.Charge{}, err
	}
	p := &gostripe.PaymentIntentCancelParams{}
	p.AddExpand(expandFee)
	p.IdempotencyKey = gostripe.String(req.IdempotencyKey)
	var pi *gostripe.PaymentIntent
	err := a.do(ctx, "cancel", func(ctx context.Context) error {
		p.Context = ctx
		var err error
		pi, err = a.intents.Cancel(req.Ref, p)
		return err
	})
	if errcode.Is(err, processor.CodeUnexpectedState) {
		if ch, rerr := a.Retrieve(ctx, req.Ref); rerr == nil && ch.Status == processor.StatusCanceled {
			return ch, nil
		}
	}
	if err != nil {
		return processor.Charge{}, err
	}
	return chargeOf(pi), nil
}

// Refund implements processor.Processor. Stripe may answer a refund as
// pending; the reconciler then asks RetrieveRefund, and a
// charge.refund.updated webhook reports the outcome.
func (a *Adapter) Refund(ctx context.Context, req processor.RefundRequest) (processor.Refund, error) {
	if err := checkRef(req.Ref); err != nil {
		return processor.Refund{}, err
	}
	if req.Amount <= 0 {
		return processor.Refund{}, errcode.Invalid("amount_too_small", "amount", "amount must be at least 1")
	}
	if err := requireKey("refund", req.IdempotencyKey); err != nil {
		return processor.Refund{}, err
	}
	p := &gostripe.RefundParams{
		PaymentIntent: gostripe.String(req.Ref),
		Amount:        gostripe.Int64(req.Amount),
	}
	p.AddMetadata(MetadataRefundID, req.RefundID)
	if req.PaymentID != "" {
		p.AddMetadata(MetadataPaymentID, req.PaymentID)
	}
	if req.TenantID != "" {
		p.AddMetadata(MetadataTenantID, req.TenantID)
	}
	p.IdempotencyKey = gostripe.String(req.IdempotencyKey)
	var r *gostripe.Refund
	err := a.do(ctx, "refund", func(ctx context.Context) error {
		p.Context = ctx
		var err error
		r, err = a.refunds.New(p)
		return err
	})
	if err != nil {
		return processor.Refund{}, err
	}
	return refundOf(r), nil
}

// Retrieve implements processor.Processor.
func (a *Adapter) Retrieve(ctx context.Context, ref string) (processor.Charge, error) {
	if err := checkRef(ref); err != nil {
		return processor.Charge{}, err
	}
	p := &gostripe.PaymentIntentParams{}
	p.AddExpand(expandFee)
	var pi *gostripe.PaymentIntent
	err := a.do(ctx, "retrieve", func(ctx context.Context) error {
		p.Context = ctx
		var err error
		pi, err = a.intents.Get(ref, p)
		return err
	})
	if err != nil {
		return processor.Charge{}, err
	}
	return chargeOf(pi), nil
}

// RetrieveFee implements processor.FeeRetriever: it reads the
// PaymentIntent with its latest charge's balance transaction expanded and
// answers the transaction's fee and net. A charge without a balance
// transaction yet (Stripe creates it with the capture) is an error wrapping
// processor.ErrUnavailable, so the caller tries again later. The amounts
// are in the balance transaction's currency, the account's settlement
// currency, which may differ from the charge's.
func (a *Adapter) RetrieveFee(ctx context.Context, ref string) (processor.Fee, error) {
	if err := checkRef(ref); err != nil {
		return processor.Fee{}, err
	}
	p := &gostripe.PaymentIntentParams{}
	p.AddExpand(expandFee)
	var pi *gostripe.PaymentIntent
	err := a.do(ctx, "retrieve_fee", func(ctx context.Context) error {
		p.Context = ctx
		var err error
		pi, err = a.intents.Get(ref, p)
		return err
	})
	if err != nil {
		return processor.Fee{}, err
	}
	if pi.LatestCharge == nil || pi.LatestCharge.BalanceTransaction == nil || pi.LatestCharge.BalanceTransaction.Object == "" {
		return processor.Fee{}, fmt.Errorf("stripe retrieve_fee: %s has no balance transaction yet: %w", ref, processor.ErrUnavailable)
	}
	bt := pi.LatestCharge.BalanceTransaction
	if bt.Fee < 0 || bt.Amount-bt.Fee != bt.Net {
		return processor.Fee{}, fmt.Errorf("stripe retrieve_fee: balance transaction %s has amount %d, fee %d and net %d, which do not add up", bt.ID, bt.Amount, bt.Fee, bt.Net)
	}
	return processor.Fee{Amount: bt.Fee, Net: bt.Net, Currency: string(bt.Currency)}, nil
}

// RetrieveRefund implements processor.RefundRetriever.
func (a *Adapter) RetrieveRefund(ctx context.Context, ref string) (processor.Refund, error) {
	if err := checkRef(ref); err != nil {
		return processor.Refund{}, err
	}
	p := &gostripe.RefundParams{}
	var r *gostripe.Refund
	err := a.do(ctx, "retrieve_refund", func(ctx context.Context) error {
		p.Context = ctx
		var err error
		r, err = a.refunds.Get(ref, p)
		return err
	})
	if err != nil {
		return processor.Refund{}, err
	}
	return refundOf(r), nil
}

// checkRef refuses references that cannot be Stripe IDs before they reach
// a URL path.
func checkRef(ref string) error {
	if ref == "" || len(ref) > 255 || strings.ContainsAny(ref, "/?#% ") {
		return errcode.NotFound("charge", ref)
	}
	return nil
}

// metadata merges our keys (pairs of key, value, which always win) with the
// merchant's, within Stripe's key limit; the merchant's keys are taken in
// sorted order so that a retry sends the same request.
func metadata(merchant map[string]string, ours ...string) map[string]string {
	out := make(map[string]string, len(merchant)+len(ours)/2)
	for i := 0; i+1 < len(ours); i += 2 {
		out[ours[i]] = ours[i+1]
	}
	keys := make([]string, 0, len(merchant))
	for k := range merchant {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(out) >= MetadataKeysMax {
			break
		}
		if _, taken := out[k]; !taken {
			out[k] = merchant[k]
		}
	}
	return out
}

// leveledLogger passes stripe-go's retry notices to slog at debug level
// and drops the rest: the adapter's errors and metrics say what failed,
// and stripe-go's error lines would carry Stripe's answer bodies.
type leveledLogger struct{ log *slog.Logger }

func (l leveledLogger) Debugf(string, ...any) {}
func (l leveledLogger) Infof(string, ...any)  {}
func (l leveledLogger) Errorf(string, ...any) {}
func (l leveledLogger) Warnf(format string, v ...any) {
	if l.log != nil {
		l.log.Debug("stripe-go: " + fmt.Sprintf(format, v...))
	}
}
