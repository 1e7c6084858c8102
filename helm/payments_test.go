package helm_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const chart = "payments"

// secretKeys must never reach a ConfigMap or a plain env value.
var secretKeys = []string{
	"DATABASE_URL", "PAYMENTS_SHARDS", "PAYMENTS_ADMIN_TOKEN", "PAYMENTS_ENCRYPTION_KEY", "PAYMENTS_ENCRYPTION_KEYS",
	"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "REDIS_URL",
}

// valueSets are the values every structural test renders.
var valueSets = map[string][]string{
	"default":    nil,
	"minimal":    {"-f", "payments/ci/minimal-values.yaml"},
	"production": {"-f", "payments/ci/production-values.yaml"},
}

type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
	Spec struct {
		Replicas                *int `json:"replicas"`
		TTLSecondsAfterFinished *int `json:"ttlSecondsAfterFinished"`
		ScaleTargetRef          struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		Egress []struct {
			Ports []struct {
				Port any `json:"port"`
			} `json:"ports"`
		} `json:"egress"`
		Template struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec podSpec `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type podSpec struct {
	SecurityContext *securityContext `json:"securityContext"`
	InitContainers  []container      `json:"initContainers"`
	Containers      []container      `json:"containers"`
}

type securityContext struct {
	RunAsNonRoot             *bool `json:"runAsNonRoot"`
	RunAsUser                *int  `json:"runAsUser"`
	ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
	Capabilities             *struct {
		Drop []string `json:"drop"`
		Add  []string `json:"add"`
	} `json:"capabilities"`
	SeccompProfile *struct {
		Type string `json:"type"`
	} `json:"seccompProfile"`
}

type container struct {
	Name  string   `json:"name"`
	Args  []string `json:"args"`
	Ports []struct {
		Name string `json:"name"`
	} `json:"ports"`
	Env []struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `json:"name"`
				Key  string `json:"key"`
			} `json:"secretKeyRef"`
			ConfigMapKeyRef *struct{} `json:"configMapKeyRef"`
		} `json:"valueFrom"`
	} `json:"env"`
	EnvFrom []struct {
		SecretRef    *struct{} `json:"secretRef"`
		ConfigMapRef *struct{} `json:"configMapRef"`
	} `json:"envFrom"`
	Resources struct {
		Requests map[string]any `json:"requests"`
		Limits   map[string]any `json:"limits"`
	} `json:"resources"`
	SecurityContext *securityContext `json:"securityContext"`
	ReadinessProbe  *probe           `json:"readinessProbe"`
	LivenessProbe   *probe           `json:"livenessProbe"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port any    `json:"port"`
	} `json:"httpGet"`
}

func (p *probe) String() string {
	if p == nil || p.HTTPGet == nil {
		return "none"
	}
	return fmt.Sprintf("GET %s on port %v", p.HTTPGet.Path, p.HTTPGet.Port)
}

func (o object) pod() *podSpec {
	if o.Kind == "Deployment" || o.Kind == "Job" {
		return &o.Spec.Template.Spec
	}
	return nil
}

// helm runs the binary scripts/chart-check.sh builds, with its caches in a
// temporary folder so parallel runs and the user's setup do not interfere.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("..", ".dev", "tools", "helm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("helm is not built at %s: run scripts/chart-check.sh first (%v)", bin, err)
	}
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String() + stderr.String(), err
	}
	return out.String(), nil
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

func render(t *testing.T, args ...string) []object {
	t.Helper()
	out, err := helm(t, append([]string{"template", "rel", chart}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	var objs []object
	for _, doc := range docSep.Split(out, -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("decode %q: %v", doc, err)
		}
		if o.Kind != "" {
			objs = append(objs, o)
		}
	}
	if len(objs) == 0 {
		t.Fatalf("helm template %v rendered nothing", args)
	}
	return objs
}

func ofKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func named(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range ofKind(objs, kind) {
		if o.Metadata.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return object{}
}

func TestMigrationJobIsAKeptHook(t *testing.T) {
	t.Parallel()
	for name, args := range valueSets {
		jobs := ofKind(render(t, args...), "Job")
		if len(jobs) != 1 {
			t.Fatalf("%s: %d Jobs, want 1", name, len(jobs))
		}
		j := jobs[0]
		if got := j.Metadata.Annotations["helm.sh/hook"]; got != "pre-install,pre-upgrade" {
			t.Errorf("%s: helm.sh/hook = %q", name, got)
		}
		if got := j.Metadata.Annotations["helm.sh/hook-delete-policy"]; got != "before-hook-creation" {
			t.Errorf("%s: helm.sh/hook-delete-policy = %q; hook-succeeded would delete the logs", name, got)
		}
		if ttl := j.Spec.TTLSecondsAfterFinished; ttl == nil || *ttl <= 0 {
			t.Errorf("%s: ttlSecondsAfterFinished = %v, want a positive number", name, ttl)
		}
		if c := j.Spec.Template.Spec.Containers; len(c) != 1 || !slices.Equal(c[0].Args, []string{"migrate", "up"}) {
			t.Errorf("%s: migration containers %+v, want one running migrate up", name, c)
		}
	}
}

func TestEveryContainerIsLockedDown(t *testing.T) {
	t.Parallel()
	for name, args := range valueSets {
		pods := 0
		for _, o := range render(t, args...) {
			p := o.pod()
			if p == nil {
				continue
			}
			pods++
			where := name + " " + o.Kind + "/" + o.Metadata.Name
			if s := p.SecurityContext; s == nil || !isTrue(s.RunAsNonRoot) || s.RunAsUser == nil || *s.RunAsUser == 0 ||
				s.SeccompProfile == nil || s.SeccompProfile.Type != "RuntimeDefault" {
				t.Errorf("%s: pod securityContext %+v", where, s)
			}
			for _, c := range append(p.InitContainers, p.Containers...) {
				s := c.SecurityContext
				switch {
				case s == nil:
					t.Errorf("%s/%s: no securityContext", where, c.Name)
					continue
				case !isTrue(s.RunAsNonRoot), s.RunAsUser == nil, s.RunAsUser != nil && *s.RunAsUser == 0:
					t.Errorf("%s/%s: want runAsNonRoot and a numeric non-root runAsUser", where, c.Name)
				case !isTrue(s.ReadOnlyRootFilesystem):
					t.Errorf("%s/%s: root filesystem is writable", where, c.Name)
				case s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation:
					t.Errorf("%s/%s: privilege escalation allowed", where, c.Name)
				case s.Capabilities == nil || !slices.Contains(s.Capabilities.Drop, "ALL") || len(s.Capabilities.Add) > 0:
					t.Errorf("%s/%s: capabilities %+v, want drop ALL and none added", where, c.Name, s.Capabilities)
				case s.SeccompProfile == nil || s.SeccompProfile.Type != "RuntimeDefault":
					t.Errorf("%s/%s: seccompProfile %+v", where, c.Name, s.SeccompProfile)
				}
				for _, r := range []string{"cpu", "memory"} {
					if c.Resources.Requests[r] == nil || c.Resources.Limits[r] == nil {
						t.Errorf("%s/%s: no %s request and limit", where, c.Name, r)
					}
				}
			}
		}
		if pods != 3 {
			t.Errorf("%s: %d pod templates, want 3 (api, worker, migrations)", name, pods)
		}
	}
}

func TestSecretsStayInSecrets(t *testing.T) {
	t.Parallel()
	fromValues := []string{}
	for _, k := range secretKeys {
		fromValues = append(fromValues, "--set", "secrets."+k+"=sentinel-"+strings.ToLower(k))
	}
	cases := map[string]struct {
		args   []string
		secret string // the Secret every reference must name
	}{
		"default":        {nil, "rel-payments"},
		"from values":    {fromValues, "rel-payments"},
		"minimal":        {valueSets["minimal"], "rel-payments"},
		"existingSecret": {valueSets["production"], "payments-secrets"},
	}
	for name, tc := range cases {
		objs := render(t, tc.args...)
		for _, cm := range ofKind(objs, "ConfigMap") {
			for k, v := range cm.Data {
				if slices.Contains(secretKeys, k) || strings.Contains(v, "sentinel-") {
					t.Errorf("%s: ConfigMap %s holds secret %s", name, cm.Metadata.Name, k)
				}
			}
		}
		secrets := ofKind(objs, "Secret")
		if name == "existingSecret" && len(secrets) != 0 {
			t.Errorf("%s: the chart made %d Secrets beside the existing one", name, len(secrets))
		}
		if name == "from values" && (len(secrets) != 1 || len(secrets[0].Data) != len(secretKeys)) {
			t.Errorf("%s: want one Secret with every key, got %+v", name, secrets)
		}
		for _, o := range objs {
			p := o.pod()
			if p == nil {
				continue
			}
			for _, c := range p.Containers {
				read := map[string]bool{}
				for _, e := range c.Env {
					if !slices.Contains(secretKeys, e.Name) {
						continue
					}
					if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
						t.Errorf("%s: %s/%s reads %s other than from a Secret", name, o.Metadata.Name, c.Name, e.Name)
						continue
					}
					if ref := e.ValueFrom.SecretKeyRef; ref.Name != tc.secret || ref.Key != e.Name {
						t.Errorf("%s: %s/%s reads %s from %s/%s, want %s/%s", name, o.Metadata.Name, c.Name, e.Name, ref.Name, ref.Key, tc.secret, e.Name)
					}
					read[e.Name] = true
				}
				if c.Name == "api" && len(read) != len(secretKeys) {
					t.Errorf("%s: the API reads %v of the secret keys, want all of %v", name, read, secretKeys)
				}
				if c.Name != "api" && !read["DATABASE_URL"] {
					t.Errorf("%s: %s/%s does not read DATABASE_URL", name, o.Metadata.Name, c.Name)
				}
			}
		}
	}
}

func TestAPIProbes(t *testing.T) {
	t.Parallel()
	for name, args := range valueSets {
		d := named(t, render(t, args...), "Deployment", "rel-payments-api")
		c := d.Spec.Template.Spec.Containers[0]
		if r := c.ReadinessProbe; r == nil || r.HTTPGet == nil || r.HTTPGet.Path != "/readyz" || r.HTTPGet.Port != "http" {
			t.Errorf("%s: readinessProbe %s, want GET /readyz on port http", name, r)
		}
		if l := c.LivenessProbe; l == nil || l.HTTPGet == nil || l.HTTPGet.Path != "/healthz" || l.HTTPGet.Port != "http" {
			t.Errorf("%s: livenessProbe %s, want GET /healthz on port http", name, l)
		}
		if len(c.Ports) != 1 || c.Ports[0].Name != "http" {
			t.Errorf("%s: ports %+v, want one named http", name, c.Ports)
		}
	}
}

func TestAPIAndWorkerScaleApart(t *testing.T) {
	t.Parallel()
	objs := render(t, "--set", "replicaCount=5", "--set", "worker.replicaCount=2")
	api := named(t, objs, "Deployment", "rel-payments-api")
	worker := named(t, objs, "Deployment", "rel-payments-worker")
	if r := api.Spec.Replicas; r == nil || *r != 5 || !slices.Equal(api.Spec.Template.Spec.Containers[0].Args, []string{"serve"}) {
		t.Errorf("api: replicas %v args %v, want 5 and serve", r, api.Spec.Template.Spec.Containers[0].Args)
	}
	if r := worker.Spec.Replicas; r == nil || *r != 2 || !slices.Equal(worker.Spec.Template.Spec.Containers[0].Args, []string{"worker"}) {
		t.Errorf("worker: replicas %v args %v, want 2 and worker", r, worker.Spec.Template.Spec.Containers[0].Args)
	}
	if n := len(ofKind(objs, "PodDisruptionBudget")); n != 2 {
		t.Errorf("%d PodDisruptionBudgets, want 2", n)
	}

	// With the HPA on, the Deployment leaves replicas to it.
	objs = render(t, valueSets["production"]...)
	api = named(t, objs, "Deployment", "rel-payments-api")
	hpa := named(t, objs, "HorizontalPodAutoscaler", "rel-payments-api")
	if api.Spec.Replicas != nil || hpa.Spec.ScaleTargetRef.Name != "rel-payments-api" {
		t.Errorf("autoscaled api: replicas %v, HPA target %q", api.Spec.Replicas, hpa.Spec.ScaleTargetRef.Name)
	}
}

func TestServiceMonitorFollowsTheCluster(t *testing.T) {
	t.Parallel()
	crd := []string{"--api-versions", "monitoring.coreos.com/v1"}
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"no CRD", nil, 0},
		{"CRD", crd, 1},
		{"CRD, disabled", append(crd, "--set", "serviceMonitor.enabled=false"), 0},
		{"forced", []string{"--set", "serviceMonitor.enabled=true"}, 1},
	}
	for _, tc := range cases {
		if got := len(ofKind(render(t, tc.args...), "ServiceMonitor")); got != tc.want {
			t.Errorf("%s: %d ServiceMonitors, want %d", tc.name, got, tc.want)
		}
	}
}

func TestConfigChangeRollsPods(t *testing.T) {
	t.Parallel()
	sum := func(args ...string) string {
		d := named(t, render(t, args...), "Deployment", "rel-payments-worker")
		return d.Spec.Template.Metadata.Annotations["checksum/config"]
	}
	a, b := sum(), sum("--set", "config.logLevel=debug")
	if a == "" || a == b {
		t.Errorf("checksum/config %q then %q: pods would not roll on a config change", a, b)
	}
}

func TestNetworkPolicyEgress(t *testing.T) {
	t.Parallel()
	for _, np := range ofKind(render(t), "NetworkPolicy") {
		ports := map[float64]bool{}
		for _, e := range np.Spec.Egress {
			for _, p := range e.Ports {
				if f, ok := p.Port.(float64); ok {
					ports[f] = true
				}
			}
		}
		for _, p := range []float64{53, 5432, 6379, 443} {
			if !ports[p] {
				t.Errorf("NetworkPolicy %s: no egress to port %v", np.Metadata.Name, p)
			}
		}
	}
}

func TestSchemaRejectsBadValues(t *testing.T) {
	t.Parallel()
	// The control: the same command with good values renders.
	render(t, "--set", "replicaCount=0", "--set", "config.logLevel=warn")

	dir := t.TempDir()
	file := func(name, body string) []string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return []string{"-f", p}
	}
	cases := map[string][]string{
		"negative replicas":        {"--set", "replicaCount=-1"},
		"negative worker replicas": {"--set", "worker.replicaCount=-1"},
		"unknown log level":        {"--set", "config.logLevel=verbose"},
		"fractional port":          file("port.yaml", "containerPort: 8080.5\n"),
		"port as text":             file("port-text.yaml", "service:\n  port: http\n"),
		"no image repository":      file("image.yaml", "image:\n  repository: null\n"),
		"empty image repository":   {"--set", "image.repository="},
		"root user":                {"--set", "securityContext.runAsUser=0"},
		"writable root":            {"--set", "securityContext.readOnlyRootFilesystem=false"},
		"secret in the ConfigMap":  {"--set", "config.extra.STRIPE_SECRET_KEY=sk_live_x"},
		"misspelt value":           {"--set", "replicas=3"},
		"serviceMonitor maybe":     {"--set", "serviceMonitor.enabled=maybe"},
	}
	for name, args := range cases {
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

func isTrue(b *bool) bool { return b != nil && *b }
