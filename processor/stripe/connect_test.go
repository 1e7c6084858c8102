package stripe_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/payout"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

// seen is one request that reached stripe-mock through the recording
// proxy.
type seen struct {
	method, path, account, key string
	form                       url.Values
}

// recordingProxy forwards to stripe-mock and records each request; with
// refusePayouts it answers POST /v1/payouts itself with Stripe's refusal.
type recordingProxy struct {
	mu            sync.Mutex
	reqs          []seen
	refusePayouts bool
}

func newRecordingProxy(tb testing.TB, target string) (*recordingProxy, string) {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	rp := &recordingProxy{}
	fwd := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		form := r.PostForm
		rp.mu.Lock()
		rp.reqs = append(rp.reqs, seen{r.Method, r.URL.Path, r.Header.Get("Stripe-Account"), r.Header.Get("Idempotency-Key"), form})
		refuse := rp.refusePayouts && r.Method == http.MethodPost && r.URL.Path == "/v1/payouts"
		rp.mu.Unlock()
		if refuse {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"no_external_account","message":"Sorry, you don't have any external accounts in that currency (usd)."}}`))
			return
		}
		// The form was consumed: send it again.
		r.Body = io.NopCloser(strings.NewReader(form.Encode()))
		r.ContentLength = int64(len(form.Encode()))
		fwd.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	return rp, srv.URL
}

func (rp *recordingProxy) all() []seen {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return append([]seen(nil), rp.reqs...)
}

func connectPayouts(tb testing.TB, base string, timeout time.Duration) *stripe.ConnectPayouts {
	tb.Helper()
	o := stripe.DefaultOptions()
	o.SecretKey, o.APIBase, o.NetworkRetries, o.CallTimeout = "sk_test_123456789012345678901234", base, 0, timeout
	c, err := stripe.NewConnectPayouts(o)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

var connectReq = payout.Request{
	TenantID: "ten_06f0kb9t5q3e3bq4b7bw0vq2rc", PayoutID: "po_06h17frpsdzff29kp8gyg5mc4w", Amount: 5000, Currency: "usd",
	Destination: "acct_1Nv0FGQ9RKHgCVdK", Description: "Weekly payout", IdempotencyKey: "po_06h17frpsdzff29kp8gyg5mc4w",
}

// TestConnectPayoutCallsAgainstStripeMock sends every request of the
// Connect payout adapter to stripe-mock (through a proxy that records
// them), which checks each against Stripe's OpenAPI specification.
func TestConnectPayoutCallsAgainstStripeMock(t *testing.T) {
	t.Parallel()
	rp, base := newRecordingProxy(t, stripetest.MockURL(t))
	c := connectPayouts(t, base, 5*time.Second)
	ctx := context.Background()
	res, err := c.Send(ctx, connectReq)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if !strings.HasPrefix(res.Ref, "po_") || !strings.HasPrefix(res.TransferRef, "tr_") || !res.Status.Valid() {
		t.Fatalf("send answered %+v", res)
	}
	req := connectReq
	req.Ref, req.TransferRef = res.Ref, res.TransferRef
	if _, err := c.Retrieve(ctx, req); err != nil {
		t.Fatalf("retrieve: %v", err)
	}
	got := rp.all()
	if len(got) != 3 {
		t.Fatalf("%d requests, want transfer, payout, retrieve: %+v", len(got), got)
	}
	tr, po, get := got[0], got[1], got[2]
	if tr.path != "/v1/transfers" || tr.account != "" || tr.key != connectReq.PayoutID+":transfer" ||
		tr.form.Get("destination") != connectReq.Destination || tr.form.Get("amount") != "5000" ||
		tr.form.Get("metadata[payout_id]") != connectReq.PayoutID || tr.form.Get("transfer_group") != connectReq.PayoutID {
		t.Fatalf("transfer request %+v", tr)
	}
	if po.path != "/v1/payouts" || po.account != connectReq.Destination || po.key != connectReq.PayoutID+":payout" ||
		po.form.Get("amount") != "5000" || po.form.Get("metadata[tenant_id]") != connectReq.TenantID {
		t.Fatalf("payout request %+v", po)
	}
	if get.method != http.MethodGet || get.path != "/v1/payouts/"+res.Ref || get.account != connectReq.Destination {
		t.Fatalf("retrieve request %+v", get)
	}

	// A refused Payout reverses its Transfer (checked by stripe-mock too)
	// and answers a failed payout.
	rp.mu.Lock()
	rp.refusePayouts = true
	rp.mu.Unlock()
	res, err = c.Send(ctx, connectReq)
	if err != nil {
		t.Fatalf("send refused: %v", err)
	}
	if res.Status != payout.StatusFailed || res.FailureCode != "no_external_account" {
		t.Fatalf("refused send answered %+v", res)
	}
	got = rp.all()[3:]
	if len(got) != 3 || got[2].path != "/v1/transfers/"+res.TransferRef+"/reversals" || got[2].key != connectReq.PayoutID+":transfer_reversal" {
		t.Fatalf("requests after the refusal %+v", got)
	}

	// Requests that cannot be right are refused before anything is sent.
	n := len(rp.all())
	bad := connectReq
	bad.Destination = "acct_x/../../v1/charges"
	if _, err := c.Send(ctx, bad); !errcode.Is(err, payout.CodeDestinationMissing) {
		t.Fatalf("send to %q: %v", bad.Destination, err)
	}
	bad = connectReq
	bad.IdempotencyKey = ""
	if _, err := c.Send(ctx, bad); err == nil {
		t.Fatal("send without an idempotency key went out")
	}
	if len(rp.all()) != n {
		t.Fatalf("refused requests reached Stripe: %+v", rp.all()[n:])
	}
}

// TestConnectPayoutFlowsAgainstDouble runs the adapter against the
// scripted double: a Payout whose answer is lost after it took effect (an
// answer slower than the call's timeout) is repeated with the same keys
// and moves the money once.
func TestConnectPayoutFlowsAgainstDouble(t *testing.T) {
	t.Parallel()
	d := stripetest.New(t)
	c := connectPayouts(t, d.URL, 300*time.Millisecond)
	ctx := context.Background()
	d.Script(stripetest.OpPayout, stripetest.Fault{Kind: stripetest.FaultSlow, Delay: 2 * time.Second})
	if _, err := c.Send(ctx, connectReq); !errors.Is(err, processor.ErrUnavailable) {
		t.Fatalf("send with the answer lost: %v, want unavailable", err)
	}
	res, err := c.Send(ctx, connectReq)
	if err != nil {
		t.Fatalf("repeated send: %v", err)
	}
	if n, rev := d.TransfersFor(connectReq.PayoutID); n != 1 || rev != 0 || d.PayoutsFor(connectReq.PayoutID) != 1 {
		t.Fatalf("%d transfers (%d reversed), %d payouts; want one each", n, rev, d.PayoutsFor(connectReq.PayoutID))
	}
	if res.Status != payout.StatusPending && res.Status != payout.StatusInTransit {
		t.Fatalf("status %s", res.Status)
	}
	id, acct := d.PayoutFor(connectReq.PayoutID)
	if id != res.Ref || acct != connectReq.Destination {
		t.Fatalf("payout %s on %s, answered %s", id, acct, res.Ref)
	}
	d.FinishPayout(id, "failed")
	req := connectReq
	req.Ref = res.Ref
	got, err := c.Retrieve(ctx, req)
	if err != nil || got.Status != payout.StatusFailed || got.FailureCode != "account_closed" {
		t.Fatalf("retrieve %+v %v", got, err)
	}
	// Another account cannot read it.
	req.Destination = "acct_other000000"
	if _, err := c.Retrieve(ctx, req); !errcode.Is(err, errcode.CodeResourceMissing) {
		t.Fatalf("retrieve from another account: %v", err)
	}

	// An account without a bank: the payout is refused and the transfer
	// reversed, so the platform holds the funds again.
	other := connectReq
	other.PayoutID, other.IdempotencyKey, other.Destination = "po_06h17frpsdzff29kp8gyg5mc4x", "po_06h17frpsdzff29kp8gyg5mc4x", "acct_nobank0000000"
	d.SetNoBankAccount(other.Destination)
	res, err = c.Send(ctx, other)
	if err != nil || res.Status != payout.StatusFailed || res.FailureCode != "no_external_account" {
		t.Fatalf("send to an account without a bank: %+v %v", res, err)
	}
	if n, rev := d.TransfersFor(other.PayoutID); n != 1 || rev != other.Amount {
		t.Fatalf("%d transfers, %d reversed; want one, all reversed", n, rev)
	}
}

// TestParsePayoutWebhook decodes payout events of a connected account.
func TestParsePayoutWebhook(t *testing.T) {
	t.Parallel()
	d := stripetest.New(t)
	c := connectPayouts(t, d.URL, 5*time.Second)
	res, err := c.Send(context.Background(), connectReq)
	if err != nil {
		t.Fatal(err)
	}
	d.FinishPayout(res.Ref, "paid")
	const secret = "whsec_test_0123456789abcdef"
	payload := d.Event(stripe.EventPayoutPaid, res.Ref)
	header := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: time.Now()}).Header
	n, err := stripe.ParseWebhook(payload, header, []string{secret})
	if err != nil {
		t.Fatal(err)
	}
	u := n.PayoutUpdate
	if u == nil || u.PayoutID != connectReq.PayoutID || u.TenantID != connectReq.TenantID || u.Destination != connectReq.Destination ||
		u.Processor != stripe.Name || u.Result.Status != payout.StatusPaid || u.Result.Ref != res.Ref || u.EventID == "" {
		t.Fatalf("update %+v", u)
	}
	// A tampered payload is refused.
	if _, err := stripe.ParseWebhook(append(payload[:len(payload)-1:len(payload)-1], ' ', '}'), header, []string{secret}); !errors.Is(err, stripe.ErrSignature) {
		t.Fatalf("tampered: %v", err)
	}
}
