package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

const (
	rulesFile     = "../../deploy/prometheus/payments-rules.yaml"
	dashboardFile = "../../deploy/grafana/payments-dashboard.json"
	runbooksDir   = "../../docs/runbooks"
)

// ruleFile is Prometheus' rule file format; unknown fields are refused.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Record      string            `json:"record"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return rf
}

// dashboardExprs returns every query of the dashboard, by panel title.
func dashboardExprs(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		UID    string            `json:"uid"`
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil || d.UID == "" {
		t.Fatalf("%s: %v (uid %q)", dashboardFile, err, d.UID)
	}
	out := map[string][]string{}
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, raw := range ps {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			for _, tg := range p.Targets {
				out[p.Title] = append(out[p.Title], tg.Expr)
			}
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("dashboard panel %q has no query", p.Title)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// grafanaVars are the dashboard's Grafana variables and what stands in
// for them when the query is parsed.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

var promqlParser = parser.NewParser(parser.Options{})

// metricsOf parses expr with Prometheus' PromQL parser and returns the
// metric names its selectors name.
func metricsOf(expr string) ([]string, error) {
	e, err := promqlParser.ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel {
				name = m.Value
			}
		}
		names = append(names, name)
		return nil
	})
	if len(names) == 0 {
		return nil, fmt.Errorf("names no metric")
	}
	return names, nil
}

// TestRulesAndDashboardParse runs without services: every rule and every
// dashboard query is valid PromQL and names a metric, every alert has a
// severity and a runbook that exists, and durations are Prometheus'.
func TestRulesAndDashboardParse(t *testing.T) {
	t.Parallel()
	rf := loadRules(t)
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("rule group %q is empty or unnamed", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without an alert name", g.Name)
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			if _, err := metricsOf(r.Expr); err != nil {
				t.Errorf("alert %s: %v\n%s", r.Alert, err, r.Expr)
			}
			if _, err := model.ParseDuration(r.For); err != nil {
				t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: summary and description are required", r.Alert)
			}
			rb := r.Annotations["runbook"]
			if !strings.HasPrefix(rb, "docs/runbooks/") {
				t.Errorf("alert %s: runbook %q, want a file in docs/runbooks/", r.Alert, rb)
			} else if _, err := os.Stat(filepath.Join("../..", rb)); err != nil {
				t.Errorf("alert %s: runbook: %v", r.Alert, err)
			}
		}
	}
	// The six the SLOs need, by name (docs/runbooks/ refer to them).
	for _, a := range []string{"PaymentsAPILatencyP99High", "PaymentsHTTP5xxRatioHigh", "PaymentsWebhookBacklogOld",
		"PaymentsStripeBreakerOpen", "PaymentsReconcilerFailing", "PaymentsRedisErrors"} {
		if !alerts[a] {
			t.Errorf("no alert %s", a)
		}
	}
	for title, exprs := range dashboardExprs(t) {
		for _, e := range exprs {
			if _, err := metricsOf(e); err != nil {
				t.Errorf("dashboard panel %q: %v\n%s", title, err, e)
			}
		}
	}
	// The parser is no rubber stamp.
	for _, bad := range []string{`rate(payments_http_requests_total[5m]`, `sum by (le) payments_x`, `1 + 1`} {
		if _, err := metricsOf(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// exposedSeries reads a /metrics answer into the names of its series
// (a histogram family x exposes x_bucket, x_sum and x_count) and the
// families themselves.
func exposedSeries(t *testing.T, url string) (map[string]bool, map[string]*dto.MetricFamily) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	names := map[string]bool{}
	for name, f := range fams {
		if len(f.Metric) == 0 {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	return names, fams
}

// sample is the value of the family's series whose labels include want
// (histograms: the sample count), summed over matching series.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	total, found := 0.0, false
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total, found
}

// TestRulesAndDashboardQueryExposedMetrics runs `payments serve` and
// `payments worker` against real PostgreSQL and Redis with a Stripe double,
// sends real traffic (payments that succeed and decline, a webhook endpoint
// that receives its events, a Stripe outage that opens the breaker and
// leaves a payment for the reconciler), then reads both /metrics. Every
// metric the alert rules, the dashboard and the runbooks name must be
// exposed, and the SLO metrics must have counted the traffic.
func TestRulesAndDashboardQueryExposedMetrics(t *testing.T) {
	t.Parallel()
	d := stripetest.New(t)
	var received atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		received.Add(1)
	}))
	defer receiver.Close()

	addr, workerAddr := freeAddr(t), freeAddr(t)
	token := strings.Repeat("o", 40)
	e := map[string]string{
		"DATABASE_URL": dbtest.NewDatabase(t), "REDIS_URL": dbtest.RedisURL(t), "PAYMENTS_REDIS_PREFIX": dbtest.KeyPrefix(t),
		"PAYMENTS_ADMIN_TOKEN": token, "PAYMENTS_HTTP_ADDR": addr, "PAYMENTS_WORKER_METRICS_ADDR": workerAddr,
		"STRIPE_SECRET_KEY": platformKey, "STRIPE_API_BASE": d.URL, "PAYMENTS_ENCRYPTION_KEY": encryptionKey,
		"PAYMENTS_STRIPE_NETWORK_RETRIES": "0", "PAYMENTS_STRIPE_BREAKER_FAILURES": "2", "PAYMENTS_STRIPE_BREAKER_OPEN_SECONDS": "300",
		"PAYMENTS_PROCESSOR_TIMEOUT_SECONDS": "1", "PAYMENTS_STRIPE_CALL_TIMEOUT_SECONDS": "1", "PAYMENTS_RECONCILE_AGE_SECONDS": "5", "PAYMENTS_RECONCILE_INTERVAL_SECONDS": "1",
		"PAYMENTS_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true", "PAYMENTS_WEBHOOK_POLL_INTERVAL_MS": "20",
	}
	ctx, cancel := context.WithCancel(context.Background())
	var serveLogs, workerLogs lockedBuffer
	done := make(chan error, 2)
	go func() { done <- run(ctx, []string{"serve"}, envOf(e), io.Discard, &serveLogs) }()
	go func() { done <- run(ctx, []string{"worker"}, envOf(e), io.Discard, &workerLogs) }()
	defer func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("serve or worker: %v", err)
			}
		}
	}()
	deadline := time.Now().Add(startWaitMax)
	for !strings.Contains(serveLogs.String(), `"msg":"serving"`) || !strings.Contains(workerLogs.String(), `"msg":"working"`) {
		if time.Now().After(deadline) {
			t.Fatalf("did not start:\nserve:\n%s\nworker:\n%s", serveLogs.String(), workerLogs.String())
		}
		time.Sleep(startPollPause)
	}
	base := "http://" + addr

	// Traffic: a tenant, a webhook endpoint, payments that succeed and
	// decline, and requests the API refuses.
	status, body := call(t, "POST", base+"/v1/admin/tenants", token, []byte(`{"name":"Acme","region":"local"}`))
	var created struct {
		APIKey struct{ Secret string } `json:"api_key"`
	}
	if err := json.Unmarshal(body, &created); err != nil || status != http.StatusCreated {
		t.Fatalf("create tenant: %d %s", status, body)
	}
	sk := created.APIKey.Secret
	if status, body = call(t, "POST", base+"/v1/webhook_endpoints", sk, []byte(`{"url":"`+receiver.URL+`/hook","enabled_events":["*"]}`)); status != http.StatusCreated {
		t.Fatalf("create webhook endpoint: %d %s", status, body)
	}
	const succeeded = 3
	for range succeeded {
		if status, body = call(t, "POST", base+"/v1/payments", sk, []byte(`{"amount":1000,"currency":"usd","payment_method":"pm_card_visa"}`)); status != http.StatusCreated {
			t.Fatalf("payment: %d %s", status, body)
		}
	}
	if status, body = call(t, "POST", base+"/v1/payments", sk, []byte(`{"amount":1000,"currency":"usd","payment_method":"pm_card_chargeDeclined"}`)); status != http.StatusPaymentRequired {
		t.Fatalf("declined payment: %d %s", status, body)
	}
	if status, _ = call(t, "POST", base+"/v1/payments", sk, []byte(`{"amount":-1,"currency":"usd","payment_method":"pm_card_visa"}`)); status/100 != 4 {
		t.Fatalf("invalid payment: %d", status)
	}
	// A Stripe outage: two 500s open the API's breaker (two failures, no
	// network retries); both payments stay pending for the reconciler,
	// and the next creation is refused at once. (The reconcilers take
	// operations older than 5 s, so none of them uses up a scripted fault.)
	d.Script(stripetest.OpCreate, stripetest.Fault{Kind: stripetest.FaultStatus, Status: 500}, stripetest.Fault{Kind: stripetest.FaultStatus, Status: 500})
	for i := range 2 {
		if status, body = call(t, "POST", base+"/v1/payments", sk, []byte(`{"amount":500,"currency":"usd","payment_method":"pm_card_visa"}`)); status != http.StatusServiceUnavailable {
			t.Fatalf("payment %d during the outage: %d %s", i, status, body)
		}
	}
	if status, body = call(t, "POST", base+"/v1/payments", sk, []byte(`{"amount":500,"currency":"usd","payment_method":"pm_card_visa"}`)); status != http.StatusServiceUnavailable ||
		!strings.Contains(string(body), "retry later") {
		t.Fatalf("payment with the breaker open: %d %s", status, body)
	}

	// Wait for the background work: deliveries arrive, and a reconciler
	// (its own breaker is closed, and Stripe answers again) finishes the
	// two interrupted payments.
	var apiNames, workerNames map[string]bool
	var apiFams, workerFams map[string]*dto.MetricFamily
	finished := func() bool {
		apiNames, apiFams = exposedSeries(t, base+"/metrics")
		workerNames, workerFams = exposedSeries(t, "http://"+workerAddr+"/metrics")
		lagA, _ := sample(apiFams, "payments_webhook_delivery_lag_seconds", nil)
		lagW, _ := sample(workerFams, "payments_webhook_delivery_lag_seconds", nil)
		late := 0.0
		for _, f := range []map[string]*dto.MetricFamily{apiFams, workerFams} {
			n, _ := sample(f, "payments_payment_confirmation_duration_seconds", map[string]string{"processor": "stripe", "outcome": "succeeded"})
			late += n
		}
		runs, _ := sample(workerFams, "payments_reconciler_runs_total", map[string]string{"outcome": "ok"})
		return lagA+lagW > 0 && late >= succeeded+2 && runs > 0
	}
	for deadline := time.Now().Add(60 * time.Second); !finished(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("background work did not finish (%d webhooks received)\nworker:\n%s", received.Load(), workerLogs.String())
		}
	}

	// The SLO metrics counted what happened.
	want := []struct {
		fams   map[string]*dto.MetricFamily
		name   string
		labels map[string]string
		check  func(float64) bool
		what   string
	}{
		{apiFams, "payments_payment_confirmation_duration_seconds", map[string]string{"processor": "stripe", "outcome": "failed"}, func(v float64) bool { return v == 1 }, "one decline"},
		{apiFams, "payments_payment_confirmation_duration_seconds", map[string]string{"processor": "stripe", "outcome": "pending"}, func(v float64) bool { return v == 2 }, "two creations ended pending"},
		{apiFams, "payments_stripe_circuit_breaker_state", map[string]string{"account_id": "platform"}, func(v float64) bool { return v == 2 }, "the API's breaker is open (2)"},
		{workerFams, "payments_stripe_circuit_breaker_state", map[string]string{"account_id": "platform"}, func(v float64) bool { return v == 0 }, "the worker's breaker is closed (0)"},
		{workerFams, "payments_reconciler_backlog", map[string]string{"shard": "s0", "kind": "operation"}, func(v float64) bool { return v >= 0 }, "a backlog gauge per shard and kind"},
		{workerFams, "payments_reconciler_oldest_age_seconds", map[string]string{"shard": "s0", "kind": "refund"}, func(v float64) bool { return v == 0 }, "no refund waits"},
		{workerFams, "payments_webhook_backlog_age_seconds", map[string]string{"shard": "s0"}, func(v float64) bool { return v >= 0 }, "the worker's webhook backlog age"},
		{apiFams, "payments_http_requests_total", map[string]string{"operation": "create-payment", "status": "503"}, func(v float64) bool { return v == 3 }, "three 503s"},
	}
	for _, w := range want {
		v, ok := sample(w.fams, w.name, w.labels)
		if !ok || !w.check(v) {
			t.Errorf("%s%v = %v (exposed %v), want %s", w.name, w.labels, v, ok, w.what)
		}
	}

	exposed, families := map[string]bool{}, map[string]bool{}
	for _, names := range []map[string]bool{apiNames, workerNames} {
		for n := range names {
			exposed[n] = true
		}
	}
	for _, fams := range []map[string]*dto.MetricFamily{apiFams, workerFams} {
		for n, f := range fams {
			if len(f.Metric) > 0 {
				families[n] = true
			}
		}
	}
	// The worker's own endpoint serves the worker's metrics.
	for _, n := range []string{"payments_reconciler_runs_total", "payments_webhook_backlog_age_seconds", "payments_webhook_deliveries_total", "payments_db_pool_connections"} {
		if !workerNames[n] {
			t.Errorf("the worker's /metrics lacks %s", n)
		}
	}
	check := func(where, expr string) {
		names, err := metricsOf(expr)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return
		}
		for _, n := range names {
			if !exposed[n] {
				t.Errorf("%s queries %s, which neither /metrics exposes", where, n)
			}
		}
	}
	rf := loadRules(t)
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			check("alert "+r.Alert, r.Expr)
		}
	}
	for title, exprs := range dashboardExprs(t) {
		for _, e := range exprs {
			check("dashboard panel "+title, e)
		}
	}
	// Prose names a histogram by its family (x), queries by its series (x_bucket).
	for n := range exposed {
		families[n] = true
	}
	checkRunbooks(t, families, alerts)
}

var (
	metricToken = regexp.MustCompile(`\bpayments_[a-z0-9_]+[a-z0-9]\b`)
	alertToken  = regexp.MustCompile(`\bPayments[A-Z][A-Za-z0-9]+\b`)
)

// checkRunbooks fails when a runbook names a metric or an alert that does
// not exist.
func checkRunbooks(t *testing.T, exposed, alerts map[string]bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(runbooksDir, "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no runbooks in %s: %v", runbooksDir, err)
	}
	// Names that are not metrics: database and key prefixes, a table.
	notMetrics := []string{"payments_test_", "payments_build_"}
	var missing []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricToken.FindAllString(string(b), -1) {
			if exposed[m] || slices.ContainsFunc(notMetrics, func(p string) bool { return strings.HasPrefix(m, p) }) {
				continue
			}
			missing = append(missing, filepath.Base(f)+": metric "+m)
		}
		for _, a := range alertToken.FindAllString(string(b), -1) {
			if !alerts[a] {
				missing = append(missing, filepath.Base(f)+": alert "+a)
			}
		}
	}
	sort.Strings(missing)
	for _, m := range slices.Compact(missing) {
		t.Errorf("runbook names what does not exist: %s", m)
	}
}
