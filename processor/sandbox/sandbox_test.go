package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/money"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/sandbox"
)

// newSandbox returns a Sandbox with DefaultOptions changed by edit, closed
// when the test ends.
func newSandbox(tb testing.TB, edit func(*sandbox.Options)) *sandbox.Sandbox {
	tb.Helper()
	opts := sandbox.DefaultOptions()
	if edit != nil {
		edit(&opts)
	}
	sb, err := sandbox.New(opts)
	if err != nil {
		tb.Fatalf("sandbox.New: %v", err)
	}
	tb.Cleanup(func() { _ = sb.Close() })
	return sb
}

// authorizeRequest returns a valid request for 10.00 usd with method, which
// edit may change.
func authorizeRequest(method string, edit func(*processor.AuthorizeRequest)) processor.AuthorizeRequest {
	req := processor.AuthorizeRequest{
		TenantID:       "ten_1",
		PaymentID:      "pay_1",
		Amount:         1000,
		Currency:       "usd",
		PaymentMethod:  method,
		CaptureMethod:  processor.CaptureAutomatic,
		IdempotencyKey: "key_1",
		Metadata:       map[string]string{"order": "42"},
	}
	if edit != nil {
		edit(&req)
	}
	return req
}

func manual(r *processor.AuthorizeRequest) { r.CaptureMethod = processor.CaptureManual }

// recorder is an UpdateHandler that keeps what it receives.
type recorder struct {
	mu      sync.Mutex
	updates []processor.Update
	err     error
}

func (r *recorder) handle(_ context.Context, u processor.Update) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, u)
	return r.err
}

func (r *recorder) got() []processor.Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]processor.Update(nil), r.updates...)
}

// wantCode fails the test unless err is an *errcode.Error with the code,
// kind and param given.
func wantCode(tb testing.TB, err error, kind errcode.Kind, code, param string) {
	tb.Helper()
	e := errcode.As(err)
	if e == nil || e.Code != code || e.Kind != kind || e.Param != param {
		tb.Fatalf("error = %#v, want code %s kind %d param %q", err, code, kind, param)
	}
}

func TestName(t *testing.T) {
	t.Parallel()
	if got := newSandbox(t, nil).Name(); got != "sandbox" {
		t.Errorf("Name() = %q", got)
	}
}

func TestAuthorizeApproved(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, nil)
	ctx := t.Context()
	for _, method := range []string{sandbox.PaymentMethodVisa, sandbox.PaymentMethodMastercard, sandbox.PaymentMethodAmex} {
		c, err := sb.Authorize(ctx, authorizeRequest(method, nil))
		if err != nil {
			t.Fatalf("%s: Authorize: %v", method, err)
		}
		want := processor.Charge{
			Ref: c.Ref, Status: processor.StatusSucceeded, Currency: "usd",
			Amount: 1000, AmountCaptured: 1000, Fee: money.Fee(1000, 290, 30),
		}
		if c != want || c.Fee != 59 {
			t.Errorf("%s automatic: %+v, want %+v", method, c, want)
		}

		c, err = sb.Authorize(ctx, authorizeRequest(method, manual))
		if err != nil {
			t.Fatalf("%s manual: Authorize: %v", method, err)
		}
		want = processor.Charge{
			Ref: c.Ref, Status: processor.StatusRequiresCapture, Currency: "usd",
			Amount: 1000, AmountCapturable: 1000,
		}
		if c != want {
			t.Errorf("%s manual: %+v, want %+v", method, c, want)
		}
	}
}

func TestAuthorizeDefaultsToAutomaticCapture(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, nil)
	c, err := sb.Authorize(t.Context(), authorizeRequest(sandbox.PaymentMethodVisa,
		func(r *processor.AuthorizeRequest) { r.CaptureMethod = "" }))
	if err != nil || c.Status != processor.StatusSucceeded {
		t.Fatalf("Authorize with no capture method = %+v, %v", c, err)
	}
}

func TestAuthorizeDeclined(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, nil)
	tests := []struct {
		method, declineCode, message string
	}{
		{method: sandbox.PaymentMethodDeclined, declineCode: "generic_decline", message: "Your card was declined."},
		{method: sandbox.PaymentMethodInsufficientFunds, declineCode: "insufficient_funds", message: "Your card has insufficient funds."},
		{method: sandbox.PaymentMethodFraudulent, declineCode: "fraudulent", message: "Your card was declined."},
	}
	for _, tt := range tests {
		for _, edit := range []func(*processor.AuthorizeRequest){nil, manual} {
			c, err := sb.Authorize(t.Context(), authorizeRequest(tt.method, edit))
			if err != nil {
				t.Fatalf("%s: a decline is not an error, got %v", tt.method, err)
			}
			want := processor.Charge{
				Ref: c.Ref, Status: processor.StatusFailed, Currency: "usd", Amount: 1000,
				DeclineCode: tt.declineCode, FailureCode: "card_declined", FailureMessage: tt.message,
			}
			if c != want {
				t.Errorf("%s: %+v, want %+v", tt.method, c, want)
			}
			// The decline is what Retrieve reports too.
			if r, err := sb.Retrieve(t.Context(), c.Ref); err != nil || r != c {
				t.Errorf("%s: Retrieve = %+v, %v; want %+v", tt.method, r, err, c)
			}
		}
	}
}

func TestAuthorizeInvalid(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, nil)
	tests := []struct {
		name  string
		edit  func(*processor.AuthorizeRequest)
		code  string
		param string
	}{
		{name: "unknown method", edit: func(r *processor.AuthorizeRequest) { r.PaymentMethod = "pm_card_unknown" },
			code: processor.CodePaymentMethodInvalid, param: "payment_method"},
		{name: "card number as method", edit: func(r *processor.AuthorizeRequest) { r.PaymentMethod = "4242424242424242" },
			code: processor.CodePaymentMethodInvalid, param: "payment_method"},
		{name: "no method", edit: func(r *processor.AuthorizeRequest) { r.PaymentMethod = "" },
			code: processor.CodePaymentMethodInvalid, param: "payment_method"},
		{name: "uppercase currency", edit: func(r *processor.AuthorizeRequest) { r.Currency = "USD" },
			code: money.CodeCurrencyUnsupported, param: "currency"},
		{name: "zero amount", edit: func(r *processor.AuthorizeRequest) { r.Amount = 0 },
			code: money.CodeAmountTooSmall, param: "amount"},
		{name: "huge amount", edit: func(r *processor.AuthorizeRequest) { r.Amount = money.AmountMax + 1 },
			code: money.CodeAmountTooLarge, param: "amount"},
		{name: "capture method", edit: func(r *processor.AuthorizeRequest) { r.CaptureMethod = "later" },
			code: errcode.CodeParameterInvalid, param: "capture_method"},
		{name: "no tenant", edit: func(r *processor.AuthorizeRequest) { r.TenantID = "" },
			code: errcode.CodeParameterMissing, param: "tenant_id"},
		{name: "no payment", edit: func(r *processor.AuthorizeRequest) { r.PaymentID = "" },
			code: errcode.CodeParameterMissing, param: "payment_id"},
		{name: "long payment ID", edit: func(r *processor.AuthorizeRequest) { r.PaymentID = strings.Repeat("p", sandbox.IDBytesMax+1) },
			code: errcode.CodeParameterInvalid, param: "payment_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := sb.Authorize(t.Context(), authorizeRequest(sandbox.PaymentMethodVisa, tt.edit))
			wantCode(t, err, errcode.KindInvalid, tt.code, tt.param)
			if c != (processor.Charge{}) {
				t.Errorf("charge = %+v alongside an error", c)
			}
			if strings.Contains(err.Error(), "4242424242424242") {
				t.Errorf("error %q echoes the payment method", err)
			}
		})
	}
}

func TestAuthorizeIsDeterministic(t *testing.T) {
	t.Parallel()
	a := newSandbox(t, nil)
	b := newSandbox(t, nil)
	req := authorizeRequest(sandbox.PaymentMethodVisa, nil)
	c1, err1 := a.Authorize(t.Context(), req)
	c2, err2 := b.Authorize(t.Context(), req)
	if err1 != nil || err2 != nil || c1 != c2 {
		t.Fatalf("the same request gave %+v, %v and %+v, %v", c1, err1, c2, err2)
	}
	req.PaymentID = "pay_2"
	if c3, _ := a.Authorize(t.Context(), req); c3.Ref == c1.Ref {
		t.Errorf("two payments share the Ref %q", c1.Ref)
	}
	// Another Sandbox, as after a restart, reads the Ref the same way.
	if r, err := b.Retrieve(t.Context(), c1.Ref); err != nil || r != c1 {
		t.Errorf("Retrieve elsewhere = %+v, %v; want %+v", r, err, c1)
	}
}

func TestCapture(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, nil)
	ctx := t.Context()
	auth, err := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodMastercard, manual))
	if err != nil {
		t.Fatal(err)
	}

	_, err = sb.Capture(ctx, processor.CaptureRequest{Ref: auth.Ref, PaymentID: "pay_1", Amount: 1001})
	wantCode(t, err, errcode.KindInvalid, processor.CodeAmountExceedsCapturable, "amount")
	_, err = sb.Capture(ctx, processor.CaptureRequest{Ref: auth.Ref, PaymentID: "pay_1", Amount: -1})
	wantCode(t, err, errcode.KindInvalid, money.CodeAmountTooSmall, "amount")
	_, err = sb.Capture(ctx, processor.CaptureRequest{Ref: auth.Ref, PaymentID: "pay_other", Amount: 500})
	wantCode(t, err, errcode.KindNotFound, errcode.CodeResourceMissing, "ref")

	partial, err := sb.Capture(ctx, processor.CaptureRequest{Ref: auth.Ref, PaymentID: "pay_1", Amount: 600, IdempotencyKey: "cap"})
	if err != nil {
		t.Fatal(err)
	}
	want := processor.Charge{
		Ref: partial.Ref, Status: processor.StatusSucceeded, Currency: "usd",
		Amount: 1000, AmountCaptured: 600, Fee: money.Fee(600, 290, 30),
	}
	if partial != want || partial.Fee != 47 {
		t.Errorf("partial capture = %+v, want %+v", partial, want)
	}
	if partial.Ref == auth.Ref {
		t.Error("capture kept the Ref; Retrieve could not tell it was captured")
	}
	if r, err := sb.Retrieve(ctx, partial.Ref); err != nil || r != partial {
		t.Errorf("Retrieve after capture = %+v, %v", r, err)
	}
	// The captured charge cannot be captured again.
	_, err = sb.Capture(ctx, processor.CaptureRequest{Ref: partial.Ref, PaymentID: "pay_1"})
	wantCode(t, err, errcode.KindConflict, processor.CodeUnexpectedState, "")

	// Zero captures the whole amount.
	full, err := sb.Capture(ctx, processor.CaptureRequest{Ref: auth.Ref, PaymentID: "pay_1"})
	if err != nil || full.AmountCaptured != 1000 || full.Fee != 59 || full.AmountCapturable != 0 {
		t.Errorf("full capture = %+v, %v", full, err)
	}
}

func TestCaptureUnexpectedState(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, nil)
	ctx := t.Context()
	for _, req := range []processor.AuthorizeRequest{
		authorizeRequest(sandbox.PaymentMethodVisa, nil), // already captured
		authorizeRequest(sandbox.PaymentMethodDeclined, manual),
		authorizeRequest(sandbox.PaymentMethodThreeDSecure, manual),
		authorizeRequest(sandbox.PaymentMethodProcessing, manual),
	} {
		c, err := sb.Authorize(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		_, err = sb.Capture(ctx, processor.CaptureRequest{Ref: c.Ref, PaymentID: "pay_1"})
		wantCode(t, err, errcode.KindConflict, processor.CodeUnexpectedState, "")
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, nil)
	ctx := t.Context()
	for _, method := range []string{sandbox.PaymentMethodVisa, sandbox.PaymentMethodThreeDSecure} {
		auth, err := sb.Authorize(ctx, authorizeRequest(method, manual))
		if err != nil {
			t.Fatal(err)
		}
		c, err := sb.Cancel(ctx, processor.CancelRequest{Ref: auth.Ref, PaymentID: "pay_1", IdempotencyKey: "k"})
		want := processor.Charge{Ref: c.Ref, Status: processor.StatusCanceled, Currency: "usd", Amount: 1000}
		if err != nil || c != want {
			t.Fatalf("%s: Cancel = %+v, %v; want %+v", method, c, err, want)
		}
		// Canceling again changes nothing.
		again, err := sb.Cancel(ctx, processor.CancelRequest{Ref: c.Ref, PaymentID: "pay_1"})
		if err != nil || again != c {
			t.Errorf("%s: second Cancel = %+v, %v; want %+v", method, again, err, c)
		}
		_, err = sb.Capture(ctx, processor.CaptureRequest{Ref: c.Ref, PaymentID: "pay_1"})
		wantCode(t, err, errcode.KindConflict, processor.CodeUnexpectedState, "")
	}
	for _, req := range []processor.AuthorizeRequest{
		authorizeRequest(sandbox.PaymentMethodVisa, nil),
		authorizeRequest(sandbox.PaymentMethodFraudulent, nil),
		authorizeRequest(sandbox.PaymentMethodProcessing, nil),
	} {
		auth, err := sb.Authorize(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		_, err = sb.Cancel(ctx, processor.CancelRequest{Ref: auth.Ref, PaymentID: "pay_1"})
		wantCode(t, err, errcode.KindConflict, processor.CodeUnexpectedState, "")
	}
}

func TestRefund(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, nil)
	ctx := t.Context()
	c, err := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodAmex, nil))
	if err != nil {
		t.Fatal(err)
	}
	req := processor.RefundRequest{Ref: c.Ref, RefundID: "re_1", Amount: 400, Currency: "usd", IdempotencyKey: "k"}
	r, err := sb.Refund(ctx, req)
	if err != nil || r.Status != processor.RefundSucceeded || r.Amount != 400 || !strings.HasPrefix(r.Ref, "sbx_re_") || r.FailureReason != "" {
		t.Fatalf("Refund = %+v, %v", r, err)
	}
	if again, err := sb.Refund(ctx, req); err != nil || again != r {
		t.Errorf("retried Refund = %+v, %v; want %+v", again, err, r)
	}
	req.RefundID = "re_2"
	if other, _ := sb.Refund(ctx, req); other.Ref == r.Ref {
		t.Errorf("two refunds share the Ref %q", r.Ref)
	}

	for _, amount := range []int64{0, -5} {
		_, err := sb.Refund(ctx, processor.RefundRequest{Ref: c.Ref, RefundID: "re_3", Amount: amount, Currency: "usd"})
		wantCode(t, err, errcode.KindInvalid, money.CodeAmountTooSmall, "amount")
	}
	_, err = sb.Refund(ctx, processor.RefundRequest{Ref: c.Ref, RefundID: "re_4", Amount: 1, Currency: "eur"})
	wantCode(t, err, errcode.KindInvalid, errcode.CodeParameterInvalid, "currency")
	_, err = sb.Refund(ctx, processor.RefundRequest{Ref: "sbx_ch_nope", RefundID: "re_5", Amount: 1})
	wantCode(t, err, errcode.KindNotFound, errcode.CodeResourceMissing, "ref")
}

func TestUnknownRef(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, nil)
	ctx := t.Context()
	valid, err := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodVisa, manual))
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{
		"", "sbx_ch_", "ch_123", "sbx_ch_!!!!", "sbx_ch_AAAA", "pi_3MtwBwLkdIwHu7ix28a3tqPa",
		valid.Ref + "A", valid.Ref[:len(valid.Ref)-1], strings.Repeat("x", 10_000),
		"sbx_ch_4242424242424242",
	} {
		_, err := sb.Retrieve(ctx, ref)
		wantCode(t, err, errcode.KindNotFound, errcode.CodeResourceMissing, "ref")
		if ref != "" && strings.Contains(err.Error(), ref) {
			t.Errorf("error %q echoes the Ref", err)
		}
		_, err = sb.Capture(ctx, processor.CaptureRequest{Ref: ref})
		wantCode(t, err, errcode.KindNotFound, errcode.CodeResourceMissing, "ref")
		_, err = sb.Cancel(ctx, processor.CancelRequest{Ref: ref})
		wantCode(t, err, errcode.KindNotFound, errcode.CodeResourceMissing, "ref")
		_, err = sb.CompleteAction(ctx, ref)
		wantCode(t, err, errcode.KindNotFound, errcode.CodeResourceMissing, "ref")
		_, err = sb.Settle(ctx, ref)
		wantCode(t, err, errcode.KindNotFound, errcode.CodeResourceMissing, "ref")
	}
}

func TestRefLengthMax(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, nil)
	long := strings.Repeat("i", sandbox.IDBytesMax)
	c, err := sb.Authorize(t.Context(), authorizeRequest(sandbox.PaymentMethodProcessing, func(r *processor.AuthorizeRequest) {
		r.TenantID, r.PaymentID, r.Amount = long, long, money.AmountMax
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Ref) > sandbox.RefLengthMax {
		t.Errorf("len(Ref) = %d, above RefLengthMax %d", len(c.Ref), sandbox.RefLengthMax)
	}
	if _, err := sb.Retrieve(t.Context(), c.Ref); err != nil {
		t.Errorf("Retrieve of the longest Ref: %v", err)
	}
}

func TestThreeDSecure(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		edit func(*processor.AuthorizeRequest)
		want processor.Status
		fee  int64
	}{
		{edit: nil, want: processor.StatusSucceeded, fee: 59},
		{edit: manual, want: processor.StatusRequiresCapture},
	} {
		rec := &recorder{}
		sb := newSandbox(t, func(o *sandbox.Options) { o.UpdateHandler = rec.handle })
		ctx := t.Context()
		auth, err := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodThreeDSecure, tt.edit))
		if err != nil {
			t.Fatal(err)
		}
		if auth.Status != processor.StatusRequiresAction || auth.NextAction == nil ||
			auth.NextAction.Type != processor.NextActionRedirectToURL ||
			!strings.HasPrefix(auth.NextAction.RedirectURL, sandbox.ActionPathPrefix+auth.Ref+".") ||
			!strings.HasPrefix(auth.NextAction.RedirectURL, "/v1/sandbox/") {
			t.Fatalf("Authorize = %+v (next action %+v)", auth, auth.NextAction)
		}
		if len(rec.got()) != 0 {
			t.Fatal("an Update was sent before the customer acted")
		}
		// Capture must wait for the customer.
		_, err = sb.Capture(ctx, processor.CaptureRequest{Ref: auth.Ref, PaymentID: "pay_1"})
		wantCode(t, err, errcode.KindConflict, processor.CodeUnexpectedState, "")

		done, err := sb.CompleteActionLink(ctx, strings.TrimPrefix(auth.NextAction.RedirectURL, sandbox.ActionPathPrefix))
		if err != nil {
			t.Fatal(err)
		}
		if done.Status != tt.want || done.Fee != tt.fee || done.NextAction != nil || done.Ref == auth.Ref {
			t.Errorf("CompleteAction = %+v", done)
		}
		got := rec.got()
		wantUpdate := processor.Update{Ref: auth.Ref, PaymentID: "pay_1", TenantID: "ten_1", Charge: done}
		if len(got) != 1 || got[0].Ref != wantUpdate.Ref || got[0].PaymentID != "pay_1" ||
			got[0].TenantID != "ten_1" || got[0].Charge != done {
			t.Errorf("updates = %+v, want exactly %+v", got, wantUpdate)
		}
		if r, err := sb.Retrieve(ctx, done.Ref); err != nil || r != done {
			t.Errorf("Retrieve(new Ref) = %+v, %v; want %+v", r, err, done)
		}
		// The completed charge has no action left to complete.
		_, err = sb.CompleteAction(ctx, done.Ref)
		wantCode(t, err, errcode.KindConflict, processor.CodeUnexpectedState, "")
	}
}

func TestCompleteActionHandlerError(t *testing.T) {
	t.Parallel()
	rec := &recorder{err: errors.New("database down")}
	sb := newSandbox(t, func(o *sandbox.Options) { o.UpdateHandler = rec.handle })
	auth, err := sb.Authorize(t.Context(), authorizeRequest(sandbox.PaymentMethodThreeDSecure, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.CompleteAction(t.Context(), auth.Ref); !errors.Is(err, rec.err) {
		t.Fatalf("CompleteAction error = %v, want the handler's", err)
	}
	// The customer retries; the same Update is delivered again.
	rec.mu.Lock()
	rec.err = nil
	rec.mu.Unlock()
	c, err := sb.CompleteAction(t.Context(), auth.Ref)
	if got := rec.got(); err != nil || len(got) != 2 || got[0] != got[1] || got[1].Charge != c {
		t.Errorf("retry: %+v, %v; updates %+v", c, err, got)
	}
}

func TestProcessingSettlesOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		sb := newSandbox(t, func(o *sandbox.Options) {
			o.SettleDelay = 5 * time.Second
			o.UpdateHandler = rec.handle
		})
		ctx := t.Context()
		auth, err := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodProcessing, nil))
		want := processor.Charge{Ref: auth.Ref, Status: processor.StatusPending, Currency: "usd", Amount: 1000}
		if err != nil || auth != want {
			t.Fatalf("Authorize = %+v, %v; want %+v", auth, err, want)
		}

		time.Sleep(5*time.Second - time.Millisecond)
		synctest.Wait()
		if got := rec.got(); len(got) != 0 {
			t.Fatalf("updates before the delay: %+v", got)
		}
		if r, _ := sb.Retrieve(ctx, auth.Ref); r != auth {
			t.Fatalf("Retrieve before the delay = %+v, want %+v", r, auth)
		}

		time.Sleep(time.Millisecond)
		synctest.Wait()
		got := rec.got()
		if len(got) != 1 {
			t.Fatalf("updates at the delay: %+v, want one", got)
		}
		settled := got[0].Charge
		if got[0].Ref != auth.Ref || got[0].PaymentID != "pay_1" || got[0].TenantID != "ten_1" ||
			settled.Status != processor.StatusSucceeded || settled.AmountCaptured != 1000 || settled.Fee != 59 {
			t.Errorf("update = %+v", got[0])
		}
		// Retrieve agrees with the Update, from the old Ref and the new one.
		for _, ref := range []string{auth.Ref, settled.Ref} {
			if r, err := sb.Retrieve(ctx, ref); err != nil || r != settled {
				t.Errorf("Retrieve(%s) = %+v, %v; want %+v", ref, r, err, settled)
			}
		}
		// Settle after the fact sends nothing more.
		if c, err := sb.Settle(ctx, auth.Ref); err != nil || c != settled {
			t.Errorf("Settle = %+v, %v", c, err)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := rec.got(); len(got) != 1 {
			t.Errorf("updates after an hour: %d, want 1", len(got))
		}
	})
}

func TestProcessingManualCapture(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		sb := newSandbox(t, func(o *sandbox.Options) {
			o.SettleDelay = time.Second
			o.UpdateHandler = rec.handle
		})
		ctx := t.Context()
		auth, err := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodProcessing, manual))
		if err != nil || auth.Status != processor.StatusPending {
			t.Fatalf("Authorize = %+v, %v", auth, err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		got := rec.got()
		if len(got) != 1 || got[0].Charge.Status != processor.StatusRequiresCapture ||
			got[0].Charge.AmountCapturable != 1000 || got[0].Charge.Fee != 0 {
			t.Fatalf("updates = %+v", got)
		}
		c, err := sb.Capture(ctx, processor.CaptureRequest{Ref: got[0].Charge.Ref, PaymentID: "pay_1", Amount: 250})
		if err != nil || c.Status != processor.StatusSucceeded || c.AmountCaptured != 250 || c.Fee != money.Fee(250, 290, 30) {
			t.Errorf("Capture = %+v, %v", c, err)
		}
		// The pending Ref is capturable too, once the delay has passed.
		if _, err := sb.Capture(ctx, processor.CaptureRequest{Ref: auth.Ref, PaymentID: "pay_1"}); err != nil {
			t.Errorf("Capture through the pending Ref: %v", err)
		}
	})
}

func TestProcessingManyEachOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		sb := newSandbox(t, func(o *sandbox.Options) {
			o.SettleDelay = time.Minute
			o.UpdateHandler = rec.handle
		})
		const charges = 50
		var wg sync.WaitGroup
		for i := range charges {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * time.Second)
				req := authorizeRequest(sandbox.PaymentMethodProcessing, func(r *processor.AuthorizeRequest) {
					r.PaymentID = "pay_" + string(rune('A'+i))
				})
				// A retry of the same request shares the settlement.
				for range 2 {
					if _, err := sb.Authorize(t.Context(), req); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		seen := map[string]int{}
		for _, u := range rec.got() {
			seen[u.PaymentID]++
		}
		if len(seen) != charges {
			t.Errorf("updates for %d payments, want %d", len(seen), charges)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("payment %s: %d updates, want 1", id, n)
			}
		}
	})
}

func TestSettle(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		sb := newSandbox(t, func(o *sandbox.Options) {
			o.SettleDelay = time.Hour
			o.UpdateHandler = rec.handle
		})
		ctx := t.Context()
		auth, err := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodProcessing, nil))
		if err != nil {
			t.Fatal(err)
		}
		c, err := sb.Settle(ctx, auth.Ref)
		if err != nil || c.Status != processor.StatusSucceeded || c.Fee != 59 {
			t.Fatalf("Settle = %+v, %v", c, err)
		}
		if got := rec.got(); len(got) != 1 || got[0].Charge != c || got[0].Ref != auth.Ref {
			t.Fatalf("updates after Settle = %+v", got)
		}
		// Neither the stopped timer nor a second Settle delivers again.
		if again, err := sb.Settle(ctx, auth.Ref); err != nil || again != c {
			t.Errorf("second Settle = %+v, %v", again, err)
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if got := rec.got(); len(got) != 1 {
			t.Errorf("updates = %d, want 1", len(got))
		}

		// A Sandbox that did not create the charge, as after a restart,
		// settles it without sending an Update.
		otherRec := &recorder{}
		other := newSandbox(t, func(o *sandbox.Options) {
			o.SettleDelay = time.Hour
			o.UpdateHandler = otherRec.handle
		})
		if c2, err := other.Settle(ctx, auth.Ref); err != nil || c2 != c {
			t.Errorf("Settle elsewhere = %+v, %v; want %+v", c2, err, c)
		}
		if len(otherRec.got()) != 0 {
			t.Error("Settle elsewhere sent an Update")
		}
		// Settle leaves other charges as they are.
		visa, _ := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodVisa, manual))
		if s, err := sb.Settle(ctx, visa.Ref); err != nil || s != visa {
			t.Errorf("Settle(visa) = %+v, %v; want %+v", s, err, visa)
		}
	})
}

func TestRetrieveSettlesByClock(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixMilli())
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	// No handler: no timers; only the clock decides.
	sb := newSandbox(t, func(o *sandbox.Options) { o.Clock = clock; o.SettleDelay = 10 * time.Second })
	ctx := t.Context()
	auth, err := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodProcessing, nil))
	if err != nil {
		t.Fatal(err)
	}
	now.Add((9 * time.Second).Milliseconds())
	if r, _ := sb.Retrieve(ctx, auth.Ref); r.Status != processor.StatusPending {
		t.Errorf("after 9s: %s, want pending", r.Status)
	}
	now.Add(time.Second.Milliseconds())
	r, err := sb.Retrieve(ctx, auth.Ref)
	if err != nil || r.Status != processor.StatusSucceeded || r.Fee != 59 || r.Ref == auth.Ref {
		t.Errorf("after 10s: %+v, %v", r, err)
	}
	// A restarted process with the same clock agrees.
	restarted := newSandbox(t, func(o *sandbox.Options) { o.Clock = clock; o.SettleDelay = 10 * time.Second })
	if r2, err := restarted.Retrieve(ctx, auth.Ref); err != nil || r2 != r {
		t.Errorf("restarted: %+v, %v; want %+v", r2, err, r)
	}
}

func TestCloseStopsTimers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		sb := newSandbox(t, func(o *sandbox.Options) {
			o.SettleDelay = time.Minute
			o.UpdateHandler = rec.handle
		})
		ctx := t.Context()
		auth, err := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodProcessing, nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := sb.Close(); err != nil {
			t.Fatal(err)
		}
		if err := sb.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		// Charges made after Close settle through Retrieve only.
		later, err := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodProcessing,
			func(r *processor.AuthorizeRequest) { r.PaymentID = "pay_2" }))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		synctest.Wait() // a leaked timer would fire here
		if got := rec.got(); len(got) != 0 {
			t.Errorf("updates after Close: %+v", got)
		}
		for _, ref := range []string{auth.Ref, later.Ref} {
			if r, err := sb.Retrieve(ctx, ref); err != nil || r.Status != processor.StatusSucceeded {
				t.Errorf("Retrieve after Close = %+v, %v", r, err)
			}
		}
		// synctest.Test fails if any goroutine of the bubble is left.
	})
}

func TestCloseEndsRunningUpdates(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		started := make(chan struct{})
		var handlerErr error
		sb := newSandbox(t, func(o *sandbox.Options) {
			o.SettleDelay = time.Second
			o.UpdateHandler = func(ctx context.Context, _ processor.Update) error {
				close(started)
				<-ctx.Done() // a handler stuck until its context ends
				handlerErr = ctx.Err()
				return handlerErr
			}
		})
		if _, err := sb.Authorize(t.Context(), authorizeRequest(sandbox.PaymentMethodProcessing, nil)); err != nil {
			t.Fatal(err)
		}
		<-started
		if err := sb.Close(); err != nil {
			t.Fatal(err)
		}
		// Close waited for the handler, which saw its context canceled.
		if !errors.Is(handlerErr, context.Canceled) {
			t.Errorf("handler context error = %v, want context.Canceled", handlerErr)
		}
	})
}

func TestUpdateDurationMax(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		done := make(chan time.Duration, 1)
		sb := newSandbox(t, func(o *sandbox.Options) {
			o.SettleDelay = time.Second
			o.UpdateHandler = func(ctx context.Context, _ processor.Update) error {
				start := time.Now()
				<-ctx.Done()
				done <- time.Since(start)
				return ctx.Err()
			}
		})
		if _, err := sb.Authorize(t.Context(), authorizeRequest(sandbox.PaymentMethodProcessing, nil)); err != nil {
			t.Fatal(err)
		}
		if got := <-done; got != sandbox.UpdateDurationMax {
			t.Errorf("handler context lasted %v, want %v", got, sandbox.UpdateDurationMax)
		}
	})
}

func TestLatency(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		sb := newSandbox(t, func(o *sandbox.Options) { o.Latency = 200 * time.Millisecond })
		req := authorizeRequest(sandbox.PaymentMethodVisa, nil)

		start := time.Now()
		c, err := sb.Authorize(t.Context(), req)
		if err != nil || time.Since(start) != 200*time.Millisecond {
			t.Fatalf("Authorize = %+v, %v after %v", c, err, time.Since(start))
		}

		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start = time.Now()
		calls := map[string]func() error{
			"authorize": func() error { _, err := sb.Authorize(ctx, req); return err },
			"capture":   func() error { _, err := sb.Capture(ctx, processor.CaptureRequest{Ref: c.Ref}); return err },
			"cancel":    func() error { _, err := sb.Cancel(ctx, processor.CancelRequest{Ref: c.Ref}); return err },
			"refund":    func() error { _, err := sb.Refund(ctx, processor.RefundRequest{Ref: c.Ref, Amount: 1}); return err },
			"retrieve":  func() error { _, err := sb.Retrieve(ctx, c.Ref); return err },
		}
		for name, call := range calls {
			err := call()
			if !errors.Is(err, processor.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s with an expiring context: %v, want ErrUnavailable and DeadlineExceeded", name, err)
			}
			if errcode.As(err) != nil {
				t.Errorf("%s: %v is a client error, want an unknown outcome", name, err)
			}
		}
		// The first call waited for the deadline; the rest found it passed.
		if got := time.Since(start); got != 50*time.Millisecond {
			t.Errorf("calls returned after %v, want 50ms", got)
		}
	})
}

func TestCanceledContextWithoutLatency(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodVisa, nil))
	if !errors.Is(err, processor.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("Authorize with a canceled context: %v", err)
	}
}

func TestFeeOptions(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, func(o *sandbox.Options) { o.FeeBps, o.FeeFixed = 150, 10 })
	c, err := sb.Authorize(t.Context(), authorizeRequest(sandbox.PaymentMethodVisa, func(r *processor.AuthorizeRequest) {
		r.Amount, r.Currency = 12345, "jpy"
	}))
	if err != nil || c.Fee != money.Fee(12345, 150, 10) || c.Fee != 195 || c.Currency != "jpy" {
		t.Errorf("charge = %+v, %v; want fee 195", c, err)
	}
	// The fee never exceeds what was captured.
	def := newSandbox(t, nil)
	tiny, err := def.Authorize(t.Context(), authorizeRequest(sandbox.PaymentMethodVisa, func(r *processor.AuthorizeRequest) {
		r.Amount = 20
	}))
	if err != nil || tiny.Fee != 20 {
		t.Errorf("charge of 20 = %+v, %v; want fee 20", tiny, err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for name, edit := range map[string]func(*sandbox.Options){
		"negative latency": func(o *sandbox.Options) { o.Latency = -time.Second },
		"huge latency":     func(o *sandbox.Options) { o.Latency = sandbox.LatencyMax + 1 },
		"negative delay":   func(o *sandbox.Options) { o.SettleDelay = -1 },
		"huge delay":       func(o *sandbox.Options) { o.SettleDelay = sandbox.SettleDelayMax + 1 },
		"negative bps":     func(o *sandbox.Options) { o.FeeBps = -1 },
		"bps above 100%":   func(o *sandbox.Options) { o.FeeBps = money.BpsMax + 1 },
		"negative fixed":   func(o *sandbox.Options) { o.FeeFixed = -1 },
	} {
		opts := sandbox.DefaultOptions()
		edit(&opts)
		if sb, err := sandbox.New(opts); err == nil {
			_ = sb.Close()
			t.Errorf("%s: New accepted %+v", name, opts)
		}
	}
}

func FuzzRetrieve(f *testing.F) {
	sb, err := sandbox.New(sandbox.DefaultOptions())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = sb.Close() })
	for _, method := range []string{sandbox.PaymentMethodVisa, sandbox.PaymentMethodProcessing, sandbox.PaymentMethodThreeDSecure} {
		c, err := sb.Authorize(context.Background(), authorizeRequest(method, manual))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c.Ref)
	}
	f.Add("sbx_ch_")
	f.Fuzz(func(t *testing.T, ref string) {
		c, err := sb.Retrieve(context.Background(), ref)
		if err != nil {
			if e := errcode.As(err); e == nil || e.Code != errcode.CodeResourceMissing {
				t.Fatalf("Retrieve(%q) error = %v", ref, err)
			}
			return
		}
		if !c.Status.Valid() || c.Amount < money.AmountMin || c.AmountCaptured > c.Amount || c.Fee > c.AmountCaptured {
			t.Fatalf("Retrieve(%q) = %+v, an impossible charge", ref, c)
		}
		if again, err := sb.Retrieve(context.Background(), c.Ref); err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("Retrieve(%q) = %+v, %v; want %+v", c.Ref, again, err, c)
		}
	})
}

// TestActionLinksAreSigned: a 3-D Secure link completes only if this
// deployment's key signed it. Everything else in a charge reference can be
// derived from what a merchant's customer sees, so the signature is what
// keeps links from being forged.
func TestActionLinksAreSigned(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, sandbox.ActionKeyBytesMin)
	rec := &recorder{}
	sb := newSandbox(t, func(o *sandbox.Options) { o.ActionKey, o.UpdateHandler = key, rec.handle })
	ctx := t.Context()
	auth, err := sb.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodThreeDSecure, nil))
	if err != nil {
		t.Fatal(err)
	}
	link := strings.TrimPrefix(auth.NextAction.RedirectURL, sandbox.ActionPathPrefix)
	ref, sig, _ := strings.Cut(link, ".")
	other := newSandbox(t, func(o *sandbox.Options) { o.ActionKey = bytes.Repeat([]byte{8}, sandbox.ActionKeyBytesMin) })
	otherAuth, err := other.Authorize(ctx, authorizeRequest(sandbox.PaymentMethodThreeDSecure, nil))
	if err != nil {
		t.Fatal(err)
	}
	if otherAuth.Ref != auth.Ref {
		t.Fatalf("the same charge has two refs: %s, %s", auth.Ref, otherAuth.Ref)
	}
	otherLink := strings.TrimPrefix(otherAuth.NextAction.RedirectURL, sandbox.ActionPathPrefix)
	if otherLink == link {
		t.Fatal("two keys signed a link alike")
	}
	for name, forged := range map[string]string{
		"bare ref":            ref,
		"empty signature":     ref + ".",
		"another key's":       otherLink,
		"signature of nought": "." + sig,
		"longer signature":    link + "A",
		"overlong":            link + strings.Repeat("A", sandbox.ActionLinkLengthMax),
		"two separators":      ref + ".." + sig,
	} {
		_, err := sb.CompleteActionLink(ctx, forged)
		wantCode(t, err, errcode.KindNotFound, errcode.CodeResourceMissing, "ref")
		if len(rec.got()) != 0 {
			t.Fatalf("%s: a forged link delivered an update", name)
		}
	}
	// Every process of a deployment shares the key, and each one's links
	// complete on the others.
	twin := newSandbox(t, func(o *sandbox.Options) { o.ActionKey, o.UpdateHandler = key, rec.handle })
	done, err := twin.CompleteActionLink(ctx, link)
	if err != nil || done.Status != processor.StatusSucceeded {
		t.Fatalf("the link on a twin: %+v, %v", done, err)
	}
	if len(rec.got()) != 1 {
		t.Fatalf("updates %+v, want one", rec.got())
	}
}

func TestActionKeyTooShort(t *testing.T) {
	t.Parallel()
	opts := sandbox.DefaultOptions()
	opts.ActionKey = make([]byte, sandbox.ActionKeyBytesMin-1)
	if _, err := sandbox.New(opts); err == nil || !strings.Contains(err.Error(), "action key") {
		t.Fatalf("New with a %d-byte action key: %v", len(opts.ActionKey), err)
	}
}
