package payments_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/listing"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/payout"
	"github.com/payments-api/payments/processor/sandbox"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/tenancy"
)

// Limits of the test helpers: every loop and wait in this package is bounded.
const (
	// settleDelayTest is how long a pm_card_processing charge stays pending.
	settleDelayTest = 50 * time.Millisecond
	// waitMax bounds every poll for an asynchronous outcome. It is a
	// deadline for giving up, never an assertion about speed.
	waitMax = 20 * time.Second
	// pollInterval is the pause between two polls.
	pollInterval = 5 * time.Millisecond
	// tenantAttemptsMax bounds the tenants created to land one on a given
	// shard; with two shards the chance of missing one 64 times is 2^-64.
	tenantAttemptsMax = 64
	// pagesMax bounds the pages a listing helper reads.
	pagesMax = 1000
	// feeBpsTest and feeFixedTest are the sandbox fee: 2.9% + 30.
	feeBpsTest   = 290
	feeFixedTest = 30
	// regionTest is the region of both test shards.
	regionTest = "local"
)

// harnessOptions configures newHarness. The zero value is the default
// setup: the sandbox with a short settle delay, no wrapper, no cache.
type harnessOptions struct {
	// SettleDelay overrides settleDelayTest.
	SettleDelay time.Duration
	// Wrap, when set, wraps the sandbox in the Processor the service uses.
	Wrap func(processor.Processor) processor.Processor
	// Geo, when set, is the service's geo index.
	Geo payments.GeoIndex
	// Now, when set, is the service's clock.
	Now func() time.Time
	// Payouts are the service's payout adapters.
	Payouts []payout.Processor
}

// harness is a payments Service on two shards of region "local", backed by
// the deterministic sandbox, whose updates go to the service's ApplyUpdate.
type harness struct {
	svc     *payments.Service
	sb      *sandbox.Sandbox
	proc    processor.Processor
	shards  *sharding.Map
	router  *sharding.Router
	tenants *tenancy.Service
	updates *updateLog
}

// updateLog records the processor updates the sandbox delivered.
type updateLog struct {
	mu        sync.Mutex
	delivered map[string]int // payment public ID → handler calls returned
	errs      []error
}

func (l *updateLog) record(paymentID string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.delivered[paymentID]++
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("apply update of %s: %w", paymentID, err))
	}
}

// count returns how many updates of the payment were applied (or refused).
func (l *updateLog) count(paymentID string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.delivered[paymentID]
}

// err returns the first error ApplyUpdate returned to the sandbox.
func (l *updateLog) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(l.errs...)
}

// newHarness builds the service on two fresh migrated databases.
func newHarness(tb testing.TB, o harnessOptions) *harness {
	tb.Helper()
	ctx := context.Background()
	m, err := sharding.Open(ctx, []sharding.Config{
		{Name: "s0", Region: regionTest, DSN: dbtest.NewDatabase(tb)},
		{Name: "s1", Region: regionTest, DSN: dbtest.NewDatabase(tb)},
	}, nil)
	if err != nil {
		tb.Fatalf("open shards: %v", err)
	}
	tb.Cleanup(m.Close)
	h := &harness{shards: m, router: sharding.NewRouter(m), updates: &updateLog{delivered: map[string]int{}}}
	h.tenants = tenancy.NewService(h.router, tenancy.RateLimitDefaults{}, nil, nil)

	opts := sandbox.DefaultOptions()
	opts.FeeBps, opts.FeeFixed = feeBpsTest, feeFixedTest
	opts.SettleDelay = settleDelayTest
	if o.SettleDelay > 0 {
		opts.SettleDelay = o.SettleDelay
	}
	// h.svc is assigned below, before any Authorize can start a timer or
	// CompleteAction can be called, so the closure always sees it.
	opts.UpdateHandler = func(ctx context.Context, u processor.Update) error {
		err := h.svc.ApplyUpdate(ctx, u)
		h.updates.record(u.PaymentID, err)
		return err
	}
	h.sb, err = sandbox.New(opts)
	if err != nil {
		tb.Fatalf("new sandbox: %v", err)
	}
	// Cleanups run last-registered first: the update check below, then
	// this Close (timers stop, in-flight updates return), then the pools.
	tb.Cleanup(func() { _ = h.sb.Close() })
	h.proc = h.sb
	if o.Wrap != nil {
		h.proc = o.Wrap(h.sb)
	}
	h.svc = payments.NewService(payments.Options{Router: h.router, Processor: h.proc, Geo: o.Geo, Now: o.Now, Payouts: o.Payouts})
	tb.Cleanup(func() {
		if err := h.updates.err(); err != nil {
			tb.Errorf("the sandbox's updates failed: %v", err)
		}
	})
	return h
}

// newTenant creates a tenant in region "local" and returns its ID and the
// name of its shard.
func (h *harness) newTenant(tb testing.TB) (uuid.UUID, string) {
	tb.Helper()
	t, _, _, err := h.tenants.CreateTenant(context.Background(), tenancy.CreateTenantParams{Name: "merchant " + tb.Name(), Region: regionTest})
	if err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
	return t.ID, t.Shard
}

// tenantOn creates tenants until one is placed on the named shard.
func (h *harness) tenantOn(tb testing.TB, shard string) uuid.UUID {
	tb.Helper()
	for range tenantAttemptsMax {
		id, s := h.newTenant(tb)
		if s == shard {
			return id
		}
	}
	tb.Fatalf("no tenant placed on shard %s after %d attempts", shard, tenantAttemptsMax)
	return uuid.Nil
}

// tenantsOnBothShards returns n >= 2 tenants of which at least one lives on
// each of the two shards.
func (h *harness) tenantsOnBothShards(tb testing.TB, n int) []uuid.UUID {
	tb.Helper()
	if n < 2 {
		tb.Fatalf("tenantsOnBothShards(%d): need at least 2", n)
	}
	out := []uuid.UUID{h.tenantOn(tb, "s0"), h.tenantOn(tb, "s1")}
	for len(out) < n {
		id, _ := h.newTenant(tb)
		out = append(out, id)
	}
	return out
}

// shardOf returns the shard that holds the tenant's data.
func (h *harness) shardOf(tb testing.TB, tenantID uuid.UUID) *sharding.Shard {
	tb.Helper()
	sh, err := h.router.ForTenant(context.Background(), tenantID)
	if err != nil {
		tb.Fatalf("shard of tenant %s: %v", tenantID, err)
	}
	return sh
}

// create creates a payment that must be accepted (a decline is an
// accepted outcome and is returned with its error checked by the caller
// through wantDecline).
func (h *harness) create(tb testing.TB, tenantID uuid.UUID, token, capture string, amount int64, currency string) payments.Payment {
	tb.Helper()
	p, err := h.svc.Create(context.Background(), tenantID, payments.CreateParams{
		Amount: amount, Currency: currency, PaymentMethod: token, CaptureMethod: capture,
	})
	if err != nil && !errcode.Is(err, payments.CodeCardDeclined) {
		tb.Fatalf("create %s %s payment of %d %s: %v", capture, token, amount, currency, err)
	}
	if p.ID == uuid.Nil {
		tb.Fatalf("create %s: no payment returned (err %v)", token, err)
	}
	return p
}

// get reads a payment and fails the test on error.
func (h *harness) get(tb testing.TB, tenantID, id uuid.UUID) payments.Payment {
	tb.Helper()
	p, err := h.svc.Get(context.Background(), tenantID, id)
	if err != nil {
		tb.Fatalf("get payment %s: %v", ids.Format(ids.PrefixPayment, id), err)
	}
	return p
}

// waitStatus polls until the payment leaves status from, and returns it.
// When the sandbox's settlement update reached the service while the
// authorization was still being recorded, the service leaves it to the
// operation (see ApplyUpdate), and the reconciler's refresh is the
// documented way the outcome arrives; waitStatus then runs one
// reconciliation pass.
func (h *harness) waitStatus(tb testing.TB, tenantID, id uuid.UUID, from payments.Status) payments.Payment {
	tb.Helper()
	pub := ids.Format(ids.PrefixPayment, id)
	deadline := time.Now().Add(waitMax)
	reconciled := false
	for {
		p := h.get(tb, tenantID, id)
		if p.Status != from {
			return p
		}
		if !reconciled && h.updates.count(pub) > 0 {
			// The update was handled and the payment did not move.
			if p = h.get(tb, tenantID, id); p.Status != from {
				return p
			}
			tb.Logf("%s: settlement update arrived while the authorization was in flight; reconciling", pub)
			if _, err := h.svc.Reconcile(context.Background(), 0); err != nil {
				tb.Fatalf("reconcile: %v", err)
			}
			reconciled = true
			continue
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s still %s after %v (updates delivered: %d)", pub, from, waitMax, h.updates.count(pub))
		}
		time.Sleep(pollInterval)
	}
}

// wantCode asserts that err is an errcode error with the code and kind.
func wantCode(tb testing.TB, err error, code string, kind errcode.Kind) *errcode.Error {
	tb.Helper()
	e := errcode.As(err)
	if e == nil {
		tb.Fatalf("got error %v, want errcode %s", err, code)
	}
	if e.Code != code || e.Kind != kind {
		tb.Fatalf("got errcode %s (kind %d): %v; want %s (kind %d)", e.Code, e.Kind, err, code, kind)
	}
	return e
}

// wantUnchanged asserts that the stored payment is exactly as before.
func wantUnchanged(tb testing.TB, before, after payments.Payment) {
	tb.Helper()
	if !reflect.DeepEqual(before, after) {
		tb.Fatalf("payment changed:\nbefore %+v\nafter  %+v", before, after)
	}
}

// expectedFee is the sandbox's fee on a captured amount, computed here
// independently: 2.9% rounded half up, plus 30, never more than captured.
func expectedFee(captured int64) int64 {
	return min((captured*feeBpsTest+5_000)/10_000+feeFixedTest, captured)
}

// ledgerTxs reads every ledger transaction of the tenant, or of one
// payment (its charge and refunds) when source is set, page by page.
func ledgerTxs(tb testing.TB, sh *sharding.Shard, tenantID uuid.UUID, source *uuid.UUID) []ledger.Transaction {
	tb.Helper()
	var out []ledger.Transaction
	p := ledger.ListParams{Limit: ledger.ListLimitMax, Source: source}
	for range pagesMax {
		page, more, err := ledger.List(context.Background(), sh.Pool, tenantID, p)
		if err != nil {
			tb.Fatalf("list ledger: %v", err)
		}
		out = append(out, page...)
		if !more {
			return out
		}
		last := page[len(page)-1].ID
		p.StartingAfter = &last
	}
	tb.Fatalf("ledger listing did not end within %d pages", pagesMax)
	return nil
}

// eventsOf reads the events of one object, optionally of one type.
func eventsOf(tb testing.TB, sh *sharding.Shard, tenantID, objectID uuid.UUID, typ events.Type) []events.Event {
	tb.Helper()
	var out []events.Event
	p := events.ListParams{Page: listing.Page{Limit: listing.LimitMax}, Type: typ, Object: &objectID}
	for range pagesMax {
		page, more, err := events.List(context.Background(), sh.Pool, tenantID, p)
		if err != nil {
			tb.Fatalf("list events: %v", err)
		}
		out = append(out, page...)
		if !more {
			return out
		}
		last := page[len(page)-1].ID
		p.StartingAfter = &last
	}
	tb.Fatalf("event listing did not end within %d pages", pagesMax)
	return nil
}

// allPayments reads every payment of the tenant through Service.List.
func allPayments(tb testing.TB, svc *payments.Service, tenantID uuid.UUID) []payments.Payment {
	tb.Helper()
	var out []payments.Payment
	p := payments.ListParams{Page: listing.Page{Limit: listing.LimitMax}}
	for range pagesMax {
		page, more, err := svc.List(context.Background(), tenantID, p)
		if err != nil {
			tb.Fatalf("list payments: %v", err)
		}
		out = append(out, page...)
		if !more {
			return out
		}
		last := page[len(page)-1].ID
		p.StartingAfter = &last
	}
	tb.Fatalf("payment listing did not end within %d pages", pagesMax)
	return nil
}

// refundsOf reads every refund of one payment through Service.ListRefunds.
func refundsOf(tb testing.TB, svc *payments.Service, tenantID, paymentID uuid.UUID) []payments.Refund {
	tb.Helper()
	var out []payments.Refund
	p := payments.RefundListParams{Page: listing.Page{Limit: listing.LimitMax}, Payment: &paymentID}
	for range pagesMax {
		page, more, err := svc.ListRefunds(context.Background(), tenantID, p)
		if err != nil {
			tb.Fatalf("list refunds: %v", err)
		}
		out = append(out, page...)
		if !more {
			return out
		}
		last := page[len(page)-1].ID
		p.StartingAfter = &last
	}
	tb.Fatalf("refund listing did not end within %d pages", pagesMax)
	return nil
}

// lossyProcessor delegates to a processor and records every call's
// idempotency key. Told to, it loses the answer of the next call of one
// method: the call reaches the processor and takes effect, and the caller
// gets an error wrapping processor.ErrUnavailable, as after a timeout.
type lossyProcessor struct {
	processor.Processor

	mu    sync.Mutex
	calls map[string]map[string]int // "method object" → idempotency key → calls
	lose  map[string]bool           // method → lose the next answer
}

func newLossyProcessor(p processor.Processor) *lossyProcessor {
	return &lossyProcessor{Processor: p, calls: map[string]map[string]int{}, lose: map[string]bool{}}
}

// loseNext makes the next call of method ("authorize", "capture",
// "cancel" or "refund") lose its answer.
func (l *lossyProcessor) loseNext(method string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lose[method] = true
}

// keys returns, for one method and object (payment or refund public ID),
// the idempotency keys seen and how often each was sent.
func (l *lossyProcessor) keys(method, object string) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, n := range l.calls[method+" "+object] {
		out[k] = n
	}
	return out
}

// calls returns how many calls of method were made for the object.
func (l *lossyProcessor) callCount(method, object string) int {
	n := 0
	for _, c := range l.keys(method, object) {
		n += c
	}
	return n
}

func (l *lossyProcessor) after(method, object, key string, err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := method + " " + object
	if l.calls[k] == nil {
		l.calls[k] = map[string]int{}
	}
	l.calls[k][key]++
	if err == nil && l.lose[method] {
		l.lose[method] = false
		return fmt.Errorf("test: %s answer lost: %w", method, processor.ErrUnavailable)
	}
	return err
}

func (l *lossyProcessor) Authorize(ctx context.Context, req processor.AuthorizeRequest) (processor.Charge, error) {
	c, err := l.Processor.Authorize(ctx, req)
	if err = l.after("authorize", req.PaymentID, req.IdempotencyKey, err); err != nil {
		return processor.Charge{}, err
	}
	return c, nil
}

func (l *lossyProcessor) Capture(ctx context.Context, req processor.CaptureRequest) (processor.Charge, error) {
	c, err := l.Processor.Capture(ctx, req)
	if err = l.after("capture", req.PaymentID, req.IdempotencyKey, err); err != nil {
		return processor.Charge{}, err
	}
	return c, nil
}

func (l *lossyProcessor) Cancel(ctx context.Context, req processor.CancelRequest) (processor.Charge, error) {
	c, err := l.Processor.Cancel(ctx, req)
	if err = l.after("cancel", req.PaymentID, req.IdempotencyKey, err); err != nil {
		return processor.Charge{}, err
	}
	return c, nil
}

func (l *lossyProcessor) Refund(ctx context.Context, req processor.RefundRequest) (processor.Refund, error) {
	r, err := l.Processor.Refund(ctx, req)
	if err = l.after("refund", req.RefundID, req.IdempotencyKey, err); err != nil {
		return processor.Refund{}, err
	}
	return r, nil
}
