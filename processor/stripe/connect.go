package stripe

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gostripe "github.com/stripe/stripe-go/v76"
	stripepayout "github.com/stripe/stripe-go/v76/payout"
	"github.com/stripe/stripe-go/v76/transfer"
	"github.com/stripe/stripe-go/v76/transferreversal"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/payout"
)

// MetadataPayoutID is the metadata key of our payout's ID on the Transfer
// and the Payout the adapter creates; payout webhooks are routed by it and
// by MetadataTenantID.
const MetadataPayoutID = "payout_id"

// ConnectPayouts is the Stripe Connect payout adapter (payout.Processor)
// of the platform's account: a payout is a Transfer from the platform's
// balance to the tenant's connected account, then a Payout on that account
// (the Stripe-Account header) to its default bank account. Every request
// carries an Idempotency-Key derived from our payout's ID
// ("po_...:transfer", "po_...:payout", "po_...:transfer_reversal"), so a
// repeated Send moves nothing twice. A Payout that Stripe refuses after the
// Transfer went through has its Transfer reversed before the payout is
// reported failed, so that the funds are where our ledger says: back on the
// platform, returned to the merchant's balance. payout.paid and
// payout.failed arrive as webhooks (ParseWebhook); Retrieve reads the
// Payout when one is overdue.
type ConnectPayouts struct {
	a         *Adapter
	transfers transfer.Client
	reversals transferreversal.Client
	payouts   stripepayout.Client
}

var (
	_ payout.Processor = (*ConnectPayouts)(nil)
	_ payout.Returner  = (*ConnectPayouts)(nil)
)

// NewConnectPayouts returns the payout adapter of the platform account
// whose key is o.SecretKey, with its own circuit breaker and the same
// options and metrics as New.
func NewConnectPayouts(o Options) (*ConnectPayouts, error) {
	if o.Account == "" {
		o.Account = AccountPlatform
	}
	if o.AccountID == "" {
		o.AccountID = o.Account + "_payouts"
	}
	a, err := New(o)
	if err != nil {
		return nil, err
	}
	b, key := a.intents.B, a.intents.Key
	return &ConnectPayouts{a: a, transfers: transfer.Client{B: b, Key: key}, reversals: transferreversal.Client{B: b, Key: key},
		payouts: stripepayout.Client{B: b, Key: key}}, nil
}

// Name returns "stripe".
func (c *ConnectPayouts) Name() string { return Name }

// NeedsDestination returns true: payouts go to a connected account.
func (c *ConnectPayouts) NeedsDestination() bool { return true }

// Notifies returns true: outcomes arrive as webhooks.
func (c *ConnectPayouts) Notifies() bool { return true }

// Ready implements processor.Gate.
func (c *ConnectPayouts) Ready() error { return c.a.Ready() }

// checkAccount refuses destinations that cannot be connected account IDs
// before they reach a header.
func checkAccount(acct string) error {
	if !strings.HasPrefix(acct, "acct_") || len(acct) > 255 || strings.ContainsAny(acct, "/?#% \r\n") {
		return errcode.New(errcode.KindConflict, payout.CodeDestinationMissing, "payouts need the tenant's Stripe connected account (acct_...)")
	}
	return nil
}

// refusal turns the Stripe error of a refused request into a failed
// payout, or returns nil for any other error.
func refusal(raw error) *payout.Result {
	var se *gostripe.Error
	if !errors.As(raw, &se) || se.HTTPStatusCode >= 500 || se.HTTPStatusCode == 429 || se.HTTPStatusCode == 409 ||
		se.HTTPStatusCode == 401 || se.HTTPStatusCode == 403 || se.Type == gostripe.ErrorTypeIdempotency || se.Type == gostripe.ErrorTypeAPI {
		return nil
	}
	code := string(se.Code)
	if code == "" {
		code = "payout_refused"
	}
	return &payout.Result{Status: payout.StatusFailed, FailureCode: code, FailureMessage: "Stripe refused the payout (" + code + ")"}
}

// Send implements payout.Processor: the Transfer, then the Payout on the
// connected account.
func (c *ConnectPayouts) Send(ctx context.Context, req payout.Request) (payout.Result, error) {
	if err := checkAccount(req.Destination); err != nil {
		return payout.Result{}, err
	}
	if req.Amount <= 0 {
		return payout.Result{}, errcode.Invalid("amount_too_small", "amount", "amount must be at least 1")
	}
	if err := requireKey("transfer", req.IdempotencyKey); err != nil {
		return payout.Result{}, err
	}
	if req.TenantID == "" || req.PayoutID == "" {
		return payout.Result{}, errcode.Invalid(errcode.CodeParameterMissing, "payout", "a payout needs its tenant and payout IDs")
	}
	currency := strings.ToLower(req.Currency)
	tp := &gostripe.TransferParams{
		Amount: gostripe.Int64(req.Amount), Currency: gostripe.String(currency), Destination: gostripe.String(req.Destination),
		TransferGroup: gostripe.String(req.PayoutID),
	}
	tp.AddMetadata(MetadataTenantID, req.TenantID)
	tp.AddMetadata(MetadataPayoutID, req.PayoutID)
	tp.IdempotencyKey = gostripe.String(req.IdempotencyKey + ":transfer")
	var tr *gostripe.Transfer
	var raw error
	err := c.a.do(ctx, "transfer", func(ctx context.Context) error {
		tp.Context = ctx
		tr, raw = c.transfers.New(tp)
		return raw
	})
	if err != nil {
		if r := refusal(raw); r != nil {
			return *r, nil
		}
		return payout.Result{}, err
	}
	pp := &gostripe.PayoutParams{Amount: gostripe.Int64(req.Amount), Currency: gostripe.String(currency)}
	if req.Description != "" {
		pp.Description = gostripe.String(truncate(req.Description, 1000))
	}
	pp.AddMetadata(MetadataTenantID, req.TenantID)
	pp.AddMetadata(MetadataPayoutID, req.PayoutID)
	pp.SetStripeAccount(req.Destination)
	pp.IdempotencyKey = gostripe.String(req.IdempotencyKey + ":payout")
	var po *gostripe.Payout
	raw = nil
	err = c.a.do(ctx, "payout", func(ctx context.Context) error {
		pp.Context = ctx
		po, raw = c.payouts.New(pp)
		return raw
	})
	if err != nil {
		r := refusal(raw)
		if r == nil {
			return payout.Result{}, err
		}
		// The funds sit on the connected account: bring them back before
		// the payout is reported failed.
		if rerr := c.reverse(ctx, req, tr.ID); rerr != nil {
			return payout.Result{}, fmt.Errorf("stripe payout refused (%s) and its transfer %s not reversed yet: %w", r.FailureCode, tr.ID,
				errors.Join(processor.ErrUnavailable, rerr))
		}
		r.TransferRef = tr.ID
		return *r, nil
	}
	res := payoutResult(po)
	res.TransferRef = tr.ID
	return res, nil
}

// reverse reverses the payout's Transfer: the funds return from the
// connected account to the platform.
func (c *ConnectPayouts) reverse(ctx context.Context, req payout.Request, transferID string) error {
	if err := checkRef(transferID); err != nil {
		return err
	}
	rp := &gostripe.TransferReversalParams{ID: gostripe.String(transferID)}
	rp.AddMetadata(MetadataPayoutID, req.PayoutID)
	rp.IdempotencyKey = gostripe.String(req.IdempotencyKey + ":transfer_reversal")
	return c.a.do(ctx, "transfer_reversal", func(ctx context.Context) error {
		rp.Context = ctx
		_, e := c.reversals.New(rp)
		return e
	})
}

// Return implements payout.Returner: a Payout that failed (or was
// canceled) on the connected account left the funds there; the Transfer
// is reversed, under the key po_...:transfer_reversal, so that they are
// on the platform again, where the ledger returns them to the merchant's
// balance. A Transfer already reversed answers as done.
func (c *ConnectPayouts) Return(ctx context.Context, req payout.Request) error {
	if err := requireKey("transfer_reversal", req.IdempotencyKey); err != nil {
		return err
	}
	err := c.reverse(ctx, req, req.TransferRef)
	if e := errcode.As(err); e != nil && !errors.Is(err, processor.ErrUnavailable) {
		// Stripe refuses to reverse more than is left: reversed before.
		return nil
	}
	return err
}

// Retrieve implements payout.Processor: the Payout on the connected
// account.
func (c *ConnectPayouts) Retrieve(ctx context.Context, req payout.Request) (payout.Result, error) {
	if err := checkAccount(req.Destination); err != nil {
		return payout.Result{}, err
	}
	if err := checkRef(req.Ref); err != nil {
		return payout.Result{}, err
	}
	p := &gostripe.PayoutParams{}
	p.SetStripeAccount(req.Destination)
	var po *gostripe.Payout
	err := c.a.do(ctx, "retrieve_payout", func(ctx context.Context) error {
		p.Context = ctx
		var err error
		po, err = c.payouts.Get(req.Ref, p)
		return err
	})
	if err != nil {
		return payout.Result{}, err
	}
	res := payoutResult(po)
	res.TransferRef = req.TransferRef
	return res, nil
}

// payoutResult maps a Stripe Payout; Stripe's statuses are ours.
func payoutResult(po *gostripe.Payout) payout.Result {
	r := payout.Result{Ref: po.ID, Status: payout.Status(po.Status)}
	if !r.Status.Valid() {
		r.Status = payout.StatusInTransit
	}
	if r.Status == payout.StatusFailed {
		r.FailureCode, r.FailureMessage = string(po.FailureCode), po.FailureMessage
		if r.FailureCode == "" {
			r.FailureCode = "payout_failed"
		}
	}
	return r
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
