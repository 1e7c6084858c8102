package payments

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/idempotency"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/money"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/payout"
	"github.com/payments-api/payments/sharding"
)

// Limits of payouts.
const (
	// PayoutDescriptionLengthMax bounds a payout's description.
	PayoutDescriptionLengthMax = 1000
	// PayoutDriveBatchMax bounds the payouts one driver pass handles per
	// shard and kind (sends, retrievals).
	PayoutDriveBatchMax = 100
	// StripeAccountLengthMax bounds a connected account ID.
	StripeAccountLengthMax = 69
)

// stripeAccountPattern is the shape of a Stripe connected account ID, as
// the schema's CHECK has it.
var stripeAccountPattern = regexp.MustCompile(`^acct_[A-Za-z0-9]{1,64}$`)

// PayoutParams are the inputs of CreatePayout.
type PayoutParams struct {
	Amount      int64
	Currency    string
	Description *string
	Metadata    map[string]string
}

func payoutEvent(t events.Type, p Payout, now time.Time) events.Event {
	return event(t, p.TenantID, "payout", p.ID, p.Version, p.snapshot(), now)
}

func validatePayout(p PayoutParams) error {
	cur, err := money.ParseCurrency(p.Currency)
	if err != nil {
		return err
	}
	if err := money.ValidateAmount("amount", p.Amount, cur); err != nil {
		return err
	}
	if p.Description != nil && utf8.RuneCountInString(*p.Description) > PayoutDescriptionLengthMax {
		return errcode.Invalid(errcode.CodeParameterInvalid, "description", "description must be at most %d characters", PayoutDescriptionLengthMax)
	}
	return ValidateMetadata(p.Metadata)
}

// payoutProcessor returns the adapter of payouts recorded under name, or
// the one of new payouts when name is empty.
func (s *Service) payoutProcessor(name string) (payout.Processor, error) {
	if len(s.payouts) == 0 {
		return nil, errcode.New(errcode.KindUnavailable, CodeProcessorUnavailable, "payouts are not configured on this server")
	}
	if name == "" {
		return s.payouts[0], nil
	}
	for _, p := range s.payouts {
		if p.Name() == name {
			return p, nil
		}
	}
	return nil, errcode.Internal(fmt.Errorf("no payout processor named %q is configured", name))
}

// CreatePayout takes amount out of the tenant's balance in its currency and
// records a pending payout, which the payout driver sends. The available
// balance is read from the ledger's running totals inside the same
// SERIALIZABLE transaction (the shard's group commit) that posts the
// payout, so payouts that race can never together overdraw it.
//
// Errors: parameter_invalid and the money codes (400), balance_insufficient
// (400, param amount), balance_negative (409), payout_destination_missing
// (409), the idempotency codes.
func (s *Service) CreatePayout(ctx context.Context, tenantID uuid.UUID, p PayoutParams) (Payout, error) {
	if err := validatePayout(p); err != nil {
		return Payout{}, err
	}
	proc, err := s.payoutProcessor("")
	if err != nil {
		return Payout{}, err
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return Payout{}, err
	}
	var dest *string
	if proc.NeedsDestination() {
		acct, err := payoutDestination(ctx, sh.Pool, tenantID)
		if err != nil {
			return Payout{}, err
		}
		if acct == "" {
			return Payout{}, errcode.New(errcode.KindConflict, CodePayoutDestinationMissing,
				"payouts go to a Stripe connected account, and this tenant has none: set it with POST /v1/admin/tenants/{tenant}/payout_account")
		}
		dest = &acct
	}
	idem := idempotency.From(ctx)
	var out Payout
	var resume *uuid.UUID
	err = s.run(ctx, sh, tenantID, func(ctx context.Context, tx pgx.Tx) error {
		resume = nil
		if idem != nil {
			r, err := idem.Claim(ctx, tx)
			if err != nil {
				return err
			}
			if r != nil {
				resume = r
				return nil
			}
		}
		avail, err := ledger.Available(ctx, tx, tenantID, p.Currency)
		if err != nil {
			return err
		}
		switch {
		case avail < 0:
			return errcode.New(errcode.KindConflict, CodeBalanceNegative,
				"the %s balance is negative (%d): no payout can be made until it is above zero again", p.Currency, avail)
		case p.Amount > avail:
			return errcode.Invalid(CodeBalanceInsufficient, "amount", "the payout amount %d exceeds the available %s balance (%d)", p.Amount, p.Currency, avail)
		}
		now := s.now()
		out = Payout{
			ID: ids.New(), TenantID: tenantID, Amount: p.Amount, Currency: p.Currency, Status: PayoutPending,
			Description: p.Description, Metadata: p.Metadata, Processor: proc.Name(), Destination: dest,
			Version: 1, CreatedAt: now, UpdatedAt: now,
		}
		if err := insertPayout(ctx, tx, &out); err != nil {
			return err
		}
		t, err := ledger.Payout(tenantID, out.Currency, out.ID, out.Amount)
		if err != nil {
			return err
		}
		if err := ledger.Post(ctx, tx, t); err != nil {
			return err
		}
		if err := events.Append(ctx, tx, payoutEvent(events.PayoutCreated, out, now)); err != nil {
			return err
		}
		if idem != nil {
			if err := idem.SetResource(ctx, tx, out.ID); err != nil {
				return err
			}
			return idem.Complete(ctx, tx, out, nil)
		}
		return nil
	})
	if err != nil {
		return Payout{}, err
	}
	if resume != nil {
		// An earlier attempt with this key created the payout and its lease
		// expired before the answer was stored: answer what it created.
		return s.resumePayout(ctx, sh, tenantID, *resume, idem)
	}
	return out, nil
}

// resumePayout answers (and stores as the key's answer) a payout an
// earlier attempt with the same key created.
func (s *Service) resumePayout(ctx context.Context, sh *sharding.Shard, tenantID, id uuid.UUID, idem *idempotency.Request) (Payout, error) {
	var out Payout
	err := s.run(ctx, sh, tenantID, func(ctx context.Context, tx pgx.Tx) error {
		p, err := getPayout(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		out = p
		if idem != nil && idem.Claimed() {
			return idem.Complete(ctx, tx, out, nil)
		}
		return nil
	})
	return out, err
}

// GetPayout reads a payout. Errors: resource_missing.
func (s *Service) GetPayout(ctx context.Context, tenantID, id uuid.UUID) (Payout, error) {
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return Payout{}, err
	}
	return getPayout(ctx, sh.Pool, tenantID, id)
}

// ListPayouts lists payouts newest first. Errors: parameter_invalid.
func (s *Service) ListPayouts(ctx context.Context, tenantID uuid.UUID, p PayoutListParams) ([]Payout, bool, error) {
	if err := p.Page.Validate(); err != nil {
		return nil, false, err
	}
	if p.Status != "" && payoutTransitions[p.Status] == nil && !p.Status.final() {
		return nil, false, errcode.Invalid(errcode.CodeParameterInvalid, "status", "status must be one of pending, in_transit, paid, failed, canceled")
	}
	if p.CreatedGTE != nil && p.CreatedLTE != nil && p.CreatedGTE.After(*p.CreatedLTE) {
		return nil, false, errcode.Invalid(errcode.CodeParameterInvalid, "created[gte]", "created[gte] must not be after created[lte]")
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return nil, false, err
	}
	return listPayouts(ctx, sh.Pool, tenantID, p)
}

func (st PayoutStatus) final() bool {
	return st == PayoutPaid || st == PayoutFailed || st == PayoutCanceled
}

// CancelPayout cancels a pending payout that is not being sent; its amount
// returns to the balance. Errors: resource_missing, payout_invalid_state
// (409), the idempotency codes.
func (s *Service) CancelPayout(ctx context.Context, tenantID, id uuid.UUID) (Payout, error) {
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return Payout{}, err
	}
	idem := idempotency.From(ctx)
	var out Payout
	var resume *uuid.UUID
	err = s.run(ctx, sh, tenantID, func(ctx context.Context, tx pgx.Tx) error {
		resume = nil
		if idem != nil {
			r, err := idem.Claim(ctx, tx)
			if err != nil {
				return err
			}
			if r != nil {
				resume = r
				return nil
			}
		}
		p, err := getPayout(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		if p.Status != PayoutPending || p.SendingSince != nil {
			return payoutInvalidState(p, "canceling: only a pending payout that is not being sent can be canceled")
		}
		if _, err := s.movePayout(ctx, tx, &p, payout.Result{Status: payout.StatusCanceled}); err != nil {
			return err
		}
		out = p
		if idem != nil {
			if err := idem.SetResource(ctx, tx, p.ID); err != nil {
				return err
			}
			return idem.Complete(ctx, tx, out, nil)
		}
		return nil
	})
	if err != nil {
		return Payout{}, err
	}
	if resume != nil {
		return s.resumePayout(ctx, sh, tenantID, *resume, idem)
	}
	return out, nil
}

// movePayout applies a processor's result (or the merchant's cancel) to p
// inside tx through the transition table: the status, the references, the
// ledger posting (payouts_in_transit to payouts_paid when paid; back to
// merchant_balance when failed or canceled) and the event, with a
// version-guarded update. It reports whether p changed; anything that is
// not a forward move changes nothing but the references.
func (s *Service) movePayout(ctx context.Context, tx pgx.Tx, p *Payout, res payout.Result) (bool, error) {
	to := PayoutStatus(res.Status)
	if res.Status == payout.StatusPending {
		// Pending at the processor is sent for us: the funds left.
		to = PayoutInTransit
	}
	now := s.now()
	refs := false
	if res.Ref != "" && (p.ProcessorRef == nil || *p.ProcessorRef != res.Ref) {
		r := res.Ref
		p.ProcessorRef, refs = &r, true
	}
	if res.TransferRef != "" && (p.TransferRef == nil || *p.TransferRef != res.TransferRef) {
		r := res.TransferRef
		p.TransferRef, refs = &r, true
	}
	if !CanPayoutTransition(p.Status, to) {
		if !refs {
			return false, nil
		}
		return true, updatePayout(ctx, tx, p, now)
	}
	// Every move leaves pending, so it ends a send in flight.
	if p.SendingSince != nil {
		p.SentAt = &now
	}
	p.SendingSince = nil
	from := p.Status
	p.Status = to
	var post func(uuid.UUID, string, uuid.UUID, int64) (ledger.Transaction, error)
	var evType events.Type
	switch to {
	case PayoutInTransit:
	case PayoutPaid:
		post, evType = ledger.PayoutPaid, events.PayoutPaid
	case PayoutFailed:
		post, evType = ledger.PayoutReversal, events.PayoutFailed
		code, msg := res.FailureCode, res.FailureMessage
		if code == "" {
			code = "payout_failed"
		}
		if msg == "" {
			msg = "the payout could not be made; the amount returned to the balance"
		}
		p.FailureCode, p.FailureMessage = &code, &msg
	case PayoutCanceled:
		post, evType = ledger.PayoutReversal, events.PayoutCanceled
	default:
		return false, fmt.Errorf("payout %s: no move from %s to %q", p.PublicID(), from, to)
	}
	if err := updatePayout(ctx, tx, p, now); err != nil {
		return false, err
	}
	if post != nil {
		t, err := post(p.TenantID, p.Currency, p.ID, p.Amount)
		if err != nil {
			return false, err
		}
		if err := ledger.Post(ctx, tx, t); err != nil {
			return false, err
		}
	}
	if evType != "" {
		if err := events.Append(ctx, tx, payoutEvent(evType, *p, now)); err != nil {
			return false, err
		}
	}
	return true, nil
}

// ApplyPayoutUpdate applies a payout's change that the processor reported
// on its own (Stripe's payout.paid, payout.failed). It takes effect once
// per EventID; duplicates and older notifications (anything that is not a
// forward move) change nothing. An update about a payout whose send is not
// recorded yet answers processor_update_deferred (503), so that the
// processor delivers it again after the send is recorded. Errors:
// parameter_invalid for IDs that are not ours, resource_missing.
func (s *Service) ApplyPayoutUpdate(ctx context.Context, u payout.Update) error {
	tenantID, ok1 := ids.Parse(ids.PrefixTenant, u.TenantID)
	id, ok2 := ids.Parse(ids.PrefixPayout, u.PayoutID)
	if !ok1 || !ok2 || !u.Result.Status.Valid() {
		return errcode.Invalid(errcode.CodeParameterInvalid, "payout", "update names no known payout")
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return err
	}
	if cur, err := getPayout(ctx, sh.Pool, tenantID, id); err == nil && cur.Processor == u.Processor && sameDestination(cur, u.Destination) {
		if err := s.returnFunds(ctx, cur, u.Result); err != nil {
			return err
		}
	}
	return s.run(ctx, sh, tenantID, func(ctx context.Context, tx pgx.Tx) error {
		p, err := getPayout(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		dest := ""
		if p.Destination != nil {
			dest = *p.Destination
		}
		if u.Processor != p.Processor || u.Destination != dest {
			// Another processor's or account's notification naming our
			// payout ID: not about this payout.
			return errcode.NotFound("payout", p.PublicID())
		}
		if p.Status == PayoutPending {
			return errcode.New(errcode.KindUnavailable, CodeUpdateDeferred, "payout %s is being sent; deliver the notification again later", p.PublicID())
		}
		if first, err := firstDelivery(ctx, tx, tenantID, p.Processor, u.EventID); err != nil || !first {
			return err
		}
		_, err = s.movePayout(ctx, tx, &p, u.Result)
		return err
	})
}

func sameDestination(p Payout, dest string) bool {
	if p.Destination == nil {
		return dest == ""
	}
	return *p.Destination == dest
}

// returnFunds brings a failed or canceled payout's funds back to the
// platform before the failure is booked, for adapters that need it
// (payout.Returner), outside any transaction. Its error answers 503, so
// that the notification comes again (or the driver retrieves again).
func (s *Service) returnFunds(ctx context.Context, p Payout, res payout.Result) error {
	if p.Status != PayoutInTransit || (res.Status != payout.StatusFailed && res.Status != payout.StatusCanceled) || p.TransferRef == nil {
		return nil
	}
	proc, err := s.payoutProcessor(p.Processor)
	if err != nil {
		return err
	}
	r, ok := proc.(payout.Returner)
	if !ok {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	if err := r.Return(cctx, s.payoutRequest(p)); err != nil {
		e := errcode.New(errcode.KindUnavailable, CodeProcessorUnavailable, "the funds of payout %s could not be returned yet; deliver again later", p.PublicID())
		e.Err = err
		return e
	}
	return nil
}

// SetPayoutAccount sets the Stripe connected account (acct_...) the
// tenant's payouts go to. Errors: parameter_invalid (param
// stripe_account), resource_missing for an unknown tenant.
func (s *Service) SetPayoutAccount(ctx context.Context, tenantID uuid.UUID, account string) error {
	if len(account) > StripeAccountLengthMax || !stripeAccountPattern.MatchString(account) {
		return errcode.Invalid(errcode.CodeParameterInvalid, "stripe_account", "stripe_account must be a Stripe connected account ID such as acct_1Nv0FGQ9RKHgCVdK")
	}
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return err
	}
	return sh.Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO payout_accounts (tenant_id, stripe_account) VALUES ($1, $2)
ON CONFLICT (tenant_id) DO UPDATE SET stripe_account = excluded.stripe_account, updated_at = now()`, tenantID, account)
		if err != nil {
			return fmt.Errorf("set payout account: %w", err)
		}
		return nil
	})
}

// PayoutAccount answers the tenant's Stripe connected account. Errors:
// resource_missing when it has none.
func (s *Service) PayoutAccount(ctx context.Context, tenantID uuid.UUID) (string, error) {
	sh, err := s.shard(ctx, tenantID)
	if err != nil {
		return "", err
	}
	acct, err := payoutDestination(ctx, sh.Pool, tenantID)
	if err != nil {
		return "", err
	}
	if acct == "" {
		return "", errcode.NotFound("payout account of tenant", ids.Format(ids.PrefixTenant, tenantID))
	}
	return acct, nil
}

// PayoutDriveOptions are the ages the payout driver acts at.
type PayoutDriveOptions struct {
	// SendAfter is how long a new payout stays pending (cancelable)
	// before it is sent.
	SendAfter time.Duration
	// RetryAfter is how long a send may stay unrecorded before the driver
	// repeats it with the same idempotency key (a crash or a lost answer
	// in between). It must exceed the processor timeout.
	RetryAfter time.Duration
	// RetrieveAfter is how long a payout in transit stays unchanged before
	// the driver asks the processor for its state, for processors that do
	// not notify (the sandbox).
	RetrieveAfter time.Duration
	// OverdueAfter is the same for processors that notify (Stripe): the
	// state is retrieved only when the notification is overdue.
	OverdueAfter time.Duration
}

// PayoutDriveStats counts what one pass did.
type PayoutDriveStats struct {
	Sent      int // sends recorded
	Retrieved int // payouts in transit whose state was retrieved
	Errors    int
}

// DrivePayouts runs one pass of the payout driver on every shard: pending
// payouts older than SendAfter are sent (a send in flight for longer than
// RetryAfter is repeated with the same idempotency key, which finishes
// what a crash left), and payouts in transit are retrieved when due. Each
// send is recorded before the call (sending_since, version-guarded: of
// two drivers one wins) and its outcome after it, each in its own
// transaction through the group commit; the call is in neither.
func (s *Service) DrivePayouts(ctx context.Context, o PayoutDriveOptions) (PayoutDriveStats, error) {
	var st PayoutDriveStats
	for _, sh := range s.router.Map().All() {
		if err := s.drivePayoutsOn(ctx, sh, o, &st); err != nil {
			return st, fmt.Errorf("drive payouts of shard %s: %w", sh.Name, err)
		}
	}
	return st, nil
}

func (s *Service) drivePayoutsOn(ctx context.Context, sh *sharding.Shard, o PayoutDriveOptions, st *PayoutDriveStats) error {
	now := s.now()
	// READ COMMITTED single statements on the partial index of open
	// payouts: each payout is then claimed with a version guard, so a
	// stale read costs nothing but a skipped payout.
	send, err := keys(ctx, sh, `SELECT tenant_id, id FROM payouts WHERE status = 'pending' AND updated_at < $1 ORDER BY updated_at LIMIT $2`,
		now.Add(-min(o.SendAfter, o.RetryAfter)))
	if err != nil {
		return err
	}
	for _, k := range send {
		sent, err := s.sendPayout(ctx, sh, k.tenant, k.id, now, o)
		if err != nil {
			st.Errors++
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Warn("send payout", "payout", ids.Format(ids.PrefixPayout, k.id), "error", err.Error())
			continue
		}
		if sent {
			st.Sent++
		}
	}
	for _, proc := range s.payouts {
		age := o.RetrieveAfter
		if proc.Notifies() {
			age = o.OverdueAfter
		}
		rows, err := sh.Pool.Query(ctx, `SELECT tenant_id, id FROM payouts WHERE status = 'in_transit' AND processor = $3 AND updated_at < $1
ORDER BY updated_at LIMIT $2`, now.Add(-age), PayoutDriveBatchMax, proc.Name())
		if err != nil {
			return err
		}
		var ks []objectKey
		for rows.Next() {
			var k objectKey
			if err := rows.Scan(&k.tenant, &k.id); err != nil {
				rows.Close()
				return err
			}
			ks = append(ks, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, k := range ks {
			if err := s.retrievePayout(ctx, sh, proc, k.tenant, k.id); err != nil {
				st.Errors++
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s.log.Warn("retrieve payout", "payout", ids.Format(ids.PrefixPayout, k.id), "error", err.Error())
				continue
			}
			st.Retrieved++
		}
	}
	return nil
}

func (s *Service) payoutRequest(p Payout) payout.Request {
	req := payout.Request{
		TenantID: ids.Format(ids.PrefixTenant, p.TenantID), PayoutID: p.PublicID(), Amount: p.Amount, Currency: p.Currency,
		IdempotencyKey: p.processorKey(),
	}
	if p.SentAt != nil {
		req.SentAt = *p.SentAt
	}
	if p.Destination != nil {
		req.Destination = *p.Destination
	}
	if p.Description != nil {
		req.Description = *p.Description
	}
	if p.ProcessorRef != nil {
		req.Ref = *p.ProcessorRef
	}
	if p.TransferRef != nil {
		req.TransferRef = *p.TransferRef
	}
	return req
}

// sendPayout claims one pending payout that is due, sends it and records
// the outcome. It reports whether an outcome was recorded.
func (s *Service) sendPayout(ctx context.Context, sh *sharding.Shard, tenantID, id uuid.UUID, now time.Time, o PayoutDriveOptions) (bool, error) {
	var claimed Payout
	var due bool
	err := s.run(ctx, sh, tenantID, func(ctx context.Context, tx pgx.Tx) error {
		due = false
		p, err := getPayout(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		switch {
		case p.Status != PayoutPending:
			return nil
		case p.SendingSince == nil && now.Sub(p.CreatedAt) < o.SendAfter:
			return nil
		case p.SendingSince != nil && now.Sub(*p.SendingSince) < o.RetryAfter:
			return nil // another driver's send is in flight
		}
		t := s.now()
		p.SendingSince = &t
		if err := updatePayout(ctx, tx, &p, t); err != nil {
			return err
		}
		claimed, due = p, true
		return nil
	})
	if err != nil || !due {
		return false, err
	}
	proc, err := s.payoutProcessor(claimed.Processor)
	if err != nil {
		return false, err
	}
	dctx, cancel := s.detached(ctx)
	defer cancel()
	cctx, cancelCall := context.WithTimeout(dctx, s.timeout)
	res, callErr := proc.Send(cctx, s.payoutRequest(claimed))
	cancelCall()
	if callErr != nil {
		e := errcode.As(callErr)
		if e == nil || errors.Is(callErr, processor.ErrUnavailable) {
			// Unknown outcome: sending_since stays, and a later pass
			// repeats the call with the same key.
			return false, fmt.Errorf("send payout %s: %w", claimed.PublicID(), callErr)
		}
		// The processor refused it: the payout failed, its amount returns.
		res = payout.Result{Status: payout.StatusFailed, FailureCode: e.Code, FailureMessage: e.Message}
	}
	err = s.run(dctx, sh, tenantID, func(ctx context.Context, tx pgx.Tx) error {
		p, err := getPayout(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		if p.Status != PayoutPending || p.SendingSince == nil {
			return nil
		}
		_, err = s.movePayout(ctx, tx, &p, res)
		return err
	})
	return err == nil, err
}

// retrievePayout asks the processor for a payout in transit and applies a
// forward move; a payout that did not move is marked checked (its
// updated_at), so the next retrieval waits its age again.
func (s *Service) retrievePayout(ctx context.Context, sh *sharding.Shard, proc payout.Processor, tenantID, id uuid.UUID) error {
	p, err := getPayout(ctx, sh.Pool, tenantID, id)
	if err != nil {
		return err
	}
	if p.Status != PayoutInTransit {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	res, err := proc.Retrieve(cctx, s.payoutRequest(p))
	cancel()
	if err != nil {
		return fmt.Errorf("retrieve payout %s: %w", p.PublicID(), err)
	}
	if err := s.returnFunds(ctx, p, res); err != nil {
		return err
	}
	return s.run(ctx, sh, tenantID, func(ctx context.Context, tx pgx.Tx) error {
		cur, err := getPayout(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		if cur.Status != PayoutInTransit {
			return nil
		}
		changed, err := s.movePayout(ctx, tx, &cur, res)
		if err != nil || changed {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE payouts SET updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND version = $4`,
			tenantID, id, s.now(), cur.Version)
		if err != nil {
			return fmt.Errorf("mark payout checked: %w", err)
		}
		return nil
	})
}

// RunPayoutDriver runs DrivePayouts every interval until ctx ends.
func (s *Service) RunPayoutDriver(ctx context.Context, interval time.Duration, o PayoutDriveOptions) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			st, err := s.DrivePayouts(ctx, o)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("drive payouts", "error", err.Error())
			}
			if st.Sent+st.Retrieved > 0 {
				s.log.Info("payouts driven", "sent", st.Sent, "retrieved", st.Retrieved, "errors", st.Errors)
			}
		}
	}
}
