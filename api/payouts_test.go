package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor/payout"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

// drivePayouts runs one pass of the payout driver with no waiting age.
func (h *harness) drivePayouts() payments.PayoutDriveStats {
	h.t.Helper()
	st, err := h.payments.DrivePayouts(context.Background(), payments.PayoutDriveOptions{RetryAfter: time.Hour, OverdueAfter: time.Hour})
	if err != nil {
		h.t.Fatalf("drive payouts: %v", err)
	}
	return st
}

func (h *harness) availableUSD(secret string) int64 {
	h.t.Helper()
	b := h.do("GET", "/v1/balance", secret, nil).json(h.t)
	for _, a := range b["available"].([]any) {
		if m := a.(map[string]any); m["currency"] == "usd" {
			return num(m["amount"])
		}
	}
	return 0
}

func TestPayoutsOverHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Payee", nil)
	if r := h.pay(ten.Secret, visa(10_000)); r.Status != http.StatusCreated {
		t.Fatalf("fund: %d %s", r.Status, r.Body)
	}
	balance := h.availableUSD(ten.Secret)

	body := map[string]any{"amount": 2_000, "currency": "usd", "description": "Weekly payout", "metadata": map[string]string{"week": "48"}}
	r := h.do("POST", "/v1/payouts", ten.Secret, body, "Idempotency-Key", "payout-1")
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	po := r.json(t)
	id, _ := po["id"].(string)
	if !strings.HasPrefix(id, "po_") || po["object"] != "payout" || po["status"] != "pending" || num(po["amount"]) != 2_000 || po["destination"] != nil {
		t.Fatalf("payout %v", po)
	}
	again := h.do("POST", "/v1/payouts", ten.Secret, body, "Idempotency-Key", "payout-1")
	if again.Status != http.StatusCreated || again.Header.Get("Idempotent-Replayed") != "true" || string(again.Body) != string(r.Body) {
		t.Fatalf("replay: %d %s %s", again.Status, again.Header.Get("Idempotent-Replayed"), again.Body)
	}
	expectProblem(t, h.do("POST", "/v1/payouts", ten.Secret, with(body, "amount", 2_001), "Idempotency-Key", "payout-1"), http.StatusBadRequest, "idempotency_key_reused")
	if got := h.availableUSD(ten.Secret); got != balance-2_000 {
		t.Fatalf("balance %d after one payout (and a replay), want %d", got, balance-2_000)
	}
	if g := h.do("GET", "/v1/payouts/"+id, ten.Secret, nil); g.Status != http.StatusOK || g.json(t)["id"] != id {
		t.Fatalf("get: %d %s", g.Status, g.Body)
	}
	if evs := h.eventTypes(ten.Secret); count(evs, "payout.created") != 1 {
		t.Fatalf("events %v", evs)
	}

	// Wrong inputs answer 400 with the parameter at fault, and store
	// nothing.
	for _, c := range []struct {
		body  any
		code  string
		param string
	}{
		{with(body, "amount", 0), "parameter_invalid", "amount"},
		{with(body, "amount", -3), "parameter_invalid", "amount"},
		{with(body, "amount", balance), "balance_insufficient", "amount"},
		{with(body, "amount", 100_000_000_000), "amount_too_large", "amount"},
		{with(body, "currency", "US"), "parameter_invalid", "currency"},
		{with(body, "currency", "xyz"), "currency_unsupported", "currency"},
		{with(body, "description", strings.Repeat("d", 1001)), "parameter_invalid", "description"},
		{with(body, "metadata", manyKeys(51)), "parameter_invalid", "metadata"},
		{with(body, "amount_cents", 5), "parameter_unknown", ""},
		{`{"amount": null, "currency": "usd"}`, "parameter_invalid", "amount"},
	} {
		p := expectProblem(t, h.do("POST", "/v1/payouts", ten.Secret, c.body), http.StatusBadRequest, c.code)
		if c.param != "" && p["param"] != c.param {
			t.Errorf("%v: param %v, want %s", c.body, p["param"], c.param)
		}
	}
	if got := h.availableUSD(ten.Secret); got != balance-2_000 {
		t.Fatalf("balance %d after refused payouts, want %d", got, balance-2_000)
	}

	// List with filters and pagination.
	second := h.do("POST", "/v1/payouts", ten.Secret, map[string]any{"amount": 100, "currency": "usd"}).json(t)
	if c := h.do("POST", "/v1/payouts/"+second["id"].(string)+"/cancel", ten.Secret, nil); c.Status != http.StatusOK || c.json(t)["status"] != "canceled" {
		t.Fatalf("cancel: %d %s", c.Status, c.Body)
	}
	expectProblem(t, h.do("POST", "/v1/payouts/"+second["id"].(string)+"/cancel", ten.Secret, nil), http.StatusConflict, payments.CodePayoutInvalidState)
	list := func(q string) []string {
		t.Helper()
		r := h.do("GET", "/v1/payouts"+q, ten.Secret, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list %s: %d %s", q, r.Status, r.Body)
		}
		var out []string
		for _, p := range r.json(t)["data"].([]any) {
			out = append(out, p.(map[string]any)["id"].(string))
		}
		return out
	}
	if got := list("?status=canceled"); fmt.Sprint(got) != fmt.Sprint([]string{second["id"].(string)}) {
		t.Fatalf("canceled: %v", got)
	}
	if got := list("?limit=1"); len(got) != 1 || got[0] != second["id"] {
		t.Fatalf("first page: %v", got)
	}
	if got := list("?limit=1&starting_after=" + second["id"].(string)); fmt.Sprint(got) != fmt.Sprint([]string{id}) {
		t.Fatalf("second page: %v", got)
	}
	if got := list(fmt.Sprintf("?created[gte]=%d", time.Now().Add(time.Hour).Unix())); len(got) != 0 {
		t.Fatalf("future: %v", got)
	}
	expectProblem(t, h.do("GET", "/v1/payouts?status=sent", ten.Secret, nil), http.StatusBadRequest, "parameter_invalid")
	expectProblem(t, h.do("GET", "/v1/payouts?created[gte]=200&created[lte]=100", ten.Secret, nil), http.StatusBadRequest, "parameter_invalid")
	expectProblem(t, h.do("GET", "/v1/payouts?starting_after=pay_nothing", ten.Secret, nil), http.StatusBadRequest, "parameter_invalid")
	expectProblem(t, h.do("GET", "/v1/payouts/po_nothing", ten.Secret, nil), http.StatusNotFound, "resource_missing")
	other := h.createTenant("Other", nil)
	expectProblem(t, h.do("GET", "/v1/payouts/"+id, other.Secret, nil), http.StatusNotFound, "resource_missing")
	expectProblem(t, h.do("POST", "/v1/payouts/"+id+"/cancel", other.Secret, nil), http.StatusNotFound, "resource_missing")

	// The sandbox pays it out; the balance transactions show the movements.
	h.drivePayouts()
	h.drivePayouts()
	if got := h.do("GET", "/v1/payouts/"+id, ten.Secret, nil).json(t); got["status"] != "paid" {
		t.Fatalf("after the driver: %v", got)
	}
	txs := h.do("GET", "/v1/balance_transactions?source="+id, ten.Secret, nil)
	if txs.Status != http.StatusOK {
		t.Fatalf("balance transactions: %d %s", txs.Status, txs.Body)
	}
	var types []string
	for _, x := range txs.json(t)["data"].([]any) {
		m := x.(map[string]any)
		types = append(types, fmt.Sprint(m["type"], " ", num(m["net"])))
		if m["source"] != id {
			t.Fatalf("source %v, want %s", m["source"], id)
		}
	}
	if fmt.Sprint(types) != "[payout_paid 0 payout -2000]" {
		t.Fatalf("balance transactions of the payout: %v", types)
	}
}

func manyKeys(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprint("k", i)] = "v"
	}
	return m
}

func TestPayoutAccountAdmin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Payee", nil)
	path := "/v1/admin/tenants/" + ten.ID + "/payout_account"
	expectProblem(t, h.do("GET", path, adminToken, nil), http.StatusNotFound, "resource_missing")
	for _, bad := range []any{
		map[string]any{"stripe_account": "acct_"},
		map[string]any{"stripe_account": "ba_123456"},
		map[string]any{"stripe_account": "acct_12/34"},
		map[string]any{"stripe_account": "acct_" + strings.Repeat("a", 65)},
		map[string]any{},
	} {
		p := expectProblem(t, h.do("POST", path, adminToken, bad), http.StatusBadRequest, "parameter_invalid")
		if p["param"] != "stripe_account" {
			t.Errorf("%v: param %v", bad, p["param"])
		}
	}
	r := h.do("POST", path, adminToken, map[string]any{"stripe_account": "acct_1Nv0FGQ9RKHgCVdK"})
	if r.Status != http.StatusOK || r.json(t)["stripe_account"] != "acct_1Nv0FGQ9RKHgCVdK" {
		t.Fatalf("set: %d %s", r.Status, r.Body)
	}
	if g := h.do("GET", path, adminToken, nil); g.Status != http.StatusOK || g.json(t)["stripe_account"] != "acct_1Nv0FGQ9RKHgCVdK" {
		t.Fatalf("get: %d %s", g.Status, g.Body)
	}
	expectProblem(t, h.do("GET", path, ten.Secret, nil), http.StatusUnauthorized, "unauthenticated")
	expectProblem(t, h.do("POST", "/v1/admin/tenants/ten_nothing/payout_account", adminToken, map[string]any{"stripe_account": "acct_1"}), http.StatusNotFound, "resource_missing")
}

// TestPayoutAnswersMatchTheSpec validates the payout routes' answers, and
// a payout event's, against the served document.
func TestPayoutAnswersMatchTheSpec(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	c := newContract(t, h)
	ten := h.createTenant("Contract payouts", nil)
	c.send("POST", "/v1/payments", ten.Secret, visa(5_000))
	po := c.send("POST", "/v1/payouts", ten.Secret, map[string]any{"amount": 1_000, "currency": "usd", "metadata": map[string]string{"a": "b"}}).json(t)
	id, _ := po["id"].(string)
	c.send("POST", "/v1/payouts", ten.Secret, map[string]any{"amount": 1_000_000, "currency": "usd"})
	c.send("POST", "/v1/payouts", ten.Secret, map[string]any{"amount": 0, "currency": "usd"})
	c.send("GET", "/v1/payouts/"+id, ten.Secret, nil)
	c.send("GET", "/v1/payouts/po_nothing", ten.Secret, nil)
	c.send("GET", "/v1/payouts?status=pending&limit=5", ten.Secret, nil)
	c.send("GET", "/v1/payouts?status=lost", ten.Secret, nil)
	h.drivePayouts()
	h.drivePayouts()
	c.send("GET", "/v1/payouts/"+id, ten.Secret, nil)
	c.send("POST", "/v1/payouts/"+id+"/cancel", ten.Secret, nil)
	c.send("GET", "/v1/balance_transactions?source="+id, ten.Secret, nil)
	c.send("GET", "/v1/balance_transactions?type=payout", ten.Secret, nil)
	c.send("GET", "/v1/events?type=payout.paid", ten.Secret, nil)
	c.send("GET", "/v1/events?type=payout.created", ten.Secret, nil)
	path := "/v1/admin/tenants/" + ten.ID + "/payout_account"
	c.send("GET", path, adminToken, nil)
	c.send("POST", path, adminToken, map[string]any{"stripe_account": "bad"})
	c.send("POST", path, adminToken, map[string]any{"stripe_account": "acct_1Nv0FGQ9RKHgCVdK"})
	c.send("GET", path, adminToken, nil)
	if c.mismatches > 0 {
		t.Fatalf("%d answers do not match the spec", c.mismatches)
	}
	for _, status := range []int{200, 201, 400, 404, 409} {
		if c.seen[status] == 0 {
			t.Errorf("no payout answer with status %d was checked", status)
		}
	}
}

// connectHarness is the server whose payouts go through Stripe Connect on
// the scripted double.
func newConnectHarness(t *testing.T) (*stripeHarness, *stripe.ConnectPayouts) {
	t.Helper()
	d := stripetest.New(t)
	o := stripe.DefaultOptions()
	o.SecretKey, o.APIBase, o.CallTimeout, o.Metrics = "sk_test_platform_0123456789abcdef", d.URL, 2*time.Second, stripe.NewMetrics(nil)
	cp, err := stripe.NewConnectPayouts(o)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{Stripe: newStripeAdapter(t, d.URL, nil), StripeWebhookSecrets: []string{platformWebhookSecret},
		Payouts: []payout.Processor{cp}})
	return &stripeHarness{harness: h, d: d}, cp
}

// TestStripeConnectPayoutLifecycle: payouts to a connected account through
// a Transfer and a Payout on it, paid and failed by signed webhooks,
// delivered twice and out of order.
func TestStripeConnectPayoutLifecycle(t *testing.T) {
	t.Parallel()
	h, cp := newConnectHarness(t)
	ten := h.createTenant("Connected", nil)
	const acct = "acct_1Nv0FGQ9RKHgCVdK"
	if r := h.pay(ten.Secret, visa(20_000)); r.Status != http.StatusCreated {
		t.Fatalf("fund: %d %s", r.Status, r.Body)
	}
	balance := h.availableUSD(ten.Secret)
	expectProblem(t, h.do("POST", "/v1/payouts", ten.Secret, map[string]any{"amount": 1_000, "currency": "usd"}), http.StatusConflict, payments.CodePayoutDestinationMissing)
	if r := h.do("POST", "/v1/admin/tenants/"+ten.ID+"/payout_account", adminToken, map[string]any{"stripe_account": acct}); r.Status != http.StatusOK {
		t.Fatalf("set account: %d %s", r.Status, r.Body)
	}
	webhook := func(typ, stripeID string) response {
		t.Helper()
		return h.webhook("/v1/stripe/webhooks", h.d.Event(typ, stripeID), platformWebhookSecret, time.Now())
	}

	paid := h.do("POST", "/v1/payouts", ten.Secret, map[string]any{"amount": 5_000, "currency": "usd"}).json(t)
	paidID := paid["id"].(string)
	if paid["destination"] != acct || paid["status"] != "pending" {
		t.Fatalf("payout %v", paid)
	}
	if st := h.drivePayouts(); st.Sent != 1 {
		t.Fatalf("driver %+v", st)
	}
	if got := h.do("GET", "/v1/payouts/"+paidID, ten.Secret, nil).json(t); got["status"] != "in_transit" {
		t.Fatalf("after the send: %v", got)
	}
	stripePayout, onAcct := h.d.PayoutFor(paidID)
	if n, _ := h.d.TransfersFor(paidID); n != 1 || onAcct != acct || h.d.PayoutsFor(paidID) != 1 {
		t.Fatalf("%d transfers, payout %s on %q", n, stripePayout, onAcct)
	}
	// Stripe notifies; the driver does not ask while the notification is
	// not overdue.
	if st := h.drivePayouts(); st.Retrieved != 0 {
		t.Fatalf("retrieved a payout whose notification is not overdue: %+v", st)
	}
	h.d.FinishPayout(stripePayout, "paid")
	events := h.processorEvents(ten.ID)
	if r := webhook(stripe.EventPayoutPaid, stripePayout); r.Status != http.StatusOK {
		t.Fatalf("payout.paid: %d %s", r.Status, r.Body)
	}
	ev := h.d.Event(stripe.EventPayoutPaid, stripePayout)
	for range 2 { // the same event twice
		if r := h.webhook("/v1/stripe/webhooks", ev, platformWebhookSecret, time.Now()); r.Status != http.StatusOK {
			t.Fatalf("duplicate: %d %s", r.Status, r.Body)
		}
	}
	// An older event after the newer one (the payout.updated of its
	// in_transit moment) moves nothing.
	older := strings.Replace(string(h.d.Event(stripe.EventPayoutUpdated, stripePayout)), `"status":"paid"`, `"status":"in_transit"`, 1)
	if !strings.Contains(older, `"status":"in_transit"`) {
		t.Fatalf("could not age the event: %s", older)
	}
	if r := h.webhook("/v1/stripe/webhooks", []byte(older), platformWebhookSecret, time.Now()); r.Status != http.StatusOK {
		t.Fatalf("late update: %d %s", r.Status, r.Body)
	}
	got := h.do("GET", "/v1/payouts/"+paidID, ten.Secret, nil).json(t)
	// Versions: created, send claimed, in transit, paid.
	if got["status"] != "paid" || num(got["version"]) != 4 {
		t.Fatalf("after the webhooks: %v", got)
	}
	if n := h.processorEvents(ten.ID) - events; n != 3 {
		t.Fatalf("%d processor events recorded, want 3 distinct ones", n)
	}
	if evs := h.eventTypes(ten.Secret); count(evs, "payout.paid") != 1 {
		t.Fatalf("events %v", evs)
	}

	// A failed payout returns its amount; its event arrives first as a
	// forgery from another connected account, which changes nothing.
	failed := h.do("POST", "/v1/payouts", ten.Secret, map[string]any{"amount": 3_000, "currency": "usd"}).json(t)
	failedID := failed["id"].(string)
	// The notification outruns the record of the send: 503, Stripe
	// delivers again.
	req := payout.Request{TenantID: ten.ID, PayoutID: failedID, Amount: 3_000, Currency: "usd", Destination: acct, IdempotencyKey: failedID}
	early, err := cp.Send(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	h.d.FinishPayout(early.Ref, "failed")
	expectProblem(t, webhook(stripe.EventPayoutFailed, early.Ref), http.StatusServiceUnavailable, payments.CodeUpdateDeferred)
	h.drivePayouts() // its send replays the same Transfer and Payout
	if n, _ := h.d.TransfersFor(failedID); n != 1 || h.d.PayoutsFor(failedID) != 1 {
		t.Fatalf("%d transfers and %d payouts for one payout", n, h.d.PayoutsFor(failedID))
	}
	forged := strings.Replace(string(h.d.Event(stripe.EventPayoutFailed, early.Ref)), `"account":"`+acct+`"`, `"account":"acct_someoneelse"`, 1)
	if r := h.webhook("/v1/stripe/webhooks", []byte(forged), platformWebhookSecret, time.Now()); r.Status != http.StatusOK {
		t.Fatalf("foreign account: %d %s", r.Status, r.Body)
	}
	if got := h.do("GET", "/v1/payouts/"+failedID, ten.Secret, nil).json(t); got["status"] != "in_transit" {
		t.Fatalf("after the foreign event: %v", got)
	}
	if r := webhook(stripe.EventPayoutFailed, early.Ref); r.Status != http.StatusOK {
		t.Fatalf("payout.failed: %d %s", r.Status, r.Body)
	}
	got = h.do("GET", "/v1/payouts/"+failedID, ten.Secret, nil).json(t)
	if got["status"] != "failed" || got["failure_code"] != "account_closed" {
		t.Fatalf("failed payout %v", got)
	}
	// The failed Payout left the funds on the connected account: its
	// Transfer was reversed before the failure was booked.
	if n, rev := h.d.TransfersFor(failedID); n != 1 || rev != 3_000 {
		t.Fatalf("%d transfers, %d reversed; want the whole transfer back on the platform", n, rev)
	}
	if _, rev := h.d.TransfersFor(paidID); rev != 0 {
		t.Fatalf("the paid payout's transfer was reversed (%d)", rev)
	}
	if bal := h.availableUSD(ten.Secret); bal != balance-5_000 {
		t.Fatalf("balance %d, want %d: only the paid payout left it", bal, balance-5_000)
	}
	if evs := h.eventTypes(ten.Secret); count(evs, "payout.failed") != 1 {
		t.Fatalf("events %v", evs)
	}
	// A bad signature changes nothing.
	expectProblem(t, h.webhook("/v1/stripe/webhooks", ev, "whsec_wrong_0123456789abcdef", time.Now()), http.StatusBadRequest, "stripe_signature_invalid")
}

// TestStripeConnectPayoutOverdue: when Stripe's webhook does not come, the
// driver retrieves the payout once its notification is overdue, and a
// failure found that way also brings the funds back first.
func TestStripeConnectPayoutOverdue(t *testing.T) {
	t.Parallel()
	h, _ := newConnectHarness(t)
	ten := h.createTenant("Connected, quiet webhooks", nil)
	const acct = "acct_quiet000000000"
	if r := h.pay(ten.Secret, visa(20_000)); r.Status != http.StatusCreated {
		t.Fatalf("fund: %d %s", r.Status, r.Body)
	}
	balance := h.availableUSD(ten.Secret)
	if r := h.do("POST", "/v1/admin/tenants/"+ten.ID+"/payout_account", adminToken, map[string]any{"stripe_account": acct}); r.Status != http.StatusOK {
		t.Fatalf("set account: %d %s", r.Status, r.Body)
	}
	paidID := h.do("POST", "/v1/payouts", ten.Secret, map[string]any{"amount": 1_000, "currency": "usd"}).json(t)["id"].(string)
	failedID := h.do("POST", "/v1/payouts", ten.Secret, map[string]any{"amount": 2_000, "currency": "usd"}).json(t)["id"].(string)
	h.drivePayouts()
	for id, status := range map[string]string{paidID: "paid", failedID: "failed"} {
		sp, _ := h.d.PayoutFor(id)
		h.d.FinishPayout(sp, status)
	}
	overdue := payments.PayoutDriveOptions{RetryAfter: time.Hour}
	st, err := h.payments.DrivePayouts(context.Background(), overdue)
	if err != nil || st.Retrieved != 2 || st.Errors != 0 {
		t.Fatalf("overdue pass %+v %v", st, err)
	}
	for id, status := range map[string]string{paidID: "paid", failedID: "failed"} {
		if got := h.do("GET", "/v1/payouts/"+id, ten.Secret, nil).json(t); got["status"] != status {
			t.Fatalf("%s: %v, want %s", id, got, status)
		}
	}
	if _, rev := h.d.TransfersFor(failedID); rev != 2_000 {
		t.Fatalf("the failed payout's transfer reversed by %d, want 2000", rev)
	}
	if bal := h.availableUSD(ten.Secret); bal != balance-1_000 {
		t.Fatalf("balance %d, want %d", bal, balance-1_000)
	}
}
