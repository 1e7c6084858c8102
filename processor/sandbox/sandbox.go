// Package sandbox is a deterministic card processor that runs inside the
// service, for development, tests and self-hosters without a processor
// account. It implements processor.Processor with Stripe's test tokens and
// their outcomes, charges Stripe's standard fee, and delivers asynchronous
// outcomes through a processor.UpdateHandler the way webhooks will.
//
// The sandbox keeps no record of charges. A charge's state is encoded in its
// Ref, and every status change (capture, cancel, 3-D Secure completion,
// settlement) issues a new Ref, so Retrieve answers from the Ref alone, the
// same in every process and after restarts. Callers store the Ref of every
// Charge they receive. The only memory is the set of settlement timers,
// which Close stops.
//
// Refs are encoded, not signed: anyone holding one can read it and forge
// others. The sandbox moves no money, and an UpdateHandler checks an
// Update's Ref against the stored one before applying it.
package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/money"
	"github.com/payments-api/payments/processor"
)

// Name is what Sandbox.Name returns.
const Name = "sandbox"

// Payment method tokens the sandbox accepts, named after Stripe's test
// tokens, with the outcome each produces.
const (
	// PaymentMethodVisa is approved.
	PaymentMethodVisa = "pm_card_visa"
	// PaymentMethodMastercard is approved.
	PaymentMethodMastercard = "pm_card_mastercard"
	// PaymentMethodAmex is approved.
	PaymentMethodAmex = "pm_card_amex"
	// PaymentMethodDeclined is declined with processor.DeclineGeneric.
	PaymentMethodDeclined = "pm_card_chargeDeclined"
	// PaymentMethodInsufficientFunds is declined with
	// processor.DeclineInsufficientFunds.
	PaymentMethodInsufficientFunds = "pm_card_chargeDeclinedInsufficientFunds"
	// PaymentMethodFraudulent is declined with processor.DeclineFraudulent.
	PaymentMethodFraudulent = "pm_card_chargeDeclinedFraudulent"
	// PaymentMethodThreeDSecure requires 3-D Secure authentication: the
	// charge waits in processor.StatusRequiresAction until CompleteAction.
	PaymentMethodThreeDSecure = "pm_card_threeDSecure2Required"
	// PaymentMethodProcessing settles asynchronously: the charge stays
	// processor.StatusPending for Options.SettleDelay, then is approved.
	PaymentMethodProcessing = "pm_card_processing"
	// PaymentMethodCreateDispute is approved, and Options.DisputeDelay
	// after the capture the customer disputes it: a dispute opens
	// (needs_response) with its funds withdrawn, through the
	// DisputeHandler. See disputes.go.
	PaymentMethodCreateDispute = "pm_card_createDispute"
)

// ActionPathPrefix starts the RedirectURL of a charge that requires 3-D
// Secure; the charge's Ref follows it. The HTTP layer serves this path with
// a page that calls CompleteAction.
const ActionPathPrefix = "/v1/sandbox/3ds/"

// Limits of the sandbox.
const (
	// IDBytesMax is the longest TenantID and PaymentID the sandbox accepts;
	// both are encoded in Refs.
	IDBytesMax = 100
	// LatencyMax is the largest Options.Latency.
	LatencyMax = time.Minute
	// SettleDelayMax is the largest Options.SettleDelay.
	SettleDelayMax = 24 * time.Hour
	// SettlementsPendingMax bounds the settlement timers one Sandbox keeps.
	// Beyond it, no Update is sent for new pending charges; Retrieve still
	// reports them settled in time.
	SettlementsPendingMax = 10_000
	// UpdateDurationMax bounds how long a timer-driven UpdateHandler call
	// may take before its context ends.
	UpdateDurationMax = 30 * time.Second
	// ActionKeyBytesMin is the shortest Options.ActionKey.
	ActionKeyBytesMin = 32
	// ActionLinkLengthMax is the length of the longest reference a 3-D
	// Secure link carries after ActionPathPrefix. Longer input is refused
	// without decoding.
	ActionLinkLengthMax = RefLengthMax + 1 + actionMACEncodedLen
)

// paymentMethod numbers the entries of paymentMethods; the number is part of
// the Ref encoding, so entries are only ever appended.
type paymentMethod byte

// paymentMethodInfo describes the outcome of one token.
type paymentMethodInfo struct {
	token string
	// declineCode and failureMessage are set for tokens that are declined.
	declineCode    string
	failureMessage string
	// requiresAction: the charge needs 3-D Secure first.
	requiresAction bool
	// settles: the charge is pending until Options.SettleDelay has passed.
	settles bool
	// disputes: the captured charge is disputed after Options.DisputeDelay.
	disputes bool
}

// approves reports whether the token's charges are approved, at once or in
// the end.
func (m paymentMethodInfo) approves() bool { return m.declineCode == "" }

// paymentMethods is the table of tokens. Failure messages are Stripe's; a
// fraud decline tells the customer no more than a generic one.
var paymentMethods = [...]paymentMethodInfo{
	{token: PaymentMethodVisa},
	{token: PaymentMethodMastercard},
	{token: PaymentMethodAmex},
	{token: PaymentMethodDeclined, declineCode: processor.DeclineGeneric,
		failureMessage: "Your card was declined."},
	{token: PaymentMethodInsufficientFunds, declineCode: processor.DeclineInsufficientFunds,
		failureMessage: "Your card has insufficient funds."},
	{token: PaymentMethodFraudulent, declineCode: processor.DeclineFraudulent,
		failureMessage: "Your card was declined."},
	{token: PaymentMethodThreeDSecure, requiresAction: true},
	{token: PaymentMethodProcessing, settles: true},
	{token: PaymentMethodCreateDispute, disputes: true},
}

// Options configures a Sandbox. Start from DefaultOptions: in the zero value
// the fee is zero.
type Options struct {
	// Latency is added to every processor.Processor call, as a network round
	// trip would be; a context that ends first cuts the call short.
	Latency time.Duration
	// SettleDelay is how long a PaymentMethodProcessing charge stays pending.
	SettleDelay time.Duration
	// FeeBps and FeeFixed are the fee on captured amounts: FeeBps basis
	// points plus FeeFixed minor units, see money.Fee.
	FeeBps   int64
	FeeFixed int64
	// Clock returns the current time; nil means time.Now. It dates pending
	// charges and decides, in Retrieve, whether they have settled. The
	// settlement timers run on the runtime's clock.
	Clock func() time.Time
	// UpdateHandler receives the outcome of pending charges when they settle
	// and of 3-D Secure completions. Nil means nobody is told; Retrieve
	// still reports the outcome.
	UpdateHandler processor.UpdateHandler
	// Logger records failed timer-driven Updates; nil discards.
	Logger *slog.Logger
	// ActionKey signs the 3-D Secure links (NextAction.RedirectURL), so a
	// link cannot be made from a charge's tenant, payment, amount and
	// currency: CompleteActionLink refuses one this key did not sign. Every
	// process serving one deployment needs the same key, of at least
	// ActionKeyBytesMin bytes; nil means a random key of this Sandbox alone.
	ActionKey []byte
	// DisputeDelay is how long after its capture a PaymentMethodCreateDispute
	// charge is disputed, and how long after evidence the dispute closes
	// (see SubmitDisputeEvidence).
	DisputeDelay time.Duration
	// DisputeFee is the dispute fee withdrawn with a dispute's funds, in
	// minor units of the charge's currency.
	DisputeFee int64
	// DisputeHandler receives the sandbox's disputes as they open and
	// close. Nil means no dispute is ever opened.
	DisputeHandler processor.DisputeHandler
}

// DefaultOptions returns Stripe's standard fee (2.9% + 30) and a settlement
// delay of ten seconds, without latency.
func DefaultOptions() Options {
	return Options{
		SettleDelay:  10 * time.Second,
		FeeBps:       290,
		FeeFixed:     30,
		DisputeDelay: DisputeDelayDefault,
		DisputeFee:   DisputeFeeDefault,
	}
}

// Sandbox is the sandbox processor. It is safe for concurrent use. Close it
// to stop its settlement timers.
type Sandbox struct {
	opts   Options
	logger *slog.Logger
	now    func() time.Time

	// updateCtx is the parent of the contexts timer-driven UpdateHandler
	// calls get; Close cancels it.
	updateCtx    context.Context
	cancelUpdate context.CancelFunc
	// running counts timer-driven UpdateHandler calls in progress.
	running sync.WaitGroup

	// actionKey signs 3-D Secure links; see Options.ActionKey.
	actionKey []byte

	mu      sync.Mutex
	closed  bool
	pending map[string]*settlement // by the pending charge's Ref
	// disputeTimers are the scheduled dispute notifications, by key.
	disputeTimers map[string]*time.Timer
}

// settlement is a scheduled delivery of a pending charge's outcome.
type settlement struct {
	timer  *time.Timer
	update processor.Update
}

var _ processor.Processor = (*Sandbox)(nil)

// New returns a Sandbox, or an error naming the option that is out of range.
func New(opts Options) (*Sandbox, error) {
	switch {
	case opts.Latency < 0 || opts.Latency > LatencyMax:
		return nil, fmt.Errorf("sandbox latency %v: must be between 0 and %v", opts.Latency, LatencyMax)
	case opts.SettleDelay < 0 || opts.SettleDelay > SettleDelayMax:
		return nil, fmt.Errorf("sandbox settle delay %v: must be between 0 and %v", opts.SettleDelay, SettleDelayMax)
	case opts.FeeBps < 0 || opts.FeeBps > money.BpsMax:
		return nil, fmt.Errorf("sandbox fee of %d bps: must be between 0 and %d", opts.FeeBps, money.BpsMax)
	case opts.FeeFixed < 0 || opts.FeeFixed > money.AmountMax:
		return nil, fmt.Errorf("sandbox fixed fee %d: must be between 0 and %d", opts.FeeFixed, money.AmountMax)
	case opts.DisputeDelay < 0 || opts.DisputeDelay > SettleDelayMax:
		return nil, fmt.Errorf("sandbox dispute delay %v: must be between 0 and %v", opts.DisputeDelay, SettleDelayMax)
	case opts.DisputeFee < 0 || opts.DisputeFee > money.AmountMax:
		return nil, fmt.Errorf("sandbox dispute fee %d: must be between 0 and %d", opts.DisputeFee, money.AmountMax)
	case opts.ActionKey != nil && len(opts.ActionKey) < ActionKeyBytesMin:
		return nil, fmt.Errorf("sandbox action key of %d bytes: must be at least %d", len(opts.ActionKey), ActionKeyBytesMin)
	}
	actionKey := opts.ActionKey
	if actionKey == nil {
		actionKey = make([]byte, ActionKeyBytesMin)
		if _, err := rand.Read(actionKey); err != nil {
			return nil, fmt.Errorf("sandbox action key: %w", err)
		}
	}
	s := &Sandbox{
		opts:    opts,
		logger:  opts.Logger,
		now:     opts.Clock,
		pending: make(map[string]*settlement),

		disputeTimers: make(map[string]*time.Timer),
		actionKey:     bytes.Clone(actionKey),
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.updateCtx, s.cancelUpdate = context.WithCancel(context.Background())
	return s, nil
}

// Name returns "sandbox".
func (s *Sandbox) Name() string { return Name }

// Authorize implements processor.Processor. Retrying the same request yields
// the same Ref, except for PaymentMethodProcessing, whose Ref carries its
// creation time.
func (s *Sandbox) Authorize(ctx context.Context, req processor.AuthorizeRequest) (processor.Charge, error) {
	if err := s.roundTrip(ctx, "authorize"); err != nil {
		return processor.Charge{}, err
	}
	if err := checkID("tenant_id", req.TenantID); err != nil {
		return processor.Charge{}, err
	}
	if err := checkID("payment_id", req.PaymentID); err != nil {
		return processor.Charge{}, err
	}
	currency, err := money.ParseCurrency(req.Currency)
	if err != nil {
		return processor.Charge{}, err
	}
	if err := money.ValidateAmount("amount", req.Amount, currency); err != nil {
		return processor.Charge{}, err
	}
	var manual bool
	switch req.CaptureMethod {
	case "", processor.CaptureAutomatic:
	case processor.CaptureManual:
		manual = true
	default:
		return processor.Charge{}, errcode.Invalid(errcode.CodeParameterInvalid, "capture_method",
			"capture_method must be '%s' or '%s'", processor.CaptureAutomatic, processor.CaptureManual)
	}
	method, ok := lookupPaymentMethod(req.PaymentMethod)
	if !ok {
		// The token is not echoed: a client may have put card data in it.
		return processor.Charge{}, errcode.Invalid(processor.CodePaymentMethodInvalid, "payment_method",
			"payment_method is not a sandbox test token, such as '%s'", PaymentMethodVisa)
	}

	st := state{
		method:    method,
		manual:    manual,
		currency:  currency,
		amount:    req.Amount,
		tenantID:  req.TenantID,
		paymentID: req.PaymentID,
	}
	m := paymentMethods[method]
	switch {
	case m.declineCode != "":
		st.status = processor.StatusFailed
	case m.requiresAction:
		st.status = processor.StatusRequiresAction
	case m.settles:
		st.status = processor.StatusPending
		st.createdMilli = s.now().UnixMilli()
	default:
		st = s.approve(st)
	}
	c := s.view(st)
	if st.status == processor.StatusPending {
		s.schedule(c.Ref, st)
	}
	if st.status == processor.StatusSucceeded && m.disputes {
		s.scheduleDispute(c.Ref, st)
	}
	return c, nil
}

// Capture implements processor.Processor.
func (s *Sandbox) Capture(ctx context.Context, req processor.CaptureRequest) (processor.Charge, error) {
	if err := s.roundTrip(ctx, "capture"); err != nil {
		return processor.Charge{}, err
	}
	st, err := s.current(req.Ref, req.PaymentID)
	if err != nil {
		return processor.Charge{}, err
	}
	if st.status != processor.StatusRequiresCapture {
		return processor.Charge{}, unexpectedState("capture", st.status)
	}
	amount := req.Amount
	switch {
	case amount == 0:
		amount = st.amount
	case amount < 0:
		return processor.Charge{}, errcode.Invalid(money.CodeAmountTooSmall, "amount",
			"amount must be positive, or 0 to capture the whole authorized amount")
	case amount > st.amount:
		return processor.Charge{}, errcode.Invalid(processor.CodeAmountExceedsCapturable, "amount",
			"amount %d exceeds the capturable amount %d", amount, st.amount)
	}
	st.status = processor.StatusSucceeded
	st.captured = amount
	st.fee = s.fee(amount)
	c := s.view(st)
	if paymentMethods[st.method].disputes {
		s.scheduleDispute(c.Ref, st)
	}
	return c, nil
}

// Cancel implements processor.Processor. Canceling a canceled charge
// returns it unchanged.
func (s *Sandbox) Cancel(ctx context.Context, req processor.CancelRequest) (processor.Charge, error) {
	if err := s.roundTrip(ctx, "cancel"); err != nil {
		return processor.Charge{}, err
	}
	st, err := s.current(req.Ref, req.PaymentID)
	if err != nil {
		return processor.Charge{}, err
	}
	switch st.status {
	case processor.StatusRequiresCapture, processor.StatusRequiresAction, processor.StatusCanceled:
	default:
		return processor.Charge{}, unexpectedState("cancel", st.status)
	}
	st.status = processor.StatusCanceled
	return s.view(st), nil
}

// Refund implements processor.Processor. Every refund with a positive amount
// succeeds at once; the sandbox does not check it against what was
// captured, which is the ledger's job. The refund's Ref is derived from the
// charge's Ref, RefundID and Amount, so a retry yields the same one.
func (s *Sandbox) Refund(ctx context.Context, req processor.RefundRequest) (processor.Refund, error) {
	if err := s.roundTrip(ctx, "refund"); err != nil {
		return processor.Refund{}, err
	}
	st, err := decodeRef(req.Ref)
	if err != nil {
		return processor.Refund{}, chargeMissing()
	}
	if req.Amount <= 0 {
		return processor.Refund{}, errcode.Invalid(money.CodeAmountTooSmall, "amount",
			"amount must be at least %d", money.AmountMin)
	}
	if req.Currency != "" && req.Currency != string(st.currency) {
		return processor.Refund{}, errcode.Invalid(errcode.CodeParameterInvalid, "currency",
			"currency must be the charge's currency, '%s'", st.currency)
	}
	h := sha256.New()
	for _, part := range []string{req.Ref, req.RefundID, strconv.FormatInt(req.Amount, 10)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return processor.Refund{
		Ref:    refundRefPrefix + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:15]),
		Status: processor.RefundSucceeded,
		Amount: req.Amount,
	}, nil
}

// Retrieve implements processor.Processor. A PaymentMethodProcessing charge
// is reported settled, with a new Ref, once Options.SettleDelay has passed
// since its creation by Options.Clock, whether or not its Update was sent.
func (s *Sandbox) Retrieve(ctx context.Context, ref string) (processor.Charge, error) {
	if err := s.roundTrip(ctx, "retrieve"); err != nil {
		return processor.Charge{}, err
	}
	st, err := s.current(ref, "")
	if err != nil {
		return processor.Charge{}, err
	}
	return s.view(st), nil
}

// CompleteAction completes 3-D Secure for a charge in
// processor.StatusRequiresAction, as the customer does on the page at the
// charge's RedirectURL. The charge is approved: processor.StatusSucceeded,
// or processor.StatusRequiresCapture for manual capture. The outcome goes to
// the UpdateHandler, called with ctx before CompleteAction returns; its
// error is returned, and calling CompleteAction again delivers the same
// Update. Calling it for a charge that already left
// processor.StatusRequiresAction, through an earlier Ref, also delivers the
// approval: the UpdateHandler's Ref check is what refuses it. Errors:
// errcode.CodeResourceMissing, processor.CodeUnexpectedState.
func (s *Sandbox) CompleteAction(ctx context.Context, ref string) (processor.Charge, error) {
	st, err := decodeRef(ref)
	if err != nil {
		return processor.Charge{}, chargeMissing()
	}
	if st.status != processor.StatusRequiresAction {
		return processor.Charge{}, unexpectedState("complete the action of", st.status)
	}
	charge := s.view(s.approve(st))
	if err := s.deliver(ctx, ref, st, charge); err != nil {
		return processor.Charge{}, err
	}
	return charge, nil
}

// CompleteActionLink is CompleteAction for the reference a 3-D Secure link
// carries after ActionPathPrefix, which anyone may send: a link this
// Sandbox's Options.ActionKey did not sign is a charge that does not exist
// (errcode.CodeResourceMissing), whatever it holds.
func (s *Sandbox) CompleteActionLink(ctx context.Context, link string) (processor.Charge, error) {
	ref, ok := s.verifyActionLink(link)
	if !ok {
		return processor.Charge{}, chargeMissing()
	}
	return s.CompleteAction(ctx, ref)
}

// Settle settles a processor.StatusPending charge now, without waiting for
// Options.SettleDelay, and returns the settled charge; other charges are
// returned as Retrieve would. If this Sandbox has a settlement timer for the
// Ref, Settle stops it and delivers the Update itself, with ctx, so the
// UpdateHandler still hears of the settlement exactly once; otherwise (the
// timer fired already, or another process created the charge) no Update is
// sent. A failed Update is not sent again; Retrieve reports the settled
// charge. Errors: errcode.CodeResourceMissing, or the UpdateHandler's error.
func (s *Sandbox) Settle(ctx context.Context, ref string) (processor.Charge, error) {
	st, err := decodeRef(ref)
	if err != nil {
		return processor.Charge{}, chargeMissing()
	}
	if st.status != processor.StatusPending {
		return s.view(st), nil
	}
	charge := s.view(s.approve(st))
	s.mu.Lock()
	p, ok := s.pending[ref]
	if ok {
		p.timer.Stop()
		delete(s.pending, ref)
	}
	s.mu.Unlock()
	if ok {
		if err := s.deliver(ctx, ref, st, charge); err != nil {
			return processor.Charge{}, err
		}
	}
	return charge, nil
}

// Close stops the settlement timers, ends the contexts of UpdateHandler
// calls they started and waits for those calls to return. Pending charges
// still settle through Retrieve. Close always returns nil; the error is for
// io.Closer.
func (s *Sandbox) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for ref, p := range s.pending {
		p.timer.Stop()
		delete(s.pending, ref)
	}
	for k, t := range s.disputeTimers {
		t.Stop()
		delete(s.disputeTimers, k)
	}
	s.mu.Unlock()
	s.cancelUpdate()
	s.running.Wait()
	return nil
}

// schedule starts the timer that delivers the outcome of the pending
// charge st, whose Ref is ref. Retries of the same Authorize within one
// millisecond share the Ref and the timer.
func (s *Sandbox) schedule(ref string, st state) {
	if s.opts.UpdateHandler == nil {
		return
	}
	update := processor.Update{
		Ref:       ref,
		PaymentID: st.paymentID,
		TenantID:  st.tenantID,
		Charge:    s.view(s.approve(st)),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if _, ok := s.pending[ref]; ok {
		return
	}
	if len(s.pending) >= SettlementsPendingMax {
		s.logger.Warn("sandbox settlement timers at their limit; the charge settles through retrieve only",
			slog.String("payment_id", st.paymentID), slog.Int("limit", SettlementsPendingMax))
		return
	}
	p := &settlement{update: update}
	p.timer = time.AfterFunc(s.opts.SettleDelay, func() { s.fire(ref, p) })
	s.pending[ref] = p
}

// fire runs when a settlement timer expires.
func (s *Sandbox) fire(ref string, p *settlement) {
	s.mu.Lock()
	if s.closed || s.pending[ref] != p {
		// Close or Settle got there first.
		s.mu.Unlock()
		return
	}
	delete(s.pending, ref)
	s.running.Add(1)
	s.mu.Unlock()
	defer s.running.Done()

	ctx, cancel := context.WithTimeout(s.updateCtx, UpdateDurationMax)
	defer cancel()
	if err := s.opts.UpdateHandler(ctx, p.update); err != nil {
		// Not retried: whoever missed it learns the outcome from Retrieve,
		// as it must after a lost webhook.
		s.logger.Error("sandbox settlement update failed",
			slog.String("payment_id", p.update.PaymentID), slog.String("tenant_id", p.update.TenantID),
			slog.Any("error", err))
	}
}

// deliver sends the Update for the charge st, known by ref, now in charge.
func (s *Sandbox) deliver(ctx context.Context, ref string, st state, charge processor.Charge) error {
	if s.opts.UpdateHandler == nil {
		return nil
	}
	err := s.opts.UpdateHandler(ctx, processor.Update{
		Ref:       ref,
		PaymentID: st.paymentID,
		TenantID:  st.tenantID,
		Charge:    charge,
	})
	if err != nil {
		return fmt.Errorf("deliver sandbox update: %w", err)
	}
	return nil
}

// roundTrip waits Options.Latency, or until ctx ends. A call cut short
// reports processor.ErrUnavailable along with ctx's error, as a real
// processor call might have taken effect.
func (s *Sandbox) roundTrip(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sandbox %s: %w: %w", op, processor.ErrUnavailable, err)
	}
	if s.opts.Latency <= 0 {
		return nil
	}
	t := time.NewTimer(s.opts.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sandbox %s: %w: %w", op, processor.ErrUnavailable, ctx.Err())
	}
}

// current decodes ref and brings the charge up to date. A non-empty
// paymentID must match the charge's.
func (s *Sandbox) current(ref, paymentID string) (state, error) {
	st, err := decodeRef(ref)
	if err != nil || (paymentID != "" && paymentID != st.paymentID) {
		return state{}, chargeMissing()
	}
	return s.settleIfDue(st), nil
}

// settleIfDue approves a pending charge once Options.SettleDelay has passed
// since its creation.
func (s *Sandbox) settleIfDue(st state) state {
	if st.status == processor.StatusPending &&
		s.now().UnixMilli()-st.createdMilli >= s.opts.SettleDelay.Milliseconds() {
		return s.approve(st)
	}
	return st
}

// approve moves a charge to the status of an approved card: captured at
// once, or held for manual capture.
func (s *Sandbox) approve(st state) state {
	if st.manual {
		st.status = processor.StatusRequiresCapture
		return st
	}
	st.status = processor.StatusSucceeded
	st.captured = st.amount
	st.fee = s.fee(st.amount)
	return st
}

// fee is the fee on a captured amount. It never exceeds the amount: a
// processor takes its fee out of what it captured, and a negative net
// would break the ledger's invariants.
func (s *Sandbox) fee(captured int64) int64 {
	return min(money.Fee(captured, s.opts.FeeBps, s.opts.FeeFixed), captured)
}

// view renders st as a processor.Charge.
func (s *Sandbox) view(st state) processor.Charge {
	ref := st.encode()
	c := processor.Charge{
		Ref:            ref,
		Status:         st.status,
		Currency:       string(st.currency),
		Amount:         st.amount,
		AmountCaptured: st.captured,
		Fee:            st.fee,
	}
	switch st.status {
	case processor.StatusRequiresCapture:
		c.AmountCapturable = st.amount
	case processor.StatusRequiresAction:
		c.NextAction = &processor.NextAction{
			Type:        processor.NextActionRedirectToURL,
			RedirectURL: ActionPathPrefix + s.actionLink(ref),
		}
	case processor.StatusFailed:
		m := paymentMethods[st.method]
		c.DeclineCode = m.declineCode
		c.FailureCode = processor.FailureCardDeclined
		c.FailureMessage = m.failureMessage
	}
	return c
}

// lookupPaymentMethod finds a token in the table.
func lookupPaymentMethod(token string) (paymentMethod, bool) {
	for i, m := range paymentMethods {
		if m.token == token {
			return paymentMethod(i), true
		}
	}
	return 0, false
}

// checkID validates a tenant or payment ID, which the Ref carries.
func checkID(param, id string) error {
	if id == "" {
		return errcode.Invalid(errcode.CodeParameterMissing, param, "%s is required", param)
	}
	if len(id) > IDBytesMax {
		return errcode.Invalid(errcode.CodeParameterInvalid, param,
			"%s must be at most %d bytes", param, IDBytesMax)
	}
	return nil
}

// chargeMissing is the error for a Ref the sandbox did not issue. The Ref is
// not echoed: it may come from a URL and hold anything.
func chargeMissing() error {
	e := errcode.New(errcode.KindNotFound, errcode.CodeResourceMissing, "no such sandbox charge")
	e.Param = "ref"
	return e
}

// unexpectedState is the error for an operation the status forbids.
func unexpectedState(op string, status processor.Status) error {
	return errcode.New(errcode.KindConflict, processor.CodeUnexpectedState,
		"cannot %s a charge with status '%s'", op, status)
}
