package helm_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// renderRaw renders the chart into generic objects, for fields the typed
// object leaves out (Service ports, ServiceMonitor endpoints, rule specs).
func renderRaw(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	out, err := helm(t, append([]string{"template", "rel", chart}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	var objs []map[string]any
	for _, doc := range docSep.Split(out, -1) {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("decode %q: %v", doc, err)
		}
		if o["kind"] != nil {
			objs = append(objs, o)
		}
	}
	return objs
}

func rawOfKind(objs []map[string]any, kind string) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		if o["kind"] == kind {
			out = append(out, o)
		}
	}
	return out
}

// dig follows keys (string) and indexes (int) into decoded YAML.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestWorkerServesMetricsOnItsOwnPort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		port int
	}{{"default", nil, 9090}, {"port set", []string{"--set", "worker.metricsPort=9191"}, 9191}} {
		objs := render(t, tc.args...)
		cm := named(t, objs, "ConfigMap", "rel-payments")
		if got, want := cm.Data["PAYMENTS_WORKER_METRICS_ADDR"], fmt.Sprintf("0.0.0.0:%d", tc.port); got != want {
			t.Errorf("%s: PAYMENTS_WORKER_METRICS_ADDR %q, want %q", tc.name, got, want)
		}
		d := named(t, objs, "Deployment", "rel-payments-worker")
		c := d.Spec.Template.Spec.Containers[0]
		if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" {
			t.Errorf("%s: worker ports %+v, want one named metrics", tc.name, c.Ports)
		}
		if l := c.LivenessProbe; l == nil || l.HTTPGet == nil || l.HTTPGet.Path != "/healthz" || l.HTTPGet.Port != "metrics" {
			t.Errorf("%s: worker livenessProbe %s, want GET /healthz on port metrics", tc.name, l)
		}
		if c.ReadinessProbe != nil {
			t.Errorf("%s: the worker takes no traffic, yet has a readiness probe", tc.name)
		}
		a := d.Spec.Template.Metadata.Annotations
		if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != fmt.Sprint(tc.port) || a["prometheus.io/path"] != "/metrics" {
			t.Errorf("%s: worker scrape annotations %v", tc.name, a)
		}
		raw := renderRaw(t, tc.args...)
		var svc map[string]any
		for _, s := range rawOfKind(raw, "Service") {
			if dig(s, "metadata", "name") == "rel-payments-worker-metrics" {
				svc = s
			}
		}
		if svc == nil {
			t.Fatalf("%s: no worker metrics Service", tc.name)
		}
		if dig(svc, "spec", "ports", 0, "name") != "metrics" || dig(svc, "spec", "ports", 0, "port") != float64(tc.port) ||
			dig(svc, "spec", "selector", "app.kubernetes.io/component") != "worker" {
			t.Errorf("%s: worker metrics Service spec %v", tc.name, dig(svc, "spec"))
		}
	}
	api := named(t, render(t), "Deployment", "rel-payments-api").Spec.Template.Metadata.Annotations
	if api["prometheus.io/port"] != "8080" || api["prometheus.io/scrape"] != "true" {
		t.Errorf("API scrape annotations %v", api)
	}
	off := named(t, render(t, "--set", "scrapeAnnotations=false"), "Deployment", "rel-payments-worker").Spec.Template.Metadata.Annotations
	if _, ok := off["prometheus.io/scrape"]; ok {
		t.Errorf("scrapeAnnotations=false still annotates: %v", off)
	}
}

func TestServiceMonitorScrapesAPIAndWorker(t *testing.T) {
	t.Parallel()
	ports := func(args ...string) []string {
		sms := rawOfKind(renderRaw(t, append([]string{"--set", "serviceMonitor.enabled=true"}, args...)...), "ServiceMonitor")
		if len(sms) != 1 {
			t.Fatalf("%d ServiceMonitors", len(sms))
		}
		var out []string
		eps, _ := dig(sms[0], "spec", "endpoints").([]any)
		for i := range eps {
			out = append(out, fmt.Sprintf("%v %v", dig(eps, i, "port"), dig(eps, i, "path")))
		}
		return out
	}
	if got, want := ports(), []string{"http /metrics", "metrics /metrics"}; !reflect.DeepEqual(got, want) {
		t.Errorf("endpoints %v, want %v", got, want)
	}
	if got, want := ports("--set", "worker.enabled=false"), []string{"http /metrics"}; !reflect.DeepEqual(got, want) {
		t.Errorf("without the worker: endpoints %v, want %v", got, want)
	}
}

func TestWorkerMetricsPortIsOpenToScrapes(t *testing.T) {
	t.Parallel()
	for _, np := range rawOfKind(renderRaw(t, valueSets["production"]...), "NetworkPolicy") {
		if dig(np, "metadata", "name") != "rel-payments-background" {
			continue
		}
		if dig(np, "spec", "ingress", 0, "ports", 0, "port") != "metrics" {
			t.Errorf("background NetworkPolicy ingress %v, want the metrics port", dig(np, "spec", "ingress"))
		}
		if dig(np, "spec", "ingress", 0, "from", 0, "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") != "monitoring" {
			t.Errorf("background NetworkPolicy ingress from %v, want the production values' monitoring namespace", dig(np, "spec", "ingress", 0, "from"))
		}
		return
	}
	t.Fatal("no background NetworkPolicy")
}

func readRepoFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestChartShipsTheDeployFiles keeps the chart's copies equal to the files
// under deploy/ (Helm reads only files inside the chart).
func TestChartShipsTheDeployFiles(t *testing.T) {
	t.Parallel()
	for src, copied := range map[string]string{
		"deploy/prometheus/payments-rules.yaml":  "helm/payments/files/payments-rules.yaml",
		"deploy/grafana/payments-dashboard.json": "helm/payments/files/payments-dashboard.json",
	} {
		if !bytes.Equal(readRepoFile(t, src), readRepoFile(t, copied)) {
			t.Errorf("%s differs from %s: cp %s %s", copied, src, src, copied)
		}
	}
}

func TestPrometheusRuleFollowsTheCluster(t *testing.T) {
	t.Parallel()
	crd := []string{"--api-versions", "monitoring.coreos.com/v1"}
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"no CRD", nil, 0},
		{"CRD", crd, 1},
		{"CRD, disabled", append(crd, "--set", "prometheusRule.enabled=false"), 0},
		{"forced", []string{"--set", "prometheusRule.enabled=true"}, 1},
	}
	for _, tc := range cases {
		if got := len(rawOfKind(renderRaw(t, tc.args...), "PrometheusRule")); got != tc.want {
			t.Errorf("%s: %d PrometheusRules, want %d", tc.name, got, tc.want)
		}
	}
	rules := rawOfKind(renderRaw(t, "--set", "prometheusRule.enabled=true", "--set", "prometheusRule.labels.release=kps"), "PrometheusRule")
	var want map[string]any
	if err := yaml.Unmarshal(readRepoFile(t, "deploy/prometheus/payments-rules.yaml"), &want); err != nil {
		t.Fatal(err)
	}
	if got := dig(rules[0], "spec"); !reflect.DeepEqual(got, any(want)) {
		t.Errorf("PrometheusRule spec is not deploy/prometheus/payments-rules.yaml:\n%v", got)
	}
	if dig(rules[0], "metadata", "labels", "release") != "kps" {
		t.Errorf("PrometheusRule labels %v, want release=kps", dig(rules[0], "metadata", "labels"))
	}
}

func TestGrafanaDashboardConfigMap(t *testing.T) {
	t.Parallel()
	dashboards := func(args ...string) []object {
		var out []object
		for _, cm := range ofKind(render(t, args...), "ConfigMap") {
			if strings.HasSuffix(cm.Metadata.Name, "-dashboard") {
				out = append(out, cm)
			}
		}
		return out
	}
	if n := len(dashboards()); n != 0 {
		t.Errorf("default values: %d dashboard ConfigMaps, want 0 (optional)", n)
	}
	got := dashboards("--set", "grafanaDashboard.enabled=true", "--set", "grafanaDashboard.annotations.grafana_folder=Payments")
	if len(got) != 1 {
		t.Fatalf("enabled: %d dashboard ConfigMaps, want 1", len(got))
	}
	cm := got[0]
	if cm.Metadata.Labels["grafana_dashboard"] != "1" || cm.Metadata.Annotations["grafana_folder"] != "Payments" {
		t.Errorf("dashboard ConfigMap labels %v annotations %v", cm.Metadata.Labels, cm.Metadata.Annotations)
	}
	want := strings.TrimRight(string(readRepoFile(t, "deploy/grafana/payments-dashboard.json")), "\n")
	if cm.Data["payments-dashboard.json"] != want {
		t.Error("the ConfigMap's dashboard is not deploy/grafana/payments-dashboard.json")
	}
}

func TestSchemaRejectsBadObservabilityValues(t *testing.T) {
	t.Parallel()
	render(t, "--set", "worker.metricsPort=9100", "--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true")
	for name, args := range map[string][]string{
		"metrics port 0":          {"--set", "worker.metricsPort=0"},
		"metrics port too large":  {"--set", "worker.metricsPort=70000"},
		"prometheusRule maybe":    {"--set", "prometheusRule.enabled=maybe"},
		"dashboard enabled text":  {"--set-string", "grafanaDashboard.enabled=yes"},
		"dashboard label number":  {"--set-json", `grafanaDashboard.labels={"grafana_dashboard":1}`},
		"misspelt prometheusRule": {"--set", "prometheusRules.enabled=true"},
		"scrape annotations text": {"--set-string", "scrapeAnnotations=on"},
	} {
		out, err := helm(t, append([]string{"template", "rel", chart}, args...)...)
		if err == nil {
			t.Errorf("%s: helm template %v succeeded, want a schema error", name, args)
			continue
		}
		if !strings.Contains(out, "values don't meet the specifications of the schema") {
			t.Errorf("%s: failed, but not on the schema:\n%s", name, out)
		}
	}
}
