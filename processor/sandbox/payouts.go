package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/money"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/payout"
)

// The sandbox's payout rules. A payout stays in transit for
// PayoutOptions.Delay after it was sent, then is paid, unless its
// description contains DescriptionPayoutFails: then it fails with
// PayoutFailureCode, as a payout to a closed bank account does at Stripe.
const (
	DescriptionPayoutFails = "sandbox_payout_fails"
	PayoutFailureCode      = "account_closed"
	payoutFailureMessage   = "The bank account has been closed; the funds were returned to the balance."
	// PayoutDelayDefault is how long a sandbox payout stays in transit.
	PayoutDelayDefault = 2 * time.Second
	// PayoutDelayMax is the largest PayoutOptions.Delay.
	PayoutDelayMax = 24 * time.Hour
)

// PayoutOptions configures Payouts.
type PayoutOptions struct {
	// Delay is how long a payout stays in transit; 0 means paid (or
	// failed) as soon as it is retrieved.
	Delay time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Payouts is the sandbox's payout processor (payout.Processor). Like the
// card sandbox it keeps no record: a payout's reference is derived from
// its idempotency key, so a repeated Send answers the same, in any process
// and after restarts, and Retrieve decides from the request alone (its
// description and when it was sent). It never notifies; the payout driver
// asks Retrieve.
type Payouts struct {
	delay time.Duration
	now   func() time.Time
}

var _ payout.Processor = (*Payouts)(nil)

// NewPayouts returns the sandbox payout processor, or an error naming the
// option that is out of range.
func NewPayouts(o PayoutOptions) (*Payouts, error) {
	if o.Delay < 0 || o.Delay > PayoutDelayMax {
		return nil, fmt.Errorf("sandbox payout delay %v: use 0 to %v", o.Delay, PayoutDelayMax)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Payouts{delay: o.Delay, now: o.Now}, nil
}

// Name returns "sandbox".
func (p *Payouts) Name() string { return Name }

// NeedsDestination returns false: sandbox payouts go nowhere.
func (p *Payouts) NeedsDestination() bool { return false }

// Notifies returns false: outcomes are learnt through Retrieve.
func (p *Payouts) Notifies() bool { return false }

// Send implements payout.Processor: the payout is in transit, under a
// reference derived from its idempotency key.
func (p *Payouts) Send(ctx context.Context, req payout.Request) (payout.Result, error) {
	if err := ctx.Err(); err != nil {
		return payout.Result{}, unavailableErr(err)
	}
	cur, err := money.ParseCurrency(req.Currency)
	if err != nil {
		return payout.Result{}, err
	}
	if err := money.ValidateAmount("amount", req.Amount, cur); err != nil {
		return payout.Result{}, err
	}
	if req.IdempotencyKey == "" || req.PayoutID == "" {
		return payout.Result{}, errcode.Invalid(errcode.CodeParameterMissing, "payout", "a payout needs its ID and an idempotency key")
	}
	sum := sha256.Sum256([]byte(req.IdempotencyKey))
	return payout.Result{Ref: "sbpo_" + hex.EncodeToString(sum[:12]), Status: payout.StatusInTransit}, nil
}

// Retrieve implements payout.Processor: in transit until Delay after
// req.SentAt, then paid or, by the description rule, failed.
func (p *Payouts) Retrieve(ctx context.Context, req payout.Request) (payout.Result, error) {
	if err := ctx.Err(); err != nil {
		return payout.Result{}, unavailableErr(err)
	}
	if !strings.HasPrefix(req.Ref, "sbpo_") {
		return payout.Result{}, errcode.NotFound("payout", req.Ref)
	}
	r := payout.Result{Ref: req.Ref, Status: payout.StatusInTransit}
	if p.now().Sub(req.SentAt) < p.delay {
		return r, nil
	}
	if strings.Contains(req.Description, DescriptionPayoutFails) {
		r.Status, r.FailureCode, r.FailureMessage = payout.StatusFailed, PayoutFailureCode, payoutFailureMessage
		return r, nil
	}
	r.Status = payout.StatusPaid
	return r, nil
}

func unavailableErr(err error) error {
	return fmt.Errorf("sandbox payout: %w: %w", processor.ErrUnavailable, err)
}
