package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

const fakeAdminToken = "admin-secret"

// fakeAPI is a tiny stand-in for the payments API: tenant creation,
// payments, captures, refunds, gets and /metrics. It checks every request
// the generator sends and injects failures by arrival order.
type fakeAPI struct {
	// inject decides the fate of the n-th payment API request (from 1):
	// 0 to serve it, a status to answer instead, or -1 to hang until the
	// client gives up.
	inject func(n int) int

	mu            sync.Mutex
	tenants       map[string]int // secret to index
	payments      map[string]fakePayment
	keys          map[string]bool
	problems      []string
	served        int // payment API requests, including injected ones
	byTenant      map[int]int
	byOp          map[string]int
	injected      map[int]int // status to count; -1 counts hangs
	txns, retries int
	exhausted     int
	admin         int
}

type fakePayment struct {
	tenant   int
	manual   bool
	captured bool
}

func newFakeAPI(inject func(int) int) *fakeAPI {
	return &fakeAPI{
		inject: inject, tenants: map[string]int{}, payments: map[string]fakePayment{}, keys: map[string]bool{},
		byTenant: map[int]int{}, byOp: map[string]int{}, injected: map[int]int{},
	}
}

func (f *fakeAPI) problem(format string, args ...any) {
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Fragment != "" || strings.Contains(r.RequestURI, "#") {
		f.mu.Lock()
		f.problem("fragment sent: %s", r.RequestURI)
		f.mu.Unlock()
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/metrics":
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE payments_txn_retries_total counter\npayments_txn_retries_total{reason=\"serialization_failure\",shard=\"local-0\"} %d\n", f.retries)
		fmt.Fprintf(w, "# TYPE payments_txn_total counter\npayments_txn_total{outcome=\"committed\",shard=\"local-0\"} %d\n", f.txns)
		fmt.Fprintf(w, "payments_txn_total{outcome=\"exhausted\",shard=\"local-0\"} %d\n", f.exhausted)
		return
	case r.Method == http.MethodPost && r.URL.Path == "/v1/admin/tenants":
		f.createTenant(w, r)
		return
	}

	f.mu.Lock()
	tenant, ok := f.tenants[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if !ok {
		f.problem("%s %s: unknown Authorization %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
		f.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
		return
	}
	if r.Method == http.MethodPost {
		key := r.Header.Get("Idempotency-Key")
		switch {
		case key == "":
			f.problem("POST %s without Idempotency-Key", r.URL.Path)
		case f.keys[key]:
			f.problem("POST %s: Idempotency-Key %q used twice", r.URL.Path, key)
		}
		f.keys[key] = true
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			f.problem("POST %s: Content-Type %q", r.URL.Path, ct)
		}
	}
	f.served++
	f.byTenant[tenant]++
	fate := 0
	if f.inject != nil {
		fate = f.inject(f.served)
	}
	if fate != 0 {
		f.injected[fate]++
		if fate == http.StatusInternalServerError {
			f.exhausted++
		}
	}
	f.mu.Unlock()

	switch {
	case fate < 0:
		// The server notices the client hanging up only once the body is
		// read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return
	case fate > 0:
		writeJSON(w, fate, map[string]any{"error": map[string]string{"code": "injected"}})
		return
	}
	f.route(w, r, tenant)
}

func (f *fakeAPI) createTenant(w http.ResponseWriter, r *http.Request) {
	var body struct{ Name, Region string }
	err := json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+fakeAdminToken {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"title": "Unauthorized"})
		return
	}
	if err != nil || body.Name == "" || body.Region != "local" || r.Header.Get("Content-Type") != "application/json" {
		f.problem("create tenant: body %+v (%v), Content-Type %q", body, err, r.Header.Get("Content-Type"))
		writeJSON(w, http.StatusBadRequest, map[string]string{"title": "Bad Request"})
		return
	}
	f.admin++
	idx := len(f.tenants)
	secret := fmt.Sprintf("sk_test_%d_%s", idx, body.Name)
	f.tenants[secret] = idx
	writeJSON(w, http.StatusCreated, map[string]any{
		"account": map[string]any{"id": fmt.Sprintf("ten_%d", idx), "name": body.Name},
		"api_key": map[string]any{"id": fmt.Sprintf("key_%d", idx), "object": "api_key", "secret": secret},
	})
}

func (f *fakeAPI) route(w http.ResponseWriter, r *http.Request, tenant int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPost && path == "/v1/payments":
		var b struct {
			Amount        int64  `json:"amount"`
			Currency      string `json:"currency"`
			PaymentMethod string `json:"payment_method"`
			CaptureMethod string `json:"capture_method"`
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.Amount != 2000 || b.Currency != "usd" || b.PaymentMethod != "pm_card_visa" ||
			(b.CaptureMethod != "" && b.CaptureMethod != "manual") {
			f.problem("create payment: body %+v (%v)", b, err)
		}
		manual := b.CaptureMethod == "manual"
		id := fmt.Sprintf("pay_%d", len(f.payments)+1)
		f.payments[id] = fakePayment{tenant: tenant, manual: manual}
		f.txns++
		f.retries += f.txns % 2
		status, op := "succeeded", "create"
		if manual {
			status, op = "requires_capture", "create_manual"
		}
		f.byOp[op]++
		writeJSON(w, http.StatusCreated, map[string]any{"$schema": "http://x/schemas/Payment.json", "id": id, "object": "payment", "status": status})
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/v1/payments/") && strings.HasSuffix(path, "/capture"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/v1/payments/"), "/capture")
		p, ok := f.payments[id]
		if !ok || p.tenant != tenant || !p.manual || p.captured {
			f.problem("capture %s by tenant %d: %+v (exists %v)", id, tenant, p, ok)
		}
		p.captured = true
		f.payments[id] = p
		f.txns++
		f.byOp["capture"]++
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "payment", "status": "succeeded"})
	case r.Method == http.MethodPost && path == "/v1/refunds":
		var b struct {
			Payment string `json:"payment"`
			Amount  int64  `json:"amount"`
		}
		err := json.NewDecoder(r.Body).Decode(&b)
		p, ok := f.payments[b.Payment]
		if err != nil || b.Amount != 500 || !ok || p.tenant != tenant || p.manual {
			f.problem("refund %+v by tenant %d: %+v (exists %v, %v)", b, tenant, p, ok, err)
		}
		f.txns++
		f.byOp["refund"]++
		writeJSON(w, http.StatusCreated, map[string]any{"id": "re_1", "object": "refund", "payment": b.Payment})
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/v1/payments/"):
		id := strings.TrimPrefix(path, "/v1/payments/")
		if p, ok := f.payments[id]; !ok || p.tenant != tenant {
			f.problem("get %s by tenant %d: %+v (exists %v)", id, tenant, p, ok)
		}
		f.byOp["get"]++
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "payment"})
	default:
		f.problem("unexpected %s %s", r.Method, path)
		writeJSON(w, http.StatusNotFound, map[string]string{"title": "Not Found"})
	}
}

func testConfig(base string) Config {
	cfg := DefaultConfig()
	cfg.BaseURL, cfg.AdminToken = base, fakeAdminToken
	cfg.Tenants, cfg.SetupConcurrency, cfg.Warmup = 7, 3, 0
	cfg.Timeout = 2 * time.Second
	return cfg
}

func sumSteps(steps []StepResult, f func(StepResult) uint64) uint64 {
	var n uint64
	for _, s := range steps {
		n += f(s)
	}
	return n
}

func sumOpt(steps []StepResult, f func(StepResult) *float64) float64 {
	var n float64
	for _, s := range steps {
		if v := f(s); v != nil {
			n += *v
		}
	}
	return n
}

func TestRunAgainstFake(t *testing.T) {
	t.Parallel()
	const hangAt = 40
	fake := newFakeAPI(func(n int) int {
		switch {
		case n == hangAt:
			return -1
		case n%29 == 0:
			return http.StatusInternalServerError
		case n%17 == 0:
			return http.StatusTooManyRequests
		}
		return 0
	})
	srv := httptest.NewServer(fake)
	defer srv.Close()

	cfg := testConfig(srv.URL)
	cfg.Steps = []Step{{Rate: 150, Duration: 600 * time.Millisecond}, {Rate: 300, Duration: 600 * time.Millisecond}}
	cfg.Mix = Mix{FlowCreate: 3, FlowManualCapture: 2, FlowRefund: 2, FlowGet: 2}
	cfg.Timeout = 300 * time.Millisecond // the hanging request times out
	cfg.ServerPID = os.Getpid()
	cfg.StopAfterFailures = 0
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}

	fake.mu.Lock()
	defer fake.mu.Unlock()
	for _, p := range fake.problems {
		t.Error("fake API:", p)
	}
	if fake.admin != 7 || len(rep.Steps) != 2 || rep.StoppedEarly {
		t.Fatalf("tenants %d, steps %d, stopped early %v", fake.admin, len(rep.Steps), rep.StoppedEarly)
	}
	requests := sumSteps(rep.Steps, func(s StepResult) uint64 { return s.Requests })
	if requests != uint64(fake.served) || requests < 100 {
		t.Errorf("generator counted %d requests, the fake served %d", requests, fake.served)
	}
	for name, c := range map[string]struct{ got, want uint64 }{
		"5xx":      {sumSteps(rep.Steps, func(s StepResult) uint64 { return s.Status5xx }), uint64(fake.injected[500])},
		"429":      {sumSteps(rep.Steps, func(s StepResult) uint64 { return s.Status429 }), uint64(fake.injected[429])},
		"errors":   {sumSteps(rep.Steps, func(s StepResult) uint64 { return s.Errors }), 1},
		"timeouts": {sumSteps(rep.Steps, func(s StepResult) uint64 { return s.Timeouts }), 1},
		"other":    {sumSteps(rep.Steps, func(s StepResult) uint64 { return s.StatusOther }), 0},
		"2xx":      {sumSteps(rep.Steps, func(s StepResult) uint64 { return s.Status2xx }), uint64(fake.served - fake.injected[500] - fake.injected[429] - fake.injected[-1])},
	} {
		if c.got != c.want {
			t.Errorf("%s: generator counted %d, want %d", name, c.got, c.want)
		}
	}
	if fake.injected[500] == 0 || fake.injected[429] == 0 || fake.injected[-1] != 1 {
		t.Errorf("injected %v: the test did not exercise every failure", fake.injected)
	}
	ops := map[string]uint64{}
	for _, s := range rep.Steps {
		for name, o := range s.Ops {
			ops[name] += o.Status2xx
		}
		var fromOps uint64
		for _, o := range s.Ops {
			fromOps += o.Requests
		}
		if fromOps != s.Requests {
			t.Errorf("step %d: ops add up to %d requests, step has %d", s.Index, fromOps, s.Requests)
		}
		if s.SuccessRatio >= 1 || s.SuccessRatio <= 0.5 || s.Pass {
			t.Errorf("step %d: success %v, pass %v; the injected failures should fail it", s.Index, s.SuccessRatio, s.Pass)
		}
		if s.GeneratorCPUUsPerRequest <= 0 || s.ServerCPUUsPerRequest == nil {
			t.Errorf("step %d: CPU not measured: %v, %v", s.Index, s.GeneratorCPUUsPerRequest, s.ServerCPUUsPerRequest)
		}
		if s.TxnTotal == nil || s.TxnRetries == nil || s.TxnRetryRatio == nil || s.TxnExhausted == nil {
			t.Errorf("step %d: transaction counters missing", s.Index)
		}
	}
	for _, op := range []string{"create", "create_manual", "capture", "refund", "get"} {
		if ops[op] == 0 || ops[op] != uint64(fake.byOp[op]) {
			t.Errorf("op %s: generator counted %d 2xx, fake served %d", op, ops[op], fake.byOp[op])
		}
	}
	if ops["capture"] > ops["create_manual"] {
		t.Errorf("%d captures of %d manual payments", ops["capture"], ops["create_manual"])
	}
	if got := sumOpt(rep.Steps, func(s StepResult) *float64 { return s.TxnTotal }); got != float64(fake.txns+fake.exhausted) {
		t.Errorf("txn deltas add up to %v, the fake ran %d", got, fake.txns+fake.exhausted)
	}
	if got := sumOpt(rep.Steps, func(s StepResult) *float64 { return s.TxnExhausted }); got != float64(fake.exhausted) {
		t.Errorf("exhausted deltas add up to %v, want %d", got, fake.exhausted)
	}
	if got := sumOpt(rep.Steps, func(s StepResult) *float64 { return s.TxnRetries }); got != float64(fake.retries) {
		t.Errorf("retry deltas add up to %v, want %d", got, fake.retries)
	}
	for i := range 7 {
		if fake.byTenant[i] < 10 {
			t.Errorf("tenant %d got %d requests; traffic is not spread: %v", i, fake.byTenant[i], fake.byTenant)
		}
	}
	if rep.BestStep != nil {
		t.Errorf("best step %+v, want none", rep.BestStep)
	}
	if md := Markdown(rep); strings.Count(md, "\n| ") != 3 {
		t.Errorf("Markdown has not one row per step:\n%s", md)
	}
}

func TestRunPassesAndStopsAfterFailures(t *testing.T) {
	t.Parallel()
	var failing sync.Map
	fake := newFakeAPI(func(n int) int {
		if _, ok := failing.Load("on"); ok {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	srv := httptest.NewServer(fake)
	defer srv.Close()

	// A clean run passes every step and names the highest.
	cfg := testConfig(srv.URL)
	cfg.Steps = []Step{{Rate: 60, Duration: 300 * time.Millisecond}, {Rate: 90, Duration: 300 * time.Millisecond}, {Rate: 30, Duration: 300 * time.Millisecond}}
	cfg.P99Max = time.Minute // no latency limit: this test is not about speed
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) != 3 || rep.BestStep == nil || rep.BestStep.OfferedRPS != 90 || rep.BestStep.Index != 2 {
		t.Fatalf("steps %d, best %+v; want 3 steps and step 2 best", len(rep.Steps), rep.BestStep)
	}
	for _, s := range rep.Steps {
		if s.SuccessRatio != 1 || !s.Pass || s.Status2xx != s.Requests || s.StatusCounts["201"] != s.Requests {
			t.Errorf("step %d: %+v", s.Index, s)
		}
	}

	// Every answer a 503: two failing steps end the run.
	failing.Store("on", true)
	cfg.Steps = []Step{{Rate: 40, Duration: 200 * time.Millisecond}, {Rate: 40, Duration: 200 * time.Millisecond}, {Rate: 40, Duration: 200 * time.Millisecond}, {Rate: 40, Duration: 200 * time.Millisecond}}
	cfg.StopAfterFailures = 2
	rep, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) != 2 || !rep.StoppedEarly || rep.BestStep != nil || !strings.Contains(rep.StopReason, "2 failing steps") {
		t.Errorf("steps %d, stopped early %v (%s), best %+v", len(rep.Steps), rep.StoppedEarly, rep.StopReason, rep.BestStep)
	}
	for _, s := range rep.Steps {
		if s.Status5xx != s.Requests || s.SuccessRatio != 0 || s.StatusCounts["503"] != s.Requests {
			t.Errorf("step %d: %d of %d requests 5xx", s.Index, s.Status5xx, s.Requests)
		}
	}
}

func TestRunStopsWhenCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fake := newFakeAPI(func(n int) int {
		if n == 20 {
			cancel()
		}
		return 0
	})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Steps = []Step{{Rate: 100, Duration: time.Hour}, {Rate: 100, Duration: time.Hour}}
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) != 1 || !rep.StoppedEarly || rep.StopReason != "interrupted" || rep.Steps[0].Requests < 20 {
		t.Errorf("steps %d, stopped %v (%s)", len(rep.Steps), rep.StoppedEarly, rep.StopReason)
	}
}

func TestRunRefuses(t *testing.T) {
	t.Parallel()
	fake := newFakeAPI(nil)
	srv := httptest.NewServer(fake)
	defer srv.Close()

	cfg := testConfig(srv.URL)
	cfg.AdminToken = "wrong"
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "create tenant") || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong admin token: %v, want a 401 from create tenant", err)
	}

	cfg = testConfig("http://192.0.2.1:8080")
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("remote base: %v", err)
	}
	cfg = testConfig(srv.URL)
	cfg.Tenants = 0
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "tenants") {
		t.Errorf("0 tenants: %v", err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.served != 0 || fake.admin != 0 {
		t.Errorf("refused runs sent %d payment requests and created %d tenants", fake.served, fake.admin)
	}
}
