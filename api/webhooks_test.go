package api_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/webhooks"
)

// verifySignature is the receiver's own check, written from docs/API.md
// alone and sharing no code with the webhooks package: parse
// "t=...,v1=...[,v1=...]", refuse a timestamp more than five minutes away,
// and accept when any v1 equals the HMAC-SHA256 of "<t>.<body>" under any
// of the secrets the receiver holds.
func verifySignature(header string, body []byte, secrets []string, now time.Time) bool {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(t, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return false
	}
	for _, s := range secrets {
		mac := hmac.New(sha256.New, []byte(s))
		mac.Write([]byte(ts + "."))
		mac.Write(body)
		want := []byte(hex.EncodeToString(mac.Sum(nil)))
		for _, sig := range sigs {
			if hmac.Equal([]byte(sig), want) {
				return true
			}
		}
	}
	return false
}

// received is one request a test receiver got.
type received struct {
	EventID   string
	Signature string
	Body      []byte
	Verified  bool
}

// receiver is a real HTTP server on loopback that verifies signatures with
// the secrets it is given and answers what answer says.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	secrets []string
	got     []received
	// answer picks the status and body for the n-th request (from 1) of an
	// event; nil answers 200 "ok" to verified requests, 400 otherwise.
	answer func(n int, r received) (int, string)
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		got := received{EventID: r.Header.Get("Payments-Event-Id"), Signature: r.Header.Get("Payments-Signature"), Body: body}
		got.Verified = r.Method == http.MethodPost && verifySignature(got.Signature, body, rc.secrets, time.Now())
		n := 1
		for _, g := range rc.got {
			if g.EventID == got.EventID {
				n++
			}
		}
		rc.got = append(rc.got, got)
		answer := rc.answer
		rc.mu.Unlock()
		status, text := http.StatusOK, "ok"
		if answer != nil {
			status, text = answer(n, got)
		} else if !got.Verified {
			status, text = http.StatusBadRequest, "bad signature"
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setSecrets(s ...string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secrets = s
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startWebhookWorker runs a worker on the harness's shards with a short
// schedule until the test ends.
func startWebhookWorker(t *testing.T, h *harness, s webhooks.Schedule) {
	t.Helper()
	w, err := webhooks.NewWorker(webhooks.WorkerOptions{
		Shards: h.shards, Guard: &webhooks.Guard{AllowPrivateNetworks: true}, Schedule: s,
		Timeout: 2 * time.Second, Lease: 10 * time.Second, Concurrency: 4, PollInterval: 10 * time.Millisecond,
		Box: h.box, Metrics: webhooks.NewMetrics(h.registry), Logger: h.log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func shortSchedule() webhooks.Schedule {
	return webhooks.Schedule{AttemptsMax: 10, DelayBase: 20 * time.Millisecond, Span: time.Minute}
}

func (h *harness) createEndpoint(secret, url string, events ...string) map[string]any {
	h.t.Helper()
	r := h.do("POST", "/v1/webhook_endpoints", secret, map[string]any{"url": url, "enabled_events": events, "description": "test receiver"})
	if r.Status != http.StatusCreated {
		h.t.Fatalf("create endpoint: %d %s", r.Status, r.Body)
	}
	return r.json(h.t)
}

func (h *harness) deliveries(secret, endpoint string) []any {
	h.t.Helper()
	r := h.do("GET", "/v1/webhook_endpoints/"+endpoint+"/deliveries?limit=100", secret, nil)
	if r.Status != http.StatusOK {
		h.t.Fatalf("list deliveries: %d %s", r.Status, r.Body)
	}
	return r.json(h.t)["data"].([]any)
}

func TestWebhookEndpointsLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{WebhookAllowPrivate: true})
	ten := h.createTenant("Acme", nil)
	other := h.createTenant("Other", nil)

	created := h.do("POST", "/v1/webhook_endpoints", ten.Secret,
		map[string]any{"url": "http://127.0.0.1:9/hooks", "enabled_events": []string{"payment.succeeded"}, "description": "orders"},
		"Idempotency-Key", "ep-1")
	if created.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.Status, created.Body)
	}
	ep := created.json(t)
	id, secret := ep["id"].(string), ep["secret"].(string)
	if !strings.HasPrefix(id, "we_") || !strings.HasPrefix(secret, "whsec_") || len(secret) < len("whsec_")+32 || ep["status"] != "enabled" {
		t.Fatalf("created %s", created.Body)
	}
	// The same key replays the same answer, secret included; no second endpoint.
	replay := h.do("POST", "/v1/webhook_endpoints", ten.Secret,
		map[string]any{"url": "http://127.0.0.1:9/hooks", "enabled_events": []string{"payment.succeeded"}, "description": "orders"},
		"Idempotency-Key", "ep-1")
	if replay.Status != http.StatusCreated || string(replay.Body) != string(created.Body) || replay.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", replay.Status, replay.Body)
	}

	got := h.do("GET", "/v1/webhook_endpoints/"+id, ten.Secret, nil)
	if got.Status != http.StatusOK || strings.Contains(string(got.Body), "whsec_") {
		t.Fatalf("get shows the secret or fails: %d %s", got.Status, got.Body)
	}
	list := h.do("GET", "/v1/webhook_endpoints", ten.Secret, nil).json(t)
	if data := list["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != id || list["has_more"] != false {
		t.Fatalf("list %v", list)
	}
	expectProblem(t, h.do("GET", "/v1/webhook_endpoints/"+id, other.Secret, nil), http.StatusNotFound, "resource_missing")
	expectProblem(t, h.do("POST", "/v1/webhook_endpoints/"+id+"/rotate_secret", other.Secret, nil), http.StatusNotFound, "resource_missing")
	expectProblem(t, h.do("DELETE", "/v1/webhook_endpoints/"+id, other.Secret, nil), http.StatusNotFound, "resource_missing")
	if l := h.do("GET", "/v1/webhook_endpoints", other.Secret, nil).json(t)["data"].([]any); len(l) != 0 {
		t.Fatalf("other tenant lists %v", l)
	}

	up := h.do("POST", "/v1/webhook_endpoints/"+id, ten.Secret, map[string]any{"enabled_events": []string{"*"}, "disabled": true})
	if up.Status != http.StatusOK {
		t.Fatalf("update: %d %s", up.Status, up.Body)
	}
	if u := up.json(t); u["status"] != "disabled" || u["disabled_reason"] != "requested" || u["enabled_events"].([]any)[0] != "*" || u["url"] != "http://127.0.0.1:9/hooks" {
		t.Fatalf("updated %v", u)
	}
	if u := h.do("POST", "/v1/webhook_endpoints/"+id, ten.Secret, map[string]any{"disabled": false}).json(t); u["status"] != "enabled" || u["disabled_reason"] != nil {
		t.Fatalf("enabled again %v", u)
	}
	expectProblem(t, h.do("POST", "/v1/webhook_endpoints/"+id, ten.Secret, map[string]any{"enabled_events": []string{"payment.exploded"}}), http.StatusBadRequest, "parameter_invalid")
	expectProblem(t, h.do("POST", "/v1/webhook_endpoints/"+id, ten.Secret, map[string]any{"enabled_events": []string{"*", "payment.succeeded"}}), http.StatusBadRequest, "parameter_invalid")

	rot := h.do("POST", "/v1/webhook_endpoints/"+id+"/rotate_secret", ten.Secret, nil)
	if rot.Status != http.StatusOK {
		t.Fatalf("rotate: %d %s", rot.Status, rot.Body)
	}
	if s2 := rot.json(t)["secret"].(string); !strings.HasPrefix(s2, "whsec_") || s2 == secret {
		t.Fatalf("rotated secret %q (old %q)", s2, secret)
	}

	del := h.do("DELETE", "/v1/webhook_endpoints/"+id, ten.Secret, nil)
	if del.Status != http.StatusOK || del.json(t)["deleted"] != true {
		t.Fatalf("delete: %d %s", del.Status, del.Body)
	}
	expectProblem(t, h.do("GET", "/v1/webhook_endpoints/"+id, ten.Secret, nil), http.StatusNotFound, "resource_missing")
	expectProblem(t, h.do("DELETE", "/v1/webhook_endpoints/"+id, ten.Secret, nil), http.StatusNotFound, "resource_missing")
	expectProblem(t, h.do("GET", "/v1/webhook_endpoints/we_nope", ten.Secret, nil), http.StatusNotFound, "resource_missing")

	for i := range webhooks.EndpointsPerTenantMax {
		h.createEndpoint(ten.Secret, "http://127.0.0.1:9/"+strconv.Itoa(i), "*")
	}
	expectProblem(t, h.do("POST", "/v1/webhook_endpoints", ten.Secret, map[string]any{"url": "http://127.0.0.1:9/x", "enabled_events": []string{"*"}}),
		http.StatusBadRequest, webhooks.CodeEndpointLimit)
}

// TestWebhookSignaturesVerifyAcrossRotation: a receiver with its own small
// verifier accepts every delivery, before, during and after a secret
// rotation, the body is exactly GET /v1/events/{id}, and a body changed by
// one byte no longer verifies.
func TestWebhookSignaturesVerifyAcrossRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{WebhookAllowPrivate: true})
	startWebhookWorker(t, h, shortSchedule())
	ten := h.createTenant("Acme", nil)
	rc := newReceiver(t)
	ep := h.createEndpoint(ten.Secret, rc.srv.URL+"/hooks", "*")
	oldSecret := ep["secret"].(string)
	rc.setSecrets(oldSecret)

	waitDelivered := func(n int) {
		t.Helper()
		waitFor(t, strconv.Itoa(n)+" deliveries", func() bool { return len(rc.requests()) >= n })
	}
	if r := h.pay(ten.Secret, visa(1000)); r.Status != http.StatusCreated {
		t.Fatalf("pay: %d %s", r.Status, r.Body)
	}
	waitDelivered(2) // payment.created, payment.succeeded
	first := rc.requests()[0]
	ev := h.do("GET", "/v1/events/"+first.EventID, ten.Secret, nil)
	if ev.Status != http.StatusOK || string(ev.Body) != string(first.Body) {
		t.Fatalf("delivered body differs from GET /v1/events/%s:\n%s\n%s", first.EventID, first.Body, ev.Body)
	}

	rot := h.do("POST", "/v1/webhook_endpoints/"+ep["id"].(string)+"/rotate_secret", ten.Secret, nil).json(t)
	newSecret := rot["secret"].(string)
	// The receiver still knows only the old secret: the old v1 still signs.
	h.pay(ten.Secret, visa(1100))
	waitDelivered(4)
	for _, r := range rc.requests()[2:4] {
		if strings.Count(r.Signature, "v1=") != 2 {
			t.Fatalf("during a rotation the header carries two v1 values: %s", r.Signature)
		}
	}
	// The receiver switches to the new secret.
	rc.setSecrets(newSecret)
	h.pay(ten.Secret, visa(1200))
	waitDelivered(6)

	all := rc.requests()
	for i, r := range all {
		if !r.Verified {
			t.Fatalf("delivery %d (%s) did not verify: %s", i, r.EventID, r.Signature)
		}
	}
	last := all[len(all)-1]
	if !verifySignature(last.Signature, last.Body, []string{newSecret}, time.Now()) {
		t.Fatal("the verifier refuses an untouched delivery")
	}
	tampered := append([]byte(nil), last.Body...)
	tampered[len(tampered)/2] ^= 0x01
	if verifySignature(last.Signature, tampered, []string{newSecret, oldSecret}, time.Now()) {
		t.Fatal("a body changed by one byte verified")
	}
	var evBody struct {
		ID       string
		Sequence int
		Data     struct{ Object struct{ Version int } }
	}
	if err := json.Unmarshal(last.Body, &evBody); err != nil || evBody.ID != last.EventID || evBody.Sequence != evBody.Data.Object.Version || evBody.Sequence < 1 {
		t.Fatalf("event body %s (%v)", last.Body, err)
	}
	waitFor(t, "deliveries recorded as succeeded", func() bool {
		ds := h.deliveries(ten.Secret, ep["id"].(string))
		for _, d := range ds {
			if d.(map[string]any)["status"] != "succeeded" {
				return false
			}
		}
		return len(ds) == 6
	})
}

// TestWebhookRetriesUntilFourthAttempt: a receiver that fails its first
// three attempts gets the event on the fourth, and the merchant sees the
// four attempts.
func TestWebhookRetriesUntilFourthAttempt(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{WebhookAllowPrivate: true})
	startWebhookWorker(t, h, shortSchedule())
	ten := h.createTenant("Acme", nil)
	rc := newReceiver(t)
	rc.answer = func(n int, r received) (int, string) {
		if n <= 3 {
			return http.StatusInternalServerError, "boom " + strconv.Itoa(n)
		}
		return http.StatusOK, "ok on " + strconv.Itoa(n)
	}
	ep := h.createEndpoint(ten.Secret, rc.srv.URL+"/hooks", "payment.succeeded")
	epID := ep["id"].(string)
	h.pay(ten.Secret, visa(2500))

	var d map[string]any
	waitFor(t, "the delivery to succeed", func() bool {
		ds := h.deliveries(ten.Secret, epID)
		if len(ds) != 1 {
			return false
		}
		d = ds[0].(map[string]any)
		return d["status"] == "succeeded"
	})
	if got := rc.requests(); len(got) != 4 {
		t.Fatalf("the receiver got %d requests, want 4", len(got))
	}
	if num(d["attempt_count"]) != 4 || num(d["last_status_code"]) != 200 || d["event_type"] != "payment.succeeded" || d["next_attempt"] != nil || d["completed"] == nil {
		t.Fatalf("delivery %v", d)
	}
	attempts := d["attempts"].([]any)
	if len(attempts) != 4 {
		t.Fatalf("%d attempts listed, want 4: %v", len(attempts), attempts)
	}
	wantBodies := []string{"ok on 4", "boom 3", "boom 2", "boom 1"} // newest first
	for i, a := range attempts {
		a := a.(map[string]any)
		wantCode := int64(500)
		if i == 0 {
			wantCode = 200
		}
		if num(a["status_code"]) != wantCode || a["response_body"] != wantBodies[i] || a["attempted"] == nil || num(a["latency_ms"]) < 0 {
			t.Fatalf("attempt %d: %v", i, a)
		}
		if (i == 0) != (a["error"] == nil) {
			t.Fatalf("attempt %d error %v", i, a["error"])
		}
	}

	metrics := string(h.do("GET", "/metrics", "", nil).Body)
	for _, want := range []string{
		`payments_webhook_deliveries_total{outcome="retry"} 3`, `payments_webhook_deliveries_total{outcome="succeeded"} 1`,
		"payments_webhook_attempts_per_delivery_sum 4", "payments_webhook_attempts_per_delivery_count 1",
		`payments_webhook_oldest_undelivered_event_age_seconds{shard="s0"}`, "payments_webhook_stale_lease_discards_total 0",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Redelivery sends it once more, with a fresh cycle.
	r := h.do("POST", "/v1/events/"+d["event"].(string)+"/redeliver", ten.Secret, map[string]any{"endpoint": epID})
	if r.Status != http.StatusAccepted {
		t.Fatalf("redeliver: %d %s", r.Status, r.Body)
	}
	waitFor(t, "the redelivery", func() bool { return len(rc.requests()) == 5 })
	expectProblem(t, h.do("POST", "/v1/events/"+d["event"].(string)+"/redeliver", ten.Secret, map[string]any{"endpoint": "we_nope"}), http.StatusNotFound, "resource_missing")
	other := h.createTenant("Other", nil)
	expectProblem(t, h.do("POST", "/v1/events/"+d["event"].(string)+"/redeliver", other.Secret, nil), http.StatusNotFound, "resource_missing")
	expectProblem(t, h.do("GET", "/v1/webhook_endpoints/"+epID+"/deliveries", other.Secret, nil), http.StatusNotFound, "resource_missing")
}

// TestWebhookURLsAreCheckedAtRegistration: with private networks not
// allowed (the default), every SSRF spelling is refused before anything is
// stored.
func TestWebhookURLsAreCheckedAtRegistration(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	for url, code := range map[string]string{
		"http://203.0.113.10/hooks":             webhooks.CodeURLInvalid, // http
		"https://user:pw@example.com/hooks":     webhooks.CodeURLInvalid,
		"ftp://example.com/hooks":               webhooks.CodeURLInvalid,
		"https://127.0.0.1/hooks":               webhooks.CodeURLNotAllowed,
		"https://localhost/hooks":               webhooks.CodeURLNotAllowed,
		"https://10.1.2.3/hooks":                webhooks.CodeURLNotAllowed,
		"https://172.16.0.1/hooks":              webhooks.CodeURLNotAllowed,
		"https://192.168.1.1/hooks":             webhooks.CodeURLNotAllowed,
		"https://100.64.0.1/hooks":              webhooks.CodeURLNotAllowed,
		"https://169.254.169.254/latest":        webhooks.CodeURLNotAllowed,
		"https://224.0.0.1/hooks":               webhooks.CodeURLNotAllowed,
		"https://0.0.0.0/hooks":                 webhooks.CodeURLNotAllowed,
		"https://[::1]/hooks":                   webhooks.CodeURLNotAllowed,
		"https://[::]/hooks":                    webhooks.CodeURLNotAllowed,
		"https://[fe80::1]/hooks":               webhooks.CodeURLNotAllowed,
		"https://[fd00::1]/hooks":               webhooks.CodeURLNotAllowed,
		"https://[::ffff:127.0.0.1]/hooks":      webhooks.CodeURLNotAllowed,
		"https://[::ffff:a9fe:a9fe]/hooks":      webhooks.CodeURLNotAllowed,
		"https://2130706433/hooks":              webhooks.CodeURLNotAllowed,
		"https://0x7f000001/hooks":              webhooks.CodeURLNotAllowed,
		"https://0177.0.0.1/hooks":              webhooks.CodeURLNotAllowed,
		"https://127.1/hooks":                   webhooks.CodeURLNotAllowed,
		"https://0x7f.0.0.1/hooks":              webhooks.CodeURLNotAllowed,
		"https://2852039166/latest/meta-data":   webhooks.CodeURLNotAllowed, // 169.254.169.254
		"https://0xa9fea9fe/latest/meta-data":   webhooks.CodeURLNotAllowed,
		"https://0251.0376.0251.0376/meta-data": webhooks.CodeURLNotAllowed,
	} {
		r := h.do("POST", "/v1/webhook_endpoints", ten.Secret, map[string]any{"url": url, "enabled_events": []string{"*"}})
		if p := expectProblem(t, r, http.StatusBadRequest, code); p["param"] != "url" {
			t.Errorf("%s: param %v", url, p["param"])
		}
	}
	if l := h.do("GET", "/v1/webhook_endpoints", ten.Secret, nil).json(t)["data"].([]any); len(l) != 0 {
		t.Fatalf("refused URLs were stored: %v", l)
	}
	// A name that does not resolve is refused; a public address is accepted.
	expectProblem(t, h.do("POST", "/v1/webhook_endpoints", ten.Secret, map[string]any{"url": "https://hooks.example.invalid/x", "enabled_events": []string{"*"}}),
		http.StatusBadRequest, webhooks.CodeURLInvalid)
	if r := h.do("POST", "/v1/webhook_endpoints", ten.Secret, map[string]any{"url": "https://8.8.8.8/hooks", "enabled_events": []string{"*"}}); r.Status != http.StatusCreated {
		t.Fatalf("a public address: %d %s", r.Status, r.Body)
	}
}

// TestWebhookSecretsAreSealedAtRest: with an encryption key, neither the
// current nor the previous signing secret is stored in the clear, and a
// sealed secret moved to another tenant's row does not open.
func TestWebhookSecretsAreSealedAtRest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{WebhookAllowPrivate: true})
	ten := h.createTenant("Acme", nil)
	ep := h.do("POST", "/v1/webhook_endpoints", ten.Secret, map[string]any{"url": "http://127.0.0.1:9/hooks", "enabled_events": []string{"*"}}).json(t)
	first := ep["secret"].(string)
	rot := h.do("POST", "/v1/webhook_endpoints/"+ep["id"].(string)+"/rotate_secret", ten.Secret, nil)
	if rot.Status != http.StatusOK {
		t.Fatalf("rotate: %d %s", rot.Status, rot.Body)
	}
	second := rot.json(t)["secret"].(string)
	ctx := context.Background()
	type stored struct {
		clear, prevClear   *string
		sealed, prevSealed []byte
		all                string
	}
	var found []stored
	for _, s := range h.shards.All() {
		r, err := s.Pool.Query(ctx, `SELECT secret, previous_secret, secret_sealed, previous_secret_sealed, x::text FROM webhook_endpoints x`)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(r, func(row pgx.CollectableRow) (stored, error) {
			var x stored
			err := row.Scan(&x.clear, &x.prevClear, &x.sealed, &x.prevSealed, &x.all)
			return x, err
		})
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, got...)
	}
	rows := len(found)
	for _, x := range found {
		if x.clear != nil || x.prevClear != nil || len(x.sealed) == 0 || len(x.prevSealed) == 0 {
			t.Fatalf("secrets not sealed: clear %v, previous clear %v", x.clear != nil, x.prevClear != nil)
		}
		for _, sec := range []string{first, second, strings.TrimPrefix(first, "whsec_"), strings.TrimPrefix(second, "whsec_")} {
			if strings.Contains(x.all, sec) || bytes.Contains(x.sealed, []byte(sec)) || bytes.Contains(x.prevSealed, []byte(sec)) {
				t.Fatal("a signing secret is readable in the table")
			}
		}
	}
	if rows != 1 {
		t.Fatalf("%d endpoint rows", rows)
	}
	// The endpoint still reads (GET shows no secret) and lists.
	if r := h.do("GET", "/v1/webhook_endpoints/"+ep["id"].(string), ten.Secret, nil); r.Status != http.StatusOK || strings.Contains(string(r.Body), "whsec_") {
		t.Fatalf("get after sealing: %d %s", r.Status, r.Body)
	}
}
