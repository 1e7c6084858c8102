package payments

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/trace"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/geo"
	"github.com/payments-api/payments/idempotency"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/money"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/payout"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/txn"
)

// Limits on client input.
const (
	DescriptionLengthMax   = 1000
	CustomerLengthMax      = 255
	PaymentMethodLengthMax = 255
	MetadataKeysMax        = 50
	MetadataKeyLengthMax   = 40
	MetadataValueLengthMax = 500
	// ProcessorTimeoutDefault bounds one processor call.
	ProcessorTimeoutDefault = 30 * time.Second
)

// Codes of this package.
const (
	CodeCardDeclined            = "card_declined"
	CodeAmountExceedsRefundable = "amount_exceeds_refundable"
	CodeAmountExceedsCapturable = processor.CodeAmountExceedsCapturable
	CodeProcessorUnavailable    = "processor_unavailable"
	CodeOperationInProgress     = "payment_operation_in_progress"
	// CodeRiskBlocked answers (402) a payment that a location risk rule
	// with action block matched; the payment is kept as failed.
	CodeRiskBlocked = "risk_blocked"
	// CodeUpdateDeferred answers a processor notification that arrived
	// while an operation on its payment was in flight.
	CodeUpdateDeferred = "processor_update_deferred"
)

// Cache is the read cache of payments. It is never the source of truth:
// Get and Put may fail silently, and Put must never replace a newer
// version with an older one.
type Cache interface {
	Get(ctx context.Context, tenantID, id uuid.UUID) (Payment, bool)
	Put(ctx context.Context, p Payment)
	// Invalidate runs inside the transaction that writes the changed
	// versions, before its COMMIT. Once it returns nil, no process may
	// answer an older version of those payments from the cache (the
	// writer may die before its Put); an error means that could not be
	// ensured, and the transaction is rolled back.
	Invalidate(ctx context.Context, changed []Version) error
}

// Version names one version of a payment.
type Version struct {
	TenantID, ID uuid.UUID
	Version      int
}

// changesKey carries the *changes of a running batch in a context.
type changesKey struct{}

// changes collects the payment versions a batch transaction writes, for
// the cache's invalidation before its COMMIT.
type changes struct{ v []Version }

// noteChange records that p's version is being written, if ctx collects.
func noteChange(ctx context.Context, p *Payment) {
	if c, ok := ctx.Value(changesKey{}).(*changes); ok {
		c.v = append(c.v, Version{TenantID: p.TenantID, ID: p.ID, Version: p.Version})
	}
}

// Options configures a Service.
type Options struct {
	Router *sharding.Router
	// Processor serves every tenant unless Resolver is set.
	Processor processor.Processor
	// Resolver, when set, picks each tenant's processor.
	Resolver processor.Resolver
	// Accounts, when set, picks each tenant's processor by account and
	// replaces Resolver: new payments record the account that served them,
	// and their later calls go to that account.
	Accounts processor.AccountResolver
	Cache    Cache
	// Geo, when set, indexes located payments after they commit and
	// answers nearby searches.
	Geo              GeoIndex
	Now              func() time.Time
	Logger           *slog.Logger
	ProcessorTimeout time.Duration
	Livemode         bool
	// Batch configures the group commit of the payment write path.
	Batch txn.BatchOptions
	// BatchLanes is the number of batchers per shard (tenants are spread
	// over them); zero means BatchLanesDefault.
	BatchLanes int
	// Tracer, when set, gives each processor call a span inside a traced
	// request; nil records nothing.
	Tracer trace.Tracer
	// Metrics records confirmation latency and the reconciler's backlog;
	// nil records nothing.
	Metrics *Metrics
	// Payouts are the payout adapters: the first sends new payouts, the
	// others are found by name for payouts recorded with them. None
	// refuses payouts.
	Payouts []payout.Processor
}

// Service implements the payment and refund use cases.
type Service struct {
	router  *sharding.Router
	procs   processor.AccountResolver
	cache   Cache
	geo     GeoIndex
	now     func() time.Time
	log     *slog.Logger
	timeout time.Duration
	batch   batchers
	tracer  trace.Tracer
	metrics *Metrics
	payouts []payout.Processor
}

// NewService returns the service.
func NewService(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ProcessorTimeout <= 0 {
		o.ProcessorTimeout = ProcessorTimeoutDefault
	}
	procs := o.Accounts
	if procs == nil {
		resolve := o.Resolver
		if resolve == nil {
			p := o.Processor
			resolve = func(context.Context, string) (processor.Processor, error) { return p, nil }
		}
		// One processor per tenant: no account to record.
		procs = func(ctx context.Context, tenant, _ string) (processor.Processor, string, error) {
			p, err := resolve(ctx, tenant)
			return p, "", err
		}
	}
	return &Service{router: o.Router, procs: procs, cache: o.Cache, geo: o.Geo, now: o.Now, log: o.Logger, timeout: o.ProcessorTimeout,
		batch: batchers{opts: o.Batch, lanes: o.BatchLanes}, tracer: o.Tracer, metrics: o.Metrics,
		payouts: o.Payouts}
}

// DetachedSlack is how long the recording of an outcome may take after the
// processor call's own timeout.
const DetachedSlack = 10 * time.Second

// RequestDurationMax is the longest one request may run: its processor
// call and the recording of the outcome. Idempotency leases must exceed it.
func (s *Service) RequestDurationMax() time.Duration { return s.timeout + DetachedSlack }

// processorFor returns the processor of the tenant's new payments and the
// account it belongs to.
func (s *Service) processorFor(ctx context.Context, tenantID uuid.UUID) (processor.Processor, string, error) {
	p, account, err := s.procs(ctx, ids.Format(ids.PrefixTenant, tenantID), "")
	if err != nil {
		return nil, "", fmt.Errorf("processor of tenant: %w", err)
	}
	return p, account, nil
}

// processorOf returns the processor of the account that holds the
// payment's charge.
func (s *Service) processorOf(ctx context.Context, p Payment) (processor.Processor, error) {
	proc, _, err := s.procs(ctx, ids.Format(ids.PrefixTenant, p.TenantID), p.ProcessorAccount)
	if err != nil {
		return nil, fmt.Errorf("processor of payment %s: %w", p.PublicID(), err)
	}
	return proc, nil
}

// unavailable is the answer when the processor cannot be reached.
func unavailable(p *Payment, cause error) *errcode.Error {
	e := errcode.New(errcode.KindUnavailable, CodeProcessorUnavailable, "the card processor did not answer; retry with the same Idempotency-Key")
	if p != nil {
		e.Payment = p.PublicID()
	}
	e.Err = cause
	return e
}

// CreateParams are the inputs of Create.
type CreateParams struct {
	Amount        int64
	Currency      string
	PaymentMethod string
	CaptureMethod string
	Description   *string
	Customer      *string
	Metadata      map[string]string
	Location      *struct{ Lat, Lon float64 }
	// Risk is what the tenant's location risk rules decided at the edge,
	// nil when none matched.
	Risk *RiskVerdict
}

// RiskVerdict is the decision of a matched location risk rule.
type RiskVerdict struct {
	Rule  uuid.UUID
	Block bool // block: stored failed with risk_blocked; else sent to review
}

var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

func validateCreate(p *CreateParams) (*Location, error) {
	cur, err := money.ParseCurrency(p.Currency)
	if err != nil {
		return nil, err
	}
	if err := money.ValidateAmount("amount", p.Amount, cur); err != nil {
		return nil, err
	}
	if p.CaptureMethod == "" {
		p.CaptureMethod = CaptureAutomatic
	}
	if p.CaptureMethod != CaptureAutomatic && p.CaptureMethod != CaptureManual {
		return nil, errcode.Invalid(errcode.CodeParameterInvalid, "capture_method", "capture_method must be automatic or manual")
	}
	if p.PaymentMethod == "" {
		return nil, errcode.Invalid(errcode.CodeParameterMissing, "payment_method", "payment_method is required: a processor token such as pm_card_visa")
	}
	if len(p.PaymentMethod) > PaymentMethodLengthMax || !tokenPattern.MatchString(p.PaymentMethod) {
		return nil, errcode.Invalid(errcode.CodeParameterInvalid, "payment_method", "payment_method must be a processor token such as pm_card_visa")
	}
	if p.Description != nil && utf8.RuneCountInString(*p.Description) > DescriptionLengthMax {
		return nil, errcode.Invalid(errcode.CodeParameterInvalid, "description", "description must be at most %d characters", DescriptionLengthMax)
	}
	if p.Customer != nil && (len(*p.Customer) == 0 || utf8.RuneCountInString(*p.Customer) > CustomerLengthMax) {
		return nil, errcode.Invalid(errcode.CodeParameterInvalid, "customer", "customer must be 1 to %d characters", CustomerLengthMax)
	}
	if err := ValidateMetadata(p.Metadata); err != nil {
		return nil, err
	}
	if p.Location == nil {
		return nil, nil
	}
	gh, err := geo.Geohash(p.Location.Lat, p.Location.Lon)
	if err != nil {
		return nil, err
	}
	return &Location{Lat: p.Location.Lat, Lon: p.Location.Lon, Geohash: gh}, nil
}

// ValidateMetadata checks the merchant's key-value pairs against the limits.
func ValidateMetadata(m map[string]string) error {
	if len(m) > MetadataKeysMax {
		return errcode.Invalid(errcode.CodeParameterInvalid, "metadata", "metadata may have at most %d keys", MetadataKeysMax)
	}
	for k, v := range m {
		if k == "" || utf8.RuneCountInString(k) > MetadataKeyLengthMax {
			return errcode.Invalid(errcode.CodeParameterInvalid, "metadata", "metadata keys must be 1 to %d characters", MetadataKeyLengthMax)
		}
		if utf8.RuneCountInString(v) > MetadataValueLengthMax {
			return errcode.Invalid(errcode.CodeParameterInvalid, "metadata["+k+"]", "metadata values must be at most %d characters", MetadataValueLengthMax)
		}
	}
	return nil
}

func (s *Service) shard(ctx context.Context, tenantID uuid.UUID) (*sharding.Shard, error) {
	return s.router.ForTenant(ctx, tenantID)
}

// detached keeps the processor call and the recording of its outcome alive
// when the client goes away: once money may have moved, the outcome is
// recorded whatever the caller does.
func (s *Service) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.RequestDurationMax())
}

func event(t events.Type, tenantID uuid.UUID, objectType string, objectID uuid.UUID, version int, data []byte, now time.Time) events.Event {
	return events.Event{ID: ids.New(), TenantID: tenantID, Type: t, ObjectType: objectType, ObjectID: objectID, ObjectVersion: version, Data: data, CreatedAt: now}
}

func paymentEvent(t events.Type, p Payment, now time.Time) events.Event {
	return event(t, p.TenantID, "payment", p.ID, p.Version, p.snapshot(), now)
}

func declineError(p Payment) error {
	if p.Status != StatusFailed {
		return nil
	}
	msg := "the payment failed"
	if p.FailureMessage != nil {
		msg = *p.FailureMessage
	}
	code := CodeCardDeclined
	kind := errcode.KindPaymentRequired
	if p.FailureCode != nil && *p.FailureCode == CodeRiskBlocked {
		code = CodeRiskBlocked
	} else if p.FailureCode != nil && *p.FailureCode != CodeCardDeclined {
		// The processor refused the request itself, such as an unknown
		// payment method token.
		code, kind = *p.FailureCode, errcode.KindInvalid
	}
	e := errcode.New(kind, code, "%s", msg)
	e.Payment = p.PublicID()
	if p.DeclineCode != nil {
		e.DeclineCode = *p.DeclineCode
	}
	if kind == errcode.KindInvalid {
		e.Param = "payment_method"
	}
	return e
}

// Create creates a payment and confirms it with the processor.
//
// Errors: the validation codes (400), card_declined (402, with the payment
// ID and decline code; the payment is kept as failed), processor_unavailable
// (503; the payment stays pending and is finished by the reconciler or a
// retry with the same Idempotency-Key), idempotency codes.
func (s *Service) Create(ctx context.Context, tenantID uuid.UUID, p CreateParams) (Payment, error) {
	start := s.now()
	loc, err := validateCreate(&p)
	if err != nil {
		return Payment{}, err
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return Payment{}, err
	}
	proc, account, err := s.processorFor(ctx, tenantID)
	if err != nil {
		return Payment{}, err
	}
	blocked := p.Risk != nil && p.Risk.Block
	if g, ok := proc.(processor.Gate); ok && !blocked {
		// An open circuit answers at once: nothing is recorded, no money
		// moves, and the client retries after Retry-After.
		if err := g.Ready(); err != nil {
			e := unavailable(nil, err)
			e.Message = "the card processor is unavailable; retry later"
			return Payment{}, e
		}
	}
	idem := idempotency.From(ctx)
	now := s.now()
	pay := Payment{
		ID: ids.New(), TenantID: tenantID, Amount: p.Amount, Currency: p.Currency, Status: StatusPending,
		CaptureMethod: p.CaptureMethod, PaymentMethod: p.PaymentMethod, Description: p.Description, Customer: p.Customer,
		Metadata: p.Metadata, Location: loc, Processor: proc.Name(), ProcessorAccount: account, Operation: OpAuthorize, OperationStartedAt: &now,
		Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	if pay.Metadata == nil {
		pay.Metadata = map[string]string{}
	}
	if p.Risk != nil {
		rule := p.Risk.Rule
		pay.RiskRule = &rule
		if blocked {
			code, msg := CodeRiskBlocked, "the payment was blocked by a location risk rule"
			pay.Status, pay.FailureCode, pay.FailureMessage = StatusFailed, &code, &msg
			pay.Operation, pay.OperationStartedAt = OpNone, nil
		}
	}
	u := &writeUnit{create: &pay, idem: idem}
	if err := s.write(ctx, sh, tenantID, u); err != nil {
		s.metrics.confirmed(pay.Processor, ConfirmationError, s.now().Sub(start))
		return Payment{}, err
	}
	if u.refused != nil {
		return Payment{}, u.refused
	}
	if u.resume == nil && s.geo != nil && loc != nil {
		s.geo.Add(geo.Entry{TenantID: tenantID, ID: pay.ID, Lat: loc.Lat, Lon: loc.Lon, Created: pay.CreatedAt})
	}
	if u.resume == nil && blocked {
		return pay, declineError(pay)
	}
	if u.resume != nil {
		pay, err = getPayment(ctx, sh.Pool, tenantID, *u.resume)
		if err != nil {
			return Payment{}, err
		}
	}
	dctx, cancel := s.detached(ctx)
	defer cancel()
	out, err := s.finishOperation(dctx, sh, pay, idem, proc)
	s.metrics.confirmed(pay.Processor, confirmationOutcome(out, err), s.now().Sub(start))
	return out, err
}

// finishOperation drives a payment's started operation to its recorded end
// with proc, the tenant's processor (nil: look it up when a call is needed):
// it repeats the identical processor call (same idempotency key) and records
// the outcome. With nothing started it records the current state. It is the
// path of the first attempt, a resumed attempt and the reconciler alike.
func (s *Service) finishOperation(ctx context.Context, sh *sharding.Shard, pay Payment, idem *idempotency.Request, proc processor.Processor) (Payment, error) {
	var ch processor.Charge
	var callErr error
	if pay.Operation != OpNone {
		ch, callErr = s.call(ctx, proc, pay)
		if callErr == nil {
			callErr = s.completeFee(ctx, proc, pay, &ch)
		}
		if callErr != nil && errcode.As(callErr) == nil {
			// Unknown outcome: leave the operation for the reconciler
			// and let the client's retry resume it.
			if idem != nil {
				if err := idem.Release(ctx, sh.Pool); err != nil {
					s.log.Warn("release idempotency key", "error", err.Error())
				}
			}
			return pay, unavailable(&pay, callErr)
		}
	}
	u := &writeUnit{outcome: &pay, ch: ch, callErr: callErr, idem: idem}
	if err := s.write(ctx, sh, pay.TenantID, u); err != nil {
		return pay, err
	}
	if u.refused != nil {
		return pay, u.refused
	}
	if !creating(pay) {
		s.cachePut(ctx, u.out)
	}
	return u.out, u.resultErr
}

// resultOf is the answer a finished operation gives its caller.
func resultOf(p Payment, op Operation, callErr error) error {
	if errcode.Is(callErr, processor.CodeUnexpectedState) {
		// The processor holds a state our table allows leaving but it does
		// not (a charge still processing cannot be canceled there).
		return invalidState(p, string(op))
	}
	if callErr != nil {
		return callErr
	}
	if op == OpAuthorize || op == OpNone {
		return declineError(p)
	}
	return nil
}

// refuseOperation records a processor refusal of the request itself. For an
// authorization the payment fails with the processor's code; for a capture
// or cancel the payment is unchanged and the caller gets the error.
func (s *Service) refuseOperation(p *Payment, callErr error, now time.Time) ([]events.Event, error) {
	if p.Operation != OpAuthorize {
		return nil, nil
	}
	e := errcode.As(callErr)
	p.Status = StatusFailed
	p.FailureCode, p.FailureMessage = &e.Code, &e.Message
	return []events.Event{paymentEvent(events.PaymentFailed, *p, now)}, nil
}

// call makes the processor call of the payment's started operation.
func (s *Service) call(ctx context.Context, proc processor.Processor, p Payment) (_ processor.Charge, err error) {
	if proc == nil {
		var err error
		if proc, err = s.processorOf(ctx, p); err != nil {
			return processor.Charge{}, err
		}
	}
	if s.traced(ctx) {
		var end func(error)
		ctx, end = s.startProcessorSpan(ctx, string(p.Operation), proc.Name(), p.PublicID())
		defer func() { end(err) }()
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ref := ""
	if p.ProcessorRef != nil {
		ref = *p.ProcessorRef
	}
	switch p.Operation {
	case OpAuthorize:
		return proc.Authorize(ctx, processor.AuthorizeRequest{
			TenantID: ids.Format(ids.PrefixTenant, p.TenantID), PaymentID: p.PublicID(), Amount: p.Amount, Currency: p.Currency,
			PaymentMethod: p.PaymentMethod, CaptureMethod: p.CaptureMethod, IdempotencyKey: p.processorKey(OpAuthorize), Metadata: p.Metadata,
		})
	case OpCapture:
		var amount int64
		if p.OperationAmount != nil {
			amount = *p.OperationAmount
		}
		return proc.Capture(ctx, processor.CaptureRequest{Ref: ref, PaymentID: p.PublicID(), Amount: amount, IdempotencyKey: p.processorKey(OpCapture)})
	case OpCancel:
		return proc.Cancel(ctx, processor.CancelRequest{Ref: ref, PaymentID: p.PublicID(), IdempotencyKey: p.processorKey(OpCancel)})
	}
	return processor.Charge{}, fmt.Errorf("payment %s has no operation to call", p.PublicID())
}

// completeFee fills in the fee of a succeeded charge whose answer lacked
// it (Charge.FeeUnknown: a Stripe webhook, or an answer without its
// balance transaction) from the processor's own record of it, so that the
// ledger books the processor's actual fee and net. It calls proc, or the
// processor of the payment's account when proc is nil, outside any
// transaction. Its errors wrap processor.ErrUnavailable: the money moved,
// so the outcome is left for a retry (the reconciler, the client's retry
// with the same key, the processor's redelivery), never recorded as a
// refusal.
func (s *Service) completeFee(ctx context.Context, proc processor.Processor, pay Payment, ch *processor.Charge) error {
	if ch.Status != processor.StatusSucceeded || !ch.FeeUnknown {
		return nil
	}
	err := func() error {
		if proc == nil {
			var err error
			if proc, err = s.processorOf(ctx, pay); err != nil {
				return err
			}
		}
		fr, ok := proc.(processor.FeeRetriever)
		if !ok {
			return fmt.Errorf("processor %s answered no fee and cannot retrieve it", proc.Name())
		}
		ref := ch.Ref
		if ref == "" && pay.ProcessorRef != nil {
			ref = *pay.ProcessorRef
		}
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()
		fee, err := fr.RetrieveFee(cctx, ref)
		if err != nil {
			return err
		}
		if !strings.EqualFold(fee.Currency, pay.Currency) {
			// Settled in another currency: the ledger books in the
			// payment's currency, so no fee is booked, as for an
			// answer whose balance transaction is in another currency.
			s.log.Warn("processor fee in the settlement currency is not booked", "payment", pay.PublicID(), "fee_currency", fee.Currency)
			ch.Fee, ch.FeeUnknown = 0, false
			return nil
		}
		if fee.Amount < 0 || fee.Amount > ch.AmountCaptured {
			return fmt.Errorf("processor reported fee %d on %d", fee.Amount, ch.AmountCaptured)
		}
		ch.Fee, ch.FeeUnknown = fee.Amount, false
		return nil
	}()
	if err == nil {
		return nil
	}
	if errors.Is(err, processor.ErrUnavailable) {
		return fmt.Errorf("fee of %s: %w", pay.PublicID(), err)
	}
	return fmt.Errorf("fee of %s: %w: %v", pay.PublicID(), processor.ErrUnavailable, err)
}

// applyCharge moves p to the charge's state through the transition table
// and returns the events and ledger postings of the change. A charge that
// would move p backwards (or nowhere) changes nothing but the processor
// reference.
func (s *Service) applyCharge(p *Payment, ch processor.Charge, now time.Time) ([]events.Event, []ledger.Transaction, error) {
	to := Status(ch.Status)
	if to != p.Status && !CanTransition(p.Status, to) {
		// An older state (or its older reference) never replaces a newer one.
		s.log.Info("processor update ignored: not a forward transition", "payment", p.PublicID(), "from", string(p.Status), "to", string(to))
		return nil, nil, nil
	}
	if ch.Ref != "" {
		ref := ch.Ref
		p.ProcessorRef = &ref
	}
	if to == p.Status {
		return nil, nil, nil
	}
	from := p.Status
	p.Status = to
	p.NextAction = nil
	var evs []events.Event
	var postings []ledger.Transaction
	switch to {
	case StatusRequiresAction:
		p.NextAction = ch.NextAction
		evs = append(evs, paymentEvent(events.PaymentRequiresAction, *p, now))
	case StatusRequiresCapture:
		p.AmountCapturable = ch.AmountCapturable
		if p.AmountCapturable == 0 {
			p.AmountCapturable = p.Amount
		}
		evs = append(evs, paymentEvent(events.PaymentRequiresCapture, *p, now))
	case StatusSucceeded:
		captured := ch.AmountCaptured
		if captured <= 0 || captured > p.Amount {
			return nil, nil, fmt.Errorf("processor reported %d captured of %d for %s", captured, p.Amount, p.PublicID())
		}
		if ch.FeeUnknown {
			// Never book a fee the processor did not state: completeFee
			// runs before the transaction.
			return nil, nil, fmt.Errorf("processor reported no fee for %s", p.PublicID())
		}
		if ch.Fee < 0 || ch.Fee > captured {
			return nil, nil, fmt.Errorf("processor reported fee %d on %d for %s", ch.Fee, captured, p.PublicID())
		}
		p.AmountCaptured, p.AmountCapturable, p.Fee = captured, 0, ch.Fee
		t, err := ledger.Charge(p.TenantID, p.Currency, p.ID, captured, ch.Fee)
		if err != nil {
			return nil, nil, err
		}
		postings = append(postings, t)
		if from == StatusRequiresCapture {
			evs = append(evs, paymentEvent(events.PaymentCaptured, *p, now))
		}
		evs = append(evs, paymentEvent(events.PaymentSucceeded, *p, now))
	case StatusFailed:
		p.AmountCapturable = 0
		code := ch.FailureCode
		if code == "" {
			code = CodeCardDeclined
		}
		p.FailureCode = &code
		if ch.FailureMessage != "" {
			m := ch.FailureMessage
			p.FailureMessage = &m
		}
		if ch.DeclineCode != "" {
			d := ch.DeclineCode
			p.DeclineCode = &d
		}
		evs = append(evs, paymentEvent(events.PaymentFailed, *p, now))
	case StatusCanceled:
		p.AmountCapturable = 0
		evs = append(evs, paymentEvent(events.PaymentCanceled, *p, now))
	}
	return evs, postings, nil
}

// Get reads a payment through the cache. Errors: resource_missing.
func (s *Service) Get(ctx context.Context, tenantID, id uuid.UUID) (Payment, error) {
	if s.cache != nil {
		if p, ok := s.cache.Get(ctx, tenantID, id); ok {
			return p, nil
		}
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return Payment{}, err
	}
	p, err := getPayment(ctx, sh.Pool, tenantID, id)
	if err != nil {
		return Payment{}, err
	}
	if !creating(p) {
		s.cachePut(ctx, p)
	}
	return p, nil
}

// creating reports whether p is a new payment whose authorization has not
// been recorded yet. Such a version is never cached: then no cache entry
// can exist for the payment when its first outcome is recorded, and the
// creation needs no cache write (one Redis round trip less per payment)
// for a later read to see the outcome.
func creating(p Payment) bool { return p.Version == 1 && p.Operation == OpAuthorize }

func (s *Service) cachePut(ctx context.Context, p Payment) {
	if s.cache != nil {
		s.cache.Put(context.WithoutCancel(ctx), p)
	}
}

// List lists payments newest first. Errors: parameter_invalid.
func (s *Service) List(ctx context.Context, tenantID uuid.UUID, p ListParams) ([]Payment, bool, error) {
	if err := p.Page.Validate(); err != nil {
		return nil, false, err
	}
	if p.Status != "" {
		ok := false
		for _, st := range Statuses {
			ok = ok || st == p.Status
		}
		if !ok {
			return nil, false, errcode.Invalid(errcode.CodeParameterInvalid, "status", "unknown status %q", p.Status)
		}
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return nil, false, err
	}
	return listPayments(ctx, sh.Pool, tenantID, p)
}

// startOperation records the intent of a capture or cancel in the first
// transaction and returns the payment with its operation set. The check
// function refuses what the payment's state does not allow.
func (s *Service) startOperation(ctx context.Context, tenantID, id uuid.UUID, op Operation, check func(*Payment) error) (*sharding.Shard, Payment, *idempotency.Request, error) {
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return nil, Payment{}, nil, err
	}
	idem := idempotency.From(ctx)
	var pay Payment
	var resumed bool
	err = s.run(ctx, sh, tenantID, func(ctx context.Context, tx pgx.Tx) error {
		resumed = false
		if idem != nil {
			r, err := idem.Claim(ctx, tx)
			if err != nil {
				return err
			}
			resumed = r != nil
		}
		cur, err := getPayment(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		if resumed {
			pay = cur
			return nil
		}
		if cur.Operation != OpNone {
			e := errcode.New(errcode.KindConflict, CodeOperationInProgress, "another operation (%s) on this payment is in progress; retry later", cur.Operation)
			e.Payment = cur.PublicID()
			return e
		}
		if err := check(&cur); err != nil {
			return err
		}
		now := s.now()
		cur.Operation, cur.OperationStartedAt = op, &now
		if err := updatePayment(ctx, tx, &cur, now); err != nil {
			return err
		}
		if idem != nil {
			if err := idem.SetResource(ctx, tx, cur.ID); err != nil {
				return err
			}
		}
		pay = cur
		return nil
	})
	if err == nil {
		s.cachePut(ctx, pay)
	}
	return sh, pay, idem, err
}

// Capture captures an authorized payment, all of it or amountToCapture
// (0 for all). Errors: resource_missing, payment_invalid_state (409),
// amount_exceeds_capturable (400), processor_unavailable (503).
func (s *Service) Capture(ctx context.Context, tenantID, id uuid.UUID, amountToCapture int64) (Payment, error) {
	if amountToCapture < 0 {
		return Payment{}, errcode.Invalid(money.CodeAmountTooSmall, "amount_to_capture", "amount_to_capture must be at least 1")
	}
	sh, pay, idem, err := s.startOperation(ctx, tenantID, id, OpCapture, func(p *Payment) error {
		if !CanTransition(p.Status, StatusSucceeded) || p.Status != StatusRequiresCapture {
			return invalidState(*p, "capture")
		}
		amount := amountToCapture
		if amount == 0 {
			amount = p.AmountCapturable
		}
		if amount > p.AmountCapturable {
			e := errcode.Invalid(CodeAmountExceedsCapturable, "amount_to_capture", "amount_to_capture %d exceeds the capturable amount %d", amount, p.AmountCapturable)
			e.Payment = p.PublicID()
			return e
		}
		p.OperationAmount = &amount
		return nil
	})
	if err != nil {
		return Payment{}, err
	}
	dctx, cancel := s.detached(ctx)
	defer cancel()
	return s.finishOperation(dctx, sh, pay, idem, nil)
}

// Cancel cancels a payment that is not captured yet. Errors:
// resource_missing, payment_invalid_state (409), processor_unavailable.
func (s *Service) Cancel(ctx context.Context, tenantID, id uuid.UUID) (Payment, error) {
	sh, pay, idem, err := s.startOperation(ctx, tenantID, id, OpCancel, func(p *Payment) error {
		if !CanTransition(p.Status, StatusCanceled) || p.ProcessorRef == nil {
			return invalidState(*p, "cancel")
		}
		return nil
	})
	if err != nil {
		return Payment{}, err
	}
	dctx, cancel := s.detached(ctx)
	defer cancel()
	return s.finishOperation(dctx, sh, pay, idem, nil)
}

// ApplyUpdate applies a status change the processor reported on its own
// (a settled charge, a completed 3-D Secure, Stripe's webhooks). It is
// idempotent, takes effect once per EventID, and never moves a payment
// backwards. An update for a payment with an operation in flight is left
// to that operation; if it carries an EventID (a notification the
// processor delivers again until it is accepted), ApplyUpdate answers
// processor_update_deferred (KindUnavailable) so that the redelivery is
// applied, or found stale, after the operation finished.
func (s *Service) ApplyUpdate(ctx context.Context, u processor.Update) error {
	tenantID, ok1 := ids.Parse(ids.PrefixTenant, u.TenantID)
	id, ok2 := ids.Parse(ids.PrefixPayment, u.PaymentID)
	if !ok1 || !ok2 {
		return errcode.Invalid(errcode.CodeParameterInvalid, "payment", "update names no known payment")
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return err
	}
	if u.Charge.Status == processor.StatusSucceeded && u.Charge.FeeUnknown {
		// The notification settles the payment without its fee: read it
		// from the processor of the payment's account first, outside the
		// transaction. A payment that cannot move to succeeded now needs
		// no fee; the transaction below finds it so again.
		cur, err := getPayment(ctx, sh.Pool, tenantID, id)
		if err != nil {
			return err
		}
		refMatches := cur.ProcessorRef != nil && (u.Ref == *cur.ProcessorRef || u.Charge.Ref == *cur.ProcessorRef)
		if refMatches && cur.Operation == OpNone && CanTransition(cur.Status, StatusSucceeded) {
			if err := s.completeFee(ctx, nil, cur, &u.Charge); err != nil {
				return unavailable(&cur, err)
			}
		}
	}
	var out Payment
	var changed, deferred, wasPending bool
	err = s.run(ctx, sh, tenantID, func(ctx context.Context, tx pgx.Tx) error {
		changed, deferred = false, false
		cur, err := getPayment(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		out, wasPending = cur, cur.Status == StatusPending
		if cur.Operation != OpNone {
			// The running operation records the outcome itself; a
			// notification is not marked as seen, so a redelivery after
			// the operation finished is still applied (or found stale).
			deferred = u.EventID != ""
			return nil
		}
		if first, err := firstDelivery(ctx, tx, tenantID, cur.Processor, u.EventID); err != nil || !first {
			return err
		}
		if cur.ProcessorRef == nil || (u.Ref != *cur.ProcessorRef && u.Charge.Ref != *cur.ProcessorRef) {
			s.log.Info("processor update ignored: reference does not match", "payment", cur.PublicID())
			return nil
		}
		now := s.now()
		before := ""
		if cur.ProcessorRef != nil {
			before = *cur.ProcessorRef
		}
		evs, postings, err := s.applyCharge(&cur, u.Charge, now)
		if err != nil {
			return err
		}
		if len(evs) == 0 && (cur.ProcessorRef == nil || *cur.ProcessorRef == before) {
			return nil
		}
		if err := commitChange(ctx, tx, &cur, evs, postings, now); err != nil {
			return err
		}
		out, changed = cur, true
		return nil
	})
	if err != nil {
		return err
	}
	if changed {
		s.cachePut(ctx, out)
		if wasPending && out.Status != StatusPending {
			// A payment that was still pending when its request ended
			// reached its final state: from its creation to now.
			s.metrics.confirmed(out.Processor, string(out.Status), s.now().Sub(out.CreatedAt))
		}
	}
	if deferred {
		e := errcode.New(errcode.KindUnavailable, CodeUpdateDeferred, "an operation on this payment is in progress; deliver the notification again later")
		e.Payment = out.PublicID()
		return e
	}
	return nil
}

// declineLike reports whether err is a recorded answer (a decline, a
// refusal by the processor or the state machine) rather than a malfunction.
func declineLike(err error) bool {
	e := errcode.As(err)
	return e != nil && e.Kind != errcode.KindInternal && e.Kind != errcode.KindUnavailable
}
