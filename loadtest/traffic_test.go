package loadtest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func testEngine(t *testing.T, mix string) *engine {
	t.Helper()
	m, err := ParseMix(mix)
	if err != nil {
		t.Fatal(err)
	}
	return newEngine("http://127.0.0.1:1", []Tenant{{Secret: "sk_a"}, {Secret: "sk_b"}, {Secret: "sk_c"}}, m, "lt-test-")
}

func TestTargetsAndFollowUps(t *testing.T) {
	t.Parallel()
	e := testEngine(t, "manual_capture=1")
	var tg vegeta.Target
	if err := e.target(&tg); err != nil {
		t.Fatal(err)
	}
	if tg.Method != http.MethodPost || !strings.HasPrefix(tg.URL, "http://127.0.0.1:1/v1/payments#m.") || !strings.Contains(string(tg.Body), `"capture_method": "manual"`) {
		t.Fatalf("first target = %s %s %s", tg.Method, tg.URL, tg.Body)
	}
	_, tenant, _ := parseFragment(tg.URL)
	secret := []string{"sk_a", "sk_b", "sk_c"}[tenant]
	if got := tg.Header.Get("Authorization"); got != "Bearer "+secret {
		t.Errorf("Authorization = %q, want the tenant's secret", got)
	}
	if tg.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(tg.Header.Get("Idempotency-Key"), "lt-test-") {
		t.Errorf("headers = %v", tg.Header)
	}
	key1 := tg.Header.Get("Idempotency-Key")

	agg := newStepAgg()
	e.observe(&vegeta.Result{Code: 201, URL: tg.URL, Latency: time.Millisecond,
		Body: []byte(`{"$schema":"http://x/schemas/Payment.json","id":"pay_123","status":"requires_capture","metadata":{"id":"x"}}`)}, agg)
	var next vegeta.Target
	if err := e.target(&next); err != nil {
		t.Fatal(err)
	}
	if next.URL != "http://127.0.0.1:1/v1/payments/pay_123/capture#k."+tg.URL[len(tg.URL)-1:] || next.Header.Get("Authorization") != "Bearer "+secret {
		t.Errorf("follow-up = %s %v, want the capture of pay_123 by the same tenant", next.URL, next.Header)
	}
	if k := next.Header.Get("Idempotency-Key"); k == key1 || k == "" {
		t.Errorf("follow-up key %q is not fresh (first %q)", k, key1)
	}
	if agg.ops[OpCreateManual].ok != 1 || agg.all.requests != 1 || agg.status[201] != 1 {
		t.Errorf("aggregate: %+v", agg.ops[OpCreateManual])
	}

	// A failed creation has nothing to follow.
	e.observe(&vegeta.Result{Code: 500, URL: tg.URL}, agg)
	if len(e.followUps) != 0 {
		t.Error("a 500 queued a follow-up")
	}
}

func TestRefundAndGet(t *testing.T) {
	t.Parallel()
	e := testEngine(t, "refund=1")
	var tg vegeta.Target
	_ = e.target(&tg)
	if !strings.Contains(tg.URL, "/v1/payments#r.") || strings.Contains(string(tg.Body), "manual") {
		t.Fatalf("refund flow starts with %s %s", tg.URL, tg.Body)
	}
	e.observe(&vegeta.Result{Code: 201, URL: tg.URL, Body: []byte(`{"id": "pay_9", "status": "succeeded"}`)}, newStepAgg())
	var rf vegeta.Target
	_ = e.target(&rf)
	if !strings.Contains(rf.URL, "/v1/refunds#f.") || string(rf.Body) != `{"payment": "pay_9", "amount": 500}` || rf.Header.Get("Idempotency-Key") == "" {
		t.Errorf("refund = %s %s", rf.URL, rf.Body)
	}

	g := testEngine(t, "get=1")
	var first vegeta.Target
	_ = g.target(&first)
	if first.Method != http.MethodPost || !strings.Contains(first.URL, "#c.") {
		t.Fatalf("a get before any payment = %s %s, want a create", first.Method, first.URL)
	}
	g.observe(&vegeta.Result{Code: 201, URL: first.URL, Body: []byte(`{"id":"pay_7"}`)}, newStepAgg())
	var get vegeta.Target
	_ = g.target(&get)
	_, tenant, _ := parseFragment(first.URL)
	if get.Method != http.MethodGet || !strings.HasPrefix(get.URL, "http://127.0.0.1:1/v1/payments/pay_7#g.") || len(get.Body) != 0 ||
		get.Header.Get("Authorization") != "Bearer "+[]string{"sk_a", "sk_b", "sk_c"}[tenant] || get.Header.Get("Idempotency-Key") != "" {
		t.Errorf("get = %s %s %v", get.Method, get.URL, get.Header)
	}
}

func TestRoundRobinTenants(t *testing.T) {
	t.Parallel()
	e := testEngine(t, "create=1")
	seen := map[int]int{}
	for range 30 {
		var tg vegeta.Target
		_ = e.target(&tg)
		_, tenant, ok := parseFragment(tg.URL)
		if !ok {
			t.Fatalf("no fragment in %s", tg.URL)
		}
		seen[tenant]++
	}
	if seen[0] != 10 || seen[1] != 10 || seen[2] != 10 {
		t.Errorf("requests by tenant = %v, want 10 each", seen)
	}
}

func TestPaymentIDAndFragments(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"id":"pay_1","object":"payment"}`:                      "pay_1",
		`{"$schema":"x","id" : "pay_2"}`:                         "pay_2",
		`{"object":"payment","next":{"id":"nx_1"},"id":"pay_3"}`: "pay_3",
		`{"error":{"code":"x"}}`:                                 "",
		`not json`:                                               "",
	} {
		if got := paymentID([]byte(body)); got != want {
			t.Errorf("paymentID(%s) = %q, want %q", body, got, want)
		}
	}
	for u, ok := range map[string]bool{"http://h/v1/payments#c.12": true, "http://h/v1/payments": false, "http://h/#c": false, "http://h/#c.x": false} {
		if _, _, got := parseFragment(u); got != ok {
			t.Errorf("parseFragment(%q) ok = %v", u, got)
		}
	}
	if got := errorKind(`Post "http://127.0.0.1:1/v1/payments/pay_1/capture#k.3": dial tcp 127.0.0.1:1: connect: connection refused`); got != "Post: dial tcp 127.0.0.1:1: connect: connection refused" {
		t.Errorf("errorKind = %q", got)
	}
}

func TestClientDialsOnlyTheTarget(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/elsewhere", http.StatusFound)
	}))
	defer redirect.Close()
	base, _ := url.Parse(redirect.URL)
	c := newAttackClient(base, time.Second, 4)
	if _, err := c.Get(other.URL); err == nil || !strings.Contains(err.Error(), "only "+base.Host+" is a target") {
		t.Errorf("request to another port: %v, want refused", err)
	}
	resp, err := c.Get(redirect.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("redirect followed: %d", resp.StatusCode)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the other server got %d requests", n)
	}
}
