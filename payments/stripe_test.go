package payments_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

// newStripeAdapter returns a fresh Stripe adapter on the double, as a
// freshly started process has.
func newStripeAdapter(tb testing.TB, d *stripetest.Double) *stripe.Adapter {
	tb.Helper()
	o := stripe.DefaultOptions()
	o.SecretKey, o.APIBase, o.CallTimeout = "sk_test_payments0123456789abcdef", d.URL, 2*time.Second
	a, err := stripe.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// crashingProcessor passes calls to a processor. Armed for a method, it
// lets that method's next call reach Stripe and take effect, and then ends
// the calling goroutine with runtime.Goexit: the use case stops exactly
// where a process killed between the processor call and the second
// transaction stops. Deferred calls run, as they would not in a real
// crash; none of the use cases' defers writes anything.
type crashingProcessor struct {
	processor.Processor
	mu    sync.Mutex
	armed map[string]bool
}

func (c *crashingProcessor) arm(method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed[method] = true
}

func (c *crashingProcessor) crashIfArmed(method string) {
	c.mu.Lock()
	armed := c.armed[method]
	delete(c.armed, method)
	c.mu.Unlock()
	if armed {
		runtime.Goexit()
	}
}

func (c *crashingProcessor) Authorize(ctx context.Context, req processor.AuthorizeRequest) (processor.Charge, error) {
	ch, err := c.Processor.Authorize(ctx, req)
	c.crashIfArmed("authorize")
	return ch, err
}

func (c *crashingProcessor) Capture(ctx context.Context, req processor.CaptureRequest) (processor.Charge, error) {
	ch, err := c.Processor.Capture(ctx, req)
	c.crashIfArmed("capture")
	return ch, err
}

func (c *crashingProcessor) Refund(ctx context.Context, req processor.RefundRequest) (processor.Refund, error) {
	r, err := c.Processor.Refund(ctx, req)
	c.crashIfArmed("refund")
	return r, err
}

// RetrieveRefund, Ready and RetrieveFee pass on the optional interfaces of
// the adapter.
func (c *crashingProcessor) RetrieveRefund(ctx context.Context, ref string) (processor.Refund, error) {
	return c.Processor.(processor.RefundRetriever).RetrieveRefund(ctx, ref)
}

func (c *crashingProcessor) Ready() error { return c.Processor.(processor.Gate).Ready() }

// RetrieveFee passes on the adapter's processor.FeeRetriever.
func (c *crashingProcessor) RetrieveFee(ctx context.Context, ref string) (processor.Fee, error) {
	return c.Processor.(processor.FeeRetriever).RetrieveFee(ctx, ref)
}

// crashDuring runs f in its own goroutine, which the armed processor ends
// mid-flight, and waits for it.
func crashDuring(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

type stripeHarness struct {
	*harness
	d     *stripetest.Double
	crash *crashingProcessor
}

func newStripeHarness(tb testing.TB) *stripeHarness {
	tb.Helper()
	d := stripetest.New(tb)
	crash := &crashingProcessor{Processor: newStripeAdapter(tb, d), armed: map[string]bool{}}
	h := newHarness(tb, harnessOptions{Wrap: func(processor.Processor) processor.Processor { return crash }})
	return &stripeHarness{harness: h, d: d, crash: crash}
}

// restarted is the service of a new process on the same databases: a new
// adapter, nothing in memory.
func (h *stripeHarness) restarted(tb testing.TB) *payments.Service {
	tb.Helper()
	return payments.NewService(payments.Options{Router: h.router, Processor: newStripeAdapter(tb, h.d)})
}

// onlyPayment returns the tenant's one payment.
func onlyPayment(tb testing.TB, svc *payments.Service, tenantID uuid.UUID) payments.Payment {
	tb.Helper()
	ps := allPayments(tb, svc, tenantID)
	if len(ps) != 1 {
		tb.Fatalf("%d payments, want 1", len(ps))
	}
	return ps[0]
}

// TestCrashBetweenStripeCallAndRecordIsFinishedByReconciler kills the
// process right after Stripe created the PaymentIntent, before the outcome
// was recorded, and shows the reconciler of a new process finishing the
// payment with the identical call: one PaymentIntent at Stripe, one ledger
// charge, one payment.succeeded.
func TestCrashBetweenStripeCallAndRecordIsFinishedByReconciler(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t)
	ctx := context.Background()
	tenant, _ := h.newTenant(t)

	h.crash.arm("authorize")
	crashDuring(func() {
		_, _ = h.svc.Create(ctx, tenant, payments.CreateParams{Amount: 2000, Currency: "usd", PaymentMethod: stripetest.PaymentMethodVisa})
	})
	p := onlyPayment(t, h.svc, tenant)
	if p.Status != payments.StatusPending || p.Operation != payments.OpAuthorize || p.ProcessorRef != nil {
		t.Fatalf("after the crash: status %s operation %q ref %v, want pending, authorize, none", p.Status, p.Operation, p.ProcessorRef)
	}
	key := p.PublicID() + ":authorize"
	if h.d.Created(key) != 1 || h.d.Status(h.d.IntentFor(p.PublicID())) != "succeeded" {
		t.Fatalf("Stripe did not take the payment before the crash: %s", h.d)
	}
	if n := len(ledgerTxs(t, h.shardOf(t, tenant), tenant, &p.ID)); n != 0 {
		t.Fatalf("%d ledger transactions before the outcome was recorded", n)
	}

	svc := h.restarted(t)
	st, err := svc.Reconcile(ctx, 0)
	if err != nil || st.Operations != 1 || st.Errors != 0 {
		t.Fatalf("reconcile: %+v %v", st, err)
	}
	p = wantStatus(t, onlyPayment(t, svc, tenant), payments.StatusSucceeded)
	wantCharged(t, h.harness, p, 2000)
	if *p.ProcessorRef != h.d.IntentFor(p.PublicID()) {
		t.Fatalf("processor ref %s, want the PaymentIntent %s", *p.ProcessorRef, h.d.IntentFor(p.PublicID()))
	}
	if h.d.Created(key) != 1 || h.d.CreatedFor(p.PublicID()) != 1 || h.d.Keys(stripetest.OpCreate)[key] != 2 {
		t.Fatalf("PaymentIntents for key %s: %d (for the payment: %d; create requests with the key: %d), want 1, 1, 2",
			key, h.d.Created(key), h.d.CreatedFor(p.PublicID()), h.d.Keys(stripetest.OpCreate)[key])
	}
	// A second pass finds nothing left.
	if st, err := svc.Reconcile(ctx, 0); err != nil || st.Operations+st.Refunds+st.Settled != 0 {
		t.Fatalf("second reconcile: %+v %v", st, err)
	}
}

// TestCrashDuringCaptureAndPendingRefund: the same for a manual capture,
// and for a refund that Stripe answers as pending and finishes later: the
// reconciler retrieves the refund instead of creating another.
func TestCrashDuringCaptureAndPendingRefund(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t)
	ctx := context.Background()
	tenant, _ := h.newTenant(t)
	p := h.create(t, tenant, stripetest.PaymentMethodVisa, payments.CaptureManual, 5000, "usd")
	wantStatus(t, p, payments.StatusRequiresCapture)

	h.crash.arm("capture")
	crashDuring(func() { _, _ = h.svc.Capture(ctx, tenant, p.ID, 3000) })
	if cur := h.get(t, tenant, p.ID); cur.Operation != payments.OpCapture || cur.Status != payments.StatusRequiresCapture {
		t.Fatalf("after the crash: %s %q", cur.Status, cur.Operation)
	}
	svc := h.restarted(t)
	if st, err := svc.Reconcile(ctx, 0); err != nil || st.Operations != 1 {
		t.Fatalf("reconcile: %+v %v", st, err)
	}
	p = wantStatus(t, h.get(t, tenant, p.ID), payments.StatusSucceeded)
	wantCharged(t, h.harness, p, 3000)
	if keys := h.d.Keys(stripetest.OpCapture); len(keys) != 1 || keys[p.PublicID()+":capture"] != 2 {
		t.Fatalf("capture requests per key %v, want the one key twice", keys)
	}

	h.d.SetRefundStatus("pending")
	h.crash.arm("refund")
	crashDuring(func() {
		_, _ = h.svc.CreateRefund(ctx, tenant, payments.CreateRefundParams{Payment: p.ID, Amount: 1000})
	})
	refs := refundsOf(t, svc, tenant, p.ID)
	if len(refs) != 1 || refs[0].Status != payments.RefundPending || refs[0].ProcessorRef != nil {
		t.Fatalf("refunds after the crash: %+v", refs)
	}
	re := refs[0]
	if st, err := svc.Reconcile(ctx, 0); err != nil || st.Refunds != 1 {
		t.Fatalf("reconcile: %+v %v", st, err)
	}
	re = refundsOf(t, svc, tenant, p.ID)[0]
	stripeRefund := h.d.RefundFor(re.PublicID())
	if re.Status != payments.RefundPending || re.ProcessorRef == nil || *re.ProcessorRef != stripeRefund {
		t.Fatalf("refund after the repeated call: %+v (Stripe's: %s)", re, stripeRefund)
	}
	h.d.FinishRefund(stripeRefund, "succeeded")
	if st, err := svc.Reconcile(ctx, 0); err != nil || st.Refunds != 1 {
		t.Fatalf("reconcile: %+v %v", st, err)
	}
	re = refundsOf(t, svc, tenant, p.ID)[0]
	if re.Status != payments.RefundSucceeded {
		t.Fatalf("refund %s, want succeeded", re.Status)
	}
	if n := h.d.Requests(stripetest.OpRefund); n != 2 {
		t.Fatalf("%d refund creations reached Stripe, want 2 (the call and its one repetition)", n)
	}
	if keys := h.d.Keys(stripetest.OpRefund); keys[re.PublicID()+":create"] != 2 || len(keys) != 1 {
		t.Fatalf("refund requests per key %v", keys)
	}
	txs := ledgerTxs(t, h.shardOf(t, tenant), tenant, &p.ID)
	if len(txs) != 2 || txs[0].Type != ledger.TypeRefund && txs[1].Type != ledger.TypeRefund {
		t.Fatalf("ledger %+v, want the charge and one refund", txs)
	}
	if n := len(eventsOf(t, h.shardOf(t, tenant), tenant, re.ID, events.RefundSucceeded)); n != 1 {
		t.Fatalf("%d refund.succeeded events", n)
	}
	if after := h.get(t, tenant, p.ID); after.AmountRefunded != 1000 || after.AmountRefundPending != 0 {
		t.Fatalf("payment after the refund: refunded %d pending %d", after.AmountRefunded, after.AmountRefundPending)
	}
}

// TestStripeFaultsThroughService: a 500, then the reconciler repeating the
// call; a breaker that opened refuses new payments before anything is
// recorded.
func TestStripeFaultsThroughService(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t)
	ctx := context.Background()
	tenant, _ := h.newTenant(t)
	h.d.Script(stripetest.OpCreate, stripetest.Fault{Kind: stripetest.FaultStatus, Status: 500})
	_, err := h.svc.Create(ctx, tenant, payments.CreateParams{Amount: 1500, Currency: "usd", PaymentMethod: stripetest.PaymentMethodVisa})
	wantLost(t, err)
	p := onlyPayment(t, h.svc, tenant)
	if p.Status != payments.StatusPending || p.Operation != payments.OpAuthorize {
		t.Fatalf("after a 500: %s %q", p.Status, p.Operation)
	}
	reconcile(t, h.harness)
	p = wantStatus(t, h.get(t, tenant, p.ID), payments.StatusSucceeded)
	wantCharged(t, h.harness, p, 1500)
	if h.d.Created(p.PublicID()+":authorize") != 1 {
		t.Fatal("not one PaymentIntent")
	}

	o := stripe.DefaultOptions()
	o.SecretKey, o.APIBase, o.BreakerFailures, o.BreakerOpen, o.NetworkRetries = "sk_test_payments0123456789abcdef", h.d.URL, 1, time.Minute, 0
	a, err := stripe.New(o)
	if err != nil {
		t.Fatal(err)
	}
	svc := payments.NewService(payments.Options{Router: h.router, Processor: a})
	h.d.Script(stripetest.OpRetrieve, stripetest.Fault{Kind: stripetest.FaultStatus, Status: 502})
	if _, err := a.Retrieve(ctx, *p.ProcessorRef); err == nil {
		t.Fatal("retrieve through a 502 succeeded")
	}
	before := h.d.Requests(stripetest.OpCreate)
	_, err = svc.Create(ctx, tenant, payments.CreateParams{Amount: 1500, Currency: "usd", PaymentMethod: stripetest.PaymentMethodVisa})
	e := wantCode(t, err, payments.CodeProcessorUnavailable, errcode.KindUnavailable)
	if e.Payment != "" || processor.RetryAfterOf(err) < 59*time.Second {
		t.Fatalf("open breaker: payment %q retry after %v", e.Payment, processor.RetryAfterOf(err))
	}
	if n := len(allPayments(t, svc, tenant)); n != 1 || h.d.Requests(stripetest.OpCreate) != before {
		t.Fatalf("with the breaker open: %d payments recorded, %d create requests sent", n, h.d.Requests(stripetest.OpCreate)-before)
	}
}

// TestReconciliationReport lists the differences between our records and
// Stripe's, changes nothing without repair, and with repair applies what
// may be applied.
func TestReconciliationReport(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t)
	ctx := context.Background()
	tenant, _ := h.newTenant(t)
	since := time.Now().Add(-time.Hour)

	agree := h.create(t, tenant, stripetest.PaymentMethodVisa, payments.CaptureAutomatic, 1000, "usd")
	settling := h.create(t, tenant, stripetest.PaymentMethodProcessing, payments.CaptureAutomatic, 2000, "usd")
	wantStatus(t, settling, payments.StatusPending)
	h.d.Settle(h.d.IntentFor(settling.PublicID()))
	disputed := h.create(t, tenant, stripetest.PaymentMethodVisa, payments.CaptureAutomatic, 3000, "usd")
	h.d.SetStatus(h.d.IntentFor(disputed.PublicID()), "succeeded", 2500)
	h.d.SetRefundStatus("pending")
	re, err := h.svc.CreateRefund(ctx, tenant, payments.CreateRefundParams{Payment: agree.ID, Amount: 400})
	if err != nil || re.Status != payments.RefundPending {
		t.Fatalf("refund %+v %v", re, err)
	}
	h.d.FinishRefund(h.d.RefundFor(re.PublicID()), "succeeded")

	rep, err := h.svc.ReconciliationReport(ctx, tenant, payments.ReportParams{Since: since})
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ id, field, ours, theirs string }
	got := map[key]bool{}
	for _, d := range rep.Differences {
		got[key{d.ID, d.Field, d.Ours, d.Processor}] = d.Repairable
	}
	want := map[key]bool{
		{settling.PublicID(), payments.FieldStatus, "pending", "succeeded"}: true,
		{disputed.PublicID(), payments.FieldAmountReceived, "3000", "2500"}: false,
		{re.PublicID(), payments.FieldStatus, "pending", "succeeded"}:       true,
	}
	if len(got) != len(want) || rep.Payments != 3 || rep.Refunds != 1 || rep.Repaired != 0 {
		t.Fatalf("report %+v, want differences %v", rep, want)
	}
	for k, repairable := range want {
		if r, ok := got[k]; !ok || r != repairable {
			t.Fatalf("difference %+v missing or repairable=%v: %+v", k, r, rep.Differences)
		}
	}
	if p := h.get(t, tenant, settling.ID); p.Status != payments.StatusPending {
		t.Fatalf("the report without repair changed a payment to %s", p.Status)
	}

	rep, err = h.svc.ReconciliationReport(ctx, tenant, payments.ReportParams{Since: since, Repair: true})
	if err != nil || rep.Repaired != 2 {
		t.Fatalf("repair: %+v %v", rep, err)
	}
	wantCharged(t, h.harness, wantStatus(t, h.get(t, tenant, settling.ID), payments.StatusSucceeded), 2000)
	if r := refundsOf(t, h.svc, tenant, agree.ID)[0]; r.Status != payments.RefundSucceeded {
		t.Fatalf("refund after repair: %s", r.Status)
	}
	rep, err = h.svc.ReconciliationReport(ctx, tenant, payments.ReportParams{Since: since})
	if err != nil || len(rep.Differences) != 1 || rep.Differences[0].ID != disputed.PublicID() {
		t.Fatalf("report after repair: %+v %v, want only the amount difference left", rep, err)
	}
	if rep, err := h.svc.ReconciliationReport(ctx, tenant, payments.ReportParams{Since: time.Now().Add(time.Hour)}); err != nil || rep.Payments != 0 {
		t.Fatalf("report of the future: %+v %v", rep, err)
	}
}

// TestNotificationDuringOperationIsDeferred: a Stripe event about a payment
// whose operation is in flight answers processor_update_deferred and is not
// marked as seen, so Stripe's redelivery takes effect once the operation
// is finished.
func TestNotificationDuringOperationIsDeferred(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t)
	ctx := context.Background()
	tenant, _ := h.newTenant(t)
	p := h.create(t, tenant, stripetest.PaymentMethodVisa, payments.CaptureManual, 4000, "usd")
	h.crash.arm("capture")
	crashDuring(func() { _, _ = h.svc.Capture(ctx, tenant, p.ID, 0) })
	u := processor.Update{
		Ref: *p.ProcessorRef, PaymentID: p.PublicID(), TenantID: ids.Format(ids.PrefixTenant, tenant), EventID: "evt_deferred",
		Charge: processor.Charge{Ref: *p.ProcessorRef, Status: processor.StatusSucceeded, Amount: 4000, AmountCaptured: 4000},
	}
	wantCode(t, h.svc.ApplyUpdate(ctx, u), payments.CodeUpdateDeferred, errcode.KindUnavailable)
	reconcile(t, h.harness)
	if err := h.svc.ApplyUpdate(ctx, u); err != nil {
		t.Fatalf("redelivery after the operation: %v", err)
	}
	wantCharged(t, h.harness, wantStatus(t, h.get(t, tenant, p.ID), payments.StatusSucceeded), 4000)
}

// TestRefundCanceledByProcessor: a refund Stripe cancels returns its
// amount to what may be refunded, with a refund.canceled event and no
// ledger posting.
func TestRefundCanceledByProcessor(t *testing.T) {
	t.Parallel()
	h := newStripeHarness(t)
	ctx := context.Background()
	tenant, _ := h.newTenant(t)
	p := h.create(t, tenant, stripetest.PaymentMethodVisa, payments.CaptureAutomatic, 3000, "usd")
	h.d.SetRefundStatus("pending")
	re, err := h.svc.CreateRefund(ctx, tenant, payments.CreateRefundParams{Payment: p.ID, Amount: 3000})
	if err != nil || re.Status != payments.RefundPending {
		t.Fatalf("refund %+v %v", re, err)
	}
	if got := h.get(t, tenant, p.ID); got.Refundable() != 0 {
		t.Fatalf("refundable %d while the refund is pending", got.Refundable())
	}
	u := processor.RefundUpdate{TenantID: ids.Format(ids.PrefixTenant, tenant), RefundID: re.PublicID(), EventID: "evt_refund_canceled",
		Refund: processor.Refund{Ref: *re.ProcessorRef, Status: processor.RefundCanceled, Amount: 3000, FailureReason: "canceled"}}
	for range 2 {
		if err := h.svc.ApplyRefundUpdate(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	got := refundsOf(t, h.svc, tenant, p.ID)[0]
	if got.Status != payments.RefundCanceled || got.FailureReason == nil {
		t.Fatalf("refund %+v", got)
	}
	if pay := h.get(t, tenant, p.ID); pay.Refundable() != 3000 || pay.AmountRefunded != 0 {
		t.Fatalf("payment after the cancel: refundable %d refunded %d", pay.Refundable(), pay.AmountRefunded)
	}
	sh := h.shardOf(t, tenant)
	if n := len(eventsOf(t, sh, tenant, re.ID, events.RefundCanceled)); n != 1 {
		t.Fatalf("%d refund.canceled events", n)
	}
	if n := len(ledgerTxs(t, sh, tenant, &p.ID)); n != 1 {
		t.Fatalf("%d ledger transactions, want only the charge", n)
	}
}
